#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::StatusCode;
use serde_json::json;

use super::*;
use crate::testing::TestServer;

const PL: &str = "/apis/flowcontrol.apiserver.k8s.io/v1/prioritylevelconfigurations";
const FS: &str = "/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas";
const MERGE: &str = "application/merge-patch+json";

async fn names(s: &TestServer, path: &str) -> Vec<String> {
    let (code, body) = s.get(path).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let mut names: Vec<String> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn creates_upstreams_configuration_once() {
    let s = TestServer::new().await;
    ensure_flowcontrol_configuration(s.registry()).await.unwrap();
    assert_eq!(
        names(&s, PL).await,
        [
            "catch-all",
            "exempt",
            "global-default",
            "leader-election",
            "node-high",
            "system",
            "workload-high",
            "workload-low"
        ]
    );
    assert_eq!(
        names(&s, FS).await,
        [
            "catch-all",
            "endpoint-controller",
            "exempt",
            "global-default",
            "kube-controller-manager",
            "kube-scheduler",
            "kube-system-service-accounts",
            "probes",
            "service-accounts",
            "system-leader-election",
            "system-node-high",
            "system-nodes",
            "workload-leader-election",
        ]
    );
    let (_, low) = s.get(&format!("{PL}/workload-low")).await;
    assert_eq!(low["metadata"]["annotations"][AUTO_UPDATE_ANNOTATION], "true");
    assert_eq!(low["spec"]["limited"]["nominalConcurrencyShares"], 100);
    assert_eq!(low["spec"]["limited"]["lendablePercent"], 90);
    assert_eq!(
        low["spec"]["limited"]["limitResponse"]["queuing"],
        json!({"queues": 128, "handSize": 6, "queueLengthLimit": 50})
    );
    let (_, catch_all) = s.get(&format!("{PL}/catch-all")).await;
    assert_eq!(catch_all["spec"]["limited"]["limitResponse"], json!({"type": "Reject"}));
    let (_, probes) = s.get(&format!("{FS}/probes")).await;
    assert_eq!(probes["spec"]["priorityLevelConfiguration"]["name"], "exempt");
    assert_eq!(probes["spec"]["matchingPrecedence"], 2);
    assert!(probes["spec"].get("distinguisherMethod").is_none());
    assert_eq!(
        probes["spec"]["rules"][0]["nonResourceRules"][0]["nonResourceURLs"],
        json!(["/healthz", "/readyz", "/livez"])
    );
    let (_, kcm) = s.get(&format!("{FS}/kube-controller-manager")).await;
    assert_eq!(kcm["spec"]["distinguisherMethod"]["type"], "ByNamespace");
    assert_eq!(
        kcm["spec"]["rules"][0]["subjects"][0],
        json!({"kind": "User", "user": {"name": "system:kube-controller-manager"}})
    );
    // A second start writes nothing.
    let (_, before) = s.get(FS).await;
    ensure_flowcontrol_configuration(s.registry()).await.unwrap();
    let (_, after) = s.get(FS).await;
    assert_eq!(
        before["metadata"]["resourceVersion"],
        after["metadata"]["resourceVersion"]
    );
}

#[tokio::test]
async fn reconciles_like_upstreams_ensurer() {
    let s = TestServer::new().await;
    ensure_flowcontrol_configuration(s.registry()).await.unwrap();
    let patch = |name: &str, body: serde_json::Value| {
        let s = &s;
        let path = format!("{PL}/{name}");
        async move {
            let (code, out) = s.patch(&path, MERGE, body).await;
            assert_eq!(code, StatusCode::OK, "{out}");
        }
    };
    let shares = |n: i64| json!({"spec": {"limited": {"nominalConcurrencyShares": n}}});
    // Mandatory: always put back.
    patch("catch-all", shares(7)).await;
    // Suggested, annotation true: put back.
    patch("system", shares(7)).await;
    // Suggested, annotation false: the user's.
    patch("workload-high", json!({"metadata": {"annotations": {AUTO_UPDATE_ANNOTATION: "false"}}, "spec": {"limited": {"nominalConcurrencyShares": 7}}})).await;
    // Suggested, no annotation and changed (generation 2): the user's.
    patch("workload-low", json!({"metadata": {"annotations": {AUTO_UPDATE_ANNOTATION: null}}, "spec": {"limited": {"nominalConcurrencyShares": 7}}})).await;
    // Suggested, no annotation, never changed: taken over again.
    patch(
        "node-high",
        json!({"metadata": {"annotations": {AUTO_UPDATE_ANNOTATION: null}}}),
    )
    .await;
    // Deleted suggested object: created again.
    let (code, body) = s.delete(&format!("{FS}/service-accounts")).await;
    assert_eq!(code, StatusCode::OK, "{body}");

    ensure_flowcontrol_configuration(s.registry()).await.unwrap();
    let get = |name: &str| {
        let s = &s;
        let path = format!("{PL}/{name}");
        async move { s.get(&path).await.1 }
    };
    assert_eq!(get("catch-all").await["spec"]["limited"]["nominalConcurrencyShares"], 5);
    assert_eq!(get("system").await["spec"]["limited"]["nominalConcurrencyShares"], 30);
    assert_eq!(
        get("workload-high").await["spec"]["limited"]["nominalConcurrencyShares"],
        7
    );
    let low = get("workload-low").await;
    assert_eq!(low["spec"]["limited"]["nominalConcurrencyShares"], 7);
    assert!(low["metadata"]["annotations"].get(AUTO_UPDATE_ANNOTATION).is_none());
    assert_eq!(
        get("node-high").await["metadata"]["annotations"][AUTO_UPDATE_ANNOTATION],
        "true"
    );
    let (code, _) = s.get(&format!("{FS}/service-accounts")).await;
    assert_eq!(code, StatusCode::OK);
}
