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

/// Adds `token,user,uid` lines to the cluster's token file and restarts
/// the apiserver to load them.
fn add_token_users(c: &mut TestCluster, users: &[(&str, &str)]) {
    let tokens = c.data_dir().join("tokens.csv");
    let mut text = std::fs::read_to_string(&tokens).unwrap();
    for (token, user) in users {
        text.push_str(&format!("{token},{user},{user}-uid\n"));
    }
    std::fs::write(&tokens, text).unwrap();
    c.restart_apiserver().unwrap();
}

/// A custom Role next to the default ones, for a token user and a
/// certificate user: `kubectl auth can-i` answers what the role grants
/// (resourceNames, subresources) and nothing else.
#[tokio::test]
async fn can_i_with_a_custom_role_and_edit_admin_for_token_users() {
    let mut c = TestCluster::start(Backend::Embedded).await.expect("cluster starts");
    add_token_users(&mut c, &[("e2e-dave-token", "dave")]);
    let dave = "--token=e2e-dave-token".to_string();
    let erin_cfg = cert_kubeconfig(&c, "erin", "auditors");
    let erin = format!("--kubeconfig={}", erin_cfg.display());
    c.ok(&["create", "namespace", "custom"]).unwrap();
    c.ok(&["create", "namespace", "dave-edit"]).unwrap();
    c.ok(&["create", "namespace", "dave-admin"]).unwrap();
    c.ok(&[
        "create",
        "role",
        "cm-reader",
        "-n",
        "custom",
        "--verb=get",
        "--resource=configmaps",
        "--resource-name=app-config",
    ])
    .unwrap();
    c.ok(&[
        "create",
        "role",
        "log-reader",
        "-n",
        "custom",
        "--verb=get,list",
        "--resource=pods,pods/log",
    ])
    .unwrap();
    for (who, flag) in [("dave", "--user=dave"), ("auditors", "--group=auditors")] {
        for role in ["cm-reader", "log-reader"] {
            c.ok(&[
                "create",
                "rolebinding",
                &format!("{who}-{role}"),
                &format!("--role={role}"),
                flag,
                "-n",
                "custom",
            ])
            .unwrap();
        }
    }
    for user in [&dave, &erin] {
        let can = |args: &[&str]| {
            let mut all = vec!["auth", "can-i"];
            all.extend_from_slice(args);
            all.extend_from_slice(&["-n", "custom"]);
            let (_, out, err) = kubectl_as(&c, user, &all);
            assert!(matches!(out.as_str(), "yes" | "no"), "{args:?}: {out} {err}");
            out == "yes"
        };
        assert!(can(&["get", "configmaps/app-config"]));
        assert!(!can(&["get", "configmaps/other"]));
        assert!(!can(&["list", "configmaps"]));
        assert!(!can(&["update", "configmaps/app-config"]));
        assert!(can(&["get", "pods", "--subresource=log"]));
        assert!(can(&["list", "pods"]));
        assert!(!can(&["get", "pods", "--subresource=exec"]));
        assert!(!can(&["delete", "pods"]));
        assert!(!can(&["get", "secrets"]));
    }
    // The edit and admin columns for a token user.
    c.ok(&[
        "create",
        "rolebinding",
        "dave-edit",
        "--clusterrole=edit",
        "--user=dave",
        "-n",
        "dave-edit",
    ])
    .unwrap();
    c.ok(&[
        "create",
        "rolebinding",
        "dave-admin",
        "--clusterrole=admin",
        "--user=dave",
        "-n",
        "dave-admin",
    ])
    .unwrap();
    for &(verb, resource, _, edit, admin) in MATRIX {
        assert_eq!(
            can_i(&c, &dave, "dave-edit", verb, resource),
            edit,
            "edit: {verb} {resource}"
        );
        assert_eq!(
            can_i(&c, &dave, "dave-admin", verb, resource),
            admin,
            "admin: {verb} {resource}"
        );
    }
}

/// Privilege escalation: a user with `edit` (and leave to create
/// bindings) cannot bind `admin`, whose rules they do not hold, until they
/// get `bind` on it; creating a Role that grants more than they hold is
/// refused too, with upstream's messages.
#[tokio::test]
async fn escalation_needs_bind_or_escalate() {
    let mut c = TestCluster::start(Backend::Embedded).await.expect("cluster starts");
    add_token_users(&mut c, &[("e2e-frank-token", "frank")]);
    let frank = "--token=e2e-frank-token".to_string();
    c.ok(&["create", "namespace", "proj"]).unwrap();
    c.ok(&[
        "create",
        "rolebinding",
        "frank-edit",
        "--clusterrole=edit",
        "--user=frank",
        "-n",
        "proj",
    ])
    .unwrap();
    // Only edit: bindings are not theirs to create at all.
    let bind_admin = [
        "create",
        "rolebinding",
        "grab-admin",
        "--clusterrole=admin",
        "--user=frank",
        "-n",
        "proj",
    ];
    let (ok, _, err) = kubectl_as(&c, &frank, &bind_admin);
    assert!(!ok);
    assert!(
        err.contains(r#"User "frank" cannot create resource "rolebindings" in API group "rbac.authorization.k8s.io" in the namespace "proj""#),
        "{err}"
    );
    // With leave to manage roles and bindings, binding admin is an escalation.
    c.ok(&[
        "create",
        "clusterrole",
        "rbac-writer",
        "--verb=create,get",
        "--resource=rolebindings,roles",
    ])
    .unwrap();
    c.ok(&[
        "create",
        "rolebinding",
        "frank-rbac",
        "--clusterrole=rbac-writer",
        "--user=frank",
        "-n",
        "proj",
    ])
    .unwrap();
    let (ok, _, err) = kubectl_as(&c, &frank, &bind_admin);
    assert!(!ok);
    assert!(
        err.contains(r#"rolebindings.rbac.authorization.k8s.io "grab-admin" is forbidden: user "frank" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:"#),
        "{err}"
    );
    assert!(
        err.contains(r#"{APIGroups:["rbac.authorization.k8s.io"], Resources:["rolebindings"], Verbs:["delete""#),
        "{err}"
    );
    // Binding view (which edit includes) is fine.
    let (ok, _, err) = kubectl_as(
        &c,
        &frank,
        &[
            "create",
            "rolebinding",
            "share-view",
            "--clusterrole=view",
            "--user=gina",
            "-n",
            "proj",
        ],
    );
    assert!(ok, "{err}");
    // A Role granting what frank lacks is refused; one within edit is fine.
    let (ok, _, err) = kubectl_as(
        &c,
        &frank,
        &["create", "role", "r1", "--verb=*", "--resource=nodes", "-n", "proj"],
    );
    assert!(!ok);
    assert!(
        err.contains(r#"roles.rbac.authorization.k8s.io "r1" is forbidden: user "frank""#)
            && err.contains(r#"{APIGroups:[""], Resources:["nodes"], Verbs:["*"]}"#),
        "{err}"
    );
    let (ok, _, err) = kubectl_as(
        &c,
        &frank,
        &[
            "create",
            "role",
            "r2",
            "--verb=get,list",
            "--resource=pods",
            "-n",
            "proj",
        ],
    );
    assert!(ok, "{err}");
    // `bind` on admin: now frank may bind it.
    c.ok(&[
        "create",
        "clusterrole",
        "bind-admin",
        "--verb=bind",
        "--resource=clusterroles.rbac.authorization.k8s.io",
        "--resource-name=admin",
    ])
    .unwrap();
    c.ok(&[
        "create",
        "rolebinding",
        "frank-bind",
        "--clusterrole=bind-admin",
        "--user=frank",
        "-n",
        "proj",
    ])
    .unwrap();
    let (ok, _, err) = kubectl_as(&c, &frank, &bind_admin);
    assert!(ok, "{err}");
    // The new binding is in force: frank is admin in proj.
    assert!(can_i(
        &c,
        &frank,
        "proj",
        "delete",
        "rolebindings.rbac.authorization.k8s.io"
    ));
}

/// `kubectl --as` and `--as-group`: the admin may impersonate anyone;
/// others need the `impersonate` verb, and then act with the impersonated
/// user's rights only.
#[tokio::test]
async fn impersonation_with_kubectl_as() {
    let mut c = TestCluster::start(Backend::Embedded).await.expect("cluster starts");
    add_token_users(&mut c, &[("e2e-hank-token", "hank")]);
    let hank = "--token=e2e-hank-token".to_string();
    let (ok, _, err) = kubectl_as(&c, "--as=ivy", &["get", "pods", "-n", "default"]);
    assert!(!ok);
    assert!(
        err.contains(
            r#"pods is forbidden: User "ivy" cannot list resource "pods" in API group "" in the namespace "default""#
        ),
        "{err}"
    );
    let (ok, out, err) = kubectl_as(
        &c,
        "--as=ivy",
        &[
            "auth",
            "whoami",
            "--as-group=devs",
            "-o",
            "jsonpath={.status.userInfo.username} {.status.userInfo.groups}",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out, r#"ivy ["devs","system:authenticated"]"#);
    let (ok, _, err) = kubectl_as(&c, &hank, &["get", "pods", "--as=ivy"]);
    assert!(!ok);
    assert!(
        err.contains(r#"users "ivy" is forbidden: User "hank" cannot impersonate resource "users" in API group "" at the cluster scope"#),
        "{err}"
    );
    c.ok(&[
        "create",
        "clusterrole",
        "impersonate-ivy",
        "--verb=impersonate",
        "--resource=users",
        "--resource-name=ivy",
    ])
    .unwrap();
    c.ok(&[
        "create",
        "clusterrolebinding",
        "hank-impersonates",
        "--clusterrole=impersonate-ivy",
        "--user=hank",
    ])
    .unwrap();
    c.ok(&[
        "create",
        "rolebinding",
        "ivy-view",
        "--clusterrole=view",
        "--user=ivy",
        "-n",
        "default",
    ])
    .unwrap();
    let (ok, _, err) = kubectl_as(&c, &hank, &["get", "pods", "-n", "default", "--as=ivy"]);
    assert!(ok, "{err}");
    let (ok, out, err) = kubectl_as(
        &c,
        &hank,
        &["auth", "can-i", "create", "pods", "-n", "default", "--as=ivy"],
    );
    assert!(!ok && out == "no", "{out} {err}");
    // Groups need their own grant.
    let (ok, _, err) = kubectl_as(&c, &hank, &["get", "pods", "--as=ivy", "--as-group=system:masters"]);
    assert!(!ok);
    assert!(
        err.contains(r#"groups "system:masters" is forbidden: User "hank" cannot impersonate resource "groups""#),
        "{err}"
    );
}

/// The Node authorizer with a kubelet's client certificate: a node reads
/// the secrets and config maps of pods bound to it, and nothing else.
#[tokio::test]
async fn node_authorizer_limits_kubelets_to_their_pods() {
    let c = TestCluster::start(Backend::Embedded).await.expect("cluster starts");
    let node_cfg = cert_kubeconfig(&c, "system:node:n1", "system:nodes");
    let node = format!("--kubeconfig={}", node_cfg.display());
    for s in ["mine", "theirs"] {
        c.ok(&["create", "secret", "generic", s, "--from-literal=k=v"]).unwrap();
    }
    c.ok(&["create", "configmap", "settings", "--from-literal=a=b"])
        .unwrap();
    let pod = |name: &str, node: &str, secret: &str| {
        format!(
            r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "{name}"}}, "spec": {{"nodeName": "{node}",
            "containers": [{{"name": "c", "image": "busybox", "envFrom": [{{"secretRef": {{"name": "{secret}"}}}}, {{"configMapRef": {{"name": "settings"}}}}]}}]}}}}"#
        )
    };
    for (name, n, secret) in [("a", "n1", "mine"), ("b", "n2", "theirs")] {
        let out = c.kubectl_with(&["apply", "-f", "-"], Some(&pod(name, n, secret)), &[]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let (ok, _, err) = kubectl_as(&c, &node, &["get", "secret", "mine"]);
    assert!(ok, "{err}");
    let (ok, _, err) = kubectl_as(&c, &node, &["get", "configmap", "settings"]);
    assert!(ok, "{err}");
    let (ok, _, err) = kubectl_as(&c, &node, &["get", "secret", "theirs"]);
    assert!(!ok);
    assert!(
        err.contains(r#"secrets "theirs" is forbidden: User "system:node:n1" cannot get resource "secrets" in API group "" in the namespace "default": no relationship found between node 'n1' and this object"#),
        "{err}"
    );
    let (ok, _, err) = kubectl_as(&c, &node, &["get", "secrets"]);
    assert!(!ok, "{err}");
    let (ok, _, err) = kubectl_as(&c, &node, &["get", "pods", "-A", "--field-selector=spec.nodeName=n1"]);
    assert!(ok, "{err}");
    let (ok, _, err) = kubectl_as(&c, &node, &["get", "pods", "-A"]);
    assert!(!ok);
    assert!(
        err.contains("can only list/watch pods with spec.nodeName field selector"),
        "{err}"
    );
    let (ok, _, err) = kubectl_as(&c, &node, &["get", "services", "-A"]);
    assert!(ok, "{err}");
}
