//! The EndpointSlice mirroring controller: custom Endpoints of Services
//! without a selector are mirrored into EndpointSlices managed by
//! `endpointslicemirroring-controller.k8s.io` and controlled by the
//! Endpoints object ([`reconciler`]). Endpoints labelled
//! `endpointslice.kubernetes.io/skip-mirror=true` or holding a
//! leader-election record are not mirrored; mirrored slices go when the
//! Endpoints, its Service, or the Service's selector-less-ness does.

pub mod reconciler;

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, PostParams};

use crate::controllers::endpoints::{LEADER_ANNOTATION, is_namespace_terminating};
use crate::controllers::endpointslice::owner_key;
use crate::controllers::endpointslice::tracker::SliceTracker;
use crate::error::{Error, is_not_found, status_code};
use crate::informer::{Change, Informer, object_key, split_key};
use crate::manager::ControllerContext;
use crate::queue::WorkQueue;
use crate::runner::{Action, new_queue, run_controller_workers};
use reconciler::CONTROLLER_NAME;

const NAME: &str = "endpointslice-mirroring-controller";
/// The label opting an Endpoints object out of mirroring.
pub const SKIP_MIRROR_LABEL: &str = "endpointslice.kubernetes.io/skip-mirror";

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, Result<(), Error>> {
    run(ctx).boxed()
}

struct MirroringController {
    client: kube::Client,
    services: Informer<Service>,
    endpoints: Informer<Endpoints>,
    slices: Informer<EndpointSlice>,
    queue: WorkQueue<String>,
    tracker: SliceTracker,
    max_per_subset: usize,
}

/// Whether an Endpoints object is mirrored at all.
pub fn should_mirror(e: &Endpoints) -> bool {
    let skip = e
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(SKIP_MIRROR_LABEL))
        .is_some_and(|v| v == "true");
    let leader = e
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(LEADER_ANNOTATION));
    !skip && !leader
}

async fn run(ctx: ControllerContext) -> Result<(), Error> {
    let queue = new_queue("endpoint_slice_mirroring", &ctx.metrics);
    let c = Arc::new(MirroringController {
        client: ctx.client.clone(),
        services: ctx.informers.get::<Service>(),
        endpoints: ctx.informers.get::<Endpoints>(),
        slices: ctx.informers.get::<EndpointSlice>(),
        queue: queue.clone(),
        tracker: SliceTracker::default(),
        max_per_subset: ctx.config.endpoints.mirroring_max_endpoints_per_subset,
    });
    let q = queue.clone();
    c.services.add_handler(move |change| {
        let (Change::Added(s) | Change::Updated { new: s, .. } | Change::Deleted(s)) = change;
        q.add(object_key(s.as_ref()));
    });
    let q = queue.clone();
    c.endpoints.add_handler(move |change| {
        let (Change::Added(e) | Change::Updated { new: e, .. } | Change::Deleted(e)) = change;
        q.add(object_key(e.as_ref()));
    });
    let h = c.clone();
    c.slices.add_handler(move |change| {
        let (key, news) = match &change {
            Change::Added(s) => (owner_key(s, CONTROLLER_NAME), h.tracker_news(s, false)),
            Change::Updated { old, new } => {
                if let Some(k) =
                    owner_key(old, CONTROLLER_NAME).filter(|k| Some(k) != owner_key(new, CONTROLLER_NAME).as_ref())
                {
                    h.queue.add(k);
                }
                (owner_key(new, CONTROLLER_NAME), h.tracker_news(new, false))
            }
            Change::Deleted(s) => (owner_key(s, CONTROLLER_NAME), h.tracker_news(s, true)),
        };
        if let Some(k) = key
            && news
        {
            h.queue.add(k);
        }
    });
    c.services.wait_synced().await;
    c.endpoints.wait_synced().await;
    c.slices.wait_synced().await;
    let workers = ctx.config.endpoints.mirroring_concurrent_service_endpoint_syncs;
    run_controller_workers(NAME, queue, workers, &ctx.metrics, c, |c, key| c.sync(key).boxed()).await;
    Ok(())
}

impl MirroringController {
    /// Whether a slice event is not the echo of our own write.
    fn tracker_news(&self, s: &EndpointSlice, deleted: bool) -> bool {
        let Some(key) = owner_key(s, CONTROLLER_NAME) else {
            return false;
        };
        if deleted {
            self.tracker.handle_deletion(&key, s)
        } else {
            self.tracker.should_sync(&key, s)
        }
    }

    fn mirrored(&self, ns: &str, key: &str) -> Vec<Arc<EndpointSlice>> {
        self.slices
            .list(ns)
            .into_iter()
            .filter(|s| owner_key(s, CONTROLLER_NAME).as_deref() == Some(key))
            .collect()
    }

    async fn delete_mirrored(&self, ns: &str, key: &str) -> Result<Action, Error> {
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), ns);
        for s in self.mirrored(ns, key) {
            match api
                .delete(s.metadata.name.as_deref().unwrap_or(""), &DeleteParams::default())
                .await
            {
                Ok(_) => self.tracker.expect_deletion(key, &s),
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Action::Done)
    }

    async fn sync(&self, key: &str) -> Result<Action, Error> {
        let (ns, name) = split_key(key);
        let service = self.services.get(ns, name);
        let endpoints = self.endpoints.get(ns, name);
        let wanted = service
            .as_ref()
            .is_some_and(|s| s.spec.as_ref().is_none_or(|s| s.selector.is_none()))
            && endpoints.as_ref().is_some_and(|e| should_mirror(e));
        let Some(endpoints) = endpoints.filter(|_| wanted) else {
            let result = self.delete_mirrored(ns, key).await;
            if service.is_none() {
                self.tracker.delete_owner(key);
            }
            return result;
        };
        if endpoints.metadata.deletion_timestamp.is_some() {
            return Ok(Action::Done);
        }
        let existing = self.mirrored(ns, key);
        if self.tracker.stale(key, &existing) {
            return Err(Error::other(format!(
                "EndpointSlice informer cache is out of date for endpoints {key}"
            )));
        }
        let plan = reconciler::reconcile(&endpoints, &existing, self.max_per_subset);
        if plan.skipped > 0 {
            tracing::warn!(
                controller = NAME,
                endpoints = key,
                skipped = plan.skipped,
                invalid = plan.invalid,
                "addresses not mirrored (invalid, or over --mirroring-max-endpoints-per-subset)"
            );
        }
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), ns);
        for s in &plan.create {
            match api.create(&PostParams::default(), s).await {
                Ok(created) => self.tracker.update(key, &created),
                Err(e) if status_code(&e) == Some(403) && is_namespace_terminating(&e) => return Ok(Action::Done),
                Err(e) => return Err(e.into()),
            }
        }
        for s in &plan.update {
            let updated = api
                .replace(s.metadata.name.as_deref().unwrap_or(""), &PostParams::default(), s)
                .await?;
            self.tracker.update(key, &updated);
        }
        for s in &plan.delete {
            match api
                .delete(s.metadata.name.as_deref().unwrap_or(""), &DeleteParams::default())
                .await
            {
                Ok(_) => self.tracker.expect_deletion(key, s),
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Action::Done)
    }
}
