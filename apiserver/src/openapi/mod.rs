//! The OpenAPI documents, as kube-apiserver serves them (kube-openapi's
//! `handler` for v2 and `handler3` for v3):
//!
//! - `GET /openapi/v3`: the index, `{"paths":{"apis/apps/v1":
//!   {"serverRelativeURL":"/openapi/v3/apis/apps/v1?hash=<HASH>"}, ...}}`.
//! - `GET /openapi/v3/<path>`: one document, JSON only (kubectl never asks
//!   for v3 protobuf; other media types get 406). With `?hash=` equal to the
//!   document's, the answer is cacheable forever (`Cache-Control: public,
//!   immutable`); with another hash, a 301 to the current URL.
//! - `GET /openapi/v2`: the whole v2 document, as JSON or as gnostic's
//!   `openapi.v2.Document` protobuf (what kubectl asks for).
//!
//! The documents are upstream v1.36's, filtered to the resources rkube
//! serves and stored gzip-compressed in the binary by
//! `hack/gen/openapi.py` ([`data`]). A client that accepts gzip (every Go
//! client) gets the stored bytes as they are; others get them decompressed
//! as they are sent. ETags are kube-openapi's: sha512 of the JSON, upper-case
//! hex. `If-None-Match` and `If-Modified-Since` answer 304.

mod data;
mod negotiate;
mod respond;
#[cfg(test)]
mod tests;

use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use sha2::{Digest, Sha512};

use crate::status::ApiError;
use respond::{Representation, respond, set};

/// One stored document.
#[derive(Debug)]
pub struct Document {
    /// Its path under `/openapi/v3/` (`"apis/apps/v1"`).
    pub path: &'static str,
    /// sha512 of its JSON, upper-case hex: the ETag and the `?hash=`.
    pub hash: &'static str,
    /// The document, gzip-compressed.
    pub gzip: &'static [u8],
}

const JSON: &str = "application/json";
/// v2 protobuf, the name kube-openapi answers with.
const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
/// v2 protobuf, the older name kubectl asks for.
const V2_PROTOBUF_DEPRECATED: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// When the documents were last modified: when this server started (as
/// upstream, whose documents are built at start).
static LAST_MODIFIED: LazyLock<SystemTime> = LazyLock::new(SystemTime::now);

/// The v3 documents, sorted by path.
pub fn v3_documents() -> &'static [Document] {
    data::V3
}

fn find_v3(path: &str) -> Option<&'static Document> {
    data::V3
        .binary_search_by(|d| d.path.cmp(path))
        .ok()
        .and_then(|i| data::V3.get(i))
}

/// `/openapi/v3?hash=`-style URL of a document.
fn server_relative_url(doc: &Document) -> String {
    format!("/openapi/v3/{}?hash={}", doc.path, doc.hash)
}

fn hex_sha512(data: &[u8]) -> String {
    Sha512::digest(data).iter().map(|b| format!("{b:02X}")).collect()
}

/// The route of `GET /openapi/v3`.
pub fn v3_index<S: Clone + Send + Sync + 'static>() -> MethodRouter<S> {
    LazyLock::force(&LAST_MODIFIED);
    get(serve_v3_index)
}

/// The route of `GET /openapi/v3/{*path}`.
pub fn v3_document<S: Clone + Send + Sync + 'static>() -> MethodRouter<S> {
    LazyLock::force(&LAST_MODIFIED);
    get(serve_v3_document)
}

/// The route of `GET /openapi/v2`.
pub fn v2<S: Clone + Send + Sync + 'static>() -> MethodRouter<S> {
    LazyLock::force(&LAST_MODIFIED);
    get(serve_v2)
}

/// The index's JSON: the same shape and key order as Go's `json.Marshal`
/// of handler3's `OpenAPIV3Discovery`.
pub fn v3_index_json() -> Vec<u8> {
    let paths: serde_json::Map<String, serde_json::Value> = data::V3
        .iter()
        .map(|d| {
            (
                d.path.to_string(),
                serde_json::json!({ "serverRelativeURL": server_relative_url(d) }),
            )
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "paths": paths })).unwrap_or_default()
}

async fn serve_v3_index(req: HeaderMap) -> Response {
    let body = v3_index_json();
    let etag = hex_sha512(&body);
    let mut headers = HeaderMap::new();
    set(&mut headers, header::ETAG, &format!("\"{etag}\""));
    let unchanged = req
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().trim_start_matches("W/").trim_matches('"') == etag)
        });
    if unchanged {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    set(&mut headers, header::CONTENT_TYPE, JSON);
    set(
        &mut headers,
        header::LAST_MODIFIED,
        &respond::http_date(SystemTime::now()),
    );
    (StatusCode::OK, headers, body).into_response()
}

fn query_hash(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "hash")
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

async fn serve_v3_document(Path(path): Path<String>, RawQuery(query): RawQuery, req: HeaderMap) -> Response {
    let mut headers = HeaderMap::new();
    headers.append(header::VARY, HeaderValue::from_static("Accept"));
    if negotiate::pick(&req, &[(JSON, ())]).is_none() {
        return (StatusCode::NOT_ACCEPTABLE, headers).into_response();
    }
    let Some(doc) = find_v3(&path) else {
        return ApiError::path_not_found().into_response();
    };
    headers.append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if let Some(hash) = query_hash(query.as_deref()) {
        if hash != doc.hash {
            set(&mut headers, header::CONTENT_TYPE, JSON);
            set(&mut headers, header::ETAG, &format!("\"{}\"", doc.hash));
            set(&mut headers, header::LOCATION, &server_relative_url(doc));
            return (StatusCode::MOVED_PERMANENTLY, headers).into_response();
        }
        set(&mut headers, header::CACHE_CONTROL, "public, immutable");
        let year = SystemTime::now() + Duration::from_secs(365 * 24 * 3600);
        set(&mut headers, header::EXPIRES, &respond::http_date(year));
    }
    let rep = Representation {
        gzip: doc.gzip,
        content_type: JSON,
        etag: doc.hash.to_string(),
        last_modified: *LAST_MODIFIED,
        gzip_ok: negotiate::accepts_gzip(&req),
    };
    respond(&req, headers, rep)
}

#[derive(Clone, Copy)]
enum V2Format {
    Json,
    Protobuf,
}

async fn serve_v2(req: HeaderMap) -> Response {
    let mut headers = HeaderMap::new();
    headers.append(header::VARY, HeaderValue::from_static("Accept"));
    headers.append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    let offered = [
        (JSON, V2Format::Json),
        (V2_PROTOBUF_DEPRECATED, V2Format::Protobuf),
        (V2_PROTOBUF, V2Format::Protobuf),
    ];
    let (gzip, content_type) = match negotiate::pick(&req, &offered) {
        Some(V2Format::Json) => (data::V2_JSON.gzip, JSON),
        Some(V2Format::Protobuf) => (data::V2_PROTOBUF, V2_PROTOBUF),
        None => return (StatusCode::NOT_ACCEPTABLE, headers).into_response(),
    };
    let rep = Representation {
        gzip,
        content_type,
        etag: data::V2_JSON.hash.to_string(),
        last_modified: *LAST_MODIFIED,
        gzip_ok: negotiate::accepts_gzip(&req),
    };
    respond(&req, headers, rep)
}
