//! Real kubectl against the OpenAPI documents the apiserver serves:
//! `explain` (v3, and v2 protobuf with `--output=plaintext-openapiv2`),
//! default `--validate=strict` (kubectl finds `fieldValidation` in v3 and
//! lets the server reject unknown fields), `--validate=warn`, and
//! client-side apply, which reads patch metadata from v3 (1.31) or v2
//! (1.27).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use rkube_e2e::cluster::{Backend, TestCluster};

async fn cluster() -> TestCluster {
    TestCluster::start(Backend::Embedded).await.expect("cluster starts")
}

fn deployment(name: &str, extra_spec: &str, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
{extra_spec}  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        env: [{{name: MODE, value: one}}]
      - name: side
        image: busybox
"
    )
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn explain_reads_the_v3_documents() {
    let c = cluster().await;
    let out = c.ok(&["explain", "pods.spec.containers"]).unwrap();
    assert!(out.contains("KIND:       Pod"), "{out}");
    assert!(out.contains("FIELD: containers <[]Container>"), "{out}");
    assert!(out.contains("imagePullPolicy\t<string>"), "{out}");

    let out = c.ok(&["explain", "deployment", "--recursive"]).unwrap();
    let head: Vec<&str> = out.lines().take(10).collect();
    assert_eq!(
        head[..3],
        ["GROUP:      apps", "KIND:       Deployment", "VERSION:    v1"],
        "{out}"
    );
    assert!(out.contains("maxUnavailable\t<IntOrString>"), "{out}");

    // A group-version other than the preferred one.
    let out = c
        .ok(&[
            "explain",
            "horizontalpodautoscalers.spec",
            "--api-version=autoscaling/v1",
        ])
        .unwrap();
    assert!(out.contains("VERSION:    v1"), "{out}");
    assert!(out.contains("targetCPUUtilizationPercentage"), "{out}");

    let err = c.fails(&["explain", "deployment.spec.bogus"]).unwrap();
    assert!(err.contains(r#"field "bogus" does not exist"#), "{err}");
}

#[tokio::test]
async fn explain_reads_the_v2_protobuf() {
    let c = cluster().await;
    let out = c
        .ok(&["explain", "deployment.spec.strategy", "--output=plaintext-openapiv2"])
        .unwrap();
    assert!(out.contains("RESOURCE: strategy <Object>"), "{out}");
    assert!(out.contains("rollingUpdate\t<Object>"), "{out}");
    let out = c
        .ok(&[
            "explain",
            "horizontalpodautoscalers.spec",
            "--api-version=autoscaling/v1",
            "--output=plaintext-openapiv2",
        ])
        .unwrap();
    assert!(out.contains("VERSION:  autoscaling/v1"), "{out}");
    assert!(out.contains("targetCPUUtilizationPercentage"), "{out}");
}

#[tokio::test]
async fn default_validation_is_strict_on_the_server() {
    let c = cluster().await;
    // A valid manifest needs no --validate=false.
    let out = c.kubectl_with(&["create", "-f", "-"], Some(&deployment("good", "", 1)), &[]);
    assert!(out.status.success(), "{}", stderr(&out));

    let bad = deployment("bad", "  bogus: 1\n", 1);
    let out = c.kubectl_with(&["create", "-f", "-"], Some(&bad), &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            r#"Error from server (BadRequest): error when creating "STDIN": Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.bogus""#
        ),
        "{}",
        stderr(&out)
    );
    c.fails(&["get", "deploy", "bad"]).unwrap();

    let out = c.kubectl_with(&["create", "--validate=warn", "-f", "-"], Some(&bad), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(r#"Warning: unknown field "spec.bogus""#),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        c.ok(&["get", "deploy", "bad", "-o", "jsonpath={.metadata.name}"])
            .unwrap(),
        "bad"
    );
}

/// `kubectl apply` twice (create, then a strategic merge patch built from
/// the OpenAPI patch metadata): the containers list merges by name.
fn apply_twice(c: &TestCluster, kubectl: &Path, name: &str) {
    let run = |manifest: &str| {
        let mut child = Command::new(kubectl)
            .arg(format!("--kubeconfig={}", c.kubeconfig().display()))
            .args(["apply", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(manifest.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}: {}", kubectl.display(), stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = run(&deployment(name, "", 1));
    assert_eq!(out.trim(), format!("deployment.apps/{name} created"));
    let out = run(&deployment(name, "", 3).replace("value: one", "value: two"));
    assert_eq!(out.trim(), format!("deployment.apps/{name} configured"));
    let got = c
        .ok(&[
            "get",
            "deploy",
            name,
            "-o",
            "jsonpath={.spec.replicas} {range .spec.template.spec.containers[*]}{.name}:{.env[*].value};{end}",
        ])
        .unwrap();
    assert_eq!(got, "3 web:two;side:;");
}

#[tokio::test]
async fn client_side_apply_creates_then_patches() {
    let c = cluster().await;
    apply_twice(&c, Path::new(rkube_e2e::cluster::KUBECTL_1_31), "app31");
    // kubectl 1.27 reads the patch metadata from the v2 protobuf document.
    let old = Path::new("/usr/lib/google-cloud-sdk/bin/kubectl.1.27");
    if old.exists() {
        apply_twice(&c, old, "app27");
    } else {
        eprintln!("{} is missing: v2 apply not exercised", old.display());
    }
}
