//! The ResourceQuota controller (upstream's `pkg/controller/resourcequota`):
//! keeps each quota's `status.hard` equal to `spec.hard` and `status.used`
//! equal to what the namespace's objects use ([`usage`]), recounted when a
//! quota is created or its spec changes, when an object's usage goes down
//! (deletion, a pod turning terminal, a service or claim changing), and
//! every `--resource-quota-sync-period`. The apiserver's admission charges
//! quotas as objects are created; this controller releases and corrects.

pub mod quantity;
pub mod settings;
pub mod usage;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, ReplicationController, ResourceQuota, ResourceQuotaStatus, Secret, Service,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as KQuantity;
use kube::Resource;
use kube::api::{Api, PostParams};

pub use settings::{Settings, SettingsFlags};

use crate::cached_pod::CachedPod;
use crate::error::{Error, ignore_not_found};
use crate::informer::{Change, Informer};
use crate::manager::ControllerContext;
use crate::queue::WorkQueue;
use crate::runner::{Action, new_queue, run_controller_workers};
use quantity::Quantity;
use usage::Objects;

const NAME: &str = "resourcequota-controller";

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, Result<(), Error>> {
    run(ctx).boxed()
}

struct QuotaController {
    client: kube::Client,
    quotas: Informer<ResourceQuota>,
    pods: Informer<CachedPod>,
    services: Informer<Service>,
    claims: Informer<PersistentVolumeClaim>,
    config_maps: Informer<ConfigMap>,
    secrets: Informer<Secret>,
    controllers: Informer<ReplicationController>,
}

/// Re-queues every quota of the namespace of an object whose usage went
/// down (upstream's replenishment). Creations are not watched: admission
/// charged them already, and a recount from a cache that has not seen the
/// new object yet would undo that charge.
fn replenish<K>(
    quotas: &Informer<ResourceQuota>,
    queue: &WorkQueue<String>,
    change: Change<'_, K>,
    lowered: fn(&K, &K) -> bool,
) where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let o = match change {
        Change::Deleted(o) => o,
        Change::Updated { old, new } if lowered(old, new) => new,
        _ => return,
    };
    let ns = o.meta().namespace.clone().unwrap_or_default();
    for q in quotas.list(&ns) {
        queue.add(format!("{ns}/{}", q.meta().name.clone().unwrap_or_default()));
    }
}

/// A pod stops counting when it becomes terminal.
fn pod_lowered(old: &CachedPod, new: &CachedPod) -> bool {
    !usage::pod_usage(old).is_empty() && usage::pod_usage(new).is_empty()
}

/// A service's or claim's usage changes with its type or request.
fn service_changed(old: &Service, new: &Service) -> bool {
    usage::service_usage(old) != usage::service_usage(new)
}

fn claim_changed(old: &PersistentVolumeClaim, new: &PersistentVolumeClaim) -> bool {
    usage::claim_usage(old) != usage::claim_usage(new)
}

fn never<K>(_: &K, _: &K) -> bool {
    false
}

macro_rules! watch_kind {
    ($c:expr, $field:ident, $queue:expr, $lowered:expr) => {{
        let (quotas, q) = ($c.quotas.clone(), $queue.clone());
        $c.$field
            .add_handler(move |change| replenish(&quotas, &q, change, $lowered));
    }};
}

async fn run(ctx: ControllerContext) -> Result<(), Error> {
    let settings = ctx.config.resourcequota.clone();
    let c = Arc::new(QuotaController {
        client: ctx.client.clone(),
        quotas: ctx.informers.get(),
        pods: ctx.informers.get(),
        services: ctx.informers.get(),
        claims: ctx.informers.get(),
        config_maps: ctx.informers.get(),
        secrets: ctx.informers.get(),
        controllers: ctx.informers.get(),
    });
    c.quotas.wait_synced().await;
    c.pods.wait_synced().await;
    c.services.wait_synced().await;
    c.claims.wait_synced().await;
    c.config_maps.wait_synced().await;
    c.secrets.wait_synced().await;
    c.controllers.wait_synced().await;
    let queue = new_queue("resourcequota_primary", &ctx.metrics);
    let q = queue.clone();
    c.quotas.add_handler(move |change| {
        // Status updates (ours and admission's) do not need a recount;
        // only new quotas and changed specs do.
        let o = match change {
            Change::Added(o) => o,
            Change::Updated { old, new } if old.spec != new.spec => new,
            _ => return,
        };
        {
            q.add(format!(
                "{}/{}",
                o.metadata.namespace.clone().unwrap_or_default(),
                o.metadata.name.clone().unwrap_or_default()
            ));
        }
    });
    watch_kind!(c, pods, queue, pod_lowered);
    watch_kind!(c, services, queue, service_changed);
    watch_kind!(c, claims, queue, claim_changed);
    watch_kind!(c, config_maps, queue, never);
    watch_kind!(c, secrets, queue, never);
    watch_kind!(c, controllers, queue, never);
    // The full resync.
    let (q, h) = (queue.clone(), c.clone());
    let resync = async move {
        let mut tick = tokio::time::interval(settings.sync_period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            for quota in h.quotas.list_all() {
                q.add(format!(
                    "{}/{}",
                    quota.metadata.namespace.clone().unwrap_or_default(),
                    quota.metadata.name.clone().unwrap_or_default()
                ));
            }
        }
    };
    let workers = run_controller_workers(NAME, queue, settings.concurrent_syncs, &ctx.metrics, c, |c, key| {
        c.sync(key).boxed()
    });
    tokio::join!(resync, workers);
    Ok(())
}

fn to_list(l: &usage::ResourceList) -> BTreeMap<String, KQuantity> {
    l.iter().map(|(k, v)| (k.clone(), KQuantity(v.to_string()))).collect()
}

/// Whether two resource lists hold the same names and amounts.
fn same(a: Option<&BTreeMap<String, KQuantity>>, b: &BTreeMap<String, KQuantity>) -> bool {
    let Some(a) = a else { return b.is_empty() };
    a.len() == b.len()
        && a.iter().all(|(k, v)| {
            b.get(k)
                .is_some_and(|w| Quantity::parse(&v.0).map(|q| q.nanos) == Quantity::parse(&w.0).map(|q| q.nanos))
        })
}

impl QuotaController {
    async fn sync(&self, key: &str) -> Result<Action, Error> {
        let Some((ns, name)) = key.split_once('/') else {
            return Ok(Action::Done);
        };
        let Some(quota) = self.quotas.get(ns, name) else {
            return Ok(Action::Done);
        };
        let (pods, services, claims) = (self.pods.list(ns), self.services.list(ns), self.claims.list(ns));
        let (config_maps, secrets) = (self.config_maps.list(ns), self.secrets.list(ns));
        let (controllers, quotas) = (self.controllers.list(ns), self.quotas.list(ns));
        let objects = Objects {
            pods: pods.iter().map(AsRef::as_ref).collect(),
            services: services.iter().map(AsRef::as_ref).collect(),
            claims: claims.iter().map(AsRef::as_ref).collect(),
            config_maps: config_maps.iter().map(AsRef::as_ref).collect(),
            secrets: secrets.iter().map(AsRef::as_ref).collect(),
            controllers: controllers.iter().map(AsRef::as_ref).collect(),
            quotas: quotas.iter().map(AsRef::as_ref).collect(),
        };
        let mut used = to_list(&usage::calculate(&quota, &objects));
        // Names this controller cannot count keep what admission recorded.
        let recorded = quota.status.as_ref().and_then(|s| s.used.as_ref());
        for (k, v) in used.iter_mut() {
            if !usage::is_counted(k)
                && let Some(r) = recorded.and_then(|r| r.get(k))
            {
                *v = r.clone();
            }
        }
        let hard = quota.spec.as_ref().and_then(|s| s.hard.clone()).unwrap_or_default();
        let status = quota.status.as_ref();
        if same(status.and_then(|s| s.hard.as_ref()), &hard) && same(status.and_then(|s| s.used.as_ref()), &used) {
            return Ok(Action::Done);
        }
        let mut updated = (*quota).clone();
        updated.status = Some(ResourceQuotaStatus {
            hard: Some(hard),
            used: Some(used),
        });
        let api: Api<ResourceQuota> = Api::namespaced(self.client.clone(), ns);
        ignore_not_found(api.replace_status(name, &PostParams::default(), &updated).await)?;
        Ok(Action::Done)
    }
}
