//! The bootstrap signer (`bootstrapsigner`, off by default): keeps a
//! `jws-kubeconfig-<token-id>` entry in `kube-public/cluster-info` for
//! every bootstrap token allowed to sign, holding a detached JWS (HS256,
//! keyed by the token secret, `kid` the token ID) of the ConfigMap's
//! `kubeconfig`, and removes entries of tokens that no longer may.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};

use super::{is_token_secret, signing_token};
use crate::error::{Error, is_not_found};
use crate::informer::Change;
use crate::manager::ControllerContext;
use crate::runner::{Action, new_queue, run_workers};

const NAME: &str = "bootstrap-signer-controller";
/// Where the signed ConfigMap lives.
pub const CLUSTER_INFO_NAMESPACE: &str = "kube-public";
pub const CLUSTER_INFO: &str = "cluster-info";
/// The signed key of `cluster-info`.
pub const KUBECONFIG_KEY: &str = "kubeconfig";
/// Prefix of the signature keys.
pub const JWS_PREFIX: &str = "jws-kubeconfig-";
const KEY: &str = "cluster-info";

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, Result<(), Error>> {
    run(ctx).boxed()
}

/// The detached JWS of `content`: `header..signature`, with the header
/// `{"alg":"HS256","kid":<id>}` as go-jose writes it, so a joining
/// node's recomputation yields the same string.
pub fn detached_signature(content: &str, token_id: &str, token_secret: &str) -> Result<String, Error> {
    let header = serde_json::json!({"alg": "HS256", "kid": token_id}).to_string();
    let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(content));
    let key = jsonwebtoken::EncodingKey::from_secret(token_secret.as_bytes());
    let sig = jsonwebtoken::crypto::sign(signing_input.as_bytes(), &key, jsonwebtoken::Algorithm::HS256)
        .map_err(|e| Error::other(format!("signing cluster-info: {e}")))?;
    let header_part = signing_input.split('.').next().unwrap_or_default();
    Ok(format!("{header_part}..{sig}"))
}

/// The ConfigMap data `cluster-info` should have given the signing
/// tokens, or `None` if it already has it (or has no kubeconfig).
pub fn signed_data(
    data: &BTreeMap<String, String>,
    tokens: &BTreeMap<String, String>,
) -> Result<Option<BTreeMap<String, String>>, Error> {
    let Some(content) = data.get(KUBECONFIG_KEY) else {
        return Ok(None);
    };
    let mut want: BTreeMap<String, String> = data
        .iter()
        .filter(|(k, _)| !k.starts_with(JWS_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (id, secret) in tokens {
        want.insert(format!("{JWS_PREFIX}{id}"), detached_signature(content, id, secret)?);
    }
    Ok((&want != data).then_some(want))
}

async fn run(ctx: ControllerContext) -> Result<(), Error> {
    let secrets = ctx.informers.get::<Secret>();
    let config_maps = ctx.informers.get::<ConfigMap>();
    let queue = new_queue("bootstrap_signer_queue", &ctx.metrics);
    let q = queue.clone();
    secrets.add_handler(move |change| {
        let (Change::Added(s) | Change::Updated { new: s, .. } | Change::Deleted(s)) = change;
        if is_token_secret(s) {
            q.add(KEY.into());
        }
    });
    let q = queue.clone();
    config_maps.add_handler(move |change| {
        if let Change::Added(cm) | Change::Updated { new: cm, .. } = change
            && cm.metadata.namespace.as_deref() == Some(CLUSTER_INFO_NAMESPACE)
            && cm.metadata.name.as_deref() == Some(CLUSTER_INFO)
        {
            q.add(KEY.into());
        }
    });
    secrets.wait_synced().await;
    config_maps.wait_synced().await;
    let client = ctx.client.clone();
    run_workers(NAME, queue, 1, ctx.metrics.clone(), move |_key| {
        let (client, secrets, config_maps) = (client.clone(), secrets.clone(), config_maps.clone());
        async move {
            let Some(cm) = config_maps.get(CLUSTER_INFO_NAMESPACE, CLUSTER_INFO) else {
                return Ok(Action::Done);
            };
            let now = Timestamp::now();
            let tokens: BTreeMap<String, String> = secrets
                .list(super::TOKEN_NAMESPACE)
                .iter()
                .filter(|s| is_token_secret(s))
                .filter_map(|s| signing_token(s, now))
                .collect();
            let data = cm.data.clone().unwrap_or_default();
            let Some(want) = signed_data(&data, &tokens)? else {
                return Ok(Action::Done);
            };
            let mut fresh = (*cm).clone();
            fresh.data = Some(want);
            let api = Api::<ConfigMap>::namespaced(client, CLUSTER_INFO_NAMESPACE);
            match api.replace(CLUSTER_INFO, &PostParams::default(), &fresh).await {
                Ok(_) => Ok(Action::Done),
                Err(e) if is_not_found(&e) => Ok(Action::Done),
                Err(e) => Err(e.into()),
            }
        }
    })
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn detached_signature_matches_upstream() {
        // Upstream's jws_test.go vector (content, token ID and secret).
        let content = "Hello from the kubernetes team";
        let got = detached_signature(content, "abc123", "abcdef0123456789").unwrap();
        let (header, sig) = got.split_once("..").unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.decode(header).unwrap(),
            br#"{"alg":"HS256","kid":"abc123"}"#
        );
        // Verifies as a compact JWS once the payload is put back.
        let full = format!("{header}.{}", URL_SAFE_NO_PAD.encode(content));
        let key = jsonwebtoken::DecodingKey::from_secret(b"abcdef0123456789");
        assert!(jsonwebtoken::crypto::verify(sig, full.as_bytes(), &key, jsonwebtoken::Algorithm::HS256).unwrap());
        let other = jsonwebtoken::DecodingKey::from_secret(b"0000000000000000");
        assert!(!jsonwebtoken::crypto::verify(sig, full.as_bytes(), &other, jsonwebtoken::Algorithm::HS256).unwrap());
    }

    #[test]
    fn signatures_follow_tokens() {
        let data = BTreeMap::from([
            (KUBECONFIG_KEY.to_string(), "kc".to_string()),
            (format!("{JWS_PREFIX}gone00"), "old".to_string()),
        ]);
        let tokens = BTreeMap::from([("abcdef".to_string(), "0123456789abcdef".to_string())]);
        let want = signed_data(&data, &tokens).unwrap().unwrap();
        assert_eq!(
            want.keys().collect::<Vec<_>>(),
            vec!["jws-kubeconfig-abcdef", "kubeconfig"]
        );
        // Already signed: nothing to write.
        assert_eq!(signed_data(&want, &tokens).unwrap(), None);
        // No kubeconfig: nothing to sign.
        assert_eq!(signed_data(&BTreeMap::new(), &tokens).unwrap(), None);
        // Last token gone: its signature is removed.
        let none = signed_data(&want, &BTreeMap::new()).unwrap().unwrap();
        assert_eq!(none.keys().collect::<Vec<_>>(), vec!["kubeconfig"]);
    }
}
