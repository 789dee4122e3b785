//! PodSecurity admission through real kubectl against the apiserver binary:
//! upstream's enforce rejection, warn warnings on pods and workload
//! templates, namespace label validation, and the warnings about existing
//! pods when a namespace's enforce level is tightened.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rkube_e2e::cluster::{Backend, TestCluster};

async fn cluster() -> TestCluster {
    TestCluster::start_with(Backend::Embedded, &[])
        .await
        .expect("cluster starts")
}

/// A namespace with its default service account (no controller runs here)
/// and the given labels.
fn namespace(c: &TestCluster, name: &str, labels: &[&str]) {
    c.ok(&["create", "namespace", name]).unwrap();
    c.ok(&["create", "serviceaccount", "default", "-n", name]).unwrap();
    if !labels.is_empty() {
        let mut args = vec!["label", "namespace", name];
        args.extend_from_slice(labels);
        c.ok(&args).unwrap();
    }
}

fn pod_yaml(name: &str, ns: &str, security_context: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  automountServiceAccountToken: false\n  containers:\n  - name: c\n    image: busybox\n    securityContext: {security_context}\n"
    )
}

fn create(c: &TestCluster, yaml: &str) -> std::process::Output {
    c.kubectl_with(&["create", "-f", "-"], Some(yaml), &[])
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test]
async fn enforce_rejects_with_upstreams_message() {
    let c = cluster().await;
    namespace(&c, "locked", &["pod-security.kubernetes.io/enforce=restricted"]);
    let out = create(&c, &pod_yaml("x", "locked", "{}"));
    assert!(!out.status.success());
    let want = concat!(
        r#"Error from server (Forbidden): error when creating "STDIN": pods "x" is forbidden: violates PodSecurity "restricted:latest": "#,
        r#"allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), "#,
        r#"unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), "#,
        r#"runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), "#,
        r#"seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#,
    );
    assert!(stderr(&out).contains(want), "{}", stderr(&out));

    // Pinned to a version before runAsUser was checked (v1.23).
    c.ok(&[
        "label",
        "namespace",
        "locked",
        "pod-security.kubernetes.io/enforce-version=v1.22",
    ])
    .unwrap();
    let ok = "{allowPrivilegeEscalation: false, runAsNonRoot: true, runAsUser: 0, capabilities: {drop: [ALL]}, seccompProfile: {type: RuntimeDefault}}";
    let out = create(&c, &pod_yaml("root", "locked", ok));
    assert!(out.status.success(), "{}", stderr(&out));
    c.ok(&[
        "label",
        "namespace",
        "locked",
        "--overwrite",
        "pod-security.kubernetes.io/enforce-version=latest",
    ])
    .unwrap();
    let out = create(&c, &pod_yaml("root2", "locked", ok));
    assert!(
        stderr(&out).contains(
            r#"pods "root2" is forbidden: violates PodSecurity "restricted:latest": runAsUser=0 (container "c" must not set runAsUser=0)"#
        ),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn warn_mode_shows_warnings() {
    let c = cluster().await;
    namespace(&c, "watched", &["pod-security.kubernetes.io/warn=baseline"]);
    let out = create(&c, &pod_yaml("p", "watched", "{privileged: true}"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            r#"Warning: would violate PodSecurity "baseline:latest": privileged (container "c" must not set securityContext.privileged=true)"#
        ),
        "{}",
        stderr(&out)
    );

    // Workload templates are warned about, never rejected.
    namespace(
        &c,
        "apps",
        &[
            "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/warn=restricted",
        ],
    );
    let out = c.kubectl_with(
        &["create", "deployment", "web", "--image=nginx", "-n", "apps"],
        None,
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            r#"Warning: would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "nginx" must set securityContext.allowPrivilegeEscalation=false)"#
        ),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn namespace_labels_are_validated_and_tightening_warns() {
    let c = cluster().await;
    namespace(&c, "team", &[]);
    for name in ["b", "a"] {
        let out = create(&c, &pod_yaml(name, "team", "{privileged: true}"));
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = c.kubectl_with(
        &[
            "label",
            "namespace",
            "team",
            "pod-security.kubernetes.io/enforce=baseline",
        ],
        None,
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            r#"Warning: existing pods in namespace "team" violate the new PodSecurity enforce level "baseline:latest""#
        ),
        "{err}"
    );
    assert!(err.contains("Warning: a (and 1 other pod): privileged"), "{err}");

    let err = c
        .fails(&[
            "label",
            "namespace",
            "team",
            "--overwrite",
            "pod-security.kubernetes.io/enforce=strict",
        ])
        .unwrap();
    assert!(
        err.contains(
            r#"metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": must be one of privileged, baseline, restricted"#
        ),
        "{err}"
    );
}
