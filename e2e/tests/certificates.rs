//! CertificateSigningRequests end to end: the real apiserver and the real
//! `rkube-controllers` binary signing with the cluster CA
//! (`--cluster-signing-{cert,key}-file <data>/pki/ca.{crt,key}`), real
//! kubectl. A node's bootstrap-token request is auto-approved and issued,
//! and the certificate logs in as the node; `kubectl certificate approve`
//! gets a client certificate issued; a request that breaks its signer's
//! rules is marked Failed; old requests are cleaned up.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use rkube_e2e::cluster::{Backend, TEST_DISABLED_ADMISSION, TestCluster, target_dir};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// The `rkube-controllers` binary running only the CSR controllers,
/// signing with the cluster CA; killed on drop.
struct ControllersBinary(Child, PathBuf);

impl ControllersBinary {
    fn start(c: &TestCluster) -> ControllersBinary {
        let bin = target_dir().unwrap().join("rkube-controllers");
        assert!(
            bin.exists(),
            "{} is missing: build it with `cargo build -p rkube-controllers`",
            bin.display()
        );
        let pki = c.data_dir().join("pki");
        let log = c.data_dir().join("controllers.log");
        let child = Command::new(bin)
            .arg("--kubeconfig")
            .arg(c.kubeconfig())
            .args([
                "--leader-elect=false",
                "--port=0",
                "--controllers=csrsigning,csrapproving,csrcleaner",
            ])
            .arg("--cluster-signing-cert-file")
            .arg(pki.join("ca.crt"))
            .arg("--cluster-signing-key-file")
            .arg(pki.join("ca.key"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        ControllersBinary(child, log)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.1).unwrap_or_default()
    }
}

impl Drop for ControllersBinary {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A private key (PEM) and a request (PEM) for `cn` in `orgs`.
fn key_and_request(cn: &str, org: Option<&str>) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    if let Some(o) = org {
        dn.push(DnType::OrganizationName, o);
    }
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    (key.serialize_pem(), csr)
}

fn csr_manifest(name: &str, signer: &str, usages: &[&str], request: &str, expiration: Option<i64>) -> String {
    let mut spec = json!({
        "request": STANDARD.encode(request),
        "signerName": signer,
        "usages": usages,
    });
    if let Some(e) = expiration {
        spec["expirationSeconds"] = json!(e);
    }
    json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": name}, "spec": spec})
    .to_string()
}

fn create(c: &TestCluster, manifest: &str, extra: &[&str]) {
    let mut args = vec!["create", "-f", "-"];
    args.extend_from_slice(extra);
    let out = c.kubectl_with(&args, Some(manifest), &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn get_csr(c: &TestCluster, name: &str) -> Value {
    serde_json::from_str(&c.ok(&["get", "csr", name, "-o", "json"]).unwrap()).unwrap()
}

/// Waits until `done` holds for the CSR `name`, and returns it.
fn wait_csr(c: &TestCluster, ctrl: &ControllersBinary, name: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let csr = get_csr(c, name);
        if done(&csr) {
            return csr;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: timed out waiting for {what}: {csr:#}\ncontrollers log:\n{}",
            ctrl.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn issued(csr: &Value) -> bool {
    csr["status"]["certificate"].as_str().is_some_and(|s| !s.is_empty())
}

fn condition<'a>(csr: &'a Value, ty: &str) -> Option<&'a Value> {
    csr["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == ty)
}

/// Writes the issued certificate and `key` into a kubeconfig for the
/// cluster, checks the certificate against the CA with openssl, and
/// returns the kubeconfig's path.
fn cert_kubeconfig(c: &TestCluster, name: &str, csr: &Value, key: &str) -> PathBuf {
    let dir = c.data_dir();
    let cert = STANDARD.decode(csr["status"]["certificate"].as_str().unwrap()).unwrap();
    let (crt, key_file) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    std::fs::write(&crt, &cert).unwrap();
    std::fs::write(&key_file, key).unwrap();
    let ca = dir.join("pki/ca.crt");
    let verify = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(&ca)
        .arg(&crt)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let kubeconfig = dir.join(format!("{name}.kubeconfig"));
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: rkube\n  cluster:\n    server: https://localhost:{}\n    certificate-authority: {}\nusers:\n- name: u\n  user:\n    client-certificate: {}\n    client-key: {}\ncontexts:\n- name: rkube\n  context:\n    cluster: rkube\n    user: u\ncurrent-context: rkube\n",
            c.port,
            ca.display(),
            crt.display(),
            key_file.display()
        ),
    )
    .unwrap();
    kubeconfig
}

/// `kubectl auth whoami` with `kubeconfig`: (username, groups).
fn whoami(c: &TestCluster, kubeconfig: &std::path::Path) -> (String, Vec<String>) {
    let out = c.kubectl(&[
        "--kubeconfig",
        &kubeconfig.display().to_string(),
        "auth",
        "whoami",
        "-o",
        "json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let info = &v["status"]["userInfo"];
    let groups = info["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap().to_string())
        .collect();
    (info["username"].as_str().unwrap().to_string(), groups)
}

/// The issued certificate's lifetime, from openssl.
fn lifetime(csr: &Value) -> Duration {
    let cert = STANDARD.decode(csr["status"]["certificate"].as_str().unwrap()).unwrap();
    let mut child = Command::new("openssl")
        .args(["x509", "-noout", "-startdate", "-enddate", "-dateopt", "iso_8601"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&cert).unwrap();
    let out = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
    let field = |k: &str| -> i64 {
        let line = out.lines().find_map(|l| l.strip_prefix(k)).unwrap();
        let ts: k8s_openapi::jiff::Timestamp = line.trim().replace(' ', "T").parse().unwrap();
        ts.as_second()
    };
    Duration::from_secs((field("notAfter=") - field("notBefore=")) as u64)
}

#[tokio::test]
async fn bootstrap_token_node_csr_is_auto_approved_and_issued() {
    let c = TestCluster::start_with(
        Backend::Embedded,
        &[TEST_DISABLED_ADMISSION, "--enable-bootstrap-token-auth"],
    )
    .await
    .unwrap();
    // What kubeadm sets up: a bootstrap token, and bootstrappers may
    // create CSRs and have node client certificates approved.
    let secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: bootstrap-token-abcdef\n  namespace: kube-system\ntype: bootstrap.kubernetes.io/token\nstringData:\n  token-id: abcdef\n  token-secret: 0123456789abcdef\n  usage-bootstrap-authentication: \"true\"\n";
    create(&c, secret, &[]);
    c.ok(&[
        "create",
        "clusterrolebinding",
        "node-bootstrapper",
        "--clusterrole=system:node-bootstrapper",
        "--group=system:bootstrappers",
    ])
    .unwrap();
    c.ok(&[
        "create",
        "clusterrolebinding",
        "node-autoapprove-bootstrap",
        "--clusterrole=system:certificates.k8s.io:certificatesigningrequests:nodeclient",
        "--group=system:bootstrappers",
    ])
    .unwrap();
    let ctrl = ControllersBinary::start(&c);

    let (key, request) = key_and_request("system:node:node-1", Some("system:nodes"));
    let manifest = csr_manifest(
        "node-csr-1",
        "kubernetes.io/kube-apiserver-client-kubelet",
        &["digital signature", "client auth"],
        &request,
        None,
    );
    create(&c, &manifest, &["--token", "abcdef.0123456789abcdef"]);
    let csr = wait_csr(&c, &ctrl, "node-csr-1", "a certificate", issued);
    assert_eq!(csr["spec"]["username"], "system:bootstrap:abcdef");
    let approved = condition(&csr, "Approved").unwrap();
    assert_eq!(approved["status"], "True");
    assert_eq!(approved["reason"], "AutoApproved");
    assert_eq!(
        approved["message"],
        "Auto approving kubelet client certificate after SubjectAccessReview."
    );
    // --cluster-signing-duration's default (a year) less the 5 minute backdate, plus the backdate at the start.
    assert_eq!(lifetime(&csr), Duration::from_secs(8760 * 3600));
    let listed = c.ok(&["get", "csr", "node-csr-1"]).unwrap();
    assert!(listed.contains("Approved,Issued"), "{listed}");

    let kubeconfig = cert_kubeconfig(&c, "node-1", &csr, &key);
    let (user, groups) = whoami(&c, &kubeconfig);
    assert_eq!(user, "system:node:node-1");
    assert_eq!(groups, vec!["system:nodes", "system:authenticated"]);

    // A node client request by a user without the nodeclient permission
    // stays pending.
    c.ok(&["create", "serviceaccount", "someone", "-n", "default"]).unwrap();
    let token = c.ok(&["create", "token", "someone", "-n", "default"]).unwrap();
    c.ok(&[
        "create",
        "clusterrolebinding",
        "someone-csr",
        "--clusterrole=system:node-bootstrapper",
        "--serviceaccount=default:someone",
    ])
    .unwrap();
    let (_, request) = key_and_request("system:node:node-2", Some("system:nodes"));
    let manifest = csr_manifest(
        "node-csr-2",
        "kubernetes.io/kube-apiserver-client-kubelet",
        &["digital signature", "client auth"],
        &request,
        None,
    );
    create(&c, &manifest, &["--token", token.trim()]);
    std::thread::sleep(Duration::from_secs(2));
    let pending = get_csr(&c, "node-csr-2");
    assert!(pending["status"]["conditions"].is_null(), "{pending:#}");
    assert!(
        ctrl.log().contains("subject access review was not approved"),
        "{}",
        ctrl.log()
    );
}

#[tokio::test]
async fn approved_client_csr_is_issued_and_rule_breakers_fail() {
    let c = TestCluster::start(Backend::Embedded).await.unwrap();
    let ctrl = ControllersBinary::start(&c);

    // A client certificate for alice, approved by the admin.
    let (key, request) = key_and_request("alice", Some("devs"));
    let manifest = csr_manifest(
        "alice",
        "kubernetes.io/kube-apiserver-client",
        &["client auth"],
        &request,
        Some(3600),
    );
    create(&c, &manifest, &[]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(!issued(&get_csr(&c, "alice")), "issued before approval");
    c.ok(&["certificate", "approve", "alice"]).unwrap();
    let csr = wait_csr(&c, &ctrl, "alice", "a certificate", issued);
    // expirationSeconds: an hour, short enough not to be backdated at the end.
    assert_eq!(lifetime(&csr), Duration::from_secs(3600 + 300));
    let kubeconfig = cert_kubeconfig(&c, "alice", &csr, &key);
    let (user, groups) = whoami(&c, &kubeconfig);
    assert_eq!(user, "alice");
    assert_eq!(groups, vec!["devs", "system:authenticated"]);

    // A kubelet client request whose CN is not a node's: Failed.
    let (_, request) = key_and_request("mallory", Some("system:nodes"));
    let manifest = csr_manifest(
        "bad-node",
        "kubernetes.io/kube-apiserver-client-kubelet",
        &["digital signature", "client auth"],
        &request,
        None,
    );
    create(&c, &manifest, &[]);
    c.ok(&["certificate", "approve", "bad-node"]).unwrap();
    let csr = wait_csr(&c, &ctrl, "bad-node", "the Failed condition", |v| {
        condition(v, "Failed").is_some()
    });
    let failed = condition(&csr, "Failed").unwrap();
    assert_eq!(failed["status"], "True");
    assert_eq!(failed["reason"], "SignerValidationFailure");
    assert_eq!(
        failed["message"],
        "subject common name does not begin with system:node:"
    );
    assert!(!issued(&csr));
    let listed = c.ok(&["get", "csr", "bad-node"]).unwrap();
    assert!(listed.contains("Approved,Failed"), "{listed}");

    // Client usages the signer does not allow: Failed too.
    let (_, request) = key_and_request("bob", None);
    let manifest = csr_manifest(
        "bob",
        "kubernetes.io/kube-apiserver-client",
        &["client auth", "server auth"],
        &request,
        None,
    );
    create(&c, &manifest, &[]);
    c.ok(&["certificate", "approve", "bob"]).unwrap();
    let csr = wait_csr(&c, &ctrl, "bob", "the Failed condition", |v| {
        condition(v, "Failed").is_some()
    });
    assert_eq!(
        condition(&csr, "Failed").unwrap()["message"],
        "invalid usage for client certificate: server auth"
    );

    // A signer of someone else's is left alone.
    let (_, request) = key_and_request("carol", None);
    create(
        &c,
        &csr_manifest("carol", "example.com/mine", &["client auth"], &request, None),
        &[],
    );
    c.ok(&["certificate", "approve", "carol"]).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let carol = get_csr(&c, "carol");
    assert!(!issued(&carol) && condition(&carol, "Failed").is_none(), "{carol:#}");
}

#[tokio::test]
async fn cleaner_deletes_requests_denied_over_an_hour_ago() {
    let c = TestCluster::start(Backend::Embedded).await.unwrap();
    let client = rkube_e2e::controllers_support::client(&c).await.unwrap();
    let api: kube::Api<k8s_openapi::api::certificates::v1::CertificateSigningRequest> = kube::Api::all(client);
    let two_hours_ago = (k8s_openapi::jiff::Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_hours(2))
        .round(k8s_openapi::jiff::Unit::Second)
        .unwrap()
        .to_string();
    for (name, when) in [("old-denied", two_hours_ago.as_str()), ("new-denied", "")] {
        let (_, request) = key_and_request(name, None);
        create(
            &c,
            &csr_manifest(name, "example.com/mine", &["client auth"], &request, None),
            &[],
        );
        let mut csr = get_csr(&c, name);
        let mut cond = json!({"type": "Denied", "status": "True", "reason": "NotToday"});
        if !when.is_empty() {
            cond["lastUpdateTime"] = json!(when);
        }
        csr["status"] = json!({"conditions": [cond]});
        api.replace_subresource("approval", name, &Default::default(), &csr)
            .await
            .unwrap();
    }
    let ctrl = ControllersBinary::start(&c);
    let deadline = Instant::now() + WAIT;
    loop {
        let out = c.kubectl(&["get", "csr", "old-denied"]);
        if !out.status.success() {
            assert!(String::from_utf8_lossy(&out.stderr).contains("NotFound"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "old-denied was not cleaned up:\n{}",
            ctrl.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The request denied just now stays.
    get_csr(&c, "new-denied");
}
