//! The Endpoints controller: every Service with a selector (and not of
//! type ExternalName) has an Endpoints object of the same name listing the
//! addresses of the pods it selects ([`subsets`]), with the
//! [`trigger_time`] annotation and, past 1000 addresses, the
//! over-capacity annotation. Services without a selector are left to
//! whoever writes their Endpoints; an Endpoints object whose Service is
//! gone is deleted.
//!
//! [`service_pods`] holds the pod rules the EndpointSlice controller
//! shares, [`settings`] the flags of the endpoint controllers and pod GC.

pub mod service_pods;
pub mod settings;
pub mod subsets;
pub mod trigger_time;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PostParams};

use crate::cached_pod::CachedPod;
use crate::error::{Error, is_not_found, status_code};
use crate::informer::{Change, Informer, enqueue_changes, object_key, split_key};
use crate::manager::ControllerContext;
use crate::queue::WorkQueue;
use crate::runner::{Action, new_queue, run_controller_workers};
use service_pods::{is_service_ip_set, pod_change, selects};
pub use settings::{Settings, SettingsFlags};

const NAME: &str = "endpoints-controller";
/// Label marking the Endpoints of a headless Service.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
/// Annotation of leader-election records kept in Endpoints (never ours).
pub const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, Result<(), Error>> {
    run(ctx).boxed()
}

struct EndpointsController {
    client: kube::Client,
    services: Informer<Service>,
    pods: Informer<CachedPod>,
    endpoints: Informer<Endpoints>,
    queue: WorkQueue<String>,
    triggers: trigger_time::TriggerTimeTracker,
    /// Per key, a resourceVersion we already replaced: seeing it in the
    /// cache again means the cache is behind our own write.
    stale: Mutex<HashMap<String, String>>,
}

async fn run(ctx: ControllerContext) -> Result<(), Error> {
    let queue = new_queue("endpoint", &ctx.metrics);
    let c = Arc::new(EndpointsController {
        client: ctx.client.clone(),
        services: ctx.informers.get::<Service>(),
        pods: ctx.informers.get::<CachedPod>(),
        endpoints: ctx.informers.get::<Endpoints>(),
        queue: queue.clone(),
        triggers: trigger_time::TriggerTimeTracker::default(),
        stale: Mutex::default(),
    });
    c.services.add_handler(enqueue_changes(queue.clone()));
    let q = queue.clone();
    c.endpoints.add_handler(move |change| {
        if let Change::Deleted(e) = change {
            q.add(object_key(e.as_ref()));
        }
    });
    let h = c.clone();
    c.pods.add_handler(move |change| {
        for key in services_to_sync(&h.services, change) {
            h.queue.add(key);
        }
    });
    c.services.wait_synced().await;
    c.pods.wait_synced().await;
    c.endpoints.wait_synced().await;
    // Endpoints left behind by Services deleted while we were not running.
    for e in c.endpoints.list_all() {
        if !e
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(LEADER_ANNOTATION))
        {
            queue.add(object_key(e.as_ref()));
        }
    }
    let workers = ctx.config.endpoints.concurrent_endpoint_syncs;
    run_controller_workers(NAME, queue, workers, &ctx.metrics, c, |c, key| c.sync(key).boxed()).await;
    Ok(())
}

/// The Services (`namespace/name`) a pod change concerns: those selecting
/// the pod before or after a change of membership, those selecting it
/// now after a change of its address or readiness.
pub fn services_to_sync(services: &Informer<Service>, change: Change<'_, CachedPod>) -> HashSet<String> {
    let selecting = |pod: &CachedPod, out: &mut HashSet<String>| {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        for s in services.list(&ns) {
            if selects(&s, pod.metadata.labels.as_ref()) {
                out.insert(object_key(s.as_ref()));
            }
        }
    };
    let mut out = HashSet::new();
    match change {
        Change::Added(p) | Change::Deleted(p) => selecting(p, &mut out),
        Change::Updated { old, new } => {
            let c = pod_change(old, new);
            if c.membership {
                selecting(old, &mut out);
            }
            if c.membership || c.endpoints {
                selecting(new, &mut out);
            }
        }
    }
    out
}

fn without_headless(labels: &Option<BTreeMap<String, String>>) -> BTreeMap<String, String> {
    let mut l = labels.clone().unwrap_or_default();
    l.remove(HEADLESS_LABEL);
    l
}

impl EndpointsController {
    async fn sync(&self, key: &str) -> Result<Action, Error> {
        let (ns, name) = split_key(key);
        let api: Api<Endpoints> = Api::namespaced(self.client.clone(), ns);
        let Some(service) = self.services.get(ns, name) else {
            match api.delete(name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
            self.triggers.delete(key);
            self.stale.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
            return Ok(Action::Done);
        };
        let spec = service.spec.clone().unwrap_or_default();
        if spec.type_.as_deref() == Some("ExternalName") || spec.selector.is_none() {
            return Ok(Action::Done);
        }
        let all = self.pods.list(ns);
        let pods: Vec<&CachedPod> = all
            .iter()
            .map(Arc::as_ref)
            .filter(|p| selects(&service, p.metadata.labels.as_ref()))
            .collect();
        let trigger = self.triggers.compute(key, &service, &pods);
        let mut desired = subsets::desired_subsets(&service, &pods);
        let truncated = subsets::truncate(&mut desired);

        let current = self.endpoints.get(ns, name);
        if let Some(cur) = &current {
            let stale = self.stale.lock().unwrap_or_else(|e| e.into_inner()).get(key).cloned();
            if stale.is_some() && stale == cur.metadata.resource_version {
                return Err(Error::other(format!(
                    "endpoints informer cache is out of date, resource version {} already processed for endpoints {key}",
                    stale.unwrap_or_default()
                )));
            }
        }
        let service_labels = service.metadata.labels.clone().unwrap_or_default();
        if let Some(cur) = &current {
            let annotated = cur
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(subsets::OVER_CAPACITY));
            if subsets::normalized(cur.subsets.as_deref().unwrap_or_default()) == desired
                && without_headless(&cur.metadata.labels) == service_labels
                && annotated == truncated
            {
                return Ok(Action::Done);
            }
        }

        let mut meta = current
            .as_ref()
            .map(|c| c.metadata.clone())
            .unwrap_or_else(|| ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(ns.to_string()),
                ..ObjectMeta::default()
            });
        let mut labels = service_labels;
        if !is_service_ip_set(&service) {
            labels.insert(HEADLESS_LABEL.into(), String::new());
        }
        meta.labels = Some(labels);
        let annotations = meta.annotations.get_or_insert_with(BTreeMap::new);
        match trigger {
            Some(t) => annotations.insert(trigger_time::LAST_CHANGE_TRIGGER_TIME.into(), trigger_time::format(t)),
            None => annotations.remove(trigger_time::LAST_CHANGE_TRIGGER_TIME),
        };
        if truncated {
            annotations.insert(subsets::OVER_CAPACITY.into(), subsets::TRUNCATED.into());
        } else {
            annotations.remove(subsets::OVER_CAPACITY);
        }
        let new = Endpoints {
            metadata: meta,
            subsets: Some(desired),
        };
        match &current {
            None => match api.create(&PostParams::default(), &new).await {
                Ok(_) => Ok(Action::Done),
                // The namespace is terminating: creations keep failing.
                Err(e) if status_code(&e) == Some(403) && is_namespace_terminating(&e) => Ok(Action::Done),
                Err(e) => Err(e.into()),
            },
            Some(cur) => {
                let updated = api.replace(name, &PostParams::default(), &new).await?;
                if updated.metadata.resource_version != cur.metadata.resource_version
                    && let Some(rv) = cur.metadata.resource_version.clone()
                {
                    self.stale
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(key.to_string(), rv);
                }
                Ok(Action::Done)
            }
        }
    }
}

/// Whether a 403 says the namespace is being deleted.
pub fn is_namespace_terminating(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.message.contains("because it is being terminated"))
}
