//! HTTP-level behaviour of the networking strategies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::StatusCode;
use serde_json::json;

use crate::testing::TestServer;

const INGRESSES: &str = "/apis/networking.k8s.io/v1/namespaces/default/ingresses";

#[tokio::test]
async fn ingress_path_without_path_type_is_422() {
    let s = TestServer::new().await;
    let (code, body) = s
        .post(
            INGRESSES,
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web"},
                "spec": {"rules": [{"host": "example.com", "http": {"paths": [
                    {"path": "/", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["reason"], "Invalid");
    // The kind prefix (`Ingress.networking.k8s.io` upstream) is the status renderer's.
    let message = body["message"].as_str().unwrap();
    assert!(
        message.ends_with(
            "\"web\" is invalid: spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"
        ),
        "{message}"
    );
    assert_eq!(
        body["details"]["causes"][0]["field"],
        "spec.rules[0].http.paths[0].pathType"
    );
}

#[tokio::test]
async fn ingress_generation_and_status() {
    let s = TestServer::new().await;
    let ing = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web"},
        "spec": {"defaultBackend": {"service": {"name": "web", "port": {"name": "http"}}}},
        "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}});
    let (code, body) = s.post(INGRESSES, ing).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    assert_eq!(body["metadata"]["generation"], 1);
    assert!(body["status"]["loadBalancer"].get("ingress").is_none(), "{body}");
}

#[tokio::test]
async fn network_policy_defaults_visible_on_get() {
    let s = TestServer::new().await;
    let path = "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies";
    let (code, body) = s
        .post(
            path,
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "np"},
                "spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53}]}]}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let (_, body) = s.get(&format!("{path}/np")).await;
    assert_eq!(body["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(body["spec"]["egress"][0]["ports"][0]["protocol"], "TCP");
}

#[tokio::test]
async fn ingress_class_controller_is_immutable() {
    let s = TestServer::new().await;
    let path = "/apis/networking.k8s.io/v1/ingressclasses";
    let (code, body) = s
        .post(
            path,
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "nginx"},
                "spec": {"controller": "k8s.io/ingress-nginx"}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let (code, body) = s
        .patch(
            &format!("{path}/nginx"),
            "application/merge-patch+json",
            json!({"spec": {"controller": "example.com/other"}}),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        body["details"]["causes"][0]["message"],
        "Invalid value: \"example.com/other\": field is immutable"
    );
}
