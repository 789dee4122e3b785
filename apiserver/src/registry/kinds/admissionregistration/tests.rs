#![allow(clippy::unwrap_used, clippy::expect_used)]
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::webhooks::*;
use crate::registry::strategy::Strategy;
use crate::testing::TestServer;

fn hook(extra: Value) -> Value {
    let mut h = json!({"name": "v.example.com", "sideEffects": "None", "admissionReviewVersions": ["v1"],
                       "clientConfig": {"service": {"name": "svc", "namespace": "ns"}},
                       "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]});
    if let (Value::Object(h), Value::Object(extra)) = (&mut h, extra) {
        h.extend(extra);
    }
    h
}

fn messages(hooks: Value, mutating: bool) -> Vec<String> {
    let s = WebhookConfigurationStrategy { mutating };
    let mut obj = json!({"metadata": {"name": "c"}, "webhooks": hooks})
        .as_object()
        .cloned()
        .unwrap();
    s.prepare_for_create(&mut obj);
    s.validate(&obj).iter().map(ToString::to_string).collect()
}

#[test]
fn defaults() {
    let s = WebhookConfigurationStrategy { mutating: true };
    let mut obj = json!({"webhooks": [hook(json!({}))]}).as_object().cloned().unwrap();
    s.prepare_for_create(&mut obj);
    let h = &obj["webhooks"][0];
    assert_eq!(h["failurePolicy"], "Fail");
    assert_eq!(h["matchPolicy"], "Equivalent");
    assert_eq!(h["timeoutSeconds"], 10);
    assert_eq!(h["reinvocationPolicy"], "Never");
    assert_eq!(h["namespaceSelector"], json!({}));
    assert_eq!(h["objectSelector"], json!({}));
    assert_eq!(h["rules"][0]["scope"], "*");
    assert_eq!(h["clientConfig"]["service"]["port"], 443);
    assert!(s.validate(&obj).is_empty(), "{:?}", s.validate(&obj));
}

#[test]
fn webhook_rules() {
    assert_eq!(
        messages(
            json!([
                hook(
                    json!({"name": "short", "sideEffects": "Some", "timeoutSeconds": 31, "failurePolicy": "Maybe",
                               "admissionReviewVersions": ["v2", "v2"], "clientConfig": {}})
                ),
                hook(json!({"sideEffects": null, "admissionReviewVersions": []})),
                hook(json!({}))
            ]),
            false
        ),
        [
            "webhooks[0].name: Invalid value: \"short\": should be a domain with at least three segments separated by dots",
            "webhooks[0].failurePolicy: Unsupported value: \"Maybe\": supported values: \"Fail\", \"Ignore\"",
            "webhooks[0].sideEffects: Unsupported value: \"Some\": supported values: \"None\", \"NoneOnDryRun\"",
            "webhooks[0].timeoutSeconds: Invalid value: 31: the timeout value must be between 1 and 30 seconds",
            "webhooks[0].clientConfig: Required value: exactly one of url or service is required",
            "webhooks[0].admissionReviewVersions[1]: Invalid value: \"v2\": duplicate version",
            "webhooks[0].admissionReviewVersions: Invalid value: []string{\"v2\", \"v2\"}: must include at least one of v1, v1beta1",
            "webhooks[1].sideEffects: Required value: must specify one of None, NoneOnDryRun",
            "webhooks[1].admissionReviewVersions: Required value: must specify one of v1, v1beta1",
            "webhooks[2].name: Duplicate value: \"v.example.com\"",
        ]
    );
    assert_eq!(
        messages(
            json!([hook(
                json!({"matchConditions": [{"name": "a", "expression": " "}, {"name": "a", "expression": "true"}, {"expression": "x"}]})
            )]),
            false
        ),
        [
            "webhooks[0].matchConditions[0].expression: Required value",
            "webhooks[0].matchConditions[1].name: Duplicate value: \"a\"",
            "webhooks[0].matchConditions[2].name: Required value",
        ]
    );
    assert_eq!(
        messages(json!([hook(json!({"reinvocationPolicy": "Always"}))]), true),
        ["webhooks[0].reinvocationPolicy: Unsupported value: \"Always\": supported values: \"IfNeeded\", \"Never\""]
    );
}

#[tokio::test]
async fn served_with_defaults() {
    let s = TestServer::new().await;
    let path = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations";
    let (code, created) = s
        .post(path, json!({"metadata": {"name": "w"}, "webhooks": [hook(json!({}))]}))
        .await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    assert_eq!(created["webhooks"][0]["timeoutSeconds"], 10);
    let (code, status) = s
        .post(
            path,
            json!({"metadata": {"name": "x"}, "webhooks": [hook(json!({"clientConfig": {"url": "http://h/p"}}))]}),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        status["message"],
        "ValidatingWebhookConfiguration.admissionregistration.k8s.io \"x\" is invalid: webhooks[0].clientConfig.url: Invalid value: \"http\": 'https' is the only allowed URL scheme; desired format: https://host[/path]"
    );
}
