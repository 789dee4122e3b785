#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::defaults::default_pull_policy;
use super::*;
use crate::testing::TestServer;

fn obj(v: Value) -> Object {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

#[test]
fn pull_policy_and_qos() {
    assert_eq!(default_pull_policy("nginx"), "Always");
    assert_eq!(default_pull_policy("nginx:latest"), "Always");
    assert_eq!(default_pull_policy("nginx:1.25"), "IfNotPresent");
    assert_eq!(default_pull_policy("localhost:5000/nginx"), "Always");
    assert_eq!(default_pull_policy("nginx@sha256:abc"), "IfNotPresent");
    assert_eq!(qos_class(Some(&json!({"containers": [{"name": "a"}]}))), "BestEffort");
    let g = json!({"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]});
    assert_eq!(qos_class(Some(&g)), "Guaranteed");
    let b = json!({"containers": [{"resources": {"requests": {"cpu": "1"}}}]});
    assert_eq!(qos_class(Some(&b)), "Burstable");
}

#[test]
fn spec_defaults() {
    let mut spec = obj(json!({
        "containers": [{"name": "a", "image": "x:1",
            "livenessProbe": {"httpGet": {"port": 80}},
            "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "resources": {"limits": {"cpu": "1"}}}],
        "volumes": [{"name": "a"}, {"name": "b", "secret": {"secretName": "s"}},
                    {"name": "c", "configMap": {"name": "c"}}, {"name": "d", "hostPath": {"path": "/x"}}],
    }));
    default_pod_spec(&mut spec);
    let s = Value::Object(spec.clone());
    assert_eq!(s["schedulerName"], "default-scheduler");
    assert_eq!(s["dnsPolicy"], "ClusterFirst");
    assert_eq!(s["restartPolicy"], "Always");
    assert_eq!(s["terminationGracePeriodSeconds"], 30);
    assert!(
        s.get("enableServiceLinks").is_none(),
        "templates do not get enableServiceLinks"
    );
    let c = &s["containers"][0];
    assert_eq!(c["terminationMessagePolicy"], "File");
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    assert_eq!(
        c["livenessProbe"],
        json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
               "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
    );
    assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
    assert!(c["resources"].get("requests").is_none());
    assert_eq!(s["volumes"][0]["emptyDir"], json!({}));
    assert_eq!(s["volumes"][1]["secret"]["defaultMode"], 420);
    assert_eq!(s["volumes"][2]["configMap"]["defaultMode"], 420);
    assert_eq!(s["volumes"][3]["hostPath"]["type"], "");

    default_pod(&mut spec);
    let s = Value::Object(spec);
    assert_eq!(s["enableServiceLinks"], true);
    assert_eq!(s["containers"][0]["resources"]["requests"], json!({"cpu": "1"}));
}

#[test]
fn requests_default_to_limits_only_where_missing() {
    let check = |resources: Value, want: Value| {
        let mut spec = obj(json!({"containers": [{"name": "a", "image": "x:1", "resources": resources}]}));
        default_pod(&mut spec);
        assert_eq!(spec["containers"][0]["resources"], want);
    };
    check(
        json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}),
        json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m", "memory": "1Gi"}}),
    );
    check(
        json!({"limits": {"cpu": "1"}, "requests": {"cpu": "2", "memory": "1Gi"}}),
        json!({"limits": {"cpu": "1"}, "requests": {"cpu": "2", "memory": "1Gi"}}),
    );
    check(json!({"limits": {}}), json!({"limits": {}, "requests": {}}));
    check(json!({"requests": {"cpu": "1"}}), json!({"requests": {"cpu": "1"}}));
    check(json!({}), json!({}));
}

fn pod(spec: Value) -> Object {
    let mut spec = obj(spec);
    default_pod(&mut spec);
    obj(json!({"metadata": {"name": "p"}, "spec": spec}))
}

fn update_errors(old: Value, new: Value) -> Vec<String> {
    update::validate_pod_update(&pod(new), &pod(old))
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn update_rules() {
    let base = json!({"containers": [{"name": "a", "image": "x:1"}]});
    // Images may change.
    assert!(update_errors(base.clone(), json!({"containers": [{"name": "a", "image": "x:2"}]})).is_empty());
    // Anything else may not.
    let errs = update_errors(
        base.clone(),
        json!({"containers": [{"name": "a", "image": "x:1"}], "nodeName": "n"}),
    );
    assert_eq!(errs.len(), 1);
    let leading = "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n";
    assert!(errs[0].starts_with(leading), "{}", errs[0]);
    assert!(errs[0].contains("+ \tnodeName: \"n\""), "{}", errs[0]);
    // Containers may not be added.
    assert_eq!(
        update_errors(
            base.clone(),
            json!({"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]})
        ),
        ["spec.containers: Forbidden: pod updates may not add or remove containers"]
    );
    // activeDeadlineSeconds may be set and lowered, not raised or unset.
    let with_deadline = |d: i64| json!({"containers": [{"name": "a", "image": "x:1"}], "activeDeadlineSeconds": d});
    assert!(update_errors(base.clone(), with_deadline(30)).is_empty());
    assert!(update_errors(with_deadline(30), with_deadline(10)).is_empty());
    assert_eq!(
        update_errors(with_deadline(10), with_deadline(30)),
        ["spec.activeDeadlineSeconds: Invalid value: 30: must be less than or equal to previous value"]
    );
    assert_eq!(
        update_errors(with_deadline(10), base.clone()),
        ["spec.activeDeadlineSeconds: Invalid value: null: must not update from a positive integer to nil value"]
    );
    // Tolerations may only be added.
    let tol = |ts: Value| json!({"containers": [{"name": "a", "image": "x:1"}], "tolerations": ts});
    let t1 = json!({"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5});
    let t2 = json!({"key": "j", "operator": "Exists"});
    assert!(update_errors(tol(json!([t1])), tol(json!([t1, t2]))).is_empty());
    assert_eq!(
        update_errors(tol(json!([t1, t2])), tol(json!([t2]))),
        ["spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"]
    );
    // A negative grace period may become 1.
    let grace = |g: i64| json!({"containers": [{"name": "a", "image": "x:1"}], "terminationGracePeriodSeconds": g});
    assert!(update_errors(grace(-1), grace(1)).is_empty());
    assert_eq!(update_errors(grace(30), grace(1)).len(), 1);
    // Scheduling gates may only be removed.
    let gates = |g: Value| json!({"containers": [{"name": "a", "image": "x:1"}], "schedulingGates": g});
    assert!(
        update_errors(
            gates(json!([{"name": "a"}, {"name": "b"}])),
            gates(json!([{"name": "b"}]))
        )
        .is_empty()
    );
    assert_eq!(
        update_errors(
            gates(json!([{"name": "a"}])),
            gates(json!([{"name": "a"}, {"name": "c"}]))
        ),
        ["spec.schedulingGates: Forbidden: only deletion is allowed, but found new scheduling gate 'c'"]
    );
}

#[tokio::test]
async fn http_defaults_and_forbidden_update() {
    let server = TestServer::new().await;
    let path = "/api/v1/namespaces/default/pods";
    let body = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                      "spec": {"containers": [{"name": "a", "image": "nginx:1.25",
                               "readinessProbe": {"tcpSocket": {"port": 80}}}]}});
    let (code, created) = server.post(path, body).await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    let (_, got) = server.get(&format!("{path}/p")).await;
    assert_eq!(got["spec"]["enableServiceLinks"], true);
    assert_eq!(got["spec"]["containers"][0]["readinessProbe"]["periodSeconds"], 10);
    assert_eq!(got["status"]["phase"], "Pending");

    // An image change is fine.
    let mut new = got.clone();
    new["spec"]["containers"][0]["image"] = json!("nginx:1.26");
    let (code, updated) = server.put(&format!("{path}/p"), new).await;
    assert_eq!(code, StatusCode::OK, "{updated}");

    // A port change is not.
    let mut bad = updated.clone();
    bad["spec"]["containers"][0]["ports"] = json!([{"containerPort": 8080}]);
    let (code, status) = server.put(&format!("{path}/p"), bad).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{status}");
    assert_eq!(status["details"]["causes"][0]["field"], "spec");
    assert_eq!(status["details"]["causes"][0]["reason"], "FieldValueForbidden");
    let msg = status["message"].as_str().unwrap();
    assert!(
        msg.starts_with("Pod \"p\" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`"),
        "{msg}"
    );

    // Create-time validation.
    let (code, status) = server
        .post(
            path,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "q"},
                   "spec": {"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 0}]}]}}),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        status["details"]["causes"][0]["field"],
        "spec.containers[0].ports[0].containerPort"
    );
}
