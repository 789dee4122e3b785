//! Authentication and RBAC with real kubectl: a token user and a client
//! certificate user (signed by the cluster CA with openssl) bound to the
//! default `view`, `edit` and `admin` roles; `kubectl auth can-i` and
//! `kubectl auth whoami`; what anonymous requests reach.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use rkube_e2e::cluster::{Backend, TestCluster};

const ALICE_TOKEN: &str = "e2e-alice-token";

/// Issues a client certificate for `cn` in group `o` from the cluster CA
/// and writes a kubeconfig using it; returns the kubeconfig's path.
fn cert_kubeconfig(c: &TestCluster, cn: &str, o: &str) -> PathBuf {
    let dir = c.data_dir();
    let pki = dir.join("pki");
    let key = dir.join(format!("{cn}.key"));
    let csr = dir.join(format!("{cn}.csr"));
    let crt = dir.join(format!("{cn}.crt"));
    let ext = dir.join("client.ext");
    std::fs::write(&ext, "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n").unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let p = |p: &Path| p.display().to_string();
    run(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", &p(&key)]);
    run(&[
        "req",
        "-new",
        "-key",
        &p(&key),
        "-subj",
        &format!("/O={o}/CN={cn}"),
        "-out",
        &p(&csr),
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        &p(&csr),
        "-CA",
        &p(&pki.join("ca.crt")),
        "-CAkey",
        &p(&pki.join("ca.key")),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &p(&ext),
        "-out",
        &p(&crt),
    ]);
    let kubeconfig = dir.join(format!("{cn}.kubeconfig"));
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: rkube\n  cluster:\n    server: https://localhost:{}\n    certificate-authority: {}\nusers:\n- name: {cn}\n  user:\n    client-certificate: {}\n    client-key: {}\ncontexts:\n- name: rkube\n  context:\n    cluster: rkube\n    user: {cn}\ncurrent-context: rkube\n",
        c.port,
        p(&pki.join("ca.crt")),
        p(&crt),
        p(&key)
    );
    std::fs::write(&kubeconfig, text).unwrap();
    kubeconfig
}

/// Runs kubectl as another user: `as_user` is extra leading flags
/// (`--token=...` or `--kubeconfig=...`, which override the admin's).
fn kubectl_as(c: &TestCluster, as_user: &str, args: &[&str]) -> (bool, String, String) {
    let mut all = vec![as_user];
    all.extend_from_slice(args);
    let out = c.kubectl(&all);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

fn can_i(c: &TestCluster, as_user: &str, ns: &str, verb: &str, resource: &str) -> bool {
    let (ok, stdout, stderr) = kubectl_as(c, as_user, &["auth", "can-i", verb, resource, "-n", ns]);
    assert!(
        matches!(stdout.as_str(), "yes" | "no"),
        "can-i {verb} {resource}: {stdout} {stderr}"
    );
    ok && stdout == "yes"
}

/// (verb, resource, view, edit, admin) in the role's namespace, from
/// upstream's documented default roles.
const MATRIX: &[(&str, &str, bool, bool, bool)] = &[
    ("get", "pods", true, true, true),
    ("list", "deployments.apps", true, true, true),
    ("watch", "configmaps", true, true, true),
    ("get", "pods/log", true, true, true),
    ("create", "pods", false, true, true),
    ("delete", "deployments.apps", false, true, true),
    ("patch", "deployments.apps/scale", false, true, true),
    ("get", "secrets", false, true, true),
    ("create", "pods/exec", false, true, true),
    ("create", "rolebindings.rbac.authorization.k8s.io", false, false, true),
    ("create", "roles.rbac.authorization.k8s.io", false, false, true),
    ("list", "resourcequotas", true, true, true),
    ("create", "resourcequotas", false, false, false),
    ("get", "rolebindings.rbac.authorization.k8s.io", false, false, true),
];

#[tokio::test]
async fn rbac_with_token_and_certificate_users() {
    let mut c = TestCluster::start(Backend::Embedded).await.expect("cluster starts");
    // A token user next to the harness's admin.
    let tokens = c.data_dir().join("tokens.csv");
    let mut text = std::fs::read_to_string(&tokens).unwrap();
    text.push_str(&format!("{ALICE_TOKEN},alice,alice-uid\n"));
    std::fs::write(&tokens, text).unwrap();
    c.restart_apiserver().unwrap();
    let alice = format!("--token={ALICE_TOKEN}");
    let carol_cfg = cert_kubeconfig(&c, "carol", "devs");
    let carol = format!("--kubeconfig={}", carol_cfg.display());

    // Anonymous: /version yes, resources no.
    let curl = |path: &str| {
        let out = Command::new("curl")
            .args([
                "-sk",
                "-w",
                "\n%{http_code}",
                &format!("https://127.0.0.1:{}{path}", c.port),
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let version = curl("/version");
    assert!(
        version.ends_with("\n200") && version.contains("gitVersion"),
        "{version}"
    );
    let pods = curl("/api/v1/pods");
    assert!(pods.ends_with("\n403"), "{pods}");
    assert!(
        pods.contains(r#"pods is forbidden: User \"system:anonymous\" cannot list resource \"pods\" in API group \"\" at the cluster scope"#),
        "{pods}"
    );

    // whoami for both kinds of users.
    let (ok, out, err) = kubectl_as(
        &c,
        &carol,
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username} {.status.userInfo.groups}",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out, r#"carol ["devs","system:authenticated"]"#);
    let (ok, out, err) = kubectl_as(
        &c,
        &alice,
        &["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"],
    );
    assert!(ok, "{err}");
    assert_eq!(out, "alice");

    // alice: view in team-a; can read pods there, creating is refused with
    // upstream's message.
    c.ok(&["create", "namespace", "team-a"]).unwrap();
    let (ok, _, err) = kubectl_as(&c, &alice, &["get", "pods", "-n", "team-a"]);
    assert!(!ok);
    assert!(
        err.contains(
            r#"pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "team-a""#
        ),
        "{err}"
    );
    c.ok(&[
        "create",
        "rolebinding",
        "alice-view",
        "--clusterrole=view",
        "--user=alice",
        "-n",
        "team-a",
    ])
    .unwrap();
    let (ok, _, err) = kubectl_as(&c, &alice, &["get", "pods", "-n", "team-a"]);
    assert!(ok, "{err}");
    let (ok, _, err) = kubectl_as(&c, &alice, &["create", "configmap", "x", "-n", "team-a"]);
    assert!(!ok);
    assert_eq!(
        err,
        r#"error: failed to create configmap: configmaps is forbidden: User "alice" cannot create resource "configmaps" in API group "" in the namespace "team-a""#
    );
    let (ok, _, err) = kubectl_as(&c, &alice, &["get", "pods", "-n", "default"]);
    assert!(!ok, "{err}");

    // can-i matrices: view for alice (token), edit and admin for the group
    // of carol (certificate) in their own namespaces.
    c.ok(&["create", "namespace", "team-b"]).unwrap();
    c.ok(&["create", "namespace", "team-c"]).unwrap();
    c.ok(&[
        "create",
        "rolebinding",
        "devs-edit",
        "--clusterrole=edit",
        "--group=devs",
        "-n",
        "team-b",
    ])
    .unwrap();
    c.ok(&[
        "create",
        "rolebinding",
        "carol-admin",
        "--clusterrole=admin",
        "--user=carol",
        "-n",
        "team-c",
    ])
    .unwrap();
    for &(verb, resource, view, edit, admin) in MATRIX {
        assert_eq!(
            can_i(&c, &alice, "team-a", verb, resource),
            view,
            "view: {verb} {resource}"
        );
        assert_eq!(
            can_i(&c, &carol, "team-b", verb, resource),
            edit,
            "edit: {verb} {resource}"
        );
        assert_eq!(
            can_i(&c, &carol, "team-c", verb, resource),
            admin,
            "admin: {verb} {resource}"
        );
        assert!(
            !can_i(&c, &alice, "team-b", verb, resource),
            "nothing in team-b: {verb} {resource}"
        );
    }
    // Cluster-scoped: none of them.
    assert!(!can_i(&c, &carol, "team-c", "delete", "namespaces"));
    assert!(!can_i(&c, &alice, "team-a", "list", "nodes"));
    // kubectl 1.32+ sends the reviews as protobuf.
    c.use_kubectl("/usr/lib/google-cloud-sdk/bin/kubectl.1.33");
    assert!(can_i(&c, &alice, "team-a", "get", "pods"));
    assert!(!can_i(&c, &alice, "team-a", "create", "pods"));
    assert!(can_i(
        &c,
        &carol,
        "team-c",
        "create",
        "rolebindings.rbac.authorization.k8s.io"
    ));
    let (ok, out, err) = kubectl_as(
        &c,
        &carol,
        &["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"],
    );
    assert!(ok, "{err}");
    assert_eq!(out, "carol");
    let (ok, out, err) = kubectl_as(&c, &alice, &["auth", "can-i", "--list", "-n", "team-a"]);
    assert!(ok, "{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("pods ") && l.contains("[get list watch]")),
        "{out}"
    );
    // The admin (system:masters) can do anything.
    let (ok, out, _) = kubectl_as(&c, "--v=0", &["auth", "can-i", "*", "*"]);
    assert!(ok && out == "yes", "{out}");
}
