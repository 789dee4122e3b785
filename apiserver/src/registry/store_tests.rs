//! HTTP-level tests of the generic store's create and update rules.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::StatusCode;
use serde_json::json;

use crate::testing::TestServer;

const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";

fn deployment(name: &str) -> serde_json::Value {
    json!({"metadata": {"name": name}, "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})
}

/// A PUT that leaves out fields the server defaults is not a spec change.
#[tokio::test]
async fn leaving_out_defaults_keeps_the_generation() {
    let s = TestServer::new().await;
    let (code, created) = s.post(DEPLOYMENTS, deployment("d")).await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    assert_eq!(created["metadata"]["generation"], 1);
    let mut body = deployment("d");
    body["metadata"]["labels"] = json!({"new": "label"});
    let (code, updated) = s.put(&format!("{DEPLOYMENTS}/d"), body).await;
    assert_eq!(code, StatusCode::OK, "{updated}");
    assert_eq!(updated["metadata"]["generation"], 1, "{updated}");
    assert_eq!(updated["spec"]["replicas"], 1);
    // A real spec change bumps it once.
    let mut body = deployment("d");
    body["spec"]["replicas"] = json!(3);
    let (_, updated) = s.put(&format!("{DEPLOYMENTS}/d"), body).await;
    assert_eq!(updated["metadata"]["generation"], 2);
}

/// The generated name is chosen before the strategy runs: a Job's labels
/// carry it.
#[tokio::test]
async fn generated_names_are_chosen_before_the_strategy() {
    let s = TestServer::new().await;
    let (code, job) = s
        .post(
            "/apis/batch/v1/namespaces/default/jobs",
            json!({"metadata": {"generateName": "run-"}, "spec": {"template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{job}");
    let name = job["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("run-") && name.len() == 9, "{name}");
    assert_eq!(job["spec"]["template"]["metadata"]["labels"]["job-name"], name);
    assert_eq!(job["metadata"]["labels"]["job-name"], name);
}

/// A kubelet registers its node with status; other kinds drop it.
#[tokio::test]
async fn nodes_keep_status_on_create() {
    let s = TestServer::new().await;
    let (code, node) = s
        .post(
            "/api/v1/nodes",
            json!({"metadata": {"name": "n1"}, "status": {"capacity": {"cpu": "2"}, "conditions": [
                {"type": "Ready", "status": "True"}]}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{node}");
    assert_eq!(node["status"]["capacity"]["cpu"], "2");
    let (code, cm) = s
        .post(
            "/apis/apps/v1/namespaces/default/deployments",
            json!({"metadata": {"name": "x"}, "spec": deployment("x")["spec"], "status": {"replicas": 9}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{cm}");
    assert!(cm["status"].get("replicas").is_none_or(|r| r != 9), "{cm}");
}

/// Status updates may change annotations (a Deployment's revision) without
/// bumping the generation; apps workloads keep their labels.
#[tokio::test]
async fn status_updates_carry_annotations() {
    let s = TestServer::new().await;
    let (_, created) = s.post(DEPLOYMENTS, deployment("st")).await;
    let mut body = created.clone();
    body["metadata"]["annotations"] = json!({"deployment.kubernetes.io/revision": "1"});
    body["metadata"]["labels"] = json!({"changed": "yes"});
    body["spec"]["replicas"] = json!(7);
    body["status"] = json!({"replicas": 1, "observedGeneration": 1});
    let (code, updated) = s.put(&format!("{DEPLOYMENTS}/st/status"), body).await;
    assert_eq!(code, StatusCode::OK, "{updated}");
    assert_eq!(
        updated["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    assert!(updated["metadata"].get("labels").is_none(), "{updated}");
    assert_eq!(updated["spec"]["replicas"], 1);
    assert_eq!(updated["status"]["replicas"], 1);
    assert_eq!(updated["metadata"]["generation"], 1);
}
