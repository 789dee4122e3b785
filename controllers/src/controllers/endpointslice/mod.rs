//! The EndpointSlice controller: every Service with a selector (and not of
//! type ExternalName) has EndpointSlices (`discovery.k8s.io/v1`) labelled
//! `kubernetes.io/service-name=<service>` and managed by
//! `endpointslice-controller.k8s.io`, controlled by the Service, holding at
//! most `--max-endpoints-per-slice` endpoints each, one set per address
//! family. [`reconciler`] decides the writes without IO; [`tracker`]
//! keeps a sync from acting on a cache older than its own writes;
//! [`hints`] sets topology hints from `trafficDistribution`. Slices of a
//! deleted Service go with it through the garbage collector.

pub mod desired;
pub mod hints;
pub mod reconciler;
pub mod tracker;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, PostParams};

use crate::cached_pod::CachedPod;
use crate::controllers::endpoints::service_pods::selects;
use crate::controllers::endpoints::trigger_time::{self, TriggerTimeTracker};
use crate::controllers::endpoints::{is_namespace_terminating, services_to_sync};
use crate::error::{Error, is_not_found, status_code};
use crate::informer::{Change, Informer, enqueue_changes, object_key, split_key};
use crate::manager::ControllerContext;
use crate::queue::WorkQueue;
use crate::runner::{Action, new_queue, run_controller_workers};
use desired::{CONTROLLER_NAME, MANAGED_BY_LABEL, SERVICE_NAME_LABEL, ZONE_LABEL};

const NAME: &str = "endpointslice-controller";

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, Result<(), Error>> {
    run(ctx).boxed()
}

struct EndpointSliceController {
    client: kube::Client,
    services: Informer<Service>,
    pods: Informer<CachedPod>,
    nodes: Informer<Node>,
    slices: Informer<EndpointSlice>,
    queue: WorkQueue<String>,
    tracker: tracker::SliceTracker,
    triggers: TriggerTimeTracker,
    max_endpoints_per_slice: usize,
}

/// `namespace/<service-name label>` of a slice managed by `managed_by`.
pub fn owner_key(slice: &EndpointSlice, managed_by: &str) -> Option<String> {
    let labels = slice.metadata.labels.as_ref()?;
    if labels.get(MANAGED_BY_LABEL).map(String::as_str) != Some(managed_by) {
        return None;
    }
    let service = labels.get(SERVICE_NAME_LABEL).filter(|s| !s.is_empty())?;
    Some(format!(
        "{}/{service}",
        slice.metadata.namespace.as_deref().unwrap_or_default()
    ))
}

/// Sets or removes the last-change-trigger-time annotation.
pub fn set_trigger_time(slice: &mut EndpointSlice, at: Option<Timestamp>) {
    let annotations = slice.metadata.annotations.get_or_insert_with(BTreeMap::new);
    match at {
        Some(t) => annotations.insert(trigger_time::LAST_CHANGE_TRIGGER_TIME.into(), trigger_time::format(t)),
        None => annotations.remove(trigger_time::LAST_CHANGE_TRIGGER_TIME),
    };
}

fn zone(n: &Node) -> Option<&String> {
    n.metadata.labels.as_ref().and_then(|l| l.get(ZONE_LABEL))
}

async fn run(ctx: ControllerContext) -> Result<(), Error> {
    let queue = new_queue("endpoint_slice", &ctx.metrics);
    let c = Arc::new(EndpointSliceController {
        client: ctx.client.clone(),
        services: ctx.informers.get::<Service>(),
        pods: ctx.informers.get::<CachedPod>(),
        nodes: ctx.informers.get::<Node>(),
        slices: ctx.informers.get::<EndpointSlice>(),
        queue: queue.clone(),
        tracker: tracker::SliceTracker::default(),
        triggers: TriggerTimeTracker::default(),
        max_endpoints_per_slice: ctx.config.endpoints.max_endpoints_per_slice,
    });
    c.services.add_handler(enqueue_changes(queue.clone()));
    let h = c.clone();
    c.pods.add_handler(move |change| {
        for key in services_to_sync(&h.services, change) {
            h.queue.add(key);
        }
    });
    let h = c.clone();
    c.slices.add_handler(move |change| h.on_slice(change));
    // A node appearing or changing zone changes its pods' endpoints.
    let h = c.clone();
    c.nodes.add_handler(move |change| {
        let relevant = match change {
            Change::Added(_) | Change::Deleted(_) => true,
            Change::Updated { old, new } => zone(old) != zone(new),
        };
        if relevant && h.services.has_synced() {
            for s in h.services.list_all() {
                if s.spec.as_ref().is_some_and(|s| s.selector.is_some()) {
                    h.queue.add(object_key(s.as_ref()));
                }
            }
        }
    });
    c.services.wait_synced().await;
    c.pods.wait_synced().await;
    c.nodes.wait_synced().await;
    c.slices.wait_synced().await;
    let workers = ctx.config.endpoints.concurrent_service_endpoint_syncs;
    run_controller_workers(NAME, queue, workers, &ctx.metrics, c, |c, key| c.sync(key).boxed()).await;
    Ok(())
}

impl EndpointSliceController {
    fn on_slice(&self, change: Change<'_, EndpointSlice>) {
        match change {
            Change::Added(s) => {
                if let Some(key) = owner_key(s, CONTROLLER_NAME)
                    && self.tracker.should_sync(&key, s)
                {
                    self.queue.add(key);
                }
            }
            Change::Updated { old, new } => {
                let old_key = owner_key(old, CONTROLLER_NAME);
                let new_key = owner_key(new, CONTROLLER_NAME);
                if old_key != new_key {
                    // Relabelled or taken over: both owners re-check.
                    old_key.into_iter().chain(new_key).for_each(|k| self.queue.add(k));
                } else if let Some(key) = new_key
                    && self.tracker.should_sync(&key, new)
                {
                    self.queue.add(key);
                }
            }
            Change::Deleted(s) => {
                if let Some(key) = owner_key(s, CONTROLLER_NAME)
                    && self.tracker.handle_deletion(&key, s)
                {
                    self.queue.add(key);
                }
            }
        }
    }

    async fn sync(&self, key: &str) -> Result<Action, Error> {
        let (ns, name) = split_key(key);
        let Some(service) = self.services.get(ns, name) else {
            self.tracker.delete_owner(key);
            self.triggers.delete(key);
            return Ok(Action::Done);
        };
        let spec = service.spec.as_ref();
        if spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName")
            || spec.and_then(|s| s.selector.as_ref()).is_none()
        {
            return Ok(Action::Done);
        }
        let all = self.pods.list(ns);
        let pods: Vec<&CachedPod> = all
            .iter()
            .map(Arc::as_ref)
            .filter(|p| selects(&service, p.metadata.labels.as_ref()))
            .collect();
        let existing: Vec<Arc<EndpointSlice>> = self
            .slices
            .list(ns)
            .into_iter()
            .filter(|s| owner_key(s, CONTROLLER_NAME).as_deref() == Some(key))
            .collect();
        if self.tracker.stale(key, &existing) {
            return Err(Error::other(format!(
                "EndpointSlice informer cache is out of date for service {key}"
            )));
        }
        let trigger = self.triggers.compute(key, &service, &pods);
        let nodes = self.nodes.clone();
        let lookup = move |n: &str| nodes.get("", n);
        let plan = reconciler::reconcile(&reconciler::Input {
            service: &service,
            pods: &pods,
            existing: &existing,
            node: &lookup,
            max_endpoints_per_slice: self.max_endpoints_per_slice,
        });
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), ns);
        // No new slices for a Service being deleted: the garbage collector
        // is removing them.
        if service.metadata.deletion_timestamp.is_none() {
            for mut s in plan.create {
                set_trigger_time(&mut s, trigger);
                match api.create(&PostParams::default(), &s).await {
                    Ok(created) => self.tracker.update(key, &created),
                    Err(e) if status_code(&e) == Some(403) && is_namespace_terminating(&e) => {
                        return Ok(Action::Done);
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        for mut s in plan.update {
            set_trigger_time(&mut s, trigger);
            let name = s.metadata.name.clone().unwrap_or_default();
            let updated = api.replace(&name, &PostParams::default(), &s).await?;
            self.tracker.update(key, &updated);
        }
        for s in plan.delete {
            let name = s.metadata.name.clone().unwrap_or_default();
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => self.tracker.expect_deletion(key, &s),
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(why) = plan.missing_nodes.into_iter().next() {
            // Retried with back-off until the node appears (or pod GC
            // removes the pod).
            return Err(Error::other(why));
        }
        Ok(Action::Done)
    }
}
