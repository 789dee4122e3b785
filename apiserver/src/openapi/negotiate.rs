//! `Accept` and `Accept-Encoding` for the OpenAPI endpoints, as kube-openapi
//! reads them: `Accept` clauses ordered by quality then specificity (like
//! goautoneg), each tried against the offered media types in order.

use axum::http::{HeaderMap, header};

/// One `Accept` clause.
#[derive(Debug, Clone, PartialEq)]
struct Clause<'a> {
    kind: &'a str,
    subtype: &'a str,
    q: f32,
}

fn clauses(accept: &str) -> Vec<Clause<'_>> {
    let mut out: Vec<Clause<'_>> = accept
        .split(',')
        .filter_map(|part| {
            let mut it = part.split(';').map(str::trim);
            let (kind, subtype) = it.next()?.split_once('/')?;
            let mut q = 1.0;
            for param in it {
                if let Some(("q", v)) = param.split_once('=').map(|(k, v)| (k.trim(), v.trim())) {
                    q = v.parse().unwrap_or(0.0);
                }
            }
            Some(Clause {
                kind: kind.trim(),
                subtype: subtype.trim(),
                q,
            })
        })
        .filter(|c| c.q > 0.0 && !c.kind.is_empty() && !c.subtype.is_empty())
        .collect();
    let specificity = |c: &Clause<'_>| u8::from(c.kind != "*") + u8::from(c.subtype != "*");
    // Stable: equal clauses keep the client's order.
    out.sort_by(|a, b| b.q.total_cmp(&a.q).then(specificity(b).cmp(&specificity(a))));
    out
}

/// The first of `offered` (full media types, in the server's order of
/// preference) that the request's `Accept` allows, or `None` (406). No
/// `Accept` means `*/*`.
pub fn pick<T: Copy>(headers: &HeaderMap, offered: &[(&str, T)]) -> Option<T> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .unwrap_or("*/*");
    for clause in clauses(accept) {
        for (mime, value) in offered {
            let Some((kind, subtype)) = mime.split_once('/') else {
                continue;
            };
            if (clause.kind == "*" || clause.kind == kind) && (clause.subtype == "*" || clause.subtype == subtype) {
                return Some(*value);
            }
        }
    }
    None
}

/// Whether the client takes a gzip-encoded body (`Accept-Encoding: gzip` or
/// `*`, with a non-zero quality).
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|part| {
            let mut it = part.split(';').map(str::trim);
            let coding = it.next().unwrap_or("");
            let q = it
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim() == "q")
                .map(|(_, v)| v.trim().parse::<f32>().unwrap_or(0.0))
                .unwrap_or(1.0);
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && q > 0.0
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use axum::http::HeaderValue;

    use super::*;

    const OFFERED: &[(&str, &str)] = &[
        ("application/json", "json"),
        ("application/com.github.proto-openapi.spec.v2@v1.0+protobuf", "pb"),
    ];

    fn check(accept: Option<&str>, expected: Option<&str>) {
        let mut headers = HeaderMap::new();
        if let Some(a) = accept {
            headers.insert(header::ACCEPT, HeaderValue::from_str(a).unwrap());
        }
        assert_eq!(pick(&headers, OFFERED), expected, "Accept: {accept:?}");
    }

    #[test]
    fn accept_clauses() {
        check(None, Some("json"));
        check(Some("*/*"), Some("json"));
        check(Some("application/json, */*"), Some("json"));
        check(
            Some("application/com.github.proto-openapi.spec.v2@v1.0+protobuf"),
            Some("pb"),
        );
        check(
            Some("*/*, application/com.github.proto-openapi.spec.v2@v1.0+protobuf"),
            Some("pb"),
        );
        check(
            Some("application/json;q=0.5, application/com.github.proto-openapi.spec.v2@v1.0+protobuf"),
            Some("pb"),
        );
        check(Some("application/json;q=0, text/html"), None);
        check(Some("text/html"), None);
        check(Some("application/*"), Some("json"));
        check(Some("garbage"), None);
    }

    #[test]
    fn accept_encoding() {
        let check = |value: &str, expected: bool| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap());
            assert_eq!(accepts_gzip(&headers), expected, "{value}");
        };
        check("gzip", true);
        check("deflate, gzip;q=0.5", true);
        check("GZIP", true);
        check("*", true);
        check("gzip;q=0", false);
        check("deflate, br", false);
        check("identity", false);
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
