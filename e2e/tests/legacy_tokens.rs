//! The legacy service-account token controller (in-process controller
//! manager, signing with the apiserver's `<data-dir>/pki/sa.key`) against
//! the real apiserver binary: a `kubernetes.io/service-account-token`
//! Secret created with kubectl gets `token`, `ca.crt` and `namespace`, the
//! token authenticates with real kubectl as the service account, and
//! deleting the account deletes the Secret (and with it the token).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use rkube_e2e::cluster::{Backend, TestCluster};
use rkube_e2e::controllers_support::{ControllerManager, client, wait_for};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

fn whoami(c: &TestCluster, token: &str) -> Result<Value, String> {
    let out = c.kubectl(&[&format!("--token={token}"), "auth", "whoami", "-o", "json"]);
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_token_secret_is_filled_and_authenticates() {
    let c = TestCluster::start(Backend::Embedded).await.expect("cluster starts");
    let client = client(&c).await.unwrap();
    let key = c.data_dir().join("pki/sa.key");
    let _cm = ControllerManager::start(&c, |cfg| cfg.service_account_private_key_file = Some(key)).unwrap();
    c.ok(&["create", "serviceaccount", "robot"]).unwrap();
    let manifest = r#"{"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": {"name": "robot-token", "annotations": {"kubernetes.io/service-account.name": "robot"}}}"#;
    c.kubectl_with(&["apply", "-f", "-"], Some(manifest), &[]);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let secret = wait_for("token filled", WAIT, || async {
        let s = secrets.get("robot-token").await?;
        Ok(s.data.as_ref().is_some_and(|d| d.contains_key("token")).then_some(s))
    })
    .await
    .unwrap();
    let data = secret.data.unwrap();
    let ca = std::fs::read(c.data_dir().join("pki/ca.crt")).unwrap();
    assert_eq!(data["ca.crt"].0, ca);
    assert_eq!(data["namespace"].0, b"default");
    let sa_uid = c
        .ok(&["get", "serviceaccount", "robot", "-o", "jsonpath={.metadata.uid}"])
        .unwrap();
    assert_eq!(
        secret.metadata.annotations.unwrap()["kubernetes.io/service-account.uid"],
        sa_uid.trim()
    );
    let token = String::from_utf8(data["token"].0.clone()).unwrap();
    let me = whoami(&c, &token).unwrap();
    assert_eq!(
        me["status"]["userInfo"]["username"],
        "system:serviceaccount:default:robot"
    );

    // The account goes: so do its token Secret and the token's validity.
    c.ok(&["delete", "serviceaccount", "robot"]).unwrap();
    wait_for("token Secret deleted", WAIT, || async {
        Ok(secrets.get_opt("robot-token").await?.is_none().then_some(()))
    })
    .await
    .unwrap();
    assert!(whoami(&c, &token).unwrap_err().contains("Unauthorized"));
}
