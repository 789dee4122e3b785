//! The legacy service-account token controller (upstream's
//! `serviceaccount-token-controller`, `tokens_controller.go`): a Secret of
//! type `kubernetes.io/service-account-token` naming a service account in
//! its `kubernetes.io/service-account.name` annotation gets `token` (a
//! legacy JWT, [`signer`]), `ca.crt` (`--root-ca-file`) and `namespace`,
//! and the account's UID annotation; a token Secret whose account is gone
//! (or has another UID) is deleted, as are an account's Secrets when the
//! account is deleted. Runs only with `--service-account-private-key-file`.

pub mod signer;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};

use crate::error::{Error, is_conflict, is_not_found};
use crate::informer::{Change, Informer, object_key, split_key};
use crate::manager::ControllerContext;
use crate::queue::WorkQueue;
use crate::runner::{Action, new_queue, run_controller_workers};
use signer::{TokenSigner, TokenSubject};

const NAME: &str = "serviceaccount-token-controller";
/// The Secret type this controller fills.
pub const SECRET_TYPE: &str = "kubernetes.io/service-account-token";
pub const SERVICE_ACCOUNT_NAME_KEY: &str = "kubernetes.io/service-account.name";
pub const SERVICE_ACCOUNT_UID_KEY: &str = "kubernetes.io/service-account.uid";
pub const TOKEN_KEY: &str = "token";
pub const CA_CERT_KEY: &str = "ca.crt";
pub const NAMESPACE_KEY: &str = "namespace";

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, Result<(), Error>> {
    run(ctx).boxed()
}

fn is_token_secret(s: &Secret) -> bool {
    s.type_.as_deref() == Some(SECRET_TYPE)
}

fn annotation<'a>(s: &'a Secret, key: &str) -> &'a str {
    s.annotations().get(key).map(String::as_str).unwrap_or_default()
}

/// Queues every token Secret of `sa`.
fn enqueue_secrets_of(secrets: &Informer<Secret>, q: &WorkQueue<String>, sa: &ServiceAccount) {
    let ns = sa.namespace().unwrap_or_default();
    for s in secrets.list(&ns) {
        if is_token_secret(&s) && annotation(&s, SERVICE_ACCOUNT_NAME_KEY) == sa.name_any() {
            q.add(object_key(s.as_ref()));
        }
    }
}

/// What a token Secret lacks, given the root CA: the data to add.
pub fn missing_data(secret: &Secret, root_ca: &str) -> (bool, bool, bool) {
    let data = secret.data.as_ref();
    let field = |k: &str| data.and_then(|d| d.get(k)).map(|v| v.0.as_slice()).unwrap_or_default();
    let needs_ca = !root_ca.is_empty() && field(CA_CERT_KEY) != root_ca.as_bytes();
    (needs_ca, field(NAMESPACE_KEY).is_empty(), field(TOKEN_KEY).is_empty())
}

struct State {
    client: kube::Client,
    signer: TokenSigner,
    root_ca: String,
    secrets: Informer<Secret>,
    accounts: Informer<ServiceAccount>,
}

async fn run(ctx: ControllerContext) -> Result<(), Error> {
    let Some(path) = ctx.config.service_account_private_key_file.clone() else {
        tracing::warn!(
            controller = NAME,
            "no --service-account-private-key-file; not filling service account token Secrets"
        );
        return Ok(());
    };
    let signer = TokenSigner::from_file(&path).map_err(|e| Error::other(e.to_string()))?;
    let secrets = ctx.informers.get::<Secret>();
    let accounts = ctx.informers.get::<ServiceAccount>();
    let queue = new_queue("serviceaccount_tokens_secret", &ctx.metrics);
    let q = queue.clone();
    secrets.add_handler(move |change| {
        if let Change::Added(s) | Change::Updated { new: s, .. } = change
            && is_token_secret(s)
        {
            q.add(object_key(s.as_ref()));
        }
    });
    let (q, s) = (queue.clone(), secrets.clone());
    accounts.add_handler(move |change| {
        let (Change::Added(sa) | Change::Updated { new: sa, .. } | Change::Deleted(sa)) = change;
        enqueue_secrets_of(&s, &q, sa);
    });
    secrets.wait_synced().await;
    accounts.wait_synced().await;
    let state = Arc::new(State {
        client: ctx.client.clone(),
        signer,
        root_ca: ctx.config.root_ca.clone().unwrap_or_default(),
        secrets,
        accounts,
    });
    run_controller_workers(
        NAME,
        queue,
        ctx.config.concurrency.serviceaccount,
        &ctx.metrics,
        state,
        |c, key| c.sync(key).boxed(),
    )
    .await;
    Ok(())
}

impl State {
    async fn sync(&self, key: &str) -> Result<Action, Error> {
        let (ns, name) = split_key(key);
        let Some(secret) = self.secrets.get(ns, name).filter(|s| is_token_secret(s)) else {
            return Ok(Action::Done);
        };
        if secret.metadata.deletion_timestamp.is_some() {
            return Ok(Action::Done);
        }
        let api = Api::<Secret>::namespaced(self.client.clone(), ns);
        let sa_name = annotation(&secret, SERVICE_ACCOUNT_NAME_KEY);
        let sa_uid = annotation(&secret, SERVICE_ACCOUNT_UID_KEY);
        let account = match self.accounts.get(ns, sa_name) {
            Some(sa) => Some(sa),
            // A cache miss may be an account created a moment ago.
            None if !sa_name.is_empty() => Api::<ServiceAccount>::namespaced(self.client.clone(), ns)
                .get_opt(sa_name)
                .await?
                .map(Arc::new),
            None => None,
        };
        let account = account.filter(|sa| sa_uid.is_empty() || sa.metadata.uid.as_deref() == Some(sa_uid));
        let Some(account) = account.filter(|sa| sa.metadata.deletion_timestamp.is_none()) else {
            tracing::info!(controller = NAME, secret = %key, "deleting token Secret of a missing service account");
            let params = DeleteParams {
                preconditions: secret.metadata.uid.clone().map(|uid| Preconditions {
                    uid: Some(uid),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            return match api.delete(name, &params).await {
                Ok(_) => Ok(Action::Done),
                Err(e) if is_not_found(&e) || is_conflict(&e) => Ok(Action::Done),
                Err(e) => Err(e.into()),
            };
        };
        let (needs_ca, needs_ns, needs_token) = missing_data(&secret, &self.root_ca);
        let account_uid = account.metadata.uid.clone().unwrap_or_default();
        if !needs_ca && !needs_ns && !needs_token && sa_uid == account_uid {
            return Ok(Action::Done);
        }
        // Work on the live object, as upstream: the cache may be behind.
        let Some(mut live) = api.get_opt(name).await? else {
            return Ok(Action::Done);
        };
        let (needs_ca, needs_ns, needs_token) = missing_data(&live, &self.root_ca);
        let data = live.data.get_or_insert_with(BTreeMap::new);
        if needs_ca {
            data.insert(CA_CERT_KEY.into(), ByteString(self.root_ca.as_bytes().to_vec()));
        }
        if needs_ns {
            data.insert(NAMESPACE_KEY.into(), ByteString(ns.as_bytes().to_vec()));
        }
        if needs_token {
            let token = self
                .signer
                .legacy_token(&TokenSubject {
                    namespace: ns,
                    service_account: sa_name,
                    service_account_uid: &account_uid,
                    secret: name,
                })
                .map_err(|e| Error::other(e.to_string()))?;
            data.insert(TOKEN_KEY.into(), ByteString(token.into_bytes()));
        }
        live.annotations_mut()
            .insert(SERVICE_ACCOUNT_UID_KEY.into(), account_uid);
        match api.replace(name, &PostParams::default(), &live).await {
            Ok(_) => Ok(Action::Done),
            Err(e) if is_not_found(&e) => Ok(Action::Done),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn secret(data: &[(&str, &str)]) -> Secret {
        Secret {
            type_: Some(SECRET_TYPE.into()),
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Secret::default()
        }
    }

    #[test]
    fn missing_fields() {
        assert_eq!(missing_data(&secret(&[]), "CA"), (true, true, true));
        assert_eq!(missing_data(&secret(&[]), ""), (false, true, true));
        let full = secret(&[("ca.crt", "CA"), ("namespace", "ns"), ("token", "t")]);
        assert_eq!(missing_data(&full, "CA"), (false, false, false));
        // A rotated CA is rewritten; the token is kept.
        assert_eq!(missing_data(&full, "NEW"), (true, false, false));
    }
}
