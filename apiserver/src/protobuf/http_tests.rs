//! Protobuf and YAML over HTTP: negotiation, objects, lists, errors,
//! watch frames and YAML bodies, through the in-process server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Map, Value, json};

use crate::testing::TestServer;

const PB: &str = "application/vnd.kubernetes.protobuf";
/// What kubectl 1.32+ typed clients send.
const KUBECTL_PB: &str = "application/vnd.kubernetes.protobuf,application/json";

struct Reply {
    status: StatusCode,
    content_type: String,
    body: Vec<u8>,
}

impl Reply {
    fn object(&self) -> Map<String, Value> {
        assert_eq!(self.content_type, PB, "{}", String::from_utf8_lossy(&self.body));
        super::decode_object(&self.body).unwrap()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
}

async fn send(s: &TestServer, method: &str, path: &str, accept: &str, body: Option<(&str, Vec<u8>)>) -> Reply {
    let mut b = Request::builder().method(method).uri(path);
    if !accept.is_empty() {
        b = b.header(header::ACCEPT, accept);
    }
    let req = match body {
        Some((ct, bytes)) => b.header(header::CONTENT_TYPE, ct).body(Body::from(bytes)).unwrap(),
        None => b.body(Body::empty()).unwrap(),
    };
    let resp = s.send(req).await;
    let status = resp.status();
    let content_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    Reply {
        status,
        content_type,
        body,
    }
}

fn deployment(name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{
                    "name": "c", "image": "nginx",
                    "ports": [{"containerPort": 80}],
                    "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}},
                    "livenessProbe": {"httpGet": {"path": "/", "port": "http"}},
                }]},
            },
        },
    })
}

fn pb(v: &Value) -> Vec<u8> {
    super::encode_object(v.as_object().unwrap()).unwrap()
}

#[tokio::test]
async fn objects_lists_and_errors_in_protobuf() {
    let s = TestServer::new().await;
    let path = "/apis/apps/v1/namespaces/default/deployments";
    // kubectl create deployment: protobuf in, protobuf out.
    let r = send(&s, "POST", path, KUBECTL_PB, Some((PB, pb(&deployment("web", 0))))).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let created = r.object();
    assert_eq!(created["kind"], "Deployment");
    assert_eq!(created["apiVersion"], "apps/v1");
    // replicas is a Go pointer: an explicit 0 survives both directions.
    assert_eq!(created["spec"]["replicas"], 0);
    assert_eq!(
        created["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["port"],
        "http"
    );

    // GET: the protobuf object decodes to exactly the JSON object.
    let r = send(&s, "GET", &format!("{path}/web"), KUBECTL_PB, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let got = r.object();
    let j = send(&s, "GET", &format!("{path}/web"), "application/json", None).await;
    assert_eq!(j.content_type, "application/json");
    assert_eq!(Value::Object(got.clone()), j.json());

    // LIST, twice (the second from each object's kept encoding).
    s.post(path, deployment("api", 3)).await;
    let jl = send(&s, "GET", path, "application/json", None).await.json();
    for _ in 0..2 {
        let r = send(&s, "GET", path, KUBECTL_PB, None).await;
        assert_eq!(r.status, StatusCode::OK);
        let list = r.object();
        assert_eq!(list["kind"], "DeploymentList");
        assert_eq!(list["apiVersion"], "apps/v1");
        assert_eq!(list["metadata"], jl["metadata"]);
        assert_eq!(list["items"], jl["items"]);
        assert_eq!(list["items"].as_array().unwrap().len(), 2);
    }

    // Errors are Statuses in the negotiated encoding.
    let r = send(&s, "GET", &format!("{path}/missing"), KUBECTL_PB, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let st = r.object();
    assert_eq!(st["kind"], "Status");
    assert_eq!(st["reason"], "NotFound");
    assert_eq!(st["code"], 404);
    assert_eq!(st["message"], "deployments.apps \"missing\" not found");
    let r = send(&s, "POST", path, KUBECTL_PB, Some((PB, pb(&deployment("web", 1))))).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.object()["reason"], "AlreadyExists");

    // Nothing acceptable: 406, always JSON, listing every type.
    let r = send(&s, "GET", &format!("{path}/web"), "text/html", None).await;
    assert_eq!(r.status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(r.content_type, "application/json");
    assert_eq!(
        r.json()["message"],
        "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf"
    );

    // Tables are not served in protobuf: the next entry wins.
    let a =
        "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1;g=meta.k8s.io";
    let r = send(&s, "GET", path, a, None).await;
    assert_eq!(r.content_type, "application/json");
    assert_eq!(r.json()["kind"], "Table");

    // Metadata-only lists in protobuf (the garbage collector's informers).
    let a = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
    let list = send(&s, "GET", path, a, None).await.object();
    assert_eq!(list["kind"], "PartialObjectMetadataList");
    assert_eq!(list["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(list["items"][0]["metadata"]["name"], "api");
    assert!(list["items"][0].get("spec").is_none());

    // Delete answers with the object (or Status) in protobuf too; a
    // protobuf DeleteOptions body is understood.
    let opts = json!({"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1", "propagationPolicy": "Orphan"});
    let r = send(&s, "DELETE", &format!("{path}/web"), KUBECTL_PB, Some((PB, pb(&opts)))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.object());
    let deleted = r.object();
    assert!(
        deleted["kind"] == "Deployment" || deleted["kind"] == "Status",
        "{deleted:?}"
    );
}

#[tokio::test]
async fn special_types_round_trip_through_http() {
    let s = TestServer::new().await;
    let path = "/api/v1/namespaces/default/secrets";
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "s", "annotations": {"a": "b"}},
        "data": {"k": "AAEC/w=="}, "type": "Opaque", "immutable": false,
    });
    let r = send(&s, "POST", path, KUBECTL_PB, Some((PB, pb(&secret)))).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let got = send(&s, "GET", &format!("{path}/s"), KUBECTL_PB, None).await.object();
    assert_eq!(got["data"]["k"], "AAEC/w==");
    // immutable is a *bool: false is kept.
    assert_eq!(got["immutable"], false);
    let j = send(&s, "GET", &format!("{path}/s"), "", None).await.json();
    assert_eq!(Value::Object(got), j);
}

/// Reads a protobuf watch until its timeout ends it.
async fn watch_frames(s: &TestServer, query: &str) -> (String, Vec<(String, Map<String, Value>)>) {
    let path = format!("/apis/apps/v1/namespaces/default/deployments?watch=true&timeoutSeconds=1&{query}");
    let r = send(s, "GET", &path, KUBECTL_PB, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let (events, rest) = super::decode_watch_frames(&r.body).unwrap();
    assert!(rest.is_empty(), "a partial frame at the end");
    (r.content_type, events)
}

#[tokio::test]
async fn watch_streams_length_prefixed_watch_events() {
    let s = TestServer::new().await;
    let (code, _) = s
        .post("/apis/apps/v1/namespaces/default/deployments", deployment("w1", 2))
        .await;
    assert_eq!(code, StatusCode::CREATED);
    let (content_type, events) = watch_frames(&s, "resourceVersion=0").await;
    assert_eq!(content_type, "application/vnd.kubernetes.protobuf;stream=watch");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "ADDED");
    assert_eq!(events[0].1["kind"], "Deployment");
    assert_eq!(events[0].1["metadata"]["name"], "w1");
    assert_eq!(events[0].1["spec"]["replicas"], 2);

    // Initial events end with a bookmark carrying the annotation.
    let (_, events) = watch_frames(
        &s,
        "sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true",
    )
    .await;
    let kinds: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(kinds, ["ADDED", "BOOKMARK"]);
    let bookmark = &events[1].1;
    assert_eq!(bookmark["kind"], "Deployment");
    assert_eq!(bookmark["metadata"]["annotations"]["k8s.io/initial-events-end"], "true");
    assert!(bookmark["metadata"]["resourceVersion"].as_str().is_some());

    // A compacted resourceVersion is an ERROR event holding a Status.
    let (_, events) = watch_frames(&s, "resourceVersion=1").await;
    if let Some((t, obj)) = events.first().filter(|(t, _)| t == "ERROR") {
        assert_eq!(t, "ERROR");
        assert_eq!(obj["kind"], "Status");
        assert_eq!(obj["code"], 410);
    }

    // Metadata informers (the garbage collector) watch PartialObjectMetadata.
    let a = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
    let r = send(
        &s,
        "GET",
        "/apis/apps/v1/namespaces/default/deployments?watch=true&timeoutSeconds=1&resourceVersion=0",
        a,
        None,
    )
    .await;
    assert_eq!(r.content_type, "application/vnd.kubernetes.protobuf;stream=watch");
    let (events, _) = super::decode_watch_frames(&r.body).unwrap();
    assert_eq!(events[0].1["kind"], "PartialObjectMetadata");
    assert_eq!(events[0].1["metadata"]["name"], "w1");
    assert!(events[0].1.get("spec").is_none());

    // The frame itself: 4-byte big-endian length, then a bare WatchEvent
    // whose object is the enveloped Deployment.
    let frame = super::encode_watch_event("ADDED", deployment("x", 1).as_object().unwrap()).unwrap();
    let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
    assert_eq!(len, frame.len() - 4);
    assert_eq!(&frame[4..7], b"\x0a\x05A", "field 1 (type) first, no magic");
    assert!(frame.windows(4).any(|w| w == super::MAGIC), "the object is enveloped");
}

#[tokio::test]
async fn yaml_in_and_out() {
    let s = TestServer::new().await;
    let path = "/api/v1/namespaces/default/configmaps";
    let body = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n  labels: {b: \"2\", a: \"yes\"}\ndata:\n  text: |\n    line one\n    line two\n  num: \"10\"\n".to_vec();
    let r = send(&s, "POST", path, "application/json", Some(("application/yaml", body))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.content_type, "application/json");
    assert_eq!(r.json()["data"]["text"], "line one\nline two\n");

    let r = send(&s, "GET", &format!("{path}/cfg"), "application/yaml", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type, "application/yaml");
    let text = r.text();
    // Keys sorted like Go's YAML encoder, no document marker, YAML 1.1
    // look-alikes quoted.
    assert!(text.starts_with("apiVersion: v1\ndata:\n"), "{text}");
    assert!(text.contains("\nkind: ConfigMap\nmetadata:\n"), "{text}");
    assert!(
        text.contains("  labels:\n    a: \"yes\"\n    b: \"2\"\n")
            || text.contains("  labels:\n    a: 'yes'\n    b: '2'\n"),
        "{text}"
    );
    let parsed: Value = serde_saphyr::from_str(&text).unwrap();
    let j = send(&s, "GET", &format!("{path}/cfg"), "application/json", None)
        .await
        .json();
    assert_eq!(parsed, j);

    // Lists and errors too.
    let r = send(&s, "GET", path, "application/yaml", None).await;
    let list: Value = serde_saphyr::from_str(&r.text()).unwrap();
    assert_eq!(list["kind"], "ConfigMapList");
    assert_eq!(list["items"][0]["metadata"]["name"], "cfg");
    let r = send(&s, "GET", &format!("{path}/nope"), "application/yaml", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.content_type, "application/yaml");
    let st: Value = serde_saphyr::from_str(&r.text()).unwrap();
    assert_eq!(st["reason"], "NotFound");

    // Watch has no YAML form.
    let r = send(&s, "GET", &format!("{path}?watch=true"), "application/yaml", None).await;
    assert_eq!(r.status, StatusCode::NOT_ACCEPTABLE);

    // Bad YAML is a 400; apply patches stay 415 here.
    let r = send(&s, "POST", path, "", Some(("application/yaml", b"a: [1".to_vec()))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = send(
        &s,
        "PATCH",
        &format!("{path}/cfg"),
        "",
        Some(("application/apply-patch+yaml", b"data: {x: y}".to_vec())),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}
