//! Policies on real requests to an in-process server (policy and binding
//! objects, a ConfigMap as params), and the evaluation on its own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::policy::{self, CompiledPolicy, Decision};
use crate::admission::{Chain, Plugin};
use crate::cel::Activation;
use crate::testing::TestServer;

const POLICIES: &str = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies";
const BINDINGS: &str = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings";
const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

fn configmap(name: &str, data: Value) -> Value {
    json!({"metadata": {"name": name, "labels": {"app": "x"}}, "data": data})
}

fn policy(name: &str, spec_extra: Value) -> Value {
    let mut spec = json!({
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": [{
            "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["configmaps"]
        }]},
        "validations": [{"expression": "!has(object.data) || !('forbidden' in object.data)"}]
    });
    for (k, v) in spec_extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    json!({"metadata": {"name": name}, "spec": spec})
}

fn binding(name: &str, policy: &str, spec_extra: Value) -> Value {
    let mut spec = json!({"policyName": policy, "validationActions": ["Deny"]});
    for (k, v) in spec_extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    json!({"metadata": {"name": name}, "spec": spec})
}

async fn setup(s: &TestServer, policy: Value, binding: Value) {
    let (code, body) = s.post(POLICIES, policy).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let (code, body) = s.post(BINDINGS, binding).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
}

async fn server() -> TestServer {
    TestServer::with_admission(Chain::of(&[Plugin::ValidatingAdmissionPolicy])).await
}

#[tokio::test]
async fn deny_with_upstream_message_and_reason() {
    let s = server().await;
    setup(
        &s,
        policy("no-forbidden", json!({})),
        binding("b1", "no-forbidden", json!({})),
    )
    .await;
    let (code, err) = s.post(CONFIGMAPS, configmap("bad", json!({"forbidden": "1"}))).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(err["reason"], "Invalid");
    let message = "configmaps \"bad\" is forbidden: ValidatingAdmissionPolicy 'no-forbidden' with binding 'b1' \
                   denied request: failed expression: !has(object.data) || !('forbidden' in object.data)";
    assert_eq!(err["message"], message);
    assert_eq!(
        err["details"]["causes"][0]["message"],
        message.split_once(": ").unwrap().1
    );
    let (code, body) = s.post(CONFIGMAPS, configmap("good", json!({"ok": "1"}))).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    // Updates are matched too; deletes are not in the rule.
    let (code, _) = s
        .put(
            &format!("{CONFIGMAPS}/good"),
            configmap("good", json!({"forbidden": "x"})),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    let (code, _) = s.delete(&format!("{CONFIGMAPS}/good")).await;
    assert_eq!(code, StatusCode::OK);
}

#[tokio::test]
async fn delete_rules_see_the_stored_object() {
    let s = server().await;
    let p = policy(
        "keep",
        json!({
            "matchConstraints": {"resourceRules": [{
                "apiGroups": [""], "apiVersions": ["v1"], "operations": ["DELETE"], "resources": ["configmaps"]
            }]},
            "validations": [{"expression": "object == null && oldObject.data.keep != 'yes'", "message": "kept"}]
        }),
    );
    setup(&s, p, binding("keep", "keep", json!({}))).await;
    for (name, keep) in [("a", "yes"), ("b", "no")] {
        let (code, body) = s.post(CONFIGMAPS, configmap(name, json!({"keep": keep}))).await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
    }
    let (code, err) = s.delete(&format!("{CONFIGMAPS}/a")).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .starts_with("configmaps \"a\" is forbidden: "),
        "{err}"
    );
    let (code, body) = s.delete(&format!("{CONFIGMAPS}/b")).await;
    assert_eq!(code, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn message_expression_reason_and_variables() {
    let s = server().await;
    let p = policy(
        "sized",
        json!({
            "variables": [{"name": "count", "expression": "has(object.data) ? size(object.data) : 0"}],
            "validations": [{
                "expression": "variables.count <= 2",
                "messageExpression": "'too many keys: ' + string(variables.count)",
                "reason": "Forbidden"
            }]
        }),
    );
    setup(&s, p, binding("b", "sized", json!({}))).await;
    let (code, err) = s
        .post(CONFIGMAPS, configmap("big", json!({"a": "1", "b": "2", "c": "3"})))
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{err}");
    assert_eq!(err["reason"], "Forbidden");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .ends_with("denied request: too many keys: 3"),
        "{err}"
    );
}

#[tokio::test]
async fn params_from_a_configmap_and_parameter_not_found() {
    let s = server().await;
    let p = policy(
        "max-keys",
        json!({
            "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
            "matchConstraints": {
                "resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["configmaps"]}],
                "objectSelector": {"matchLabels": {"app": "x"}}
            },
            "validations": [{"expression": "size(object.data) <= int(params.data.max)", "message": "too many keys"}]
        }),
    );
    let b = binding(
        "with-params",
        "max-keys",
        json!({"paramRef": {"name": "limits", "namespace": "default", "parameterNotFoundAction": "Deny"}}),
    );
    setup(&s, p, b).await;
    // No params yet: a configuration error, denied under failurePolicy Fail.
    let (code, err) = s.post(CONFIGMAPS, configmap("a", json!({"k": "v"}))).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert!(
        err["message"].as_str().unwrap().ends_with(
            "denied request: failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction"
        ),
        "{err}"
    );
    // The params object itself has no `app` label, so it is not matched.
    let (code, body) = s
        .post(
            CONFIGMAPS,
            json!({"metadata": {"name": "limits"}, "data": {"max": "1"}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let (code, body) = s.post(CONFIGMAPS, configmap("one", json!({"k": "v"}))).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let (code, err) = s.post(CONFIGMAPS, configmap("two", json!({"k": "v", "l": "w"}))).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .ends_with("denied request: too many keys"),
        "{err}"
    );
}

#[tokio::test]
async fn warn_action_and_failure_policy_ignore() {
    let s = server().await;
    let p = policy(
        "warn-only",
        json!({"validations": [{"expression": "object.data.missing == 'x'"}, {"expression": "false", "message": "always"}]}),
    );
    setup(&s, p, binding("w", "warn-only", json!({"validationActions": ["Warn"]}))).await;
    let req = axum::http::Request::builder()
        .method("POST")
        .uri(CONFIGMAPS)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(configmap("c", json!({"k": "v"})).to_string()))
        .unwrap();
    let resp = s.send(req).await;
    let (code, headers) = (resp.status(), resp.headers().clone());
    assert_eq!(code, StatusCode::CREATED);
    let warnings: Vec<_> = headers
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("Validation failed for ValidatingAdmissionPolicy 'warn-only' with binding 'w': always")),
        "{warnings:?}"
    );
    // The same evaluation error under Ignore is dropped; under Fail, denied.
    let p = policy(
        "broken",
        json!({"failurePolicy": "Ignore", "validations": [{"expression": "object.data.missing == 'x'"}]}),
    );
    setup(&s, p, binding("b", "broken", json!({}))).await;
    let (code, body) = s.post(CONFIGMAPS, configmap("d", json!({"k": "v"}))).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn binding_match_resources_narrow_by_namespace() {
    let s = server().await;
    let (code, _) = s
        .post(
            "/api/v1/namespaces",
            json!({"metadata": {"name": "strict", "labels": {"tier": "strict"}}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED);
    setup(
        &s,
        policy(
            "ns",
            json!({"validations": [{"expression": "false", "message": "no configmaps here"}]}),
        ),
        binding(
            "ns-b",
            "ns",
            json!({"matchResources": {"namespaceSelector": {"matchLabels": {"tier": "strict"}}}}),
        ),
    )
    .await;
    let (code, _) = s.post(CONFIGMAPS, configmap("free", json!({}))).await;
    assert_eq!(code, StatusCode::CREATED);
    let (code, err) = s
        .post("/api/v1/namespaces/strict/configmaps", configmap("x", json!({})))
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
}

fn eval(spec: Value, object: Value) -> Vec<Decision> {
    let p = CompiledPolicy::new(json!({"metadata": {"name": "p"}, "spec": spec}).as_object().unwrap());
    policy::evaluate(
        &p,
        Activation {
            object: Some(object),
            ..Default::default()
        },
    )
    .decisions
    .into_iter()
    .map(|(_, d)| d)
    .collect()
}

#[test]
fn match_conditions_skip_and_errors_are_reported() {
    let spec = json!({
        "matchConditions": [{"name": "only-web", "expression": "object.metadata.name == 'web'"}],
        "validations": [{"expression": "false"}]
    });
    assert_eq!(eval(spec.clone(), json!({"metadata": {"name": "db"}})), vec![]);
    assert_eq!(
        eval(spec, json!({"metadata": {"name": "web"}})),
        vec![Decision::Fail {
            message: "failed expression: false".into(),
            reason: None
        }]
    );
    // An undeclared name fails at compile time and surfaces as an error.
    let d = eval(json!({"validations": [{"expression": "params.x == 1"}]}), json!({}));
    assert!(
        matches!(&d[..], [Decision::Error(e)] if e.contains("undeclared reference to 'params'")),
        "{d:?}"
    );
    // A failed messageExpression falls back to the message.
    let d = eval(
        json!({"validations": [{"expression": "false", "message": "m", "messageExpression": "object.nope"}]}),
        json!({}),
    );
    assert_eq!(
        d,
        vec![Decision::Fail {
            message: "m".into(),
            reason: None
        }]
    );
}

#[test]
fn audit_annotations_publish_strings_skip_nulls_and_report_errors() {
    let p = CompiledPolicy::new(
        json!({"metadata": {"name": "p"}, "spec": {
            "validations": [{"expression": "true"}, {"expression": "object.metadata.name != 'bad'", "message": "no bad"}],
            "auditAnnotations": [
                {"key": "name", "valueExpression": "'name: ' + object.metadata.name"},
                {"key": "skipped", "valueExpression": "null"},
                {"key": "number", "valueExpression": "1"},
            ]
        }})
        .as_object()
        .unwrap(),
    );
    let e = policy::evaluate(
        &p,
        Activation {
            object: Some(json!({"metadata": {"name": "bad"}})),
            ..Default::default()
        },
    );
    assert_eq!(
        e.decisions,
        vec![(
            Some(1),
            Decision::Fail {
                message: "no bad".into(),
                reason: None
            }
        )]
    );
    assert_eq!(
        e.audit_annotations[0],
        ("name".to_string(), Ok("name: bad".to_string()))
    );
    assert_eq!(e.audit_annotations.len(), 2, "{:?}", e.audit_annotations);
    assert_eq!(
        e.audit_annotations[1],
        (
            "number".to_string(),
            Err("valueExpression '1' resulted in unsupported return type: int. Return type must be either string or null.".to_string())
        )
    );
}
