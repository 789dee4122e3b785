//! The admission chain seen through real kubectl against the apiserver
//! binary with upstream's default plugins: upstream's rejection messages
//! for namespace lifecycle, LimitRanges and ResourceQuotas, and the
//! ServiceAccount plugin with the controllers that create the accounts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rkube_e2e::cluster::{Backend, TestCluster};
use rkube_e2e::controllers_support::{ControllerManager, wait_for};

/// The apiserver with every default admission plugin.
async fn cluster() -> TestCluster {
    TestCluster::start_with(Backend::Embedded, &[])
        .await
        .expect("cluster starts")
}

fn pod_yaml(name: &str, ns: &str, resources: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  serviceAccountName: default\n  automountServiceAccountToken: false\n  containers:\n  - name: c\n    image: busybox\n    resources: {resources}\n"
    )
}

fn create(c: &TestCluster, yaml: &str) -> std::process::Output {
    c.kubectl_with(&["create", "-f", "-"], Some(yaml), &[])
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test]
async fn namespace_lifecycle_messages() {
    let c = cluster().await;
    let err = c.fails(&["delete", "namespace", "kube-system"]).unwrap();
    assert!(
        err.contains(
            "Error from server (Forbidden): namespaces \"kube-system\" is forbidden: this namespace may not be deleted"
        ),
        "{err}"
    );
    let err = c.fails(&["create", "configmap", "x", "-n", "nowhere"]).unwrap();
    assert!(err.contains("namespaces \"nowhere\" not found"), "{err}");

    // Without the namespace controller the namespace stays Terminating.
    c.ok(&["create", "namespace", "doomed"]).unwrap();
    c.ok(&["delete", "namespace", "doomed", "--wait=false"]).unwrap();
    let err = c.fails(&["create", "configmap", "late", "-n", "doomed"]).unwrap();
    assert!(
        err.contains(
            "configmaps \"late\" is forbidden: unable to create new content in namespace doomed because it is being terminated"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn limit_range_and_quota_messages() {
    let c = cluster().await;
    c.ok(&["create", "namespace", "team"]).unwrap();
    // The service account the controller would create.
    c.ok(&["create", "serviceaccount", "default", "-n", "team"]).unwrap();
    let limits = "apiVersion: v1\nkind: LimitRange\nmetadata:\n  name: lr\n  namespace: team\nspec:\n  limits:\n  - type: Container\n    max: {cpu: \"1\"}\n    default: {cpu: 500m}\n    defaultRequest: {cpu: 100m}\n";
    let out = create(&c, limits);
    assert!(out.status.success(), "{}", stderr(&out));

    let out = create(&c, &pod_yaml("big", "team", "{limits: {cpu: \"2\"}}"));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("pods \"big\" is forbidden: maximum cpu usage per Container is 1, but limit is 2"),
        "{}",
        stderr(&out)
    );
    let out = create(&c, &pod_yaml("small", "team", "{}"));
    assert!(out.status.success(), "{}", stderr(&out));
    let resources = c
        .ok(&[
            "get",
            "pod",
            "small",
            "-n",
            "team",
            "-o",
            "jsonpath={.spec.containers[0].resources}",
        ])
        .unwrap();
    assert_eq!(resources, r#"{"limits":{"cpu":"500m"},"requests":{"cpu":"100m"}}"#);

    c.ok(&["create", "quota", "q", "-n", "team", "--hard=count/configmaps=2,pods=1"])
        .unwrap();
    // The quota controller's first status (hard from spec, usage counted).
    let used = c
        .ok(&["get", "configmaps", "-n", "team", "--no-headers", "-o", "name"])
        .unwrap()
        .lines()
        .count();
    let status = format!(
        r#"{{"status": {{"hard": {{"count/configmaps": "2", "pods": "1"}}, "used": {{"count/configmaps": "{used}", "pods": "1"}}}}}}"#
    );
    c.ok(&[
        "patch",
        "quota",
        "q",
        "-n",
        "team",
        "--subresource=status",
        "--type=merge",
        "-p",
        &status,
    ])
    .unwrap();
    for i in used..2 {
        c.ok(&["create", "configmap", &format!("c{i}"), "-n", "team"]).unwrap();
    }
    let err = c.fails(&["create", "configmap", "over", "-n", "team"]).unwrap();
    assert!(
        err.contains(
            "configmaps \"over\" is forbidden: exceeded quota: q, requested: count/configmaps=1, used: count/configmaps=2, limited: count/configmaps=2"
        ),
        "{err}"
    );
    let out = create(&c, &pod_yaml("second", "team", "{}"));
    assert!(
        stderr(&out).contains(
            "pods \"second\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1"
        ),
        "{}",
        stderr(&out)
    );
    let used = c
        .ok(&["get", "quota", "q", "-n", "team", "-o", "jsonpath={.status.used}"])
        .unwrap();
    assert_eq!(used, r#"{"count/configmaps":"2","pods":"1"}"#);
}

#[tokio::test]
async fn service_account_token_volume_with_the_controllers() {
    let c = cluster().await;
    let manager = ControllerManager::start(&c, |_| {}).unwrap();
    c.ok(&["create", "namespace", "apps"]).unwrap();
    wait_for(
        "the default service account in apps",
        Duration::from_secs(30),
        || async {
            Ok(c.kubectl(&["get", "serviceaccount", "default", "-n", "apps"])
                .status
                .success()
                .then_some(()))
        },
    )
    .await
    .unwrap();
    c.ok(&["run", "web", "-n", "apps", "--image=busybox", "--restart=Never"])
        .unwrap();
    let spec = c
        .ok(&["get", "pod", "web", "-n", "apps", "-o", "jsonpath={.spec.serviceAccountName} {.spec.volumes[0].name} {.spec.containers[0].volumeMounts[0].mountPath} {.spec.volumes[0].projected.sources[0].serviceAccountToken.expirationSeconds}"])
        .unwrap();
    let parts: Vec<&str> = spec.split(' ').collect();
    assert_eq!(parts.len(), 4, "{spec}");
    assert_eq!(parts[0], "default");
    assert!(parts[1].starts_with("kube-api-access-"), "{spec}");
    assert_eq!(parts[2], "/var/run/secrets/kubernetes.io/serviceaccount");
    assert_eq!(parts[3], "3607");

    let err = c
        .fails(&[
            "run",
            "x",
            "-n",
            "apps",
            "--image=busybox",
            "--restart=Never",
            "--overrides",
            r#"{"spec": {"serviceAccountName": "robot"}}"#,
        ])
        .unwrap();
    assert!(
        err.contains(
            "pods \"x\" is forbidden: error looking up service account apps/robot: serviceaccount \"robot\" not found"
        ),
        "{err}"
    );
    // The configmap the projected volume reads is published too.
    wait_for("kube-root-ca.crt in apps", Duration::from_secs(10), || async {
        Ok(c.kubectl(&["get", "configmap", "kube-root-ca.crt", "-n", "apps"])
            .status
            .success()
            .then_some(()))
    })
    .await
    .unwrap();
    manager.stop().await.unwrap();
}
