//! The real apiserver binary driven by real kubectl (1.31: JSON bodies),
//! on the embedded store and on a real etcd.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use rkube_e2e::cluster::{Backend, TestCluster};

async fn cluster(backend: Backend) -> TestCluster {
    TestCluster::start(backend).await.expect("cluster starts")
}

const MANIFESTS: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
  labels: {app: shop, tier: front}
data:
  color: blue
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports: [{containerPort: 80}]
"#;

#[tokio::test]
async fn discovery_and_version_embedded() {
    discovery_and_version(Backend::Embedded).await;
}

#[tokio::test]
async fn discovery_and_version_etcd() {
    discovery_and_version(Backend::Etcd).await;
}

async fn discovery_and_version(backend: Backend) {
    let c = cluster(backend).await;
    let v = c.ok(&["version"]).unwrap();
    assert!(v.contains("Server Version: v1.36.0-rkube"), "{v}");
    let versions = c.ok(&["api-versions"]).unwrap();
    for gv in [
        "v1",
        "apps/v1",
        "batch/v1",
        "autoscaling/v2",
        "rbac.authorization.k8s.io/v1",
        "resource.k8s.io/v1",
    ] {
        assert!(versions.lines().any(|l| l == gv), "{gv} missing from:\n{versions}");
    }
    let resources = c.ok(&["api-resources", "--no-headers"]).unwrap();
    // One line per resource at its group's preferred version: the 68
    // served (group, version, resource) triples less autoscaling/v1's
    // duplicate of horizontalpodautoscalers.
    assert_eq!(resources.lines().count(), 67, "{resources}");
    let deploy = resources.lines().find(|l| l.starts_with("deployments ")).unwrap();
    assert_eq!(
        deploy.split_whitespace().collect::<Vec<_>>(),
        ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    );
}

#[tokio::test]
async fn create_and_get_in_every_format_embedded() {
    create_and_get_in_every_format(Backend::Embedded).await;
}

#[tokio::test]
async fn create_and_get_in_every_format_etcd() {
    create_and_get_in_every_format(Backend::Etcd).await;
}

async fn create_and_get_in_every_format(backend: Backend) {
    let c = cluster(backend).await;
    let out = c.kubectl_with(&["create", "-f", "-"], Some(MANIFESTS), &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let created = String::from_utf8_lossy(&out.stdout);
    assert!(
        created.contains("namespace/shop created") && created.contains("deployment.apps/web created"),
        "{created}"
    );

    let yaml = c.ok(&["get", "cm", "settings", "-n", "shop", "-o", "yaml"]).unwrap();
    assert!(
        yaml.contains("color: blue") && yaml.contains("resourceVersion:") && yaml.contains("uid:"),
        "{yaml}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "deploy", "web", "-n", "shop", "-o", "json"]).unwrap()).unwrap();
    assert_eq!(json["metadata"]["generation"], 1);
    assert_eq!(json["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.25");
    assert_eq!(
        c.ok(&["get", "deploy", "web", "-n", "shop", "-o", "jsonpath={.spec.replicas}"])
            .unwrap(),
        "2"
    );
    let cols = c
        .ok(&[
            "get",
            "cm",
            "-n",
            "shop",
            "-o",
            "custom-columns=NAME:.metadata.name,COLOR:.data.color",
        ])
        .unwrap();
    assert!(
        cols.lines().any(|l| l.split_whitespace().eq(["settings", "blue"])),
        "{cols}"
    );
    assert_eq!(
        c.ok(&["get", "cm", "-n", "shop", "-o", "name", "-l", "tier=front"])
            .unwrap()
            .trim(),
        "configmap/settings"
    );
    let wide = c.ok(&["get", "deploy", "-n", "shop", "-o", "wide"]).unwrap();
    let header: Vec<&str> = wide.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    assert!(wide.contains("nginx:1.25") && wide.contains("app=web"), "{wide}");
    let all = c.ok(&["get", "cm", "-A", "--no-headers"]).unwrap();
    assert!(
        all.lines().any(|l| l.starts_with("shop ") && l.contains("settings")),
        "{all}"
    );
    let sel = c
        .ok(&[
            "get",
            "cm",
            "-A",
            "--field-selector",
            "metadata.namespace=shop",
            "-o",
            "name",
        ])
        .unwrap();
    assert_eq!(sel.trim(), "configmap/settings");
    assert_eq!(
        c.ok(&["get", "cm", "-n", "shop", "-l", "tier=back", "-o", "name"])
            .unwrap()
            .trim(),
        ""
    );
    let ns = c.ok(&["get", "ns", "shop", "--no-headers"]).unwrap();
    assert!(ns.starts_with("shop") && ns.contains("Active"), "{ns}");
    let describe = c.ok(&["describe", "deploy", "web", "-n", "shop"]).unwrap();
    assert!(
        describe.contains("Replicas:") && describe.contains("nginx:1.25"),
        "{describe}"
    );
}

#[tokio::test]
async fn generators_embedded() {
    generators(Backend::Embedded).await;
}

#[tokio::test]
async fn generators_etcd() {
    generators(Backend::Etcd).await;
}

async fn generators(backend: Backend) {
    let c = cluster(backend).await;
    c.ok(&["create", "namespace", "gen"]).unwrap();
    c.ok(&["create", "configmap", "cm1", "-n", "gen", "--from-literal=a=1"])
        .unwrap();
    c.ok(&[
        "create",
        "secret",
        "generic",
        "s1",
        "-n",
        "gen",
        "--from-literal=password=hunter2",
    ])
    .unwrap();
    c.ok(&[
        "create",
        "deployment",
        "d1",
        "-n",
        "gen",
        "--image=nginx",
        "--replicas=3",
    ])
    .unwrap();
    c.ok(&["create", "job", "j1", "-n", "gen", "--image=busybox", "--", "true"])
        .unwrap();
    c.ok(&[
        "create",
        "cronjob",
        "cj1",
        "-n",
        "gen",
        "--image=busybox",
        "--schedule=*/5 * * * *",
        "--",
        "true",
    ])
    .unwrap();
    c.ok(&["create", "service", "clusterip", "svc1", "-n", "gen", "--tcp=80:8080"])
        .unwrap();
    let ip = c
        .ok(&[
            "get",
            "service",
            "svc1",
            "-n",
            "gen",
            "-o",
            "jsonpath={.spec.clusterIP}",
        ])
        .unwrap();
    let octets: Vec<u8> = ip.split('.').map(|o| o.parse().unwrap()).collect();
    assert!(
        octets.len() == 4 && octets[0] == 10 && (96..112).contains(&octets[1]),
        "{ip}"
    );
    let owner = c
        .ok(&["get", "ipaddress", &ip, "-o", "jsonpath={.spec.parentRef.name}"])
        .unwrap();
    assert_eq!(owner, "svc1");
    let job_label = c
        .ok(&[
            "get",
            "job",
            "j1",
            "-n",
            "gen",
            "-o",
            "jsonpath={.spec.template.metadata.labels.job-name}",
        ])
        .unwrap();
    assert_eq!(job_label, "j1");
    let secret = c
        .ok(&["get", "secret", "s1", "-n", "gen", "-o", "jsonpath={.data.password}"])
        .unwrap();
    assert_eq!(secret, "aHVudGVyMg==");
    let names = c
        .ok(&["get", "cm,secret,deploy,job,cronjob,svc", "-n", "gen", "-o", "name"])
        .unwrap();
    for n in [
        "configmap/cm1",
        "secret/s1",
        "deployment.apps/d1",
        "job.batch/j1",
        "cronjob.batch/cj1",
        "service/svc1",
    ] {
        assert!(names.lines().any(|l| l == n), "{n} missing:\n{names}");
    }
}

#[tokio::test]
async fn mutations_embedded() {
    mutations(Backend::Embedded).await;
}

#[tokio::test]
async fn mutations_etcd() {
    mutations(Backend::Etcd).await;
}

async fn mutations(backend: Backend) {
    let c = cluster(backend).await;
    c.ok(&["create", "deployment", "web", "--image=nginx:1.25", "--replicas=2"])
        .unwrap();
    c.ok(&["label", "deploy", "web", "tier=front"]).unwrap();
    c.ok(&["annotate", "deploy", "web", "owner=team-a"]).unwrap();
    c.ok(&[
        "patch",
        "deploy",
        "web",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"replicas":3}}"#,
    ])
    .unwrap();
    c.ok(&[
        "patch",
        "deploy",
        "web",
        "--type",
        "json",
        "-p",
        r#"[{"op":"replace","path":"/spec/replicas","value":4}]"#,
    ])
    .unwrap();
    c.ok(&[
        "patch",
        "deploy",
        "web",
        "--type",
        "strategic",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.26"}]}}}}"#,
    ])
    .unwrap();
    let got = c.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas} {.spec.template.spec.containers[*].image} {.metadata.labels.tier} {.metadata.annotations.owner}"]).unwrap();
    assert_eq!(got, "4 nginx:1.26 front team-a");
    c.ok(&["set", "image", "deploy/web", "nginx=nginx:1.27"]).unwrap();
    c.ok(&["scale", "deploy", "web", "--replicas=5"]).unwrap();
    let got = c
        .ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image} {.metadata.generation}",
        ])
        .unwrap();
    // Upstream bumps a Deployment's generation on annotation changes too (annotate included).
    assert_eq!(got, "5 nginx:1.27 7");

    // replace: the whole object, from a modified copy.
    let mut obj: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "deploy", "web", "-o", "json"]).unwrap()).unwrap();
    obj["spec"]["replicas"] = 7.into();
    let out = c.kubectl_with(&["replace", "-f", "-"], Some(&obj.to_string()), &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        c.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"])
            .unwrap(),
        "7"
    );

    // edit with a scripted editor.
    let dir = tempfile::tempdir().unwrap();
    let editor = dir.path().join("editor.sh");
    std::fs::write(&editor, "#!/bin/sh\nsed -i 's/replicas: 7/replicas: 8/' \"$1\"\n").unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&editor)
        .status()
        .unwrap();
    let out = c.kubectl_with(
        &["edit", "deploy", "web"],
        None,
        &[("KUBE_EDITOR", editor.to_str().unwrap())],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        c.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"])
            .unwrap(),
        "8"
    );
}

#[tokio::test]
async fn deletes_embedded() {
    deletes(Backend::Embedded).await;
}

#[tokio::test]
async fn deletes_etcd() {
    deletes(Backend::Etcd).await;
}

async fn deletes(backend: Backend) {
    let c = cluster(backend).await;
    for n in ["a", "b", "c"] {
        c.ok(&["create", "configmap", n, "--from-literal=k=v"]).unwrap();
    }
    let out = c.ok(&["delete", "configmap", "a", "--wait"]).unwrap();
    assert!(out.contains("configmap \"a\" deleted"), "{out}");
    c.ok(&["delete", "configmap", "--all"]).unwrap();
    assert_eq!(c.ok(&["get", "cm", "-o", "name"]).unwrap().trim(), "");
    c.ok(&["create", "deployment", "keep", "--image=nginx"]).unwrap();
    c.ok(&["delete", "deployment", "keep", "--cascade=orphan", "--wait=false"])
        .unwrap();
    // Orphan propagation is recorded as the `orphan` finalizer until the
    // garbage collector handles it.
    let fin = c
        .ok(&["get", "deploy", "keep", "-o", "jsonpath={.metadata.finalizers}"])
        .unwrap();
    assert!(fin.contains("orphan"), "{fin}");
    c.ok(&[
        "patch",
        "deploy",
        "keep",
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ])
    .unwrap();
    let err = c.fails(&["get", "deploy", "keep"]).unwrap();
    assert!(err.contains("NotFound"), "{err}");
}

#[tokio::test]
async fn watch_observes_a_later_change_embedded() {
    watch_observes_a_later_change(Backend::Embedded).await;
}

#[tokio::test]
async fn watch_observes_a_later_change_etcd() {
    watch_observes_a_later_change(Backend::Etcd).await;
}

async fn watch_observes_a_later_change(backend: Backend) {
    let c = cluster(backend).await;
    let mut watcher = std::process::Command::new(rkube_e2e::cluster::KUBECTL_1_31)
        .arg(format!("--kubeconfig={}", c.kubeconfig().display()))
        .args(["get", "configmaps", "-w", "--request-timeout=30s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    c.ok(&["create", "configmap", "late", "--from-literal=k=v"]).unwrap();
    let stdout = watcher.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
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
            if line.starts_with("late ") {
                let _ = watcher.kill();
                let _ = watcher.wait();
                return;
            }
            seen.push(line);
        }
    }
    let _ = watcher.kill();
    let _ = watcher.wait();
    panic!("the watch never showed the new ConfigMap; saw {seen:?}");
}

#[tokio::test]
async fn failures_carry_upstream_messages_embedded() {
    failures_carry_upstream_messages(Backend::Embedded).await;
}

#[tokio::test]
async fn failures_carry_upstream_messages_etcd() {
    failures_carry_upstream_messages(Backend::Etcd).await;
}

async fn failures_carry_upstream_messages(backend: Backend) {
    let c = cluster(backend).await;
    let bad = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n";
    let out = c.kubectl_with(&["create", "-f", "-"], Some(bad), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(r#"The ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain"#),
        "{err}"
    );
    let err = c
        .fails(&["create", "configmap", "x", "-n", "nope", "--from-literal=a=b"])
        .unwrap();
    assert!(err.contains(r#"namespaces "nope" not found"#), "{err}");

    c.ok(&["create", "configmap", "cas", "--from-literal=a=1"]).unwrap();
    let stale = c.ok(&["get", "cm", "cas", "-o", "json"]).unwrap();
    c.ok(&["patch", "cm", "cas", "--type", "merge", "-p", r#"{"data":{"a":"2"}}"#])
        .unwrap();
    let out = c.kubectl_with(&["replace", "-f", "-"], Some(&stale), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("Operation cannot be fulfilled on configmaps \"cas\": the object has been modified"),
        "{err}"
    );

    let err = c.fails(&["get", "configmap", "missing"]).unwrap();
    assert!(
        err.contains(r#"Error from server (NotFound): configmaps "missing" not found"#),
        "{err}"
    );
}

async fn data_survives_restart(backend: Backend) {
    let mut c = cluster(backend).await;
    c.ok(&["create", "namespace", "keep"]).unwrap();
    c.ok(&["create", "configmap", "kept", "-n", "keep", "--from-literal=a=1"])
        .unwrap();
    c.ok(&["create", "deployment", "d", "-n", "keep", "--image=nginx"])
        .unwrap();
    let before = c
        .ok(&[
            "get",
            "cm",
            "kept",
            "-n",
            "keep",
            "-o",
            "jsonpath={.metadata.uid} {.metadata.resourceVersion}",
        ])
        .unwrap();
    c.restart_apiserver().unwrap();
    let after = c
        .ok(&[
            "get",
            "cm",
            "kept",
            "-n",
            "keep",
            "-o",
            "jsonpath={.metadata.uid} {.metadata.resourceVersion}",
        ])
        .unwrap();
    assert_eq!(before, after);
    assert_eq!(
        c.ok(&["get", "deploy", "-n", "keep", "-o", "name"]).unwrap().trim(),
        "deployment.apps/d"
    );
    // New writes continue from the recovered revision.
    c.ok(&["create", "configmap", "newer", "-n", "keep", "--from-literal=a=1"])
        .unwrap();
    let rv: i64 = c
        .ok(&[
            "get",
            "cm",
            "newer",
            "-n",
            "keep",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ])
        .unwrap()
        .parse()
        .unwrap();
    let old_rv: i64 = before.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(rv > old_rv, "{rv} > {old_rv}");
}

#[tokio::test]
async fn data_survives_restart_on_embedded() {
    data_survives_restart(Backend::Embedded).await;
}

#[tokio::test]
async fn data_survives_restart_on_etcd() {
    data_survives_restart(Backend::Etcd).await;
}
