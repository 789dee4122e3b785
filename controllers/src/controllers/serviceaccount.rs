//! The ServiceAccounts controller: every active namespace has a `default`
//! ServiceAccount (recreated if deleted).

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;

use crate::error::{Error, is_already_exists, status_code};
use crate::informer::{Change, Informer};
use crate::manager::ControllerContext;
use crate::runner::{Action, new_queue, run_controller_workers};

const NAME: &str = "serviceaccount-controller";
/// The accounts ensured in every namespace.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, Result<(), Error>> {
    run(ctx).boxed()
}

struct State {
    client: kube::Client,
    namespaces: Informer<Namespace>,
    accounts: Informer<ServiceAccount>,
}

async fn run(ctx: ControllerContext) -> Result<(), Error> {
    let namespaces = ctx.informers.get::<Namespace>();
    let accounts = ctx.informers.get::<ServiceAccount>();
    let queue = new_queue("serviceaccount", &ctx.metrics);
    let q = queue.clone();
    namespaces.add_handler(move |change| match change {
        Change::Added(ns) | Change::Updated { new: ns, .. } => q.add(ns.metadata.name.clone().unwrap_or_default()),
        Change::Deleted(_) => {}
    });
    let q = queue.clone();
    accounts.add_handler(move |change| {
        if let Change::Deleted(sa) = change
            && sa.metadata.name.as_deref() == Some(DEFAULT_SERVICE_ACCOUNT)
        {
            q.add(sa.metadata.namespace.clone().unwrap_or_default());
        }
    });
    namespaces.wait_synced().await;
    accounts.wait_synced().await;
    let state = Arc::new(State {
        client: ctx.client.clone(),
        namespaces,
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
    async fn sync(&self, namespace: &str) -> Result<Action, Error> {
        let Some(ns) = self.namespaces.get("", namespace) else {
            return Ok(Action::Done);
        };
        if ns.metadata.deletion_timestamp.is_some() {
            return Ok(Action::Done);
        }
        if self.accounts.get(namespace, DEFAULT_SERVICE_ACCOUNT).is_some() {
            return Ok(Action::Done);
        }
        let sa = ServiceAccount {
            metadata: ObjectMeta {
                name: Some(DEFAULT_SERVICE_ACCOUNT.into()),
                ..ObjectMeta::default()
            },
            ..ServiceAccount::default()
        };
        match Api::<ServiceAccount>::namespaced(self.client.clone(), namespace)
            .create(&PostParams::default(), &sa)
            .await
        {
            Ok(_) => {
                tracing::info!(controller = NAME, namespace, "created default service account");
                Ok(Action::Done)
            }
            Err(e) if is_already_exists(&e) => Ok(Action::Done),
            // The namespace is terminating or gone.
            Err(e) if matches!(status_code(&e), Some(403 | 404)) => Ok(Action::Done),
            Err(e) => Err(e.into()),
        }
    }
}
