//! NodeRestriction with a real kubelet identity: kubectl with a client
//! certificate for `system:node:n1` (group `system:nodes`) signed by the
//! cluster CA may change its own Node, its pods' status, its Lease, its
//! CSINode and ResourceSlices, ask for tokens bound to its own pods, and
//! gets upstream's messages for everything else.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use rkube_e2e::cluster::{Backend, TestCluster};

/// A kubeconfig with a client certificate for `cn` in group `o`, issued by the cluster CA.
fn cert_kubeconfig(c: &TestCluster, cn: &str, o: &str) -> PathBuf {
    let dir = c.data_dir();
    let pki = dir.join("pki");
    let file = |ext: &str| dir.join(format!("{}.{ext}", cn.replace(':', "_")));
    let (key, csr, crt) = (file("key"), file("csr"), file("crt"));
    let ext = dir.join("client.ext");
    std::fs::write(&ext, "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n").unwrap();
    let p = |p: &Path| p.display().to_string();
    for args in [
        vec!["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", &p(&key)],
        vec![
            "req",
            "-new",
            "-key",
            &p(&key),
            "-subj",
            &format!("/O={o}/CN={cn}"),
            "-out",
            &p(&csr),
        ],
        vec![
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
        ],
    ] {
        let out = Command::new("openssl").args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let kubeconfig = file("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: rkube\n  cluster:\n    server: https://localhost:{}\n    certificate-authority: {}\nusers:\n- name: node\n  user:\n    client-certificate: {}\n    client-key: {}\ncontexts:\n- name: rkube\n  context:\n    cluster: rkube\n    user: node\ncurrent-context: rkube\n",
            c.port,
            p(&pki.join("ca.crt")),
            p(&crt),
            p(&key)
        ),
    )
    .unwrap();
    kubeconfig
}

/// A merge PATCH of a pod's status as node n1 (the certificate
/// `cert_kubeconfig` wrote): (HTTP code, body).
fn patch_status(c: &TestCluster, pod: &str, patch: &str) -> (u16, String) {
    let dir = c.data_dir();
    let out = Command::new("curl")
        .args([
            "-s",
            "-w",
            "\n%{http_code}",
            "-X",
            "PATCH",
            "-H",
            "Content-Type: application/merge-patch+json",
        ])
        .arg("--cacert")
        .arg(dir.join("pki/ca.crt"))
        .arg("--cert")
        .arg(dir.join("system_node_n1.crt"))
        .arg("--key")
        .arg(dir.join("system_node_n1.key"))
        .args(["-d", patch])
        .arg(format!(
            "https://localhost:{}/api/v1/namespaces/default/pods/{pod}/status",
            c.port
        ))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// kubectl as the node: (success, stdout + stderr).
fn as_node(c: &TestCluster, kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let flag = format!("--kubeconfig={}", kubeconfig.display());
    let mut all = vec![flag.as_str()];
    all.extend_from_slice(args);
    let out = c.kubectl_with(&all, stdin, &[]);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn allowed(c: &TestCluster, kc: &Path, args: &[&str], stdin: Option<&str>) {
    let (ok, out) = as_node(c, kc, args, stdin);
    assert!(ok, "{args:?} should be allowed: {out}");
}

fn denied(c: &TestCluster, kc: &Path, args: &[&str], stdin: Option<&str>, message: &str) {
    let (ok, out) = as_node(c, kc, args, stdin);
    assert!(!ok, "{args:?} should be denied: {out}");
    assert!(out.contains(message), "{args:?}: want {message:?} in {out}");
}

const NODES: &str =
    "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: n2}\n";

fn pod(name: &str, node: &str, extra_meta: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: default{extra_meta}}}\nspec:\n  nodeName: {node}\n  containers: [{{name: c, image: busybox}}]\n"
    )
}

fn lease(name: &str, ns: &str) -> String {
    format!(
        "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{holderIdentity: {name}}}\n"
    )
}

#[tokio::test]
async fn kubelet_changes_only_what_is_its_own() {
    let c = TestCluster::start_with(
        Backend::Embedded,
        &[
            rkube_e2e::cluster::TEST_DISABLED_ADMISSION,
            "--enable-admission-plugins=NodeRestriction",
        ],
    )
    .await
    .unwrap();
    let out = c.kubectl_with(&["apply", "-f", "-"], Some(NODES), &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for (name, node) in [("p1", "n1"), ("p2", "n2")] {
        let out = c.kubectl_with(&["apply", "-f", "-"], Some(&pod(name, node, "")), &[]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let kc = cert_kubeconfig(&c, "system:node:n1", "system:nodes");

    // Its own Node, but not another's, nor restricted labels or taints.
    allowed(&c, &kc, &["label", "node", "n1", "cks/test=yes"], None);
    allowed(&c, &kc, &["label", "node", "n1", "kubernetes.io/os=linux"], None);
    denied(
        &c,
        &kc,
        // A create, as the Node authorizer already refuses reading n2.
        &["create", "-f", "-"],
        Some("apiVersion: v1\nkind: Node\nmetadata: {name: n3}\n"),
        r#"nodes "n3" is forbidden: node "n1" is not allowed to modify node "n3""#,
    );
    denied(
        &c,
        &kc,
        &["label", "node", "n1", "node-restriction.kubernetes.io/test=yes"],
        None,
        r#"nodes "n1" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/test"#,
    );
    denied(
        &c,
        &kc,
        &["label", "node", "n1", "node-role.kubernetes.io/control-plane="],
        None,
        "is not allowed to modify labels: node-role.kubernetes.io/control-plane",
    );
    denied(
        &c,
        &kc,
        &["taint", "node", "n1", "k=v:NoSchedule"],
        None,
        r#"node "n1" is not allowed to modify taints"#,
    );
    // The admin still may.
    c.ok(&["label", "node", "n2", "node-restriction.kubernetes.io/test=yes"])
        .unwrap();

    // Pods: only mirror pods bound to itself; status and deletes of its own.
    denied(
        &c,
        &kc,
        &["create", "-f", "-"],
        Some(&pod("p3", "n1", "")),
        r#"pods "p3" is forbidden: pod does not have "kubernetes.io/config.mirror" annotation, node "n1" can only create mirror pods"#,
    );
    denied(
        &c,
        &kc,
        &["create", "-f", "-"],
        Some(&pod("p4", "n2", ", annotations: {kubernetes.io/config.mirror: x}")),
        r#"node "n1" can only create pods with spec.nodeName set to itself"#,
    );
    denied(
        &c,
        &kc,
        &["create", "-f", "-"],
        Some(&pod("p5", "n1", ", annotations: {kubernetes.io/config.mirror: x}")),
        r#"node "n1" can only create pods with an owner reference set to itself"#,
    );
    let uid = c.ok(&["get", "node", "n1", "-o", "jsonpath={.metadata.uid}"]).unwrap();
    let owner = format!(
        ", annotations: {{kubernetes.io/config.mirror: x}}, ownerReferences: [{{apiVersion: v1, kind: Node, name: n1, uid: {uid}, controller: true}}]"
    );
    allowed(&c, &kc, &["create", "-f", "-"], Some(&pod("mirror", "n1", &owner)));
    denied(
        &c,
        &kc,
        &["delete", "pod", "p2"],
        None,
        r#"node "n1" can only delete pods with spec.nodeName set to itself"#,
    );
    allowed(&c, &kc, &["delete", "pod", "p1", "--wait=false"], None);
    // Straight PATCHes: kubectl reads pods/status first, which the Node authorizer refuses.
    let status = r#"{"status":{"phase":"Running"}}"#;
    let (code, body) = patch_status(&c, "mirror", status);
    assert_eq!(code, 200, "{body}");
    let (code, body) = patch_status(&c, "p2", status);
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains(r#"node \"n1\" can only update pod status for pods with spec.nodeName set to itself"#),
        "{body}"
    );

    // Its Lease in kube-node-lease only.
    allowed(&c, &kc, &["create", "-f", "-"], Some(&lease("n1", "kube-node-lease")));
    denied(
        &c,
        &kc,
        &["create", "-f", "-"],
        Some(&lease("n2", "kube-node-lease")),
        "can only access node lease with the same name as the requesting node",
    );
    denied(
        &c,
        &kc,
        &["create", "-f", "-"],
        Some(&lease("n1", "default")),
        r#"can only access leases in the "kube-node-lease" system namespace"#,
    );

    // Its own CSINode only.
    let csinode = |name: &str| {
        format!("apiVersion: storage.k8s.io/v1\nkind: CSINode\nmetadata: {{name: {name}}}\nspec: {{drivers: []}}\n")
    };
    allowed(&c, &kc, &["create", "-f", "-"], Some(&csinode("n1")));
    denied(
        &c,
        &kc,
        &["create", "-f", "-"],
        Some(&csinode("n2")),
        "can only access CSINode with the same name as the requesting node",
    );

    // ResourceSlices of its own node only.
    let slice = |name: &str, node: &str| {
        format!(
            "apiVersion: resource.k8s.io/v1\nkind: ResourceSlice\nmetadata: {{name: {name}}}\nspec: {{driver: gpu.example.com, nodeName: {node}, pool: {{name: {node}, generation: 1, resourceSliceCount: 1}}}}\n"
        )
    };
    allowed(&c, &kc, &["create", "-f", "-"], Some(&slice("s1", "n1")));
    denied(
        &c,
        &kc,
        &["create", "-f", "-"],
        Some(&slice("s2", "n2")),
        "can only create ResourceSlice with the same NodeName as the requesting node",
    );
    allowed(&c, &kc, &["delete", "resourceslice", "s1"], None);

    // Tokens only bound to its own pods, by name and uid.
    c.ok(&["create", "serviceaccount", "robot"]).unwrap();
    for (name, node) in [("sa1", "n1"), ("sa2", "n2")] {
        let manifest = pod(name, node, "").replace("spec:\n", "spec:\n  serviceAccountName: robot\n");
        let out = c.kubectl_with(&["apply", "-f", "-"], Some(&manifest), &[]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let pod_uid = |name: &str| c.ok(&["get", "pod", name, "-o", "jsonpath={.metadata.uid}"]).unwrap();
    let (uid1, uid2) = (pod_uid("sa1"), pod_uid("sa2"));
    let bound = |name: &str, uid: &str| {
        let mut args = vec![
            "create".to_string(),
            "token".into(),
            "robot".into(),
            "--bound-object-kind=Pod".into(),
            format!("--bound-object-name={name}"),
        ];
        if !uid.is_empty() {
            args.push(format!("--bound-object-uid={uid}"));
        }
        args
    };
    let run = |args: Vec<String>| as_node(&c, &kc, &args.iter().map(String::as_str).collect::<Vec<_>>(), None);
    let (ok, out) = run(bound("sa1", &uid1));
    assert!(ok, "{out}");
    for (args, message) in [
        (
            vec!["create".to_string(), "token".into(), "robot".into()],
            "node requested token not bound to a pod".to_string(),
        ),
        (
            bound("sa1", ""),
            "node requested token with a pod binding without a uid".into(),
        ),
        (
            bound("sa1", "not-the-uid"),
            "the UID in the bound object reference (not-the-uid) does not match the UID in record".into(),
        ),
        (
            bound("sa2", &uid2),
            "node requested token bound to a pod scheduled on a different node".into(),
        ),
    ] {
        let (ok, out) = run(args.clone());
        assert!(!ok, "{args:?} should be denied: {out}");
        assert!(
            out.contains(&format!("serviceaccounts \"robot\" is forbidden: {message}")),
            "{args:?}: want {message:?} in {out}"
        );
    }
}
