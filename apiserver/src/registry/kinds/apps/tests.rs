#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::testing::TestServer;

const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";

fn deployment(name: &str, selector: Option<Value>, labels: Value) -> Value {
    let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}}}});
    if let Some(s) = selector {
        d["spec"]["selector"] = s;
    }
    d
}

fn causes(status: &Value) -> Vec<(String, String)> {
    status["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["field"].as_str().unwrap().to_string(),
                c["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn deployment_selector_rules_and_defaults() {
    let server = TestServer::new().await;
    // No selector.
    let (code, status) = server
        .post(DEPLOYMENTS, deployment("a", None, json!({"app": "web"})))
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{status}");
    let c = causes(&status);
    assert_eq!(c[0], ("spec.selector".to_string(), "Required value".to_string()));
    assert_eq!(c[1].0, "spec.template.metadata.labels");
    assert!(c[1].1.ends_with("`selector` does not match template `labels`"), "{c:?}");

    // A selector that does not match the labels.
    let (code, status) = server
        .post(
            DEPLOYMENTS,
            deployment("b", Some(json!({"matchLabels": {"app": "db"}})), json!({"app": "web"})),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        causes(&status),
        [(
            "spec.template.metadata.labels".to_string(),
            "Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`"
                .to_string()
        )]
    );

    // A good one gets upstream's defaults, visible on GET.
    let sel = json!({"matchLabels": {"app": "web"}});
    let (code, created) = server
        .post(DEPLOYMENTS, deployment("c", Some(sel), json!({"app": "web"})))
        .await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    let (_, got) = server.get(&format!("{DEPLOYMENTS}/c")).await;
    let spec = &got["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
    );
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["progressDeadlineSeconds"], 600);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Always");
    assert_eq!(pod["schedulerName"], "default-scheduler");
    assert_eq!(pod["containers"][0]["imagePullPolicy"], "IfNotPresent");
    assert!(pod.get("enableServiceLinks").is_none());
    assert_eq!(got["metadata"]["generation"], 1);

    // The selector is immutable.
    let mut changed = got.clone();
    changed["spec"]["selector"] = json!({"matchLabels": {"app": "web", "tier": "x"}});
    changed["spec"]["template"]["metadata"]["labels"]["tier"] = json!("x");
    let (code, status) = server.put(&format!("{DEPLOYMENTS}/c"), changed).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{status}");
    assert_eq!(status["details"]["causes"][0]["field"], "spec.selector");
    assert!(
        status["message"].as_str().unwrap().ends_with("field is immutable"),
        "{status}"
    );

    // Template restartPolicy must be Always; replicas >= 0.
    let mut bad = deployment("d", Some(json!({"matchLabels": {"app": "web"}})), json!({"app": "web"}));
    bad["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    bad["spec"]["replicas"] = json!(-1);
    let (code, status) = server.post(DEPLOYMENTS, bad).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    let c = causes(&status);
    assert!(
        c.contains(&(
            "spec.replicas".into(),
            "Invalid value: -1: must be greater than or equal to 0".into()
        )),
        "{c:?}"
    );
    assert!(
        c.contains(&(
            "spec.template.spec.restartPolicy".into(),
            "Unsupported value: \"Never\": supported values: \"Always\"".into()
        )),
        "{c:?}"
    );

    // Status updates are validated.
    let (_, cur) = server.get(&format!("{DEPLOYMENTS}/c")).await;
    let mut st = cur.clone();
    st["status"] = json!({"replicas": 1, "readyReplicas": 2});
    let (code, status) = server.put(&format!("{DEPLOYMENTS}/c/status"), st).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{status}");
    assert_eq!(status["details"]["causes"][0]["field"], "status.readyReplicas");
}

#[tokio::test]
async fn statefulset_daemonset_replicaset_rc() {
    let server = TestServer::new().await;
    let template = json!({"metadata": {"labels": {"app": "x"}},
                          "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "s"},
                     "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": template}});
    let path = "/apis/apps/v1/namespaces/default/statefulsets";
    let (code, created) = server.post(path, sts).await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    let s = &created["spec"];
    assert_eq!(s["podManagementPolicy"], "OrderedReady");
    assert_eq!(
        s["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    assert_eq!(
        s["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );
    assert_eq!(s["replicas"], 1);
    let mut changed = created.clone();
    changed["spec"]["podManagementPolicy"] = json!("Parallel");
    let (code, status) = server.put(&format!("{path}/s"), changed).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        status["details"]["causes"][0]["message"],
        format!("Forbidden: {}", super::statefulset::FORBIDDEN_UPDATE)
    );
    let mut scaled = created.clone();
    scaled["spec"]["replicas"] = json!(3);
    let (code, _) = server.put(&format!("{path}/s"), scaled).await;
    assert_eq!(code, StatusCode::OK);

    let ds = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "d"},
                    "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": template}});
    let path = "/apis/apps/v1/namespaces/default/daemonsets";
    let (code, created) = server.post(path, ds).await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    assert_eq!(
        created["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );
    assert_eq!(
        created["metadata"]["annotations"]["deprecated.daemonset.template.generation"],
        "1"
    );

    let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "r"},
                    "spec": {"selector": {}, "template": template}});
    let (code, status) = server.post("/apis/apps/v1/namespaces/default/replicasets", rs).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        causes(&status),
        [(
            "spec.selector".to_string(),
            "Invalid value: map[string]string{}: empty selector is invalid for deployment".to_string()
        )]
    );

    // ReplicationControllers default their selector and labels from the template.
    let rc = json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "rc"},
                    "spec": {"template": template}});
    let (code, created) = server
        .post("/api/v1/namespaces/default/replicationcontrollers", rc)
        .await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    assert_eq!(created["spec"]["selector"], json!({"app": "x"}));
    assert_eq!(created["metadata"]["labels"], json!({"app": "x"}));
    assert_eq!(created["spec"]["replicas"], 1);
    let rc = json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "rc2"},
                    "spec": {"selector": {"app": "y"}, "template": template}});
    let (code, status) = server
        .post("/api/v1/namespaces/default/replicationcontrollers", rc)
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(status["details"]["causes"][0]["field"], "spec.template.metadata.labels");

    // The scale subresource still works.
    let (code, scale) = server
        .get("/apis/apps/v1/namespaces/default/statefulsets/s/scale")
        .await;
    assert_eq!(code, StatusCode::OK, "{scale}");
    assert_eq!(scale["spec"]["replicas"], 3);
    assert_eq!(scale["status"]["selector"], "app=x");
}
