//! The bootstrap signer and token cleaner (off by default) in the
//! `rkube-controllers` binary, turned on with upstream's names in
//! `--controllers`, against the real apiserver binary: `kube-public/
//! cluster-info` gets a `jws-kubeconfig-<token-id>` signature for each
//! token allowed to sign (and loses it with the token), and an expired
//! bootstrap token Secret is deleted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, PostParams};
use rkube_controllers::controllers::bootstrap::signer::detached_signature;
use rkube_e2e::controllers_support::{Controllers, Env, EnvOptions, wait_for};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

const KUBECONFIG: &str = "apiVersion: v1
kind: Config
clusters:
- name: ''
  cluster:
    certificate-authority-data: Y2E=
    server: https://10.0.0.1:6443
contexts: []
current-context: ''
preferences: {}
users: []
";

/// A bootstrap token Secret `bootstrap-token-<id>` allowed to sign, with
/// `expiration` if given.
fn token(id: &str, secret: &str, expiration: Option<Timestamp>) -> Secret {
    let mut data = json!({
        "token-id": id,
        "token-secret": secret,
        "usage-bootstrap-signing": "true",
        "usage-bootstrap-authentication": "true",
    });
    if let Some(at) = expiration {
        data["expiration"] = json!(at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
    }
    serde_json::from_value(json!({
        "metadata": {"name": format!("bootstrap-token-{id}"), "namespace": "kube-system"},
        "type": "bootstrap.kubernetes.io/token",
        "stringData": data,
    }))
    .unwrap()
}

fn signatures(cm: &ConfigMap) -> BTreeMap<String, String> {
    cm.data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k.starts_with("jws-kubeconfig-"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_info_is_signed_per_token_and_expired_tokens_are_deleted() {
    let e = Env::start(EnvOptions {
        controllers: Controllers::Binary(vec![
            "--controllers=*,bootstrap-signer-controller,token-cleaner-controller".into(),
        ]),
        ..EnvOptions::default()
    })
    .await
    .expect("environment starts");
    let cms: Api<ConfigMap> = Api::namespaced(e.client.clone(), "kube-public");
    let secrets: Api<Secret> = Api::namespaced(e.client.clone(), "kube-system");
    let cluster_info: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "cluster-info"},
        "data": {"kubeconfig": KUBECONFIG},
    }))
    .unwrap();
    cms.create(&PostParams::default(), &cluster_info).await.unwrap();
    let now = Timestamp::now();
    let hour = SignedDuration::from_secs(3600);
    secrets
        .create(
            &PostParams::default(),
            &token("abcdef", "0123456789abcdef", Some(now + hour)),
        )
        .await
        .unwrap();
    secrets
        .create(
            &PostParams::default(),
            &token("old000", "fedcba9876543210", Some(now - hour)),
        )
        .await
        .unwrap();

    // The live token signs the kubeconfig; the expired one does not.
    let signed = wait_for("cluster-info signed", WAIT, || async {
        let cm = cms.get("cluster-info").await?;
        Ok((!signatures(&cm).is_empty()).then_some(cm))
    })
    .await
    .unwrap_or_else(|err| panic!("{err}\n{}", e.controllers_log()));
    let want = detached_signature(KUBECONFIG, "abcdef", "0123456789abcdef").unwrap();
    assert_eq!(
        signatures(&signed),
        BTreeMap::from([("jws-kubeconfig-abcdef".to_string(), want.clone())])
    );
    let (header, _) = want.split_once("..").expect("a detached JWS");
    assert_eq!(
        URL_SAFE_NO_PAD.decode(header).unwrap(),
        br#"{"alg":"HS256","kid":"abcdef"}"#
    );
    assert_eq!(
        signed.data.as_ref().unwrap().get("kubeconfig").map(String::as_str),
        Some(KUBECONFIG)
    );

    // The token cleaner deletes the expired token and keeps the other.
    wait_for("the expired token deleted", WAIT, || async {
        Ok(secrets.get_opt("bootstrap-token-old000").await?.is_none().then_some(()))
    })
    .await
    .unwrap_or_else(|err| panic!("{err}\n{}", e.controllers_log()));
    assert!(secrets.get_opt("bootstrap-token-abcdef").await.unwrap().is_some());

    // A deleted token's signature goes with it.
    secrets
        .delete("bootstrap-token-abcdef", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("the signature removed", WAIT, || async {
        let cm = cms.get("cluster-info").await?;
        Ok(signatures(&cm).is_empty().then_some(()))
    })
    .await
    .unwrap();
}
