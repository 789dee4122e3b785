//! ValidatingAdmissionPolicy through real kubectl against the apiserver
//! binary: a policy with a ConfigMap as params denies a Deployment over
//! the limit with upstream's message, a binding's namespaceSelector scopes
//! it, a DELETE rule sees `oldObject` and gives its reason, a Warn binding
//! warns, and a policy with an undeclared name is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rkube_e2e::cluster::{Backend, TestCluster};

const POLICY: &str = r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: max-replicas
spec:
  failurePolicy: Fail
  paramKind:
    apiVersion: v1
    kind: ConfigMap
  matchConstraints:
    resourceRules:
    - apiGroups: ["apps"]
      apiVersions: ["v1"]
      operations: ["CREATE", "UPDATE"]
      resources: ["deployments"]
  variables:
  - name: limit
    expression: "int(params.data.maxReplicas)"
  validations:
  - expression: "object.spec.replicas <= variables.limit"
    messageExpression: "'replicas must be no greater than ' + string(variables.limit)"
"#;

const BINDING: &str = r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: max-replicas-binding
spec:
  policyName: max-replicas
  validationActions: [Deny]
  paramRef:
    name: replica-limit
    namespace: default
    parameterNotFoundAction: Deny
  matchResources:
    namespaceSelector:
      matchLabels:
        environment: test
"#;

const PROTECT: &str = r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: protect
spec:
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: ["v1"]
      operations: ["DELETE"]
      resources: ["configmaps"]
  validations:
  - expression: "!has(oldObject.metadata.labels) || !('protected' in oldObject.metadata.labels)"
    message: "protected objects cannot be deleted"
    reason: Forbidden
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: protect
spec:
  policyName: protect
  validationActions: [Deny]
"#;

fn apply(c: &TestCluster, yaml: &str) -> std::process::Output {
    c.kubectl_with(&["apply", "-f", "-"], Some(yaml), &[])
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test]
async fn policy_denies_through_kubectl() {
    let c = TestCluster::start_with(Backend::Embedded, &[])
        .await
        .expect("cluster starts");
    for yaml in [POLICY, BINDING] {
        let out = apply(&c, yaml);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    c.ok(&["create", "namespace", "staging"]).unwrap();
    c.ok(&["label", "namespace", "staging", "environment=test"]).unwrap();

    // The params object is missing: parameterNotFoundAction Deny.
    let err = c
        .fails(&[
            "create",
            "deployment",
            "web",
            "--image=nginx",
            "--replicas=3",
            "-n",
            "staging",
        ])
        .unwrap();
    assert!(
        err.contains("ValidatingAdmissionPolicy 'max-replicas' with binding 'max-replicas-binding' denied request: failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction"),
        "{err}"
    );

    c.ok(&[
        "create",
        "configmap",
        "replica-limit",
        "--from-literal=maxReplicas=5",
        "-n",
        "default",
    ])
    .unwrap();
    let err = c
        .fails(&[
            "create",
            "deployment",
            "web",
            "--image=nginx",
            "--replicas=7",
            "-n",
            "staging",
        ])
        .unwrap();
    assert!(
        err.contains(
            "deployments.apps \"web\" is forbidden: ValidatingAdmissionPolicy 'max-replicas' with binding 'max-replicas-binding' denied request: replicas must be no greater than 5"
        ),
        "{err}"
    );
    c.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=3",
        "-n",
        "staging",
    ])
    .unwrap();
    let err = c
        .fails(&[
            "patch",
            "deployment",
            "web",
            "-n",
            "staging",
            "-p",
            r#"{"spec":{"replicas":9}}"#,
        ])
        .unwrap();
    // kubectl renders the 422's cause as an Invalid error.
    assert!(
        err.contains(
            "The deployments \"web\" is invalid: : ValidatingAdmissionPolicy 'max-replicas' with binding 'max-replicas-binding' denied request: replicas must be no greater than 5"
        ),
        "{err}"
    );

    // Namespaces the binding does not select are not checked.
    c.ok(&[
        "create",
        "deployment",
        "big",
        "--image=nginx",
        "--replicas=7",
        "-n",
        "default",
    ])
    .unwrap();
}

#[tokio::test]
async fn delete_rule_sees_old_object_and_reason() {
    let c = TestCluster::start_with(Backend::Embedded, &[])
        .await
        .expect("cluster starts");
    let out = apply(&c, PROTECT);
    assert!(out.status.success(), "{}", stderr(&out));
    c.ok(&["create", "configmap", "keep"]).unwrap();
    c.ok(&["label", "configmap", "keep", "protected=yes"]).unwrap();
    c.ok(&["create", "configmap", "scratch"]).unwrap();
    let err = c.fails(&["delete", "configmap", "keep"]).unwrap();
    assert!(
        err.contains(
            "Error from server (Forbidden): configmaps \"keep\" is forbidden: ValidatingAdmissionPolicy 'protect' with binding 'protect' denied request: protected objects cannot be deleted"
        ),
        "{err}"
    );
    c.ok(&["delete", "configmap", "scratch"]).unwrap();
    c.ok(&["get", "configmap", "keep"]).unwrap();
}

const WARN: &str = r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: team-label
spec:
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: ["v1"]
      operations: ["CREATE"]
      resources: ["configmaps"]
  validations:
  - expression: "has(object.metadata.labels) && 'team' in object.metadata.labels"
    message: "configmaps should have a team label"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: team-label
spec:
  policyName: team-label
  validationActions: [Warn]
"#;

#[tokio::test]
async fn warn_action_and_bad_expression() {
    let c = TestCluster::start_with(Backend::Embedded, &[])
        .await
        .expect("cluster starts");
    let out = apply(&c, WARN);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = c.kubectl(&["create", "configmap", "unlabelled"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "Warning: Validation failed for ValidatingAdmissionPolicy 'team-label' with binding 'team-label': configmaps should have a team label"
        ),
        "{}",
        stderr(&out)
    );
    let bad = WARN
        .split("---")
        .next()
        .unwrap()
        .replace("has(object.metadata.labels)", "has(objekt.metadata.labels)");
    let out = apply(&c, &bad);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "The ValidatingAdmissionPolicy \"team-label\" is invalid: spec.validations[0].expression: Invalid value: \"has(objekt.metadata.labels) && 'team' in object.metadata.labels\": compilation failed: ERROR: <input>:1:1: undeclared reference to 'objekt'"
        ),
        "{}",
        stderr(&out)
    );
}

const REQUIRE_TEAM: &str = r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: require-team
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: ["v1"]
      operations: ["CREATE"]
      resources: ["configmaps"]
  validations:
  - expression: >-
      authorizer.group('').resource('secrets').namespace(object.metadata.namespace).check('list').allowed()
      || (has(object.metadata.labels) && 'team' in object.metadata.labels)
    message: only secret readers may omit the team label
  auditAnnotations:
  - key: creator
    valueExpression: "'created by ' + request.userInfo.username"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: require-team-binding
spec:
  policyName: require-team
  validationActions: [Deny, Audit]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: flag-names
spec:
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: ["v1"]
      operations: ["CREATE"]
      resources: ["configmaps"]
  validations:
  - expression: "object.metadata.name != 'flagged'"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: flag-names-audit
spec:
  policyName: flag-names
  validationActions: [Audit]
"#;

const AUDIT_POLICY: &str = r#"apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    resources: [{group: "", resources: [configmaps]}]
"#;

/// The audit events of ConfigMap creates, by name.
fn configmap_create_event(log: &std::path::Path, name: &str) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let found = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|e| e["verb"] == "create" && e["objectRef"]["name"] == name);
        if let Some(e) = found {
            return e;
        }
        assert!(std::time::Instant::now() < deadline, "no event for {name}: {text}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[tokio::test]
async fn authorizer_audit_annotations_and_audit_action() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, AUDIT_POLICY).unwrap();
    let log = dir.path().join("audit.log");
    let c = TestCluster::start_with(
        Backend::Embedded,
        &[
            rkube_e2e::cluster::TEST_DISABLED_ADMISSION,
            &format!("--audit-policy-file={}", policy.display()),
            &format!("--audit-log-path={}", log.display()),
        ],
    )
    .await
    .expect("cluster starts");
    let out = apply(&c, REQUIRE_TEAM);
    assert!(out.status.success(), "{}", stderr(&out));
    c.ok(&["create", "role", "cm-writer", "--verb=create", "--resource=configmaps"])
        .unwrap();
    c.ok(&["create", "rolebinding", "bob-writes", "--role=cm-writer", "--user=bob"])
        .unwrap();

    // The admin reads secrets: allowed, with the policy's audit annotation.
    c.ok(&["create", "configmap", "from-admin"]).unwrap();
    let e = configmap_create_event(&log, "from-admin");
    assert_eq!(e["annotations"]["require-team/creator"], "created by admin", "{e}");
    assert!(
        e["annotations"]
            .get("validation.policy.admission.k8s.io/validation_failure")
            .is_none()
    );

    // Bob cannot list secrets: denied with upstream's message, and audited.
    let err = c.fails(&["create", "configmap", "from-bob", "--as=bob"]).unwrap();
    assert!(
        err.contains(r#"configmaps "from-bob" is forbidden: ValidatingAdmissionPolicy 'require-team' with binding 'require-team-binding' denied request: only secret readers may omit the team label"#),
        "{err}"
    );
    let e = configmap_create_event(&log, "from-bob");
    assert_eq!(e["responseStatus"]["code"], 422, "{e}");
    let failures: serde_json::Value = serde_json::from_str(
        e["annotations"]["validation.policy.admission.k8s.io/validation_failure"]
            .as_str()
            .unwrap_or_else(|| panic!("{e}")),
    )
    .unwrap();
    assert_eq!(
        failures,
        serde_json::json!([{
            "message": "only secret readers may omit the team label",
            "policy": "require-team",
            "binding": "require-team-binding",
            "expressionIndex": 0,
            "validationActions": ["Deny", "Audit"]
        }])
    );
    // Once bob may list secrets, it is allowed.
    c.ok(&["create", "role", "secret-reader", "--verb=list", "--resource=secrets"])
        .unwrap();
    c.ok(&[
        "create",
        "rolebinding",
        "bob-reads",
        "--role=secret-reader",
        "--user=bob",
    ])
    .unwrap();
    c.ok(&["create", "configmap", "from-bob", "--as=bob"]).unwrap();

    // An Audit-only binding: allowed, the failure only in the audit event.
    c.ok(&["create", "configmap", "flagged"]).unwrap();
    let e = configmap_create_event(&log, "flagged");
    assert_eq!(e["responseStatus"]["code"], 201, "{e}");
    let failures: serde_json::Value = serde_json::from_str(
        e["annotations"]["validation.policy.admission.k8s.io/validation_failure"]
            .as_str()
            .unwrap_or_else(|| panic!("{e}")),
    )
    .unwrap();
    assert_eq!(failures[0]["policy"], "flag-names");
    assert_eq!(
        failures[0]["message"],
        "failed expression: object.metadata.name != 'flagged'"
    );
    assert_eq!(failures[0]["validationActions"], serde_json::json!(["Audit"]));
}

const MISSPELT: &str = r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: misspelt
spec:
  matchConstraints:
    resourceRules:
    - apiGroups: ["apps"]
      apiVersions: ["v1"]
      operations: ["CREATE"]
      resources: ["deployments"]
  validations:
  - expression: "object.replicas > 1"
"#;

/// A field the matched kind does not have: accepted, with upstream's
/// type-checking warning in the status.
#[tokio::test]
async fn type_checking_warns_of_undefined_fields() {
    let c = TestCluster::start(Backend::Embedded).await.expect("cluster starts");
    let out = apply(&c, MISSPELT);
    assert!(out.status.success(), "{}", stderr(&out));
    let warning = c
        .ok(&[
            "get",
            "validatingadmissionpolicy",
            "misspelt",
            "-o",
            "jsonpath={.status.typeChecking.expressionWarnings[0].fieldRef}|{.status.typeChecking.expressionWarnings[0].warning}",
        ])
        .unwrap();
    assert_eq!(
        warning,
        "spec.validations[0].expression|apps/v1, Kind=Deployment: ERROR: <input>:1:7: undefined field 'replicas'\n | object.replicas > 1\n | ......^"
    );
}
