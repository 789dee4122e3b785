//! The Deployment controller: rolls a Deployment's pod template out
//! through ReplicaSets named `<deployment>-<pod-template-hash>` ([`hash`]),
//! with the RollingUpdate (maxSurge/maxUnavailable) or Recreate strategy,
//! revision annotations and history cleanup (`revisionHistoryLimit`),
//! proportional scaling when resized mid-rollout ([`math`]), pause and
//! resume, and status with the Progressing and Available conditions
//! ([`progress`]). A rollback (`kubectl rollout undo`) is a template
//! change back to an old ReplicaSet's template, which this controller
//! then finds and scales up again under a new revision.

mod active_pods;
pub mod hash;
pub mod math;
pub mod progress;
mod revision;
mod rollout;
mod scale;
mod sync;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use crate::cached_pod::CachedPod;
use crate::controllers::controller_ref::{controller_of, owners_selecting, resolve_controller_ref};
use crate::controllers::owner_index::OwnerIndex;
use crate::error::Error;
use crate::informer::{Change, Informer, enqueue_changes, object_key};
use crate::manager::ControllerContext;
use crate::queue::WorkQueue;
use crate::runner::{new_queue, run_controller_workers};
use active_pods::ActivePods;

const NAME: &str = "deployment-controller";

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, Result<(), Error>> {
    run(ctx).boxed()
}

/// The Deployment controller's shared state.
pub struct DeploymentController {
    client: kube::Client,
    deployments: Informer<Deployment>,
    replica_sets: Informer<ReplicaSet>,
    /// The cached ReplicaSets by controller uid, and the orphans: what a
    /// sync claims from.
    rs_index: OwnerIndex,
    pods: Informer<CachedPod>,
    /// Not-yet-terminated pods per ReplicaSet: what Recreate waits on.
    active_pods: ActivePods,
    queue: WorkQueue<String>,
}

async fn run(ctx: ControllerContext) -> Result<(), Error> {
    let queue = new_queue("deployment", &ctx.metrics);
    let c = Arc::new(DeploymentController {
        client: ctx.client.clone(),
        deployments: ctx.informers.get::<Deployment>(),
        replica_sets: ctx.informers.get::<ReplicaSet>(),
        rs_index: OwnerIndex::default(),
        pods: ctx.informers.get::<CachedPod>(),
        active_pods: ActivePods::default(),
        queue: queue.clone(),
    });
    c.deployments.add_handler(enqueue_changes(queue.clone()));
    let h = c.clone();
    c.replica_sets.add_handler(move |change| h.on_replica_set(change));
    let h = c.clone();
    c.pods.add_handler(move |change| {
        h.active_pods.observe(&change);
        // Recreate waits for old pods to be gone.
        if let Change::Deleted(pod) = change {
            h.on_pod_deleted(pod);
        }
    });
    c.deployments.wait_synced().await;
    c.replica_sets.wait_synced().await;
    c.pods.wait_synced().await;
    run_controller_workers(
        NAME,
        queue,
        ctx.config.concurrency.deployment,
        &ctx.metrics,
        c,
        |c, key| c.sync(key).boxed(),
    )
    .await;
    Ok(())
}

impl DeploymentController {
    /// The Deployment a controller reference points to, if cached with
    /// the same uid.
    fn resolve(&self, namespace: &str, meta: &ObjectMeta) -> Option<Arc<Deployment>> {
        resolve_controller_ref(meta, "Deployment", |name| self.deployments.get(namespace, name))
    }

    fn enqueue_selecting(&self, rs: &ReplicaSet) {
        let ns = rs.namespace().unwrap_or_default();
        let owners = owners_selecting(self.deployments.list(&ns), &rs.metadata, |o| {
            o.spec.as_ref().map(|s| &s.selector)
        });
        for o in owners {
            self.queue.add(object_key(o.as_ref()));
        }
    }

    fn on_replica_set(&self, change: Change<'_, ReplicaSet>) {
        // The index first, so a sync this change queues sees the ReplicaSet.
        self.rs_index.observe(&change);
        match change {
            Change::Added(rs) => {
                let ns = rs.namespace().unwrap_or_default();
                match self.resolve(&ns, &rs.metadata) {
                    Some(d) => self.queue.add(object_key(d.as_ref())),
                    None if controller_of(&rs.metadata).is_none() => self.enqueue_selecting(rs),
                    None => {}
                }
            }
            Change::Updated { old, new } => {
                if old.metadata.resource_version == new.metadata.resource_version {
                    return;
                }
                let ns = new.namespace().unwrap_or_default();
                let old_ref = controller_of(&old.metadata).map(|r| r.uid.clone());
                let new_ref = controller_of(&new.metadata).map(|r| r.uid.clone());
                if old_ref != new_ref
                    && let Some(d) = self.resolve(&ns, &old.metadata)
                {
                    self.queue.add(object_key(d.as_ref()));
                }
                match self.resolve(&ns, &new.metadata) {
                    Some(d) => self.queue.add(object_key(d.as_ref())),
                    None if new_ref.is_none() && (old.metadata.labels != new.metadata.labels || old_ref != new_ref) => {
                        self.enqueue_selecting(new)
                    }
                    None => {}
                }
            }
            Change::Deleted(rs) => {
                let ns = rs.namespace().unwrap_or_default();
                if let Some(d) = self.resolve(&ns, &rs.metadata) {
                    self.queue.add(object_key(d.as_ref()));
                }
            }
        }
    }

    fn on_pod_deleted(&self, pod: &CachedPod) {
        let ns = pod.namespace().unwrap_or_default();
        let Some(r) = controller_of(&pod.metadata) else { return };
        if r.kind != "ReplicaSet" {
            return;
        }
        let Some(rs) = self.replica_sets.get(&ns, &r.name) else {
            return;
        };
        if let Some(d) = self.resolve(&ns, &rs.metadata)
            && !math::is_rolling(&d)
        {
            self.queue.add(object_key(d.as_ref()));
        }
    }
}
