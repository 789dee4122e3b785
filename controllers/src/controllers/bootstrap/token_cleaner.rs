//! The token cleaner (`tokencleaner`, off by default): deletes bootstrap
//! token Secrets whose `expiration` passed (with a UID precondition, so a
//! re-created Secret of the same name survives), and looks again at the
//! others when they expire.

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Preconditions};

use super::{Expiry, TOKEN_NAMESPACE, expiration, is_token_secret};
use crate::error::{Error, is_conflict, is_not_found};
use crate::informer::{Change, Informer, object_key, split_key};
use crate::manager::ControllerContext;
use crate::runner::{Action, new_queue, run_workers};

const NAME: &str = "token-cleaner-controller";

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, Result<(), Error>> {
    run(ctx).boxed()
}

async fn run(ctx: ControllerContext) -> Result<(), Error> {
    let secrets = ctx.informers.get::<Secret>();
    let queue = new_queue("token_cleaner", &ctx.metrics);
    let q = queue.clone();
    secrets.add_handler(move |change| {
        if let Change::Added(s) | Change::Updated { new: s, .. } = change
            && is_token_secret(s)
        {
            q.add(object_key(s.as_ref()));
        }
    });
    secrets.wait_synced().await;
    let client = ctx.client.clone();
    run_workers(NAME, queue, 1, ctx.metrics.clone(), move |key| {
        let (client, secrets) = (client.clone(), secrets.clone());
        async move { sync(&client, &secrets, &key).await }
    })
    .await;
    Ok(())
}

async fn sync(client: &kube::Client, secrets: &Informer<Secret>, key: &str) -> Result<Action, Error> {
    let (ns, name) = split_key(key);
    let Some(secret) = secrets.get(ns, name).filter(|s| is_token_secret(s)) else {
        return Ok(Action::Done);
    };
    match expiration(&secret, Timestamp::now()) {
        Expiry::Never => Ok(Action::Done),
        Expiry::In(left) => Ok(Action::RequeueAfter(left)),
        Expiry::Expired => {
            tracing::info!(secret = %key, "deleting expired bootstrap token");
            let params = DeleteParams {
                preconditions: secret.metadata.uid.clone().map(|uid| Preconditions {
                    uid: Some(uid),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            let api = Api::<Secret>::namespaced(client.clone(), TOKEN_NAMESPACE);
            match api.delete(name, &params).await {
                Ok(_) => Ok(Action::Done),
                Err(e) if is_not_found(&e) || is_conflict(&e) => Ok(Action::Done),
                Err(e) => Err(e.into()),
            }
        }
    }
}
