//! The namespace controller: a namespace with a deletionTimestamp has all
//! its content deleted, its deletion conditions reported, and then its
//! `kubernetes` finalizer removed through `PUT .../finalize`, after which
//! the apiserver deletes it.

mod conditions;
mod deleter;

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::PostParams;

use crate::error::{Error, ignore_not_found, is_conflict, is_not_found};
use crate::informer::Change;
use crate::manager::ControllerContext;
use crate::runner::{Action, new_queue, run_workers};
pub use conditions::{CONTENT_FAILURE, CONTENT_REMAINING, DISCOVERY_FAILURE, FINALIZERS_REMAINING};

const NAME: &str = "namespace-controller";
/// The finalizer this controller owns.
pub const FINALIZER_KUBERNETES: &str = "kubernetes";

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, Result<(), Error>> {
    run(ctx).boxed()
}

async fn run(ctx: ControllerContext) -> Result<(), Error> {
    let namespaces = ctx.informers.get::<Namespace>();
    let queue = new_queue("namespace", &ctx.metrics);
    let q = queue.clone();
    namespaces.add_handler(move |change| match change {
        Change::Added(ns) | Change::Updated { new: ns, .. } if ns.metadata.deletion_timestamp.is_some() => {
            q.add(ns.metadata.name.clone().unwrap_or_default())
        }
        _ => {}
    });
    namespaces.wait_synced().await;
    let client = ctx.client.clone();
    let state = Arc::new(client);
    run_workers(
        NAME,
        queue,
        ctx.config.concurrency.namespace,
        ctx.metrics.clone(),
        move |key| {
            let client = state.clone();
            async move { sync(&client, &key).await }
        },
    )
    .await;
    Ok(())
}

async fn sync(client: &kube::Client, name: &str) -> Result<Action, Error> {
    let api: Api<Namespace> = Api::all(client.clone());
    let Some(mut ns) = ignore_not_found(api.get(name).await)? else {
        return Ok(Action::Done);
    };
    if ns.metadata.deletion_timestamp.is_none() {
        return Ok(Action::Done);
    }
    let has_finalizer = |ns: &Namespace| {
        ns.spec
            .as_ref()
            .and_then(|s| s.finalizers.as_ref())
            .is_some_and(|f| f.iter().any(|f| f == FINALIZER_KUBERNETES))
    };
    if !has_finalizer(&ns) {
        return Ok(Action::Done);
    }
    let mut conditions = conditions::ConditionUpdater::default();
    let pass = deleter::delete_all_content(client, name, &mut conditions).await;
    let status = ns.status.get_or_insert_with(Default::default);
    if conditions.update(status) {
        match api.replace_status(name, &PostParams::default(), &ns).await {
            Ok(updated) => ns = updated,
            Err(e) if is_not_found(&e) => return Ok(Action::Done),
            Err(e) if is_conflict(&e) => return Err(e.into()),
            Err(e) => tracing::warn!(controller = NAME, namespace = name, error = %e, "failed to update conditions"),
        }
    }
    if pass.failed {
        return Err(Error::other(format!(
            "content of namespace {name} was not fully deleted"
        )));
    }
    if pass.estimate > 0 {
        tracing::debug!(
            controller = NAME,
            namespace = name,
            estimate = pass.estimate,
            "content remaining"
        );
        return Ok(Action::RequeueAfter(Duration::from_secs(pass.estimate / 2 + 1)));
    }
    if let Some(spec) = ns.spec.as_mut()
        && let Some(f) = spec.finalizers.as_mut()
    {
        f.retain(|f| f != FINALIZER_KUBERNETES);
    }
    match api
        .replace_subresource("finalize", name, &PostParams::default(), &ns)
        .await
    {
        Ok(_) => {
            tracing::info!(
                controller = NAME,
                namespace = name,
                "namespace content deleted; finalized"
            );
            Ok(Action::Done)
        }
        Err(e) if is_not_found(&e) => Ok(Action::Done),
        Err(e) => Err(e.into()),
    }
}
