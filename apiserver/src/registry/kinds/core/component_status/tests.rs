#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use rkube_storage::Store;
use rkube_storage::memory::MemoryStore;

use super::*;

/// Serves `code` and `body` for every request on a TLS port with a
/// self-signed certificate; returns the port.
async fn https_server(code: u16, body: &'static str) -> u16 {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let key = rustls_pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| async move {
                    assert_eq!(req.uri().path(), "/healthz");
                    http::Response::builder()
                        .status(code)
                        .body(axum::body::Body::from(body))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    port
}

fn check(probe: Probe, health: Health, message: &str, error: &str) {
    assert_eq!(
        probe,
        Probe {
            health,
            message: message.into(),
            error: error.into()
        }
    );
}

const T: Duration = Duration::from_secs(5);

#[tokio::test]
async fn https_probe_reports_like_upstreams_http_prober() {
    let ok = https_server(200, "ok").await;
    check(
        probe_https("127.0.0.1", ok, "/healthz", T).await,
        Health::Healthy,
        "ok",
        "",
    );
    let failing = https_server(500, "[-]leaderElection failed").await;
    check(
        probe_https("127.0.0.1", failing, "/healthz", T).await,
        Health::Unhealthy,
        "HTTP probe failed with statuscode: 500",
        "",
    );
    let moved = https_server(302, "elsewhere").await;
    check(
        probe_https("127.0.0.1", moved, "/healthz", T).await,
        Health::Unknown,
        "Probe terminated redirects, Response body: elsewhere",
        "",
    );
    // A port nobody listens on: the failure is the message, not the error.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    check(
        probe_https("127.0.0.1", port, "/healthz", T).await,
        Health::Unhealthy,
        &format!("Get \"https://127.0.0.1:{port}/healthz\": dial tcp 127.0.0.1:{port}: connect: connection refused"),
        "",
    );
}

#[tokio::test]
async fn storage_probe_and_objects() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let port = https_server(200, "ok").await;
    let components = vec![
        Component {
            name: "etcd-0".into(),
            target: Target::Storage,
        },
        Component {
            name: "scheduler".into(),
            target: Target::Https {
                host: "127.0.0.1".into(),
                port,
                path: "/healthz".into(),
            },
        },
    ];
    let objects = probe_all(&components, &store, T).await;
    assert_eq!(
        serde_json::to_value(&objects).unwrap(),
        json!([
            {"metadata": {"name": "etcd-0", "creationTimestamp": null},
             "conditions": [{"type": "Healthy", "status": "True", "message": "ok"}]},
            {"metadata": {"name": "scheduler", "creationTimestamp": null},
             "conditions": [{"type": "Healthy", "status": "True", "message": "ok"}]},
        ])
    );
    let failed = Probe {
        health: Health::Unhealthy,
        message: String::new(),
        error: "etcdserver: request timed out".into(),
    };
    assert_eq!(
        Value::Object(object("etcd-0", &failed))["conditions"],
        json!([{"type": "Healthy", "status": "False", "error": "etcdserver: request timed out"}])
    );
}

#[test]
fn upstream_components_and_ports() {
    let names: Vec<_> = default_components().into_iter().map(|c| (c.name, c.target)).collect();
    let https = |port| Target::Https {
        host: "127.0.0.1".into(),
        port,
        path: "/healthz".into(),
    };
    assert_eq!(
        names,
        vec![
            ("controller-manager".to_string(), https(10257)),
            ("etcd-0".to_string(), Target::Storage),
            ("scheduler".to_string(), https(10259)),
        ]
    );
}

#[tokio::test]
async fn served_over_http_with_list_get_and_table() {
    use axum::http::StatusCode;
    let s = crate::testing::TestServer::new().await;
    let (code, body) = s.get("/api/v1/componentstatuses").await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["kind"], "ComponentStatusList");
    let names: Vec<_> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].clone())
        .collect();
    assert_eq!(
        names,
        vec![json!("controller-manager"), json!("etcd-0"), json!("scheduler")]
    );
    assert_eq!(
        body["items"][1]["conditions"],
        json!([{"type": "Healthy", "status": "True", "message": "ok"}])
    );
    let (code, body) = s.get("/api/v1/componentstatuses/etcd-0").await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["apiVersion"], "v1");
    assert_eq!(body["conditions"][0]["status"], "True");
    let (code, body) = s.get("/api/v1/componentstatuses/kubelet").await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["message"], "componentstatuses \"kubelet\" not found");
    let (code, body) = s
        .get("/api/v1/componentstatuses?fieldSelector=metadata.name%3Detcd-0")
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
    let (code, body) = s.delete("/api/v1/componentstatuses/etcd-0").await;
    assert_eq!(code, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    let resp = s
        .send(
            axum::http::Request::get("/api/v1/componentstatuses")
                .header("accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let table: Value =
        serde_json::from_slice(&axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap()).unwrap();
    assert_eq!(table["kind"], "Table");
    assert_eq!(table["rows"][1]["cells"], json!(["etcd-0", "Healthy", "ok", ""]));
}
