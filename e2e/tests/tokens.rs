//! Service-account and bootstrap tokens with real kubectl: `kubectl create
//! token` (TokenRequest), `kubectl auth whoami` (SelfSubjectReview) with the
//! token, pod-bound tokens that stop working once the pod is gone, tampered
//! tokens refused with a bare 401, issuer discovery, TokenReview, and a
//! bootstrap token Secret.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use rkube_e2e::cluster::{Backend, TestCluster};
use serde_json::Value;

/// `curl` against the cluster: (HTTP code, body).
fn curl(c: &TestCluster, token: Option<&str>, path: &str) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-w", "\n%{http_code}", "--cacert"])
        .arg(c.data_dir().join("pki/ca.crt"));
    if let Some(t) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    let out = cmd.arg(format!("https://localhost:{}{path}", c.port)).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), body.to_string())
}

fn whoami(c: &TestCluster, token: &str) -> Result<Value, String> {
    let out = c.kubectl(&[&format!("--token={token}"), "auth", "whoami", "-o", "json"]);
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[tokio::test]
async fn service_account_and_bootstrap_tokens_with_kubectl() {
    let c = TestCluster::start_with(Backend::Embedded, &["--enable-bootstrap-token-auth"])
        .await
        .expect("cluster starts");
    c.ok(&["create", "serviceaccount", "robot"]).unwrap();

    // kubectl create token, then the token as a bearer.
    let token = c.ok(&["create", "token", "robot"]).unwrap().trim().to_string();
    let me = whoami(&c, &token).unwrap();
    let info = &me["status"]["userInfo"];
    assert_eq!(info["username"], "system:serviceaccount:default:robot");
    assert_eq!(
        info["groups"],
        serde_json::json!([
            "system:serviceaccounts",
            "system:serviceaccounts:default",
            "system:authenticated"
        ])
    );
    assert!(
        info["extra"]["authentication.kubernetes.io/credential-id"][0]
            .as_str()
            .unwrap()
            .starts_with("JTI=")
    );
    let (code, _) = curl(&c, Some(&token), "/api/v1/namespaces/default/secrets");
    assert_eq!(code, 403, "a service account has only its own rights");

    // Upstream's bounds.
    let err = c.fails(&["create", "token", "robot", "--duration=1m"]).unwrap();
    assert!(
        err.contains("spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"),
        "{err}"
    );

    // A tampered token is a bare 401.
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
    claims["sub"] = "system:serviceaccount:kube-system:admin".into();
    let forged = format!("{}.{}.{}", parts[0], B64.encode(claims.to_string()), parts[2]);
    let (code, body) = curl(&c, Some(&forged), "/api/v1/namespaces");
    assert_eq!(code, 401);
    let status: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["message"], "Unauthorized");
    assert!(whoami(&c, &forged).unwrap_err().contains("Unauthorized"));

    // A pod-bound token dies with its pod.
    c.ok(&[
        "run",
        "p",
        "--image=busybox",
        "--overrides={\"spec\":{\"serviceAccountName\":\"robot\"}}",
    ])
    .unwrap();
    let uid = c.ok(&["get", "pod", "p", "-o", "jsonpath={.metadata.uid}"]).unwrap();
    let bound = c
        .ok(&[
            "create",
            "token",
            "robot",
            "--bound-object-kind=Pod",
            "--bound-object-name=p",
            &format!("--bound-object-uid={}", uid.trim()),
        ])
        .unwrap()
        .trim()
        .to_string();
    let me = whoami(&c, &bound).unwrap();
    assert_eq!(
        me["status"]["userInfo"]["extra"]["authentication.kubernetes.io/pod-name"][0],
        "p"
    );
    c.ok(&["delete", "pod", "p", "--grace-period=0", "--force"]).unwrap();
    let mut refused = false;
    for _ in 0..100 {
        if curl(&c, Some(&bound), "/apis").0 == 401 {
            refused = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(refused, "the token of a deleted pod still authenticates");
    assert!(whoami(&c, &bound).unwrap_err().contains("Unauthorized"));
    assert!(whoami(&c, &token).is_ok(), "an unbound token lives on");

    // TokenReview.
    let review = format!(
        "{{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenReview\",\"spec\":{{\"token\":\"{token}\"}}}}"
    );
    let out = c.kubectl_with(&["create", "-f", "-", "-o", "json"], Some(&review), &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let review: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(review["status"]["authenticated"], true);
    assert_eq!(
        review["status"]["user"]["username"],
        "system:serviceaccount:default:robot"
    );

    // Issuer discovery: service accounts may read it, anonymous users once bound.
    let (code, body) = curl(&c, Some(&token), "/.well-known/openid-configuration");
    assert_eq!(code, 200, "{body}");
    let config: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(config["issuer"], "https://kubernetes.default.svc.cluster.local");
    let (code, body) = curl(&c, Some(&token), "/openid/v1/jwks");
    assert_eq!(code, 200);
    let jwks: Value = serde_json::from_str(&body).unwrap();
    let header: Value = serde_json::from_slice(&B64.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(jwks["keys"][0]["kid"], header["kid"]);
    assert_eq!(curl(&c, None, "/openid/v1/jwks").0, 403);
    c.ok(&[
        "create",
        "clusterrolebinding",
        "oidc-reviewer",
        "--clusterrole=system:service-account-issuer-discovery",
        "--group=system:unauthenticated",
    ])
    .unwrap();
    let mut anonymous = 0;
    for _ in 0..100 {
        anonymous = curl(&c, None, "/openid/v1/jwks").0;
        if anonymous == 200 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(anonymous, 200);

    // A bootstrap token.
    let secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: bootstrap-token-abcdef\n  namespace: kube-system\ntype: bootstrap.kubernetes.io/token\nstringData:\n  token-id: abcdef\n  token-secret: 0123456789abcdef\n  usage-bootstrap-authentication: \"true\"\n  auth-extra-groups: system:bootstrappers:kubeadm:default-node-token\n";
    let out = c.kubectl_with(&["apply", "-f", "-"], Some(secret), &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let me = whoami(&c, "abcdef.0123456789abcdef").unwrap();
    assert_eq!(me["status"]["userInfo"]["username"], "system:bootstrap:abcdef");
    assert_eq!(
        me["status"]["userInfo"]["groups"],
        serde_json::json!([
            "system:bootstrappers",
            "system:bootstrappers:kubeadm:default-node-token",
            "system:authenticated"
        ])
    );
    assert!(
        whoami(&c, "abcdef.0123456789abcdee")
            .unwrap_err()
            .contains("Unauthorized")
    );
}
