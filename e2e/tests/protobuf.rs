//! Protobuf request bodies from real kubectl: 1.32 and 1.33 send
//! `application/vnd.kubernetes.protobuf` for typed-client commands
//! (`create deployment`, `create configmap`, ...); the objects they create
//! must read back exactly as the same commands create them over JSON.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use rkube_e2e::cluster::{Backend, TestCluster};
use serde_json::Value;

const KUBECTLS: &[&str] = &[
    "/usr/lib/google-cloud-sdk/bin/kubectl.1.33",
    "/usr/lib/google-cloud-sdk/bin/kubectl.1.32",
];

fn get(c: &TestCluster, args: &[&str]) -> Value {
    let mut all = vec!["get", "-o", "json"];
    all.extend_from_slice(args);
    serde_json::from_str(&c.ok(&all).unwrap()).unwrap()
}

#[tokio::test]
async fn typed_create_commands_send_protobuf() {
    for kubectl in KUBECTLS {
        if !Path::new(kubectl).exists() {
            eprintln!("skipping: {kubectl} is not installed");
            continue;
        }
        let mut c = TestCluster::start(Backend::Embedded).await.expect("cluster starts");
        c.use_kubectl(*kubectl);

        // The body really is protobuf (kubectl logs request headers at -v=8).
        let out = c.kubectl(&["create", "deployment", "web", "--image=busybox", "--replicas=2", "-v=8"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{kubectl}: {stderr}");
        assert!(
            stderr.contains("Content-Type: application/vnd.kubernetes.protobuf"),
            "{kubectl} did not send protobuf:\n{stderr}"
        );
        let d = get(&c, &["deployment", "web"]);
        assert_eq!(d["spec"]["replicas"], 2);
        assert_eq!(d["spec"]["selector"]["matchLabels"]["app"], "web");
        let container = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["name"], "busybox");
        assert_eq!(container["image"], "busybox");
        // Upstream defaults applied: the empty strings Go wrote decode as unset.
        assert_eq!(container["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(container["imagePullPolicy"], "Always");
        assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert!(d["metadata"]["creationTimestamp"].is_string(), "{d}");

        // replicas 0 is a pointer's explicit zero: kept, not defaulted to 1.
        c.ok(&[
            "create",
            "deployment",
            "idle",
            "--image=nginx:1.25",
            "--replicas=0",
            "--port=80",
        ])
        .unwrap();
        let idle = get(&c, &["deployment", "idle"]);
        assert_eq!(idle["spec"]["replicas"], 0, "{idle}");
        assert_eq!(
            idle["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
            80
        );

        c.ok(&["create", "namespace", "shop"]).unwrap();
        c.ok(&[
            "create",
            "configmap",
            "settings",
            "-n",
            "shop",
            "--from-literal=color=blue",
            "--from-literal=empty=",
        ])
        .unwrap();
        let cm = get(&c, &["configmap", "settings", "-n", "shop"]);
        assert_eq!(cm["data"]["color"], "blue");
        assert_eq!(cm["data"]["empty"], "");

        c.ok(&[
            "create",
            "secret",
            "generic",
            "creds",
            "-n",
            "shop",
            "--from-literal=password=s3cr3t",
        ])
        .unwrap();
        let s = get(&c, &["secret", "creds", "-n", "shop"]);
        assert_eq!(s["data"]["password"], "czNjcjN0");
        assert_eq!(s["type"], "Opaque");

        c.ok(&["create", "service", "clusterip", "front", "-n", "shop", "--tcp=80:8080"])
            .unwrap();
        let svc = get(&c, &["service", "front", "-n", "shop"]);
        assert_eq!(svc["spec"]["ports"][0]["port"], 80);
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080);
        assert!(svc["spec"]["clusterIP"].as_str().unwrap().starts_with("10."), "{svc}");

        c.ok(&["create", "job", "once", "-n", "shop", "--image=busybox", "--", "true"])
            .unwrap();
        let job = get(&c, &["job", "once", "-n", "shop"]);
        assert_eq!(job["spec"]["template"]["spec"]["containers"][0]["command"][0], "true");
        assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");

        c.ok(&[
            "create",
            "role",
            "reader",
            "-n",
            "shop",
            "--verb=get,list",
            "--resource=pods",
        ])
        .unwrap();
        let role = get(&c, &["role", "reader", "-n", "shop"]);
        assert_eq!(role["rules"][0]["verbs"], serde_json::json!(["get", "list"]));

        c.ok(&["create", "priorityclass", "high", "--value=1000", "--description=top"])
            .unwrap();
        let pc = get(&c, &["priorityclass", "high"]);
        assert_eq!(pc["value"], 1000);

        // The same protobuf create again reaches the store: AlreadyExists.
        let err = c.fails(&["create", "deployment", "web", "--image=busybox"]).unwrap();
        assert!(
            err.contains(r#"deployments.apps "web" already exists"#),
            "{kubectl}: {err}"
        );
    }
}

/// kubectl 1.33's typed clients ask for protobuf responses
/// (`Accept: application/vnd.kubernetes.protobuf,application/json`) and
/// get them: created objects, lists (describe lists ReplicaSets and
/// Events), errors; the JSON commands keep working next to them.
#[tokio::test]
async fn kubectl_receives_protobuf_responses() {
    let kubectl = KUBECTLS[0];
    if !Path::new(kubectl).exists() {
        eprintln!("skipping: {kubectl} is not installed");
        return;
    }
    let mut c = TestCluster::start(Backend::Embedded).await.expect("cluster starts");
    c.use_kubectl(kubectl);
    let out = c.kubectl(&["create", "deployment", "web", "--image=nginx", "--replicas=0", "-v=8"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Accept: application/vnd.kubernetes.protobuf,application/json"),
        "{stderr}"
    );
    // The response headers block kubectl logs at -v=8.
    let response_headers = stderr
        .split("\"Response\" status=\"201 Created\" headers=<")
        .nth(1)
        .and_then(|rest| rest.split(" >").next())
        .unwrap_or_default();
    assert!(
        response_headers.contains("Content-Type: application/vnd.kubernetes.protobuf"),
        "no protobuf response:\n{stderr}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("deployment.apps/web created"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // describe reads through the typed clientset: a protobuf GET and lists.
    let out = c.kubectl(&["describe", "deployment", "web", "-v=8"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("Name:") && stdout.contains("web"), "{stdout}");
    assert!(stdout.contains("Replicas:"), "{stdout}");
    assert!(stdout.contains("nginx"), "{stdout}");

    let yaml = c.ok(&["get", "deploy", "web", "-o", "yaml"]).unwrap();
    assert!(yaml.contains("replicas: 0"), "{yaml}");
    assert!(yaml.contains("kind: Deployment"), "{yaml}");

    // Errors decode from protobuf Statuses.
    let err = c.fails(&["create", "deployment", "web", "--image=nginx"]).unwrap();
    assert!(err.contains(r#"deployments.apps "web" already exists"#), "{err}");
    let err = c.fails(&["describe", "deployment", "nope"]).unwrap();
    assert!(err.contains("not found"), "{err}");

    c.ok(&["delete", "deployment", "web"]).unwrap();
    let err = c.fails(&["get", "deployment", "web"]).unwrap();
    assert!(err.contains("NotFound") || err.contains("not found"), "{err}");
}
