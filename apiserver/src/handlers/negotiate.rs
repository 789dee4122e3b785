//! Response negotiation from `Accept`: plain JSON objects, a
//! `meta.k8s.io` Table, or `PartialObjectMetadata(List)`; 406 with the
//! supported list when nothing matches.

use axum::http::{HeaderMap, header};

use crate::status::ApiError;

/// What the response body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The object or list itself.
    Object,
    /// A Table at `meta.k8s.io/<version>`.
    Table { version: &'static str },
    /// Only metadata (`PartialObjectMetadata` or `...List`).
    PartialMetadata { version: &'static str },
}

/// Media types listed in 406 answers.
pub const SUPPORTED: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];

/// One `Accept` entry: type and parameters.
struct MediaRange<'a> {
    mime: &'a str,
    params: Vec<(&'a str, &'a str)>,
}

fn parse(accept: &str) -> Vec<MediaRange<'_>> {
    accept
        .split(',')
        .filter_map(|part| {
            let mut it = part.split(';').map(str::trim);
            let mime = it.next().filter(|m| !m.is_empty())?;
            let params = it
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.trim(), v.trim()))
                .collect();
            Some(MediaRange { mime, params })
        })
        .collect()
}

/// Picks the output for a request. `list` says whether the response is a
/// collection (for `PartialObjectMetadataList`).
pub fn negotiate(headers: &HeaderMap, list: bool) -> Result<Output, ApiError> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    if accept.trim().is_empty() {
        return Ok(Output::Object);
    }
    for range in parse(accept) {
        let json_like = matches!(range.mime, "application/json" | "application/*" | "*/*");
        if !json_like {
            continue;
        }
        let get = |k: &str| range.params.iter().find(|(pk, _)| *pk == k).map(|(_, v)| *v);
        match get("as") {
            None => return Ok(Output::Object),
            Some(kind) => {
                if get("g") != Some("meta.k8s.io") {
                    continue;
                }
                let version = match get("v") {
                    Some("v1") => "v1",
                    Some("v1beta1") => "v1beta1",
                    _ => continue,
                };
                match kind {
                    "Table" => return Ok(Output::Table { version }),
                    "PartialObjectMetadata" if !list => return Ok(Output::PartialMetadata { version }),
                    "PartialObjectMetadataList" if list => return Ok(Output::PartialMetadata { version }),
                    _ => continue,
                }
            }
        }
    }
    Err(ApiError::not_acceptable(SUPPORTED))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(accept: &str, list: bool) -> Result<Output, u16> {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, accept.parse().unwrap());
        negotiate(&h, list).map_err(|e| e.code)
    }

    #[test]
    fn kubectl_accept_headers() {
        let get = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(check(get, true), Ok(Output::Table { version: "v1" }));
        assert_eq!(check("application/json, */*", false), Ok(Output::Object));
        assert_eq!(
            check("application/vnd.kubernetes.protobuf,application/json", false),
            Ok(Output::Object)
        );
        assert_eq!(
            check(
                "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json",
                true
            ),
            Ok(Output::PartialMetadata { version: "v1" })
        );
        assert_eq!(
            check("application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1", true),
            Err(406)
        );
        assert_eq!(check("text/html", false), Err(406));
        assert_eq!(check("application/json;as=Table;v=v2;g=meta.k8s.io", false), Err(406));
    }
}
