//! Admission webhooks against the apiserver binary and real kubectl: a small
//! HTTPS admission server in this test (its own CA, handed to the apiserver
//! as `caBundle`) mutates, denies and warns; webhooks that are down fail
//! open or closed per `failurePolicy`; dry-run requests reach webhooks
//! marked dryRun and store nothing; `kubectl patch`, `label` and (client-side)
//! `apply` send the patched object, and `kubectl replace` its object, to
//! mutating webhooks as an UPDATE with the stored object as `oldObject`;
//! calls leave upstream's annotations in the audit log (the patch only at
//! level Request and above).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
use rkube_e2e::cluster::{Backend, TestCluster};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The test's admission server: what it was asked, per path.
#[derive(Default)]
struct Seen {
    calls: Mutex<BTreeMap<String, usize>>,
    dry_runs: AtomicUsize,
}

impl Seen {
    fn calls(&self, path: &str) -> usize {
        self.calls.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

/// The answer to one AdmissionReview on `path`.
fn respond(path: &str, review: &Value) -> Value {
    let req = &review["request"];
    let uid = req["uid"].clone();
    let deleting = req["operation"] == "DELETE";
    let object = if deleting { &req["oldObject"] } else { &req["object"] };
    let name = object["metadata"]["name"].as_str().unwrap_or("");
    let response = match path {
        "/mutate" => {
            let patch = if req["object"]["metadata"]["labels"].is_object() {
                json!([{"op": "add", "path": "/metadata/labels/mutated", "value": "yes"}])
            } else {
                json!([{"op": "add", "path": "/metadata/labels", "value": {"mutated": "yes"}}])
            };
            json!({"uid": uid, "allowed": true, "patchType": "JSONPatch",
                "patch": base64::engine::general_purpose::STANDARD.encode(patch.to_string()),
                "warnings": ["mutated by the test webhook"]})
        }
        "/mutate-update" if object["metadata"]["labels"]["forbidden"].is_string() => json!({"uid": uid,
            "allowed": false, "status": {"code": 403, "reason": "Forbidden", "message": "label forbidden is not allowed"}}),
        "/mutate-update" => {
            // Labels it, and records what it was shown: the operation, the
            // stored object's data.a and the new object's.
            let mut labels = object["metadata"]["labels"].as_object().cloned().unwrap_or_default();
            labels.insert("mutated".into(), json!("yes"));
            let mut annotations = object["metadata"]["annotations"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            let a = |o: &Value| o["data"]["a"].as_str().unwrap_or("-").to_string();
            let seen = format!(
                "{} old={} new={}",
                req["operation"].as_str().unwrap_or(""),
                a(&req["oldObject"]),
                a(object)
            );
            annotations.insert("seen".into(), json!(seen));
            let patch = json!([{"op": "add", "path": "/metadata/labels", "value": labels},
                {"op": "add", "path": "/metadata/annotations", "value": annotations}]);
            json!({"uid": uid, "allowed": true, "patchType": "JSONPatch",
                "patch": base64::engine::general_purpose::STANDARD.encode(patch.to_string())})
        }
        "/deny" if deleting && name.starts_with("keep") => json!({"uid": uid, "allowed": false,
            "status": {"code": 403, "reason": "Forbidden", "message": format!("{name} may not be deleted")}}),
        "/deny" if !deleting && name.starts_with("bad") => json!({"uid": uid, "allowed": false,
            "status": {"code": 403, "reason": "Forbidden", "message": format!("names starting with bad are not allowed: {name}")}}),
        "/annotate" => json!({"uid": uid, "allowed": true,
            "auditAnnotations": {"decision": format!("looked at {name}"), "not a key": "dropped"}}),
        _ => json!({"uid": uid, "allowed": true}),
    };
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
}

/// Serves AdmissionReviews over HTTPS on a free loopback port; returns the
/// address and the CA bundle (PEM) that verifies it.
async fn admission_server(seen: Arc<Seen>) -> (SocketAddr, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_ca_cert_pem(&ca_cert.pem(), &ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = vec![SanType::IpAddress("127.0.0.1".parse().unwrap())];
    let cert = params.signed_by(&key, &issuer).unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Some((path, body)) = read_request(&mut tls).await else {
                    return;
                };
                let review: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let path = path.split('?').next().unwrap_or("").to_string();
                *seen.calls.lock().unwrap().entry(path.clone()).or_default() += 1;
                if review["request"]["dryRun"] == json!(true) {
                    seen.dry_runs.fetch_add(1, Ordering::SeqCst);
                }
                let out = respond(&path, &review).to_string();
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{out}",
                    out.len()
                );
                let _ = tls.write_all(resp.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (addr, ca_cert.pem())
}

/// Reads one HTTP/1.1 request: its path and body.
async fn read_request<S: AsyncReadExt + Unpin>(s: &mut S) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let path = head.split_whitespace().nth(1)?.to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < header_end + len {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((path, buf[header_end..header_end + len].to_vec()))
}

/// A webhook entry calling `url`, for configmaps in namespaces labelled
/// `hooks=<ns_label>`.
fn hook(name: &str, url: &str, ca: &str, ns_label: &str, extra: Value) -> Value {
    let mut h = json!({
        "name": name,
        "clientConfig": {"url": url, "caBundle": base64::engine::general_purpose::STANDARD.encode(ca)},
        "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}],
        "namespaceSelector": {"matchLabels": {"hooks": ns_label}},
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "timeoutSeconds": 5,
    });
    if let (Value::Object(h), Value::Object(extra)) = (&mut h, extra) {
        h.extend(extra);
    }
    h
}

fn config(kind: &str, name: &str, hooks: Vec<Value>) -> String {
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind, "metadata": {"name": name}, "webhooks": hooks})
        .to_string()
}

fn apply(c: &TestCluster, manifest: &str) {
    let out = c.kubectl_with(&["create", "-f", "-"], Some(manifest), &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn namespace(c: &TestCluster, name: &str, label: &str) {
    c.ok(&["create", "namespace", name]).unwrap();
    c.ok(&["label", "namespace", name, &format!("hooks={label}")]).unwrap();
}

fn down_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("https://{addr}/down")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_mutate_deny_fail_and_honour_dry_run() {
    let seen = Arc::new(Seen::default());
    let (addr, ca) = admission_server(seen.clone()).await;
    let c = TestCluster::start(Backend::Embedded).await.expect("cluster starts");
    let url = |path: &str| format!("https://{addr}{path}");

    namespace(&c, "hooked", "on");
    namespace(&c, "down-ignore", "down-ignore");
    namespace(&c, "down-fail", "down-fail");
    apply(
        &c,
        &config(
            "MutatingWebhookConfiguration",
            "mutate",
            vec![hook("mutate.example.com", &url("/mutate"), &ca, "on", json!({}))],
        ),
    );
    let down = down_url();
    apply(
        &c,
        &config(
            "ValidatingWebhookConfiguration",
            "validate",
            vec![
                hook("deny.example.com", &url("/deny"), &ca, "on", json!({})),
                hook(
                    "nodelete.example.com",
                    &url("/deny"),
                    &ca,
                    "on",
                    json!({"rules": [{"operations": ["DELETE"], "apiGroups": ["*"], "apiVersions": ["*"],
                        "resources": ["configmaps"], "scope": "Namespaced"}]}),
                ),
                hook(
                    "down-ignore.example.com",
                    &down,
                    &ca,
                    "down-ignore",
                    json!({"failurePolicy": "Ignore"}),
                ),
                hook(
                    "down-fail.example.com",
                    &down,
                    &ca,
                    "down-fail",
                    json!({"failurePolicy": "Fail"}),
                ),
                hook(
                    "dry.example.com",
                    &url("/dry"),
                    &ca,
                    "on",
                    json!({"sideEffects": "NoneOnDryRun",
                        "matchConditions": [{"name": "only-dry", "expression": "request.dryRun == true"}]}),
                ),
            ],
        ),
    );

    // Mutation applied, its warning shown by kubectl.
    let out = c.kubectl(&["create", "configmap", "good", "-n", "hooked", "--from-literal=a=b"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Warning: mutated by the test webhook"), "{stderr}");
    let label = c
        .ok(&[
            "get",
            "configmap",
            "good",
            "-n",
            "hooked",
            "-o",
            "jsonpath={.metadata.labels.mutated}",
        ])
        .unwrap();
    assert_eq!(label, "yes");
    assert_eq!(seen.calls("/dry"), 0, "matchConditions keep /dry to dry runs");

    // Denial, in upstream's words, as kubectl shows it for a manifest and
    // for its generator.
    let denied =
        "admission webhook \"deny.example.com\" denied the request: names starting with bad are not allowed: bad-one";
    let manifest =
        r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bad-one", "namespace": "hooked"}}"#;
    let out = c.kubectl_with(&["create", "-f", "-"], Some(manifest), &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "Error from server (Forbidden): error when creating \"STDIN\": {denied}"
        )),
        "{err}"
    );
    let err = c.fails(&["create", "configmap", "bad-one", "-n", "hooked"]).unwrap();
    assert!(
        err.contains(&format!("error: failed to create configmap: {denied}")),
        "{err}"
    );
    c.fails(&["get", "configmap", "bad-one", "-n", "hooked"]).unwrap();

    // A webhook that is down: Ignore fails open, Fail fails closed.
    c.ok(&["create", "configmap", "x", "-n", "down-ignore"]).unwrap();
    let err = c.fails(&["create", "configmap", "x", "-n", "down-fail"]).unwrap();
    assert!(
        err.contains(
            "Internal error occurred: failed calling webhook \"down-fail.example.com\": failed to call webhook: Post"
        ),
        "{err}"
    );
    assert!(err.contains("connect: connection refused"), "{err}");

    // Dry run: v1 webhooks are free of side effects on dry runs
    // (validation allows only None and NoneOnDryRun), so they are sent
    // dryRun: true, and nothing is stored.
    let before = seen.dry_runs.load(Ordering::SeqCst);
    let out = c
        .ok(&[
            "create",
            "configmap",
            "dry",
            "-n",
            "hooked",
            "--dry-run=server",
            "-o",
            "jsonpath={.metadata.labels.mutated}",
        ])
        .unwrap();
    assert_eq!(out, "yes", "the dry-run answer shows the mutation");
    assert_eq!(seen.calls("/dry"), 1);
    assert!(
        seen.dry_runs.load(Ordering::SeqCst) >= before + 3,
        "mutate, deny and dry saw dryRun"
    );
    c.fails(&["get", "configmap", "dry", "-n", "hooked"]).unwrap();

    // Deletes reach validating webhooks, with the stored object.
    c.ok(&["create", "configmap", "keep-me", "-n", "hooked"]).unwrap();
    let err = c.fails(&["delete", "configmap", "keep-me", "-n", "hooked"]).unwrap();
    assert!(
        err.contains("admission webhook \"nodelete.example.com\" denied the request: keep-me may not be deleted"),
        "{err}"
    );
    c.ok(&["get", "configmap", "keep-me", "-n", "hooked"]).unwrap();
    c.ok(&["delete", "configmap", "good", "-n", "hooked"]).unwrap();

    // Webhook configurations are never sent to webhooks, so a failing one
    // can always be removed.
    c.ok(&["delete", "validatingwebhookconfiguration", "validate"]).unwrap();
    c.ok(&["create", "configmap", "x", "-n", "down-fail"]).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patches_reach_mutating_webhooks() {
    let seen = Arc::new(Seen::default());
    let (addr, ca) = admission_server(seen.clone()).await;
    let c = TestCluster::start(Backend::Embedded).await.expect("cluster starts");
    namespace(&c, "patched", "patch");
    apply(
        &c,
        &config(
            "MutatingWebhookConfiguration",
            "mutate-update",
            vec![hook(
                "mutate-update.example.com",
                &format!("https://{addr}/mutate-update"),
                &ca,
                "patch",
                json!({}),
            )],
        ),
    );
    let get = |name: &str, path: &str| {
        c.ok(&[
            "get",
            "configmap",
            name,
            "-n",
            "patched",
            "-o",
            &format!("jsonpath={path}"),
        ])
        .unwrap()
    };
    let denied = "admission webhook \"mutate-update.example.com\" denied the request: label forbidden is not allowed";

    c.ok(&["create", "configmap", "p", "-n", "patched", "--from-literal=a=1"])
        .unwrap();
    assert_eq!(get("p", "{.metadata.annotations.seen}"), "CREATE old=- new=1");

    // kubectl patch (strategic merge, then JSON patch): the webhook sees the
    // patched object and the stored one, and its mutation is stored.
    c.ok(&[
        "patch",
        "configmap",
        "p",
        "-n",
        "patched",
        "-p",
        r#"{"data":{"a":"2"}}"#,
    ])
    .unwrap();
    assert_eq!(get("p", "{.metadata.annotations.seen}"), "UPDATE old=1 new=2");
    assert_eq!(get("p", "{.metadata.labels.mutated}"), "yes");
    let calls = seen.calls("/mutate-update");
    c.ok(&[
        "patch",
        "configmap",
        "p",
        "-n",
        "patched",
        "--type=json",
        "-p",
        r#"[{"op": "replace", "path": "/data/a", "value": "3"}, {"op": "remove", "path": "/metadata/labels"}]"#,
    ])
    .unwrap();
    assert_eq!(seen.calls("/mutate-update"), calls + 1);
    assert_eq!(get("p", "{.metadata.annotations.seen}"), "UPDATE old=2 new=3");
    assert_eq!(
        get("p", "{.metadata.labels.mutated}"),
        "yes",
        "the webhook labels it again"
    );
    let err = c
        .fails(&[
            "patch",
            "configmap",
            "p",
            "-n",
            "patched",
            "--type=merge",
            "-p",
            r#"{"metadata":{"labels":{"forbidden":"x"}},"data":{"a":"4"}}"#,
        ])
        .unwrap();
    assert!(
        err.contains(&format!("Error from server (Forbidden): {denied}")),
        "{err}"
    );
    assert_eq!(get("p", "{.data.a}"), "3");

    // kubectl label is a patch too.
    c.ok(&["label", "configmap", "p", "-n", "patched", "color=blue"])
        .unwrap();
    assert_eq!(get("p", "{.metadata.labels}"), r#"{"color":"blue","mutated":"yes"}"#);
    assert_eq!(get("p", "{.metadata.annotations.seen}"), "UPDATE old=3 new=3");
    let err = c
        .fails(&["label", "configmap", "p", "-n", "patched", "forbidden=yes"])
        .unwrap();
    assert!(err.contains(denied), "{err}");
    assert_eq!(get("p", "{.metadata.labels.forbidden}"), "");

    // kubectl replace (PUT): an UPDATE with the stored object as oldObject;
    // the mutation is stored, a denial stores nothing.
    let replacement = |a: &str, labels: &str| {
        format!(
            r#"{{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {{"name": "p", "namespace": "patched", "labels": {labels}}}, "data": {{"a": "{a}"}}}}"#
        )
    };
    let out = c.kubectl_with(&["replace", "-f", "-"], Some(&replacement("5", "{}")), &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(get("p", "{.metadata.annotations.seen}"), "UPDATE old=3 new=5");
    assert_eq!(get("p", "{.metadata.labels}"), r#"{"mutated":"yes"}"#);
    let out = c.kubectl_with(
        &["replace", "-f", "-"],
        Some(&replacement("6", r#"{"forbidden": "x"}"#)),
        &[],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(denied), "{err}");
    assert_eq!(get("p", "{.data.a}"), "5");

    // Client-side apply: the create, then the strategic merge patch of the
    // change, both mutated; a denied change is not stored.
    let manifest = |a: &str, labels: &str| {
        format!(
            r#"{{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {{"name": "applied", "namespace": "patched", "labels": {labels}}}, "data": {{"a": "{a}"}}}}"#
        )
    };
    for (a, want) in [("1", "CREATE old=- new=1"), ("2", "UPDATE old=1 new=2")] {
        let out = c.kubectl_with(&["apply", "-f", "-"], Some(&manifest(a, r#"{"app": "x"}"#)), &[]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(get("applied", "{.metadata.annotations.seen}"), want);
        assert_eq!(get("applied", "{.metadata.labels}"), r#"{"app":"x","mutated":"yes"}"#);
    }
    let out = c.kubectl_with(
        &["apply", "-f", "-"],
        Some(&manifest("3", r#"{"forbidden": "x"}"#)),
        &[],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(denied), "{err}");
    assert_eq!(get("applied", "{.data.a}"), "2");

    // Dry-run patches reach the webhook and store nothing.
    let out = c
        .ok(&[
            "patch",
            "configmap",
            "p",
            "-n",
            "patched",
            "--dry-run=server",
            "-p",
            r#"{"data":{"a":"9"}}"#,
            "-o",
            "jsonpath={.metadata.annotations.seen}",
        ])
        .unwrap();
    assert_eq!(out, "UPDATE old=5 new=9");
    assert_eq!(get("p", "{.data.a}"), "5");
}

/// The annotations of the ResponseComplete audit event of the create of
/// configmap `name` in `ns`.
fn audit_annotations(log: &std::path::Path, ns: &str, name: &str) -> serde_json::Map<String, Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let found = std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|e| {
                e["stage"] == "ResponseComplete"
                    && e["verb"] == "create"
                    && e["objectRef"]["namespace"] == ns
                    && e["objectRef"]["name"] == name
            });
        if let Some(e) = found {
            return e["annotations"].as_object().cloned().unwrap_or_default();
        }
        assert!(std::time::Instant::now() < deadline, "no audit event for {ns}/{name}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_calls_are_audited() {
    let seen = Arc::new(Seen::default());
    let (addr, ca) = admission_server(seen.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        r#"
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: Request
    resources: [{group: "", resources: [configmaps]}]
    namespaces: [audit-request]
  - level: Metadata
    resources: [{group: "", resources: [configmaps]}]
    namespaces: [audit-metadata]
"#,
    )
    .unwrap();
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
    namespace(&c, "audit-request", "audit");
    namespace(&c, "audit-metadata", "audit");
    // Index 0 is down and ignored, index 1 mutates; one validating webhook
    // returns audit annotations.
    apply(
        &c,
        &config(
            "MutatingWebhookConfiguration",
            "audit-mutating",
            vec![
                hook(
                    "down.example.com",
                    &down_url(),
                    &ca,
                    "audit",
                    json!({"failurePolicy": "Ignore"}),
                ),
                hook(
                    "mutate.example.com",
                    &format!("https://{addr}/mutate"),
                    &ca,
                    "audit",
                    json!({}),
                ),
            ],
        ),
    );
    apply(
        &c,
        &config(
            "ValidatingWebhookConfiguration",
            "audit-validating",
            vec![hook(
                "annotate.example.com",
                &format!("https://{addr}/annotate"),
                &ca,
                "audit",
                json!({}),
            )],
        ),
    );
    let mutation = |webhook: &str, mutated: bool| {
        json!(format!(
            r#"{{"configuration":"audit-mutating","webhook":"{webhook}","mutated":{mutated}}}"#
        ))
    };
    let patch = json!(
        r#"{"configuration":"audit-mutating","webhook":"mutate.example.com","patch":[{"op":"add","path":"/metadata/labels","value":{"mutated":"yes"}}],"patchType":"JSONPatch"}"#
    );
    for (ns, with_patch) in [("audit-request", true), ("audit-metadata", false)] {
        c.ok(&["create", "configmap", "c", "-n", ns]).unwrap();
        let got = audit_annotations(&log, ns, "c");
        let mut want = serde_json::Map::new();
        want.insert(
            "mutation.webhook.admission.k8s.io/round_0_index_0".into(),
            mutation("down.example.com", false),
        );
        want.insert(
            "failed-open.mutation.webhook.admission.k8s.io/round_0_index_0".into(),
            json!("down.example.com"),
        );
        want.insert(
            "mutation.webhook.admission.k8s.io/round_0_index_1".into(),
            mutation("mutate.example.com", true),
        );
        if with_patch {
            want.insert("patch.webhook.admission.k8s.io/round_0_index_1".into(), patch.clone());
        }
        want.insert("annotate.example.com/decision".into(), json!("looked at c"));
        let webhook_keys: serde_json::Map<String, Value> = got
            .into_iter()
            .filter(|(k, _)| k.contains("webhook.admission.k8s.io/") || k.starts_with("annotate.example.com/"))
            .collect();
        assert_eq!(webhook_keys, want, "{ns}");
    }
}
