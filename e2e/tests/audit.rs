//! Audit logging against the real apiserver binary: an upstream-format
//! policy file (`--audit-policy-file`) and a JSON-lines log
//! (`--audit-log-path`), read back after kubectl requests: the level each
//! rule gives, both stages with one audit ID, the user, the object, the
//! response status (with the refusal's reason), and bodies only where the
//! level asks for them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use rkube_e2e::cluster::{Backend, TEST_DISABLED_ADMISSION, TestCluster};
use serde_json::Value;

const POLICY: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: None
    nonResourceURLs: ["/healthz*", "/readyz*", "/livez*", "/version"]
  - level: None
    verbs: [get, list, watch]
    resources: [{group: ""}]
    namespaces: [kube-system]
  - level: Metadata
    resources: [{group: "", resources: [secrets]}]
  - level: RequestResponse
    resources: [{group: "", resources: [configmaps]}]
    omitStages: [RequestReceived]
  - level: Request
    resources: [{group: "", resources: [pods]}]
"#;

fn events(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The events whose request matches, waiting briefly for the last stage.
fn find(path: &std::path::Path, pred: impl Fn(&Value) -> bool, want: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found: Vec<Value> = events(path).into_iter().filter(|e| pred(e)).collect();
        if found.len() >= want || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn audit_log_follows_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    let log = dir.path().join("logs/audit.log");
    let c = TestCluster::start_with(
        Backend::Embedded,
        &[
            TEST_DISABLED_ADMISSION,
            &format!("--audit-policy-file={}", policy.display()),
            &format!("--audit-log-path={}", log.display()),
            "--audit-log-maxsize=100",
            "--audit-log-maxbackup=3",
            "--audit-log-maxage=7",
        ],
    )
    .await
    .unwrap();
    c.ok(&["create", "secret", "generic", "s1", "--from-literal=k=topsecret"])
        .unwrap();
    c.ok(&["create", "configmap", "c1", "--from-literal=k=v1"]).unwrap();
    c.ok(&["get", "pods", "-n", "kube-system"]).unwrap();
    c.fails(&["get", "pods", "--as=mallory"]).unwrap();

    // Secrets: Metadata, both stages, one audit ID, no bodies.
    let secret = find(
        &log,
        |e| e["verb"] == "create" && e["objectRef"]["resource"] == "secrets",
        2,
    );
    assert_eq!(secret.len(), 2, "{secret:?}");
    let (received, complete) = (&secret[0], &secret[1]);
    assert_eq!(received["stage"], "RequestReceived");
    assert_eq!(complete["stage"], "ResponseComplete");
    assert_eq!(received["auditID"], complete["auditID"]);
    for e in &secret {
        assert_eq!(e["kind"], "Event");
        assert_eq!(e["apiVersion"], "audit.k8s.io/v1");
        assert_eq!(e["level"], "Metadata");
        assert_eq!(e["user"]["username"], "admin");
        assert_eq!(e["objectRef"]["namespace"], "default");
        assert_eq!(e["objectRef"]["name"], "s1");
        assert_eq!(e["objectRef"]["apiVersion"], "v1");
        assert_eq!(
            e["requestURI"],
            "/api/v1/namespaces/default/secrets?fieldManager=kubectl-create&fieldValidation=Strict"
        );
        assert!(e.get("requestObject").is_none() && e.get("responseObject").is_none());
        assert_eq!(e["sourceIPs"][0], "127.0.0.1");
        assert!(e["userAgent"].as_str().unwrap().starts_with("kubectl"));
        assert!(
            !e.to_string().contains("dG9wc2VjcmV0"),
            "secret data logged at Metadata"
        );
    }
    assert_eq!(complete["responseStatus"]["code"], 201);

    // ConfigMaps: RequestResponse without RequestReceived.
    let cm = find(
        &log,
        |e| e["verb"] == "create" && e["objectRef"]["resource"] == "configmaps",
        1,
    );
    assert_eq!(cm.len(), 1, "{cm:?}");
    assert_eq!(cm[0]["stage"], "ResponseComplete");
    assert_eq!(cm[0]["requestObject"]["data"]["k"], "v1");
    assert_eq!(cm[0]["responseObject"]["metadata"]["name"], "c1");

    // A request refused after impersonation: logged with both users and the refusal.
    let pods = find(
        &log,
        |e| e["stage"] == "ResponseComplete" && e["objectRef"]["resource"] == "pods" && e["verb"] == "list",
        1,
    );
    assert!(!pods.is_empty());
    assert_eq!(pods[0]["level"], "Request");
    assert_eq!(pods[0]["impersonatedUser"]["username"], "mallory", "{}", pods[0]);
    assert_eq!(pods[0]["responseStatus"]["code"], 403, "{}", pods[0]);
    assert_eq!(pods[0]["responseStatus"]["reason"], "Forbidden");

    // Logged after the kube-system reads and /readyz, which the policy drops.
    let all = events(&log);
    assert!(!all.iter().any(|e| e["objectRef"]["namespace"] == "kube-system"));
    assert!(!all.iter().any(|e| e["requestURI"] == "/readyz"));
}

const METADATA_POLICY: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    nonResourceURLs: ["/healthz*", "/readyz*", "/livez*", "/version"]
  - level: Metadata
"#;

/// Annotations that authorization and admission add, and the one event of
/// a request authentication refused.
#[tokio::test]
async fn annotations_and_refused_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, METADATA_POLICY).unwrap();
    let log = dir.path().join("audit.log");
    let c = TestCluster::start_with(
        Backend::Embedded,
        &[
            TEST_DISABLED_ADMISSION,
            &format!("--audit-policy-file={}", policy.display()),
            &format!("--audit-log-path={}", log.display()),
        ],
    )
    .await
    .unwrap();
    let complete = |pred: &dyn Fn(&Value) -> bool| {
        find(&log, |e| e["stage"] == "ResponseComplete" && pred(e), 1)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no event in {}", std::fs::read_to_string(&log).unwrap()))
    };

    // system:masters: allowed with no reason; RBAC: allowed by the binding.
    c.ok(&["get", "configmaps"]).unwrap();
    let e = complete(&|e| e["objectRef"]["resource"] == "configmaps" && e["user"]["username"] == "admin");
    assert_eq!(e["annotations"]["authorization.k8s.io/decision"], "allow", "{e}");
    assert_eq!(e["annotations"]["authorization.k8s.io/reason"], "", "{e}");
    c.ok(&["get", "pods", "--as=system:kube-scheduler"]).unwrap();
    let e = complete(&|e| {
        e["objectRef"]["resource"] == "pods" && e["impersonatedUser"]["username"] == "system:kube-scheduler"
    });
    assert_eq!(e["annotations"]["authorization.k8s.io/decision"], "allow", "{e}");
    assert_eq!(
        e["annotations"]["authorization.k8s.io/reason"],
        r#"RBAC: allowed by ClusterRoleBinding "system:kube-scheduler" of ClusterRole "system:kube-scheduler" to User "system:kube-scheduler""#
    );
    c.fails(&["get", "secrets", "--as=mallory"]).unwrap();
    let e = complete(&|e| e["objectRef"]["resource"] == "secrets" && e["impersonatedUser"]["username"] == "mallory");
    assert_eq!(e["annotations"]["authorization.k8s.io/decision"], "forbid", "{e}");
    assert_eq!(e["responseStatus"]["code"], 403);

    // PodSecurity: the enforce policy, and the audit mode's violations.
    c.ok(&["create", "namespace", "psa"]).unwrap();
    c.ok(&[
        "label",
        "namespace",
        "psa",
        "pod-security.kubernetes.io/enforce=baseline",
        "pod-security.kubernetes.io/audit=restricted",
    ])
    .unwrap();
    c.ok(&["run", "web", "-n", "psa", "--image=registry.k8s.io/pause:3.10"])
        .unwrap();
    let e = complete(&|e| {
        e["objectRef"]["resource"] == "pods" && e["verb"] == "create" && e["objectRef"]["namespace"] == "psa"
    });
    let notes = &e["annotations"];
    assert_eq!(
        notes["pod-security.kubernetes.io/enforce-policy"], "baseline:latest",
        "{e}"
    );
    let violations = notes["pod-security.kubernetes.io/audit-violations"].as_str().unwrap();
    assert!(
        violations.starts_with(r#"would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false"#),
        "{violations}"
    );
    c.ok(&["run", "plain", "--image=registry.k8s.io/pause:3.10"]).unwrap();
    let e = complete(&|e| {
        e["objectRef"]["resource"] == "pods" && e["verb"] == "create" && e["objectRef"]["name"] == "plain"
    });
    assert_eq!(
        e["annotations"]["pod-security.kubernetes.io/enforce-policy"], "privileged:latest",
        "{e}"
    );
    assert!(
        e["annotations"]
            .get("pod-security.kubernetes.io/audit-violations")
            .is_none()
    );

    // A token nobody issued: one event, at ResponseStarted as upstream, no user.
    c.fails(&["get", "pods", "--token=not-a-token"]).unwrap();
    let refused = find(
        &log,
        |e| e["responseStatus"]["code"] == 401 && e["objectRef"]["resource"] == "pods",
        1,
    );
    let e = refused
        .first()
        .unwrap_or_else(|| panic!("{}", std::fs::read_to_string(&log).unwrap()));
    assert_eq!(e["stage"], "ResponseStarted", "{e}");
    assert_eq!(e["user"], serde_json::json!({}), "{e}");
    assert_eq!(e["level"], "Metadata");
    assert_eq!(e["verb"], "list");
    assert_eq!(
        e["responseStatus"]["message"],
        "Authentication failed, attempted: bearer"
    );
    assert!(e["auditID"].as_str().is_some_and(|id| !id.is_empty()));
}
