//! Every check against upstream's reasons and details, the label parsing,
//! and the plugin through the HTTP handlers (rejection, warnings,
//! namespace label changes).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::evaluate::{PodView, evaluate};
use super::policy::{Level, LevelVersion, Policy, Version, policy_to_evaluate};
use super::{baseline, restricted};
use crate::testing::TestServer;

const LATEST: Version = Version::Latest;

fn lv(level: Level, version: Version) -> LevelVersion {
    LevelVersion { level, version }
}

/// Runs one check on `{metadata, spec}` at restricted:latest and compares
/// its `reason (detail)` with `want` ("" for allowed).
fn check(f: super::evaluate::CheckFn, pod: Value, want: &str) {
    check_at(f, lv(Level::Restricted, LATEST), pod, want);
}

fn check_at(f: super::evaluate::CheckFn, at: LevelVersion, pod: Value, want: &str) {
    let got = f(&PodView::of(&pod), at)
        .map(|v| format!("{} ({})", v.reason, v.detail))
        .unwrap_or_default();
    assert_eq!(got, want, "pod {pod}");
}

fn spec(spec: Value) -> Value {
    json!({"metadata": {"name": "p"}, "spec": spec})
}

fn with_sc(sc: Value) -> Value {
    spec(json!({"containers": [{"name": "a", "securityContext": sc}]}))
}

#[test]
fn host_namespaces() {
    check(baseline::host_namespaces, spec(json!({"hostNetwork": false})), "");
    check(
        baseline::host_namespaces,
        spec(json!({"hostPID": true, "hostNetwork": true, "hostIPC": true})),
        "host namespaces (hostIPC, hostNetwork, hostPID)",
    );
}

#[test]
fn privileged() {
    check(baseline::privileged, with_sc(json!({"privileged": false})), "");
    check(
        baseline::privileged,
        spec(json!({
            "initContainers": [{"name": "i", "securityContext": {"privileged": true}}],
            "containers": [{"name": "a", "securityContext": {"privileged": true}}, {"name": "b"}],
        })),
        r#"privileged (containers "i", "a" must not set securityContext.privileged=true)"#,
    );
}

#[test]
fn capabilities_baseline() {
    check(
        baseline::capabilities_baseline,
        with_sc(json!({"capabilities": {"add": ["CHOWN", "KILL"]}})),
        "",
    );
    check(
        baseline::capabilities_baseline,
        spec(json!({"containers": [
            {"name": "a", "securityContext": {"capabilities": {"add": ["SYS_ADMIN", "NET_RAW", "CHOWN"]}}},
            {"name": "b", "securityContext": {"capabilities": {"add": ["NET_RAW"]}}},
        ]})),
        r#"non-default capabilities (containers "a", "b" must not include "NET_RAW", "SYS_ADMIN" in securityContext.capabilities.add)"#,
    );
}

#[test]
fn host_path_volumes() {
    check(
        baseline::host_path_volumes,
        spec(json!({"volumes": [{"name": "e", "emptyDir": {}}]})),
        "",
    );
    check(
        baseline::host_path_volumes,
        spec(json!({"volumes": [{"name": "h", "hostPath": {"path": "/"}}, {"name": "g", "hostPath": {"path": "/x"}}]})),
        r#"hostPath volumes (volumes "h", "g")"#,
    );
}

#[test]
fn host_ports() {
    check(
        baseline::host_ports,
        spec(json!({"containers": [{"name": "a", "ports": [{"containerPort": 80}]}]})),
        "",
    );
    check(
        baseline::host_ports,
        spec(json!({"containers": [
            {"name": "a", "ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81, "hostPort": 10}]},
        ]})),
        r#"hostPort (container "a" uses hostPorts 10, 8080)"#,
    );
    check(
        baseline::host_ports,
        spec(json!({"containers": [
            {"name": "a", "ports": [{"hostPort": 80}]}, {"name": "b", "ports": [{"hostPort": 80}]},
        ]})),
        r#"hostPort (containers "a", "b" use hostPort 80)"#,
    );
}

#[test]
fn app_armor() {
    check(
        baseline::app_armor_profile,
        json!({"metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/a": "runtime/default"}},
               "spec": {"securityContext": {"appArmorProfile": {"type": "Localhost", "localhostProfile": "x"}}}}),
        "",
    );
    check(
        baseline::app_armor_profile,
        spec(json!({"securityContext": {"appArmorProfile": {"type": "Unconfined"}}})),
        r#"forbidden AppArmor profile (pod must not set AppArmor profile type to "Unconfined")"#,
    );
    check(
        baseline::app_armor_profile,
        json!({"metadata": {"annotations": {
                "container.apparmor.security.beta.kubernetes.io/b": "unconfined",
                "container.apparmor.security.beta.kubernetes.io/a": "localhost/ok"}},
               "spec": {"containers": [{"name": "a", "securityContext": {"appArmorProfile": {"type": "Unconfined"}}}]}}),
        r#"forbidden AppArmor profiles (container "a" and annotation must not set AppArmor profile type to "Unconfined", "container.apparmor.security.beta.kubernetes.io/b="unconfined"")"#,
    );
}

#[test]
fn se_linux_options() {
    check(
        baseline::se_linux_options,
        with_sc(json!({"seLinuxOptions": {"type": "container_t", "level": "s0"}})),
        "",
    );
    check(
        baseline::se_linux_options,
        spec(json!({
            "securityContext": {"seLinuxOptions": {"type": "spc_t"}},
            "containers": [{"name": "a", "securityContext": {"seLinuxOptions": {"type": "foo", "user": "u", "role": "r"}}}],
        })),
        r#"seLinuxOptions (pod and container "a" set forbidden securityContext.seLinuxOptions: types "foo", "spc_t"; user may not be set; role may not be set)"#,
    );
}

#[test]
fn proc_mount() {
    check(baseline::proc_mount, with_sc(json!({"procMount": "Default"})), "");
    check(
        baseline::proc_mount,
        with_sc(json!({"procMount": "Unmasked"})),
        r#"procMount (container "a" must not set securityContext.procMount to "Unmasked")"#,
    );
    // A user-namespaced pod may unmask at baseline from v1.35, never at restricted.
    let userns =
        spec(json!({"hostUsers": false, "containers": [{"name": "a", "securityContext": {"procMount": "Unmasked"}}]}));
    check_at(baseline::proc_mount, lv(Level::Baseline, LATEST), userns.clone(), "");
    check_at(
        baseline::proc_mount,
        lv(Level::Baseline, Version::V1(34)),
        userns.clone(),
        r#"procMount (container "a" must not set securityContext.procMount to "Unmasked")"#,
    );
    check(
        baseline::proc_mount,
        userns,
        r#"procMount (container "a" must not set securityContext.procMount to "Unmasked")"#,
    );
}

#[test]
fn seccomp_baseline() {
    check(
        baseline::seccomp_profile_baseline,
        spec(json!({"containers": [{"name": "a"}]})),
        "",
    );
    check(
        baseline::seccomp_profile_baseline,
        spec(json!({"securityContext": {"seccompProfile": {"type": "Unconfined"}},
                    "containers": [{"name": "a", "securityContext": {"seccompProfile": {"type": "Unconfined"}}}]})),
        r#"seccompProfile (pod and container "a" must not set securityContext.seccompProfile.type to "Unconfined")"#,
    );
    // Before v1.19 the alpha annotations are checked instead.
    check_at(
        baseline::seccomp_profile_baseline,
        lv(Level::Baseline, Version::V1(18)),
        json!({"metadata": {"annotations": {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}},
               "spec": {"containers": [{"name": "a"}]}}),
        r#"seccompProfile (forbidden annotation seccomp.security.alpha.kubernetes.io/pod="unconfined")"#,
    );
}

#[test]
fn sysctls() {
    let pod = spec(json!({"securityContext": {"sysctls": [
        {"name": "net.ipv4.tcp_rmem", "value": "1"}, {"name": "kernel.msgmax", "value": "1"},
        {"name": "kernel.shm_rmid_forced", "value": "1"}]}}));
    check(baseline::sysctls, pod.clone(), "forbidden sysctls (kernel.msgmax)");
    check_at(
        baseline::sysctls,
        lv(Level::Baseline, Version::V1(31)),
        pod,
        "forbidden sysctls (net.ipv4.tcp_rmem, kernel.msgmax)",
    );
}

#[test]
fn windows_host_process() {
    check(
        baseline::windows_host_process,
        spec(json!({"securityContext": {"windowsOptions": {"hostProcess": true}},
                    "containers": [{"name": "a", "securityContext": {"windowsOptions": {"hostProcess": true}}},
                                   {"name": "b", "securityContext": {"windowsOptions": {"hostProcess": true}}}]})),
        r#"hostProcess (pod and containers "a", "b" must not set securityContext.windowsOptions.hostProcess=true)"#,
    );
}

#[test]
fn host_probes_and_lifecycle() {
    let pod = spec(json!({"containers": [
        {"name": "b", "livenessProbe": {"httpGet": {"port": 80, "host": "10.0.0.1"}}},
        {"name": "a", "lifecycle": {"preStop": {"tcpSocket": {"port": 80, "host": "example.com"}}}},
    ]}));
    check(
        baseline::host_probes_and_host_lifecycle,
        pod.clone(),
        r#"probe or lifecycle host (containers "a", "b" use probe or lifecycle hosts "10.0.0.1", "example.com")"#,
    );
    check_at(
        baseline::host_probes_and_host_lifecycle,
        lv(Level::Baseline, Version::V1(33)),
        pod,
        "",
    );
}

#[test]
fn allow_privilege_escalation() {
    check(
        restricted::allow_privilege_escalation,
        with_sc(json!({"allowPrivilegeEscalation": false})),
        "",
    );
    check(
        restricted::allow_privilege_escalation,
        spec(
            json!({"containers": [{"name": "a"}, {"name": "b", "securityContext": {"allowPrivilegeEscalation": true}}]}),
        ),
        r#"allowPrivilegeEscalation != false (containers "a", "b" must set securityContext.allowPrivilegeEscalation=false)"#,
    );
    // Windows pods are exempt from v1.25.
    check(
        restricted::allow_privilege_escalation,
        spec(json!({"os": {"name": "windows"}, "containers": [{"name": "a"}]})),
        "",
    );
}

#[test]
fn capabilities_restricted() {
    check(
        restricted::capabilities_restricted,
        with_sc(json!({"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}})),
        "",
    );
    check(
        restricted::capabilities_restricted,
        spec(json!({"containers": [
            {"name": "a"},
            {"name": "b", "securityContext": {"capabilities": {"drop": ["ALL"], "add": ["SYS_TIME", "CHOWN"]}}},
        ]})),
        r#"unrestricted capabilities (container "a" must set securityContext.capabilities.drop=["ALL"]; container "b" must not include "CHOWN", "SYS_TIME" in securityContext.capabilities.add)"#,
    );
    check_at(
        restricted::capabilities_restricted,
        lv(Level::Restricted, Version::V1(21)),
        spec(json!({"containers": [{"name": "a"}]})),
        "",
    );
}

#[test]
fn restricted_volumes() {
    check(
        restricted::restricted_volumes,
        spec(
            json!({"volumes": [{"name": "a", "configMap": {"name": "c"}}, {"name": "b", "projected": {}},
                                {"name": "c", "persistentVolumeClaim": {"claimName": "x"}}]}),
        ),
        "",
    );
    check(
        restricted::restricted_volumes,
        spec(json!({"volumes": [{"name": "h", "hostPath": {"path": "/"}}]})),
        r#"restricted volume types (volume "h" uses restricted volume type "hostPath")"#,
    );
    check(
        restricted::restricted_volumes,
        spec(
            json!({"volumes": [{"name": "n", "nfs": {"server": "s", "path": "/"}}, {"name": "h", "hostPath": {"path": "/"}}]}),
        ),
        r#"restricted volume types (volumes "n", "h" use restricted volume types "hostPath", "nfs")"#,
    );
}

#[test]
fn run_as_non_root() {
    check(
        restricted::run_as_non_root,
        spec(json!({"securityContext": {"runAsNonRoot": true}, "containers": [{"name": "a"}]})),
        "",
    );
    check(
        restricted::run_as_non_root,
        spec(json!({"containers": [{"name": "a"}, {"name": "b", "securityContext": {"runAsNonRoot": true}}]})),
        r#"runAsNonRoot != true (pod or container "a" must set securityContext.runAsNonRoot=true)"#,
    );
    check(
        restricted::run_as_non_root,
        spec(
            json!({"securityContext": {"runAsNonRoot": false}, "containers": [{"name": "a", "securityContext": {"runAsNonRoot": false}}]}),
        ),
        r#"runAsNonRoot != true (pod and container "a" must not set securityContext.runAsNonRoot=false)"#,
    );
}

#[test]
fn run_as_user() {
    check(restricted::run_as_user, with_sc(json!({"runAsUser": 1000})), "");
    check(
        restricted::run_as_user,
        spec(
            json!({"securityContext": {"runAsUser": 0}, "containers": [{"name": "a", "securityContext": {"runAsUser": 0}}]}),
        ),
        r#"runAsUser=0 (pod and container "a" must not set runAsUser=0)"#,
    );
    check_at(
        restricted::run_as_user,
        lv(Level::Restricted, Version::V1(22)),
        with_sc(json!({"runAsUser": 0})),
        "",
    );
}

#[test]
fn seccomp_restricted() {
    check(
        restricted::seccomp_profile_restricted,
        spec(json!({"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}, "containers": [{"name": "a"}]})),
        "",
    );
    check(
        restricted::seccomp_profile_restricted,
        spec(json!({"containers": [{"name": "a"}]})),
        r#"seccompProfile (pod or container "a" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#,
    );
    check(
        restricted::seccomp_profile_restricted,
        with_sc(json!({"seccompProfile": {"type": "Unconfined"}})),
        r#"seccompProfile (container "a" must not set securityContext.seccompProfile.type to "Unconfined")"#,
    );
}

/// The pod of upstream's documentation: everything restricted asks for is
/// missing, with a hostPath volume.
fn bare_pod() -> Value {
    spec(
        json!({"containers": [{"name": "c", "image": "nginx"}], "volumes": [{"name": "h", "hostPath": {"path": "/"}}]}),
    )
}

#[test]
fn levels_run_their_checks_in_upstream_order() {
    let pod = bare_pod();
    let view = PodView::of(&pod);
    assert!(evaluate(lv(Level::Privileged, LATEST), &view).allowed());
    assert_eq!(
        evaluate(lv(Level::Baseline, LATEST), &view).forbidden_detail(),
        r#"hostPath volumes (volume "h")"#
    );
    assert_eq!(
        evaluate(lv(Level::Restricted, LATEST), &view).forbidden_detail(),
        concat!(
            r#"allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), "#,
            r#"unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), "#,
            r#"restricted volume types (volume "h" uses restricted volume type "hostPath"), "#,
            r#"runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), "#,
            r#"seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#,
        )
    );
    assert_eq!(
        evaluate(lv(Level::Restricted, LATEST), &view).forbidden_reason(),
        "allowPrivilegeEscalation != false, unrestricted capabilities, restricted volume types, runAsNonRoot != true, seccompProfile"
    );
}

#[test]
fn labels_parse_into_a_policy() {
    let labels = |v: Value| v.as_object().cloned().unwrap();
    let (p, errs) = policy_to_evaluate(None);
    assert_eq!(p, Policy::default());
    assert!(errs.is_empty());
    let l = labels(json!({
        "pod-security.kubernetes.io/enforce": "baseline",
        "pod-security.kubernetes.io/enforce-version": "v1.23",
        "pod-security.kubernetes.io/warn": "restricted",
    }));
    let (p, errs) = policy_to_evaluate(Some(&l));
    assert!(errs.is_empty());
    assert_eq!(p.enforce.to_string(), "baseline:v1.23");
    assert_eq!(p.warn.to_string(), "restricted:latest");
    assert_eq!(p.audit.to_string(), "privileged:latest");
    let l = labels(json!({
        "pod-security.kubernetes.io/warn": "bogus",
        "pod-security.kubernetes.io/enforce": "strict",
        "pod-security.kubernetes.io/enforce-version": "v1.023",
    }));
    let (p, errs) = policy_to_evaluate(Some(&l));
    // Enforce fails closed, warn fails open.
    assert_eq!(p.enforce.to_string(), "restricted:latest");
    assert_eq!(p.warn.level, Level::Privileged);
    assert_eq!(
        errs.summary(),
        concat!(
            r#"[metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": must be one of privileged, baseline, restricted, "#,
            r#"metadata.labels[pod-security.kubernetes.io/enforce-version]: Invalid value: "v1.023": must be "latest" or "v1.x", "#,
            r#"metadata.labels[pod-security.kubernetes.io/warn]: Invalid value: "bogus": must be one of privileged, baseline, restricted]"#,
        )
    );
    for (s, want) in [
        ("v1.0", Ok(Version::V1(0))),
        ("v1.40", Ok(Version::V1(40))),
        ("v2.1", Err(LATEST)),
        ("1.25", Err(LATEST)),
    ] {
        assert_eq!(Version::parse(s), want, "{s}");
    }
}

// --- through the handlers ---

async fn namespace(s: &TestServer, name: &str, labels: Value) {
    let (code, body) = s
        .post(
            "/api/v1/namespaces",
            json!({"metadata": {"name": name, "labels": labels}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
}

/// POSTs and returns the status, body and Warning headers.
async fn post_with_warnings(s: &TestServer, path: &str, body: Value) -> (StatusCode, Value, Vec<String>) {
    let req = axum::http::Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    let resp = s.send(req).await;
    let code = resp.status();
    let warnings = resp
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null), warnings)
}

fn named(name: &str, mut pod: Value) -> Value {
    pod["metadata"]["name"] = json!(name);
    pod
}

#[tokio::test]
async fn enforce_rejects_with_upstreams_message() {
    let s = TestServer::new().await;
    namespace(
        &s,
        "locked",
        json!({"pod-security.kubernetes.io/enforce": "restricted"}),
    )
    .await;
    let (code, body, warnings) = post_with_warnings(&s, "/api/v1/namespaces/locked/pods", named("x", bare_pod())).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["reason"], "Forbidden");
    let msg = body["message"].as_str().unwrap();
    assert!(
        msg.starts_with(r#"pods "x" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), "#),
        "{msg}"
    );
    assert!(warnings.is_empty(), "{warnings:?}");
    // A conforming pod is admitted.
    let good = spec(json!({
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "c", "image": "nginx", "securityContext": {
            "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}],
    }));
    let (code, body, _) = post_with_warnings(&s, "/api/v1/namespaces/locked/pods", named("ok", good)).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn warn_mode_warns_on_pods_and_templates() {
    let s = TestServer::new().await;
    namespace(
        &s,
        "w",
        json!({"pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/warn": "restricted",
               "pod-security.kubernetes.io/warn-version": "v1.30"}),
    )
    .await;
    let pod = spec(json!({"containers": [{"name": "c", "image": "nginx"}]}));
    let (code, body, warnings) = post_with_warnings(&s, "/api/v1/namespaces/w/pods", named("p", pod.clone())).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with(
            r#"299 - "would violate PodSecurity \"restricted:v1.30\": allowPrivilegeEscalation != false (container \"c\" must"#
        ),
        "{warnings:?}"
    );
    // A Deployment whose template is privileged: only warned, never rejected.
    let deployment = json!({
        "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
            "metadata": {"labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "nginx", "securityContext": {"privileged": true}}]}}},
    });
    let (code, body, warnings) = post_with_warnings(&s, "/apis/apps/v1/namespaces/w/deployments", deployment).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("privileged (container"), "{warnings:?}");
}

#[tokio::test]
async fn namespace_labels_are_validated_and_tightening_warns_about_pods() {
    let s = TestServer::new().await;
    let (code, body) = s
        .post(
            "/api/v1/namespaces",
            json!({"metadata": {"name": "bad", "labels": {"pod-security.kubernetes.io/enforce": "strict"}}}),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        body["message"],
        r#"Namespace "bad" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": must be one of privileged, baseline, restricted"#
    );
    namespace(&s, "open", json!({})).await;
    for name in ["b", "a", "c"] {
        let (code, body, _) = post_with_warnings(&s, "/api/v1/namespaces/open/pods", named(name, bare_pod())).await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
    }
    let req = axum::http::Request::builder()
        .method("PATCH")
        .uri("/api/v1/namespaces/open")
        .header("content-type", "application/merge-patch+json")
        .body(axum::body::Body::from(
            json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "baseline"}}}).to_string(),
        ))
        .unwrap();
    let resp = s.send(req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let warnings: Vec<String> = resp
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(
        warnings,
        [
            r#"299 - "existing pods in namespace \"open\" violate the new PodSecurity enforce level \"baseline:latest\"""#,
            r#"299 - "a (and 2 other pods): hostPath volumes""#,
        ]
    );
}

#[tokio::test]
async fn pod_updates_are_checked_only_when_images_or_containers_change() {
    let s = TestServer::new().await;
    namespace(&s, "u", json!({})).await;
    let (code, body, _) = post_with_warnings(&s, "/api/v1/namespaces/u/pods", named("p", bare_pod())).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let merge = "application/merge-patch+json";
    let (code, body) = s
        .patch(
            "/api/v1/namespaces/u",
            merge,
            json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "baseline"}}}),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (code, body) = s
        .patch(
            "/api/v1/namespaces/u/pods/p",
            merge,
            json!({"metadata": {"labels": {"x": "y"}}}),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (code, body) = s
        .patch(
            "/api/v1/namespaces/u/pods/p",
            "application/strategic-merge-patch+json",
            json!({"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}),
        )
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        body["message"],
        r#"pods "p" is forbidden: violates PodSecurity "baseline:latest": hostPath volumes (volume "h")"#
    );
}

#[tokio::test]
async fn bad_labels_already_stored_do_not_block_other_label_changes() {
    let s = TestServer::new().await;
    // Labels that do not parse cannot be created...
    let (code, _) = s
        .post(
            "/api/v1/namespaces",
            json!({"metadata": {"name": "n", "labels": {"pod-security.kubernetes.io/warn-version": "1.30"}}}),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    // ...and a namespace whose enforce level fails to parse is treated as
    // restricted for its pods (fail closed) while warn fails open.
    let policy = policy_to_evaluate(
        json!({"pod-security.kubernetes.io/enforce": "nope", "pod-security.kubernetes.io/warn": "nope"}).as_object(),
    )
    .0;
    assert_eq!(policy.enforce.level, Level::Restricted);
    assert_eq!(policy.warn.level, Level::Privileged);
}
