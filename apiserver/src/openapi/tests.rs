#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;

use super::*;
use crate::testing::TestServer;

/// Sends `GET path` with `headers`; returns the status, headers and body.
async fn get_with(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = Request::builder().method("GET").uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = server.send(req.body(Body::empty()).unwrap()).await;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, headers, body.to_vec())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data).read_to_end(&mut out).unwrap();
    out
}

/// The URL the index gives for `path`.
async fn v3_url(server: &TestServer, path: &str) -> String {
    let (code, _, body) = get_with(server, "/openapi/v3", &[]).await;
    assert_eq!(code, StatusCode::OK);
    let index: Value = serde_json::from_slice(&body).unwrap();
    index["paths"][path]["serverRelativeURL"].as_str().unwrap().to_string()
}

#[test]
fn stored_hashes_are_sha512_of_the_json() {
    for doc in v3_documents().iter().chain([&data::V2_JSON]) {
        let json = gunzip(doc.gzip);
        assert_eq!(hex_sha512(&json), doc.hash, "{}", doc.path);
        let _: Value = serde_json::from_slice(&json).unwrap_or_else(|e| panic!("{}: {e}", doc.path));
    }
    let paths: Vec<&str> = v3_documents().iter().map(|d| d.path).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "binary search needs sorted paths");
}

#[tokio::test]
async fn index_lists_served_group_versions_only() {
    let server = TestServer::new().await;
    let (code, headers, body) = get_with(&server, "/openapi/v3", &[("accept", "application/json, */*")]).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(header(&headers, "content-type"), "application/json");
    let index: Value = serde_json::from_slice(&body).unwrap();
    let paths = index["paths"].as_object().unwrap();
    for served in [
        "api",
        "api/v1",
        "apis",
        "apis/apps",
        "apis/apps/v1",
        "apis/autoscaling/v2",
        "version",
    ] {
        let url = paths[served]["serverRelativeURL"].as_str().unwrap();
        let doc = find_v3(served).unwrap();
        assert_eq!(url, format!("/openapi/v3/{served}?hash={}", doc.hash));
    }
    for unserved in [
        "apis/resource.k8s.io/v1beta1",
        "apis/storagemigration.k8s.io",
        "apis/storagemigration.k8s.io/v1beta1",
        "apis/internal.apiserver.k8s.io/v1alpha1",
        "logs",
        "openid/v1/jwks",
    ] {
        assert!(!paths.contains_key(unserved), "{unserved}");
    }
    // Every served group-version has its document.
    let builtin: Value = serde_json::from_str(include_str!("../resources/builtin.json")).unwrap();
    for r in builtin.as_array().unwrap() {
        let (g, v) = (r["group"].as_str().unwrap(), r["version"].as_str().unwrap());
        let path = if g.is_empty() {
            format!("api/{v}")
        } else {
            format!("apis/{g}/{v}")
        };
        assert!(paths.contains_key(&path), "{path}");
    }
    // The index's ETag answers 304.
    let etag = header(&headers, "etag").to_string();
    assert_eq!(etag, format!("\"{}\"", hex_sha512(&body)));
    let (code, _, body) = get_with(&server, "/openapi/v3", &[("if-none-match", &etag)]).await;
    assert_eq!(code, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
}

#[tokio::test]
async fn document_with_its_hash_is_immutable() {
    let server = TestServer::new().await;
    let url = v3_url(&server, "apis/apps/v1").await;
    let (code, headers, body) = get_with(&server, &url, &[("accept", "application/json")]).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(header(&headers, "content-type"), "application/json");
    assert_eq!(header(&headers, "cache-control"), "public, immutable");
    assert!(!header(&headers, "expires").is_empty());
    assert!(!header(&headers, "last-modified").is_empty());
    assert_eq!(header(&headers, "content-encoding"), "");
    let vary: Vec<&str> = headers.get_all("vary").iter().map(|v| v.to_str().unwrap()).collect();
    assert!(vary.contains(&"Accept"), "{vary:?}");
    let hash = url.split("hash=").nth(1).unwrap();
    assert_eq!(header(&headers, "etag"), format!("\"{hash}\""));
    assert_eq!(hex_sha512(&body), hash);

    // Upstream's content: fieldValidation on PATCH with the GVK extension,
    // which kubectl's field-validation detection looks for.
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["openapi"], "3.0.0");
    let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(
        patch["x-kubernetes-group-version-kind"],
        serde_json::json!({"group": "apps", "kind": "Deployment", "version": "v1"})
    );
    let params: Vec<&str> = patch["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(params.contains(&"fieldValidation"), "{params:?}");
    assert!(doc["components"]["schemas"]["io.k8s.api.apps.v1.DeploymentSpec"].is_object());

    // Without a hash: no caching headers.
    let (code, headers, plain) = get_with(&server, "/openapi/v3/apis/apps/v1", &[]).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(header(&headers, "cache-control"), "");
    assert_eq!(plain, body);
}

#[tokio::test]
async fn stale_hash_redirects_to_the_current_one() {
    let server = TestServer::new().await;
    let url = v3_url(&server, "api/v1").await;
    let (code, headers, body) = get_with(&server, "/openapi/v3/api/v1?hash=0123ABC", &[]).await;
    assert_eq!(code, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(header(&headers, "location"), url);
    assert!(body.is_empty());
}

#[tokio::test]
async fn conditional_requests_answer_304() {
    let server = TestServer::new().await;
    let (_, headers, _) = get_with(&server, "/openapi/v3/api/v1", &[]).await;
    let etag = header(&headers, "etag").to_string();
    let last_modified = header(&headers, "last-modified").to_string();
    let (code, headers304, body) = get_with(&server, "/openapi/v3/api/v1", &[("if-none-match", &etag)]).await;
    assert_eq!(code, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    assert_eq!(header(&headers304, "etag"), etag);
    assert_eq!(header(&headers304, "content-type"), "");
    let (code, _, _) = get_with(&server, "/openapi/v3/api/v1", &[("if-none-match", "\"OTHER\"")]).await;
    assert_eq!(code, StatusCode::OK);
    let (code, _, _) = get_with(&server, "/openapi/v3/api/v1", &[("if-modified-since", &last_modified)]).await;
    assert_eq!(code, StatusCode::NOT_MODIFIED);
    let (code, _, _) = get_with(
        &server,
        "/openapi/v3/api/v1",
        &[("if-modified-since", "Sun, 06 Nov 1994 08:49:37 GMT")],
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    // v2 too, with the same ETag for both representations.
    let (_, headers, _) = get_with(&server, "/openapi/v2", &[]).await;
    let etag = header(&headers, "etag").to_string();
    assert_eq!(etag, format!("\"{}\"", data::V2_JSON.hash));
    let pb = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
    let (code, _, _) = get_with(&server, "/openapi/v2", &[("accept", pb), ("if-none-match", &etag)]).await;
    assert_eq!(code, StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn gzip_when_accepted() {
    let server = TestServer::new().await;
    let (code, headers, body) = get_with(&server, "/openapi/v3/api/v1", &[("accept-encoding", "gzip")]).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(header(&headers, "content-encoding"), "gzip");
    assert_eq!(body, find_v3("api/v1").unwrap().gzip);
    let (_, headers, plain) = get_with(&server, "/openapi/v3/api/v1", &[("accept-encoding", "br")]).await;
    assert_eq!(header(&headers, "content-encoding"), "");
    assert_eq!(gunzip(&body), plain);
    assert!(plain.len() > 1_000_000, "api/v1 streamed in chunks: {}", plain.len());
}

#[tokio::test]
async fn unknown_paths_and_media_types() {
    let server = TestServer::new().await;
    for path in [
        "/openapi/v3/apis/resource.k8s.io/v1beta1",
        "/openapi/v3/apis/apps/v1/",
        "/openapi/v3/logs",
        "/openapi/v3/",
        "/openapi/v4",
    ] {
        let (code, _, _) = get_with(&server, path, &[]).await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{path}");
    }
    let pb3 = "application/com.github.proto-openapi.spec.v3@v1.0+protobuf";
    let (code, _, _) = get_with(&server, "/openapi/v3/api/v1", &[("accept", pb3)]).await;
    assert_eq!(code, StatusCode::NOT_ACCEPTABLE);
    // A client that also takes JSON gets JSON.
    let (code, headers, _) = get_with(
        &server,
        "/openapi/v3/api/v1",
        &[("accept", &format!("{pb3}, application/json"))],
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(header(&headers, "content-type"), "application/json");
    let (code, _, _) = get_with(&server, "/openapi/v2", &[("accept", "text/html")]).await;
    assert_eq!(code, StatusCode::NOT_ACCEPTABLE);
}

#[tokio::test]
async fn v2_json_keeps_served_paths_and_their_definitions() {
    let server = TestServer::new().await;
    let (code, headers, body) = get_with(&server, "/openapi/v2", &[("accept", "application/json")]).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(header(&headers, "content-type"), "application/json");
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["swagger"], "2.0");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.contains_key("/apis/apps/v1/namespaces/{namespace}/deployments/{name}"));
    assert!(paths.contains_key("/api/v1/namespaces/{namespace}/pods/{name}/log"));
    assert!(paths.contains_key("/version/"));
    assert!(
        !paths
            .keys()
            .any(|p| p.contains("v1beta") || p.contains("v1alpha") || p.starts_with("/logs"))
    );
    let defs = doc["definitions"].as_object().unwrap();
    assert!(defs.contains_key("io.k8s.api.apps.v1.Deployment"));
    assert!(!defs.contains_key("io.k8s.api.resource.v1beta1.ResourceClaim"));
    // Every $ref resolves.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => m.iter().for_each(|(k, v)| match (k.as_str(), v) {
                ("$ref", Value::String(s)) => out.push(s),
                _ => refs(v, out),
            }),
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        let (section, name) = r.trim_start_matches("#/").split_once('/').unwrap();
        assert!(doc[section].get(name).is_some(), "dangling {r}");
    }
    // Shared definitions list only served group-versions.
    let gvks =
        doc["definitions"]["io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"]["x-kubernetes-group-version-kind"]
            .as_array()
            .unwrap();
    assert!(gvks.iter().any(|g| g["group"] == "apps"));
    assert!(!gvks.iter().any(|g| g["version"].as_str().unwrap().contains("beta")));
}

/// A minimal protobuf reader: the fields of one message, as
/// (number, wire type, varint value or bytes).
fn fields(mut buf: &[u8]) -> Vec<(u64, u8, u64, &[u8])> {
    fn varint(buf: &mut &[u8]) -> u64 {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let (b, rest) = buf.split_first().unwrap();
            *buf = rest;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
        }
        n
    }
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = varint(&mut buf);
        let (field, wire) = (key >> 3, (key & 7) as u8);
        match wire {
            0 => out.push((field, wire, varint(&mut buf), &[][..])),
            1 => {
                let (v, rest) = buf.split_at(8);
                buf = rest;
                out.push((field, wire, 0, v));
            }
            2 => {
                let len = varint(&mut buf) as usize;
                let (v, rest) = buf.split_at(len);
                buf = rest;
                out.push((field, wire, 0, v));
            }
            other => panic!("wire type {other}"),
        }
    }
    out
}

fn only<'a>(msg: &[(u64, u8, u64, &'a [u8])], field: u64) -> Vec<&'a [u8]> {
    msg.iter().filter(|f| f.0 == field).map(|f| f.3).collect()
}

#[tokio::test]
async fn v2_protobuf_is_the_gnostic_document() {
    let server = TestServer::new().await;
    let accept = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
    let (code, headers, body) = get_with(
        &server,
        "/openapi/v2",
        &[("accept", accept), ("accept-encoding", "gzip")],
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        header(&headers, "content-type"),
        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    );
    assert_eq!(header(&headers, "content-encoding"), "gzip");
    let pb = gunzip(&body);
    let doc = fields(&pb);
    // Document.swagger = 1, info = 2 (Info.title = 1), paths = 8,
    // definitions = 9.
    assert_eq!(doc[0].0, 1);
    assert_eq!(doc[0].3, b"2.0");
    let info = fields(only(&doc, 2)[0]);
    assert_eq!(only(&info, 1), vec![&b"Kubernetes"[..]]);
    // Definitions: NamedSchema{name = 1, value = 2}; Schema vendor
    // extensions (31) are NamedAny{name, Any{yaml = 2}}.
    let definitions = fields(only(&doc, 9)[0]);
    let deployment = definitions
        .iter()
        .map(|f| fields(f.3))
        .find(|named| only(named, 1) == vec![&b"io.k8s.api.apps.v1.Deployment"[..]])
        .expect("Deployment definition");
    let schema = fields(only(&deployment, 2)[0]);
    let gvk = only(&schema, 31)
        .into_iter()
        .map(fields)
        .find(|named| only(named, 1) == vec![&b"x-kubernetes-group-version-kind"[..]])
        .expect("GVK extension");
    let any = fields(only(&gvk, 2)[0]);
    let yaml: Value = serde_json::from_slice(only(&any, 2)[0]).unwrap();
    assert_eq!(
        yaml,
        serde_json::json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
    );
    // Paths: NamedPathItem{name, PathItem} under field 2.
    let paths = fields(only(&doc, 8)[0]);
    let names: Vec<String> = only(&paths, 2)
        .into_iter()
        .map(|p| String::from_utf8(only(&fields(p), 1)[0].to_vec()).unwrap())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n == "/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
    );

    // Without gzip: the same bytes, decompressed by the server.
    let (_, headers, plain) = get_with(&server, "/openapi/v2", &[("accept", accept)]).await;
    assert_eq!(header(&headers, "content-encoding"), "");
    assert_eq!(plain, pb);
}
