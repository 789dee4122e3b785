//! The same everyday kubectl session with every kubectl release on the
//! machine (1.27 to 1.33 under `/usr/lib/google-cloud-sdk/bin`, and
//! `/usr/bin/kubectl`): they differ in what they send (1.32+ sends protobuf
//! bodies for typed-client commands, 1.27 reads OpenAPI v2, later ones v3)
//! and all must work unchanged.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rkube_e2e::cluster::{Backend, TestCluster};

const MANIFEST: &str = "apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {mode: fast}
---
apiVersion: v1
kind: Service
metadata: {name: front}
spec:
  selector: {app: front}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: front}
spec:
  replicas: 2
  selector: {matchLabels: {app: front}}
  template:
    metadata: {labels: {app: front}}
    spec:
      containers:
      - {name: web, image: nginx:1.25}
      - {name: side, image: busybox}
";

/// Waits for a line starting with `prefix` from `kubectl get -w`.
fn watch_sees(c: &TestCluster, kubectl: &str, prefix: &str, then: impl FnOnce()) {
    let mut watcher = Command::new(kubectl)
        .arg(format!("--kubeconfig={}", c.kubeconfig().display()))
        .args(["get", "configmaps", "-w", "--request-timeout=30s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    then();
    let stdout = watcher.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            if line.starts_with(prefix) {
                let _ = watcher.kill();
                let _ = watcher.wait();
                return;
            }
            seen.push(line);
        }
    }
    let _ = watcher.kill();
    let _ = watcher.wait();
    panic!("{kubectl}: the watch never showed {prefix:?}; saw {seen:?}");
}

/// One session: version, api-resources, create -f, tables, get -w,
/// explain, client-side apply, generators, auth can-i.
async fn session(kubectl: &str) {
    if !Path::new(kubectl).exists() {
        eprintln!("skipping: {kubectl} is not installed");
        return;
    }
    let mut c = TestCluster::start(Backend::Embedded).await.expect("cluster starts");
    let tokens = c.data_dir().join("tokens.csv");
    let mut text = std::fs::read_to_string(&tokens).unwrap();
    text.push_str(&format!("{NOBODY_TOKEN},nobody,nobody-uid\n"));
    std::fs::write(&tokens, text).unwrap();
    c.restart_apiserver().unwrap();
    c.use_kubectl(kubectl);

    let v = c.ok(&["version"]).unwrap();
    assert!(
        v.contains("Server Version: v1.36.0-rkube") || v.contains("GitVersion:\"v1.36.0-rkube\""),
        "{kubectl}: {v}"
    );

    let resources = c.ok(&["api-resources", "-o", "name"]).unwrap();
    for r in [
        "pods",
        "services",
        "configmaps",
        "namespaces",
        "nodes",
        "deployments.apps",
        "statefulsets.apps",
        "cronjobs.batch",
        "horizontalpodautoscalers.autoscaling",
        "ingresses.networking.k8s.io",
        "endpointslices.discovery.k8s.io",
        "clusterroles.rbac.authorization.k8s.io",
        "leases.coordination.k8s.io",
        "customresourcedefinitions.apiextensions.k8s.io",
        "deviceclasses.resource.k8s.io",
    ] {
        assert!(
            resources.lines().any(|l| l == r),
            "{kubectl}: {r} missing:\n{resources}"
        );
    }
    let short = c.ok(&["api-resources", "--namespaced=false", "-o", "wide"]).unwrap();
    assert!(
        short.lines().any(|l| l.starts_with("nodes ") && l.contains(" no ")),
        "{short}"
    );

    let out = c.kubectl_with(&["create", "-f", "-"], Some(MANIFEST), &[]);
    assert!(
        out.status.success(),
        "{kubectl}: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Tables with upstream's columns.
    let deploys = c.ok(&["get", "deployments"]).unwrap();
    let header: Vec<&str> = deploys.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"], "{kubectl}");
    assert!(deploys.contains("front   0/2"), "{kubectl}: {deploys}");
    let svcs = c.ok(&["get", "svc", "front", "-o", "wide"]).unwrap();
    let header: Vec<&str> = svcs.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE",
            "SELECTOR"
        ],
        "{kubectl}"
    );
    assert!(
        svcs.contains("80/TCP") && svcs.contains("app=front"),
        "{kubectl}: {svcs}"
    );

    watch_sees(&c, kubectl, "late ", || {
        let late = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: late}\n";
        let out = c.kubectl_with(&["create", "-f", "-"], Some(late), &[]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    });

    let explained = c.ok(&["explain", "deployment.spec.replicas"]).unwrap();
    assert!(explained.contains("replicas"), "{kubectl}: {explained}");

    // Client-side apply: create, then update with a changed container list.
    let applied = MANIFEST
        .replace("name: front}", "name: applied}")
        .replace("app: front", "app: applied");
    let out = c.kubectl_with(&["apply", "-f", "-"], Some(&applied), &[]);
    assert!(
        out.status.success(),
        "{kubectl}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let changed = applied.replace(
        "      - {name: side, image: busybox}\n",
        "      - {name: extra, image: busybox:1.36}\n",
    );
    let out = c.kubectl_with(&["apply", "-f", "-"], Some(&changed), &[]);
    assert!(
        out.status.success(),
        "{kubectl}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names = c
        .ok(&[
            "get",
            "deploy",
            "applied",
            "-o",
            "jsonpath={.spec.template.spec.containers[*].name}",
        ])
        .unwrap();
    assert_eq!(names, "web extra", "{kubectl}");

    // Typed-client generators: kubectl 1.32+ sends these as protobuf.
    c.ok(&["create", "deployment", "gen", "--image=busybox", "--replicas=3"])
        .unwrap();
    let replicas = c
        .ok(&["get", "deploy", "gen", "-o", "jsonpath={.spec.replicas}"])
        .unwrap();
    assert_eq!(replicas, "3", "{kubectl}");
    c.ok(&["create", "configmap", "generated", "--from-literal=a=b"])
        .unwrap();
    c.ok(&["create", "secret", "generic", "generated", "--from-literal=a=b"])
        .unwrap();
    let secret = c
        .ok(&["get", "secret", "generated", "-o", "jsonpath={.data.a}"])
        .unwrap();
    assert_eq!(secret, "Yg==", "{kubectl}");
    c.ok(&["create", "service", "clusterip", "gensvc", "--tcp=80:8080"])
        .unwrap();
    c.ok(&["create", "job", "genjob", "--image=busybox", "--", "true"])
        .unwrap();
    c.ok(&["delete", "deployment", "front", "applied", "--wait"]).unwrap();

    can_i(&c, kubectl);
}

/// A token user with no bindings, for `auth can-i` answers of "no".
const NOBODY_TOKEN: &str = "e2e-nobody-token";

/// `auth can-i` posts a SelfSubjectAccessReview (in protobuf from kubectl
/// 1.32 on) and prints the decoded `status.allowed`: yes for the admin
/// (system:masters), no for a user without bindings, and `--list` from a
/// SelfSubjectRulesReview.
fn can_i(c: &TestCluster, kubectl: &str) {
    let out = c.kubectl(&["auth", "can-i", "create", "deployments.apps", "-v=8"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{kubectl}: {stdout} {stderr}");
    assert_eq!(stdout.trim(), "yes", "{kubectl}");
    assert!(
        stderr.contains("selfsubjectaccessreviews"),
        "{kubectl}: no review was posted:\n{stderr}"
    );
    if kubectl.ends_with(".1.32") || kubectl.ends_with(".1.33") {
        assert!(
            stderr.contains("Content-Type: application/vnd.kubernetes.protobuf"),
            "{kubectl} did not send protobuf:\n{stderr}"
        );
    }
    assert_eq!(
        c.ok(&["auth", "can-i", "delete", "nodes"]).unwrap().trim(),
        "yes",
        "{kubectl}"
    );

    let nobody = format!("--token={NOBODY_TOKEN}");
    let out = c.kubectl(&[&nobody, "auth", "can-i", "create", "deployments.apps", "-n", "default"]);
    assert!(!out.status.success(), "{kubectl}: can-i says no with exit code 1");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "no", "{kubectl}");
    // Discovery is open to every authenticated user (system:discovery).
    let out = c.kubectl(&[&nobody, "auth", "can-i", "get", "/api"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "yes",
        "{kubectl}: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let list = c.ok(&["auth", "can-i", "--list", "-n", "default"]).unwrap();
    assert!(
        list.lines().any(|l| l.starts_with("*.*") && l.contains("[*]")),
        "{kubectl}: {list}"
    );
}

#[tokio::test]
async fn kubectl_1_27() {
    session("/usr/lib/google-cloud-sdk/bin/kubectl.1.27").await;
}

#[tokio::test]
async fn kubectl_1_29() {
    session("/usr/lib/google-cloud-sdk/bin/kubectl.1.29").await;
}

#[tokio::test]
async fn kubectl_1_31() {
    session("/usr/lib/google-cloud-sdk/bin/kubectl.1.31").await;
}

#[tokio::test]
async fn kubectl_1_32() {
    session("/usr/lib/google-cloud-sdk/bin/kubectl.1.32").await;
}

#[tokio::test]
async fn kubectl_1_33() {
    session("/usr/lib/google-cloud-sdk/bin/kubectl.1.33").await;
}

#[tokio::test]
async fn kubectl_default() {
    session("/usr/bin/kubectl").await;
}
