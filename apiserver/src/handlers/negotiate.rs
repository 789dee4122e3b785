//! Response negotiation from `Accept`, as kube-apiserver does it: the
//! entries are tried best `q` first (ties in the client's order), and the
//! first one rkube can produce wins. An entry names an encoding (JSON,
//! YAML or Kubernetes protobuf; `*/*` and `application/*` mean JSON) and
//! optionally, with `as=<Kind>;g=meta.k8s.io;v=<version>`, a
//! transformation: a `Table` (JSON and YAML only, like upstream, so
//! `application/vnd.kubernetes.protobuf;as=Table` is skipped) or partial
//! object metadata (any encoding). Custom resources have no protobuf
//! form: for them a plain `application/vnd.kubernetes.protobuf` entry is
//! skipped like an unknown type (upstream's CRD handler keeps protobuf out
//! of its standard serializers but not out of the metadata and Status
//! ones), so a client that also accepts JSON gets JSON and one that asks
//! for protobuf only gets the 406. Nothing acceptable is a 406 Status that
//! lists every supported media type.

use axum::http::{HeaderMap, header};

use crate::status::ApiError;

/// The form of the response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// The object or list itself.
    Object,
    /// A Table at `meta.k8s.io/<version>`.
    Table { version: &'static str },
    /// Only metadata (`PartialObjectMetadata` or `...List`).
    PartialMetadata { version: &'static str },
}

/// The serialization of the response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Json,
    Yaml,
    Protobuf,
}

impl Encoding {
    /// The `Content-Type` of a single object.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Json => "application/json",
            Encoding::Yaml => "application/yaml",
            Encoding::Protobuf => crate::protobuf::MEDIA_TYPE,
        }
    }
}

/// What the response body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    pub form: Form,
    pub encoding: Encoding,
}

impl Output {
    /// Plain JSON objects (no or an empty `Accept`).
    pub const JSON: Output = Output {
        form: Form::Object,
        encoding: Encoding::Json,
    };
}

/// Media types listed in 406 answers.
pub const SUPPORTED: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];

/// One `Accept` entry: type, parameters and quality.
struct MediaRange<'a> {
    mime: String,
    params: Vec<(&'a str, &'a str)>,
    q: f32,
}

fn parse(accept: &str) -> Vec<MediaRange<'_>> {
    let mut out: Vec<MediaRange<'_>> = accept
        .split(',')
        .filter_map(|part| {
            let mut it = part.split(';').map(str::trim);
            let mime = it.next().filter(|m| !m.is_empty())?.to_ascii_lowercase();
            let mut q = 1.0;
            let mut params = Vec::new();
            for (k, v) in it.filter_map(|p| p.split_once('=')) {
                let (k, v) = (k.trim(), v.trim().trim_matches('"'));
                if k == "q" {
                    q = v.parse().unwrap_or(0.0);
                } else {
                    params.push((k, v));
                }
            }
            Some(MediaRange { mime, params, q })
        })
        .filter(|r| r.q > 0.0)
        .collect();
    // Stable: equal qualities keep the client's order.
    out.sort_by(|a, b| b.q.partial_cmp(&a.q).unwrap_or(std::cmp::Ordering::Equal));
    out
}

fn encoding_of(mime: &str) -> Option<Encoding> {
    match mime {
        "application/json" | "application/*" | "*/*" => Some(Encoding::Json),
        "application/yaml" => Some(Encoding::Yaml),
        crate::protobuf::MEDIA_TYPE => Some(Encoding::Protobuf),
        _ => None,
    }
}

/// The output one entry asks for, if rkube can produce it. `protobuf`
/// says whether the kind itself has a protobuf message.
fn accepts(range: &MediaRange<'_>, list: bool, protobuf: bool) -> Option<Output> {
    let encoding = encoding_of(&range.mime)?;
    let get = |k: &str| range.params.iter().find(|(pk, _)| *pk == k).map(|(_, v)| *v);
    let Some(kind) = get("as") else {
        if encoding == Encoding::Protobuf && !protobuf {
            return None;
        }
        return Some(Output {
            form: Form::Object,
            encoding,
        });
    };
    if get("g") != Some("meta.k8s.io") {
        return None;
    }
    let version = match get("v") {
        Some("v1") => "v1",
        Some("v1beta1") => "v1beta1",
        _ => return None,
    };
    let form = match kind {
        "Table" if encoding != Encoding::Protobuf => Form::Table { version },
        "PartialObjectMetadata" if !list => Form::PartialMetadata { version },
        "PartialObjectMetadataList" if list => Form::PartialMetadata { version },
        _ => return None,
    };
    Some(Output { form, encoding })
}

/// Picks the output for a request. `list` says whether the response is a
/// collection (for `PartialObjectMetadataList`); `protobuf` whether the
/// kind has a protobuf form (false for custom resources).
pub fn negotiate(headers: &HeaderMap, list: bool, protobuf: bool) -> Result<Output, ApiError> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    if accept.trim().is_empty() {
        return Ok(Output::JSON);
    }
    parse(accept)
        .iter()
        .find_map(|r| accepts(r, list, protobuf))
        .ok_or_else(|| ApiError::not_acceptable(SUPPORTED))
}

/// Picks the output of a watch: like [`negotiate`], but YAML has no stream
/// form, so a watch that negotiates YAML is a 406 (upstream does not try
/// the next entry either). `protobuf` is as for [`negotiate`].
pub fn negotiate_watch(headers: &HeaderMap, protobuf: bool) -> Result<Output, ApiError> {
    // Watch events carry single objects: client-go's metadata informers
    // ask for `as=PartialObjectMetadata`; the list form is accepted too.
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let output = if accept.trim().is_empty() {
        Output::JSON
    } else {
        parse(accept)
            .iter()
            .find_map(|r| accepts(r, false, protobuf).or_else(|| accepts(r, true, protobuf)))
            .ok_or_else(|| ApiError::not_acceptable(SUPPORTED))?
    };
    if output.encoding == Encoding::Yaml {
        return Err(ApiError::not_acceptable(SUPPORTED));
    }
    Ok(output)
}

/// The encoding of responses that are not a negotiated object or list
/// (write results, subresources, error Statuses): the first entry that
/// would be accepted for a single object or a list; JSON when none is.
pub fn response_encoding(headers: &HeaderMap) -> Encoding {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    parse(accept)
        .iter()
        .find_map(|r| accepts(r, false, true).or_else(|| accepts(r, true, true)))
        .map_or(Encoding::Json, |o| o.encoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(accept: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, accept.parse().unwrap());
        h
    }

    fn check(accept: &str, list: bool) -> Result<Output, u16> {
        negotiate(&headers(accept), list, true).map_err(|e| e.code)
    }

    fn negotiate_watch_builtin(h: &HeaderMap) -> Result<Output, ApiError> {
        negotiate_watch(h, true)
    }

    fn out(form: Form, encoding: Encoding) -> Result<Output, u16> {
        Ok(Output { form, encoding })
    }

    #[test]
    fn watches_accept_partial_metadata_in_both_forms() {
        for accept in [
            "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
            "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
            "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json",
        ] {
            let out = negotiate_watch_builtin(&headers(accept)).unwrap_or_else(|e| panic!("{accept}: {e:?}"));
            assert_eq!(out.form, Form::PartialMetadata { version: "v1" }, "{accept}");
        }
    }

    #[test]
    fn kubectl_accept_headers() {
        use Encoding::*;
        let get = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(check(get, true), out(Form::Table { version: "v1" }, Json));
        assert_eq!(check("application/json, */*", false), out(Form::Object, Json));
        // Typed clients of kubectl 1.32+ and client-go with protobuf.
        assert_eq!(
            check("application/vnd.kubernetes.protobuf,application/json", false),
            out(Form::Object, Protobuf)
        );
        // The garbage collector's metadata informers.
        assert_eq!(
            check(
                "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json",
                true
            ),
            out(Form::PartialMetadata { version: "v1" }, Protobuf)
        );
        assert_eq!(
            check("application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1", true),
            Err(406)
        );
        assert_eq!(check("text/html", false), Err(406));
        assert_eq!(check("application/json;as=Table;v=v2;g=meta.k8s.io", false), Err(406));
    }

    #[test]
    fn kinds_without_protobuf_skip_plain_protobuf() {
        use Encoding::*;
        let custom = |accept: &str, list: bool| negotiate(&headers(accept), list, false).map_err(|e| e.code);
        // A protobuf client that also accepts JSON gets JSON.
        assert_eq!(
            custom("application/vnd.kubernetes.protobuf,application/json", false),
            out(Form::Object, Json)
        );
        assert_eq!(
            custom("application/vnd.kubernetes.protobuf, */*", true),
            out(Form::Object, Json)
        );
        // Protobuf only: nothing acceptable.
        assert_eq!(custom("application/vnd.kubernetes.protobuf", false), Err(406));
        assert_eq!(custom("application/vnd.kubernetes.protobuf", true), Err(406));
        // Metadata has a protobuf form whatever the kind.
        assert_eq!(
            custom(
                "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json",
                true
            ),
            out(Form::PartialMetadata { version: "v1" }, Protobuf)
        );
        // Watches negotiate the same way.
        assert_eq!(
            negotiate_watch(&headers("application/vnd.kubernetes.protobuf"), false).map_err(|e| e.code),
            Err(406)
        );
        assert_eq!(
            negotiate_watch(&headers("application/vnd.kubernetes.protobuf,application/json"), false).unwrap(),
            Output {
                form: Form::Object,
                encoding: Json
            }
        );
        // The 406 lists every media type, as upstream's CRD handler does.
        let e = negotiate(&headers("application/vnd.kubernetes.protobuf"), false, false).unwrap_err();
        assert_eq!(e.reason, "NotAcceptable");
        assert_eq!(
            e.message,
            "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf"
        );
        // The error Status itself is protobuf for such a client (a Status has a message).
        assert_eq!(
            response_encoding(&headers("application/vnd.kubernetes.protobuf")),
            Protobuf
        );
    }

    #[test]
    fn protobuf_tables_fall_through() {
        use Encoding::*;
        let a = "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1;g=meta.k8s.io";
        assert_eq!(check(a, true), out(Form::Table { version: "v1" }, Json));
        let a = "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/vnd.kubernetes.protobuf";
        assert_eq!(check(a, true), out(Form::Object, Protobuf));
        assert_eq!(
            check("application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io", true),
            Err(406)
        );
        assert_eq!(
            check("application/yaml;as=Table;v=v1;g=meta.k8s.io", true),
            out(Form::Table { version: "v1" }, Yaml)
        );
    }

    #[test]
    fn quality_orders_entries() {
        use Encoding::*;
        assert_eq!(
            check("application/json;q=0.5, application/yaml", false),
            out(Form::Object, Yaml)
        );
        assert_eq!(
            check("application/yaml;q=0, application/json;q=0.1", false),
            out(Form::Object, Json)
        );
        assert_eq!(check("application/yaml;q=0", false), Err(406));
        assert_eq!(check("APPLICATION/YAML", false), out(Form::Object, Yaml));
        assert_eq!(check("application/*", false), out(Form::Object, Json));
        assert_eq!(check("", false), Ok(Output::JSON));
    }

    #[test]
    fn watch_has_no_yaml() {
        assert_eq!(
            negotiate_watch_builtin(&headers("application/yaml")).map_err(|e| e.code),
            Err(406)
        );
        // Upstream negotiates first and then rejects: no fall-through.
        assert_eq!(
            negotiate_watch_builtin(&headers("application/yaml,application/json")).map_err(|e| e.code),
            Err(406)
        );
        assert_eq!(
            negotiate_watch_builtin(&headers("application/vnd.kubernetes.protobuf")).unwrap(),
            Output {
                form: Form::Object,
                encoding: Encoding::Protobuf
            }
        );
    }

    #[test]
    fn error_encoding_follows_accept() {
        use Encoding::*;
        assert_eq!(
            response_encoding(&headers("application/vnd.kubernetes.protobuf, application/json")),
            Protobuf
        );
        assert_eq!(response_encoding(&headers("application/yaml")), Yaml);
        assert_eq!(
            response_encoding(&headers(
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
            )),
            Json
        );
        assert_eq!(response_encoding(&headers("text/html")), Json);
        assert_eq!(response_encoding(&HeaderMap::new()), Json);
    }

    #[tokio::test]
    async fn metadata_watch_over_http() {
        use axum::body::Body;
        use axum::http::Request;
        let s = crate::testing::TestServer::new().await;
        s.post(
            "/api/v1/namespaces/default/configmaps",
            serde_json::json!({"metadata": {"name": "m"}, "data": {"secret": "x"}}),
        )
        .await;
        let req = Request::builder()
            .uri("/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1")
            .header(
                header::ACCEPT,
                "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
            )
            .body(Body::empty())
            .unwrap();
        let resp = s.send(req).await;
        assert_eq!(resp.status(), axum::http::StatusCode::OK);
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        let first: serde_json::Value = serde_json::from_slice(body.split(|b| *b == b'\n').next().unwrap()).unwrap();
        assert_eq!(first["object"]["kind"], "PartialObjectMetadata", "{first}");
        assert_eq!(first["object"]["metadata"]["name"], "m");
        assert!(first["object"].get("data").is_none());
    }
}
