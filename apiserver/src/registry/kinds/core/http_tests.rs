//! HTTP-level tests of the core kinds whose strategies live in
//! `endpoints.rs`, `limit_range.rs`, `resource_quota.rs`,
//! `service_account.rs` and `pod_template.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::StatusCode;
use serde_json::json;

use crate::testing::TestServer;

const NS: &str = "/api/v1/namespaces/default";

#[tokio::test]
async fn endpoints_default_and_validate() {
    let s = TestServer::new().await;
    let (code, created) = s
        .post(
            &format!("{NS}/endpoints"),
            json!({"metadata": {"name": "e"}, "subsets": [{"addresses": [{"ip": "10.1.2.3"}], "ports": [{"port": 80}]}]}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    assert_eq!(created["subsets"][0]["ports"][0]["protocol"], "TCP");
    let (code, status) = s
        .post(
            &format!("{NS}/endpoints"),
            json!({"metadata": {"name": "f"}, "subsets": [{"addresses": [{"ip": "127.0.0.1"}]}]}),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        status["message"],
        "Endpoints \"f\" is invalid: subsets[0].addresses[0].ip: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)"
    );
}

#[tokio::test]
async fn limit_ranges_and_quotas() {
    let s = TestServer::new().await;
    let (code, created) = s
        .post(
            &format!("{NS}/limitranges"),
            json!({"metadata": {"name": "l"}, "spec": {"limits": [{"type": "Container", "max": {"cpu": "1"}}]}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    assert_eq!(created["spec"]["limits"][0]["defaultRequest"], json!({"cpu": "1"}));
    let (code, status) = s
        .post(
            &format!("{NS}/resourcequotas"),
            json!({"metadata": {"name": "q"}, "spec": {"hard": {"pods": "-1"}}}),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        status["message"],
        "ResourceQuota \"q\" is invalid: spec.hard[pods]: Invalid value: \"-1\": must be greater than or equal to 0"
    );
    let (code, created) = s
        .post(
            &format!("{NS}/resourcequotas"),
            json!({"metadata": {"name": "q"}, "spec": {"hard": {"pods": "3"}, "scopes": ["BestEffort"]}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    let mut changed = created.clone();
    changed["spec"]["scopes"] = json!(["NotBestEffort"]);
    let (code, status) = s.put(&format!("{NS}/resourcequotas/q"), changed).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        status["details"]["causes"][0]["message"],
        "Invalid value: []core.ResourceQuotaScope{\"NotBestEffort\"}: field is immutable"
    );
}

#[tokio::test]
async fn service_accounts_and_pod_templates() {
    let s = TestServer::new().await;
    let (code, created) = s
        .post(
            &format!("{NS}/serviceaccounts"),
            json!({"metadata": {"name": "sa"}, "secrets": [{"name": "t", "namespace": "other"}]}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    assert_eq!(created["secrets"], json!([{"name": "t"}]));

    let template =
        json!({"metadata": {"name": "pt"}, "template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}});
    let (code, created) = s.post(&format!("{NS}/podtemplates"), template).await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    assert_eq!(created["metadata"]["generation"], 1);
    assert_eq!(created["template"]["spec"]["dnsPolicy"], "ClusterFirst");
    let mut changed = created.clone();
    changed["template"]["spec"]["containers"][0]["image"] = json!("nginx");
    let (code, updated) = s.put(&format!("{NS}/podtemplates/pt"), changed).await;
    assert_eq!(code, StatusCode::OK, "{updated}");
    assert_eq!(updated["metadata"]["generation"], 2);
    let (code, status) = s
        .post(
            &format!("{NS}/podtemplates"),
            json!({"metadata": {"name": "bad"}, "template": {"spec": {"containers": [{"name": "c"}]}}}),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        status["message"],
        "PodTemplate \"bad\" is invalid: template.spec.containers[0].image: Required value"
    );
}
