//! The ReplicaSet controller: keeps `spec.replicas` active pods per
//! ReplicaSet. It adopts orphans its selector matches and releases pods it
//! no longer selects, creates pods from the template (`generateName`
//! `<rs>-`, a controller reference) in slow-start batches, deletes the
//! pods ranked first by [`ranking`], never acts again before its previous
//! creations and deletions were observed ([`Expectations`]), and reports
//! status ([`status`]).

pub mod ranking;
pub mod source;
pub mod status;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, join_all};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};

use crate::cached_pod::CachedPod;
use crate::controllers::controller_ref::{
    Claim, claim, controller_of, controller_selects, new_controller_ref, owner_refs_patch, owners_selecting,
    patch_claim, resolve_controller_ref, with_owner, without_owner,
};
use crate::controllers::owner_index::OwnerIndex;
use crate::controllers::pod_status::{is_active, is_ready, is_terminating};
use crate::error::{Error, is_not_found, status_code};
use crate::expectations::Expectations;
use crate::informer::{Change, Informer, object_key, split_key};
use crate::manager::ControllerContext;
use crate::queue::WorkQueue;
use crate::runner::{Action, new_queue, run_controller_workers};
use source::Source;

/// At most this many pods are created or deleted in one sync (upstream's
/// `BurstReplicas`).
pub const BURST_REPLICAS: usize = 500;
/// Creations start with batches of this size, doubling after each
/// successful batch (upstream's `SlowStartInitialBatchSize`).
pub const SLOW_START_INITIAL_BATCH: usize = 1;

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, Result<(), Error>> {
    let source = Source::ReplicaSets(ctx.informers.get::<ReplicaSet>());
    run(ctx, source).boxed()
}

/// The ReplicationController controller: the same controller over
/// ReplicationControllers.
pub fn start_replication_controller(ctx: ControllerContext) -> BoxFuture<'static, Result<(), Error>> {
    let source = Source::ReplicationControllers(ctx.informers.get::<ReplicationController>());
    run(ctx, source).boxed()
}

/// The ReplicaSet controller's shared state.
pub struct ReplicaSetController {
    client: kube::Client,
    source: Source,
    pods: Informer<CachedPod>,
    /// The cached pods by controller uid, and the orphans: what a sync
    /// claims from.
    index: OwnerIndex,
    expectations: Expectations,
    queue: WorkQueue<String>,
}

async fn run(ctx: ControllerContext, source: Source) -> Result<(), Error> {
    let name = source.controller_name();
    let queue = new_queue(source.queue_name(), &ctx.metrics);
    let controller = Arc::new(ReplicaSetController {
        client: ctx.client.clone(),
        source: source.clone(),
        pods: ctx.informers.get::<CachedPod>(),
        index: OwnerIndex::default(),
        expectations: Expectations::default(),
        queue: queue.clone(),
    });
    let c = controller.clone();
    let on_owner = move |key: String, deleted: bool| {
        if deleted {
            c.expectations.delete(&key);
        }
        c.queue.add(key);
    };
    match &source {
        Source::ReplicaSets(i) => {
            i.add_handler(move |change| on_owner(object_key(change.object().as_ref()), change.is_deleted()))
        }
        Source::ReplicationControllers(i) => {
            i.add_handler(move |change| on_owner(object_key(change.object().as_ref()), change.is_deleted()))
        }
    }
    let c = controller.clone();
    controller.pods.add_handler(move |change| c.on_pod(change));
    controller.source.wait_synced().await;
    controller.pods.wait_synced().await;
    run_controller_workers(
        name,
        queue,
        ctx.config.concurrency.replicaset,
        &ctx.metrics,
        controller.clone(),
        |c, key| c.sync(key).boxed(),
    )
    .await;
    Ok(())
}

fn rs_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

impl ReplicaSetController {
    /// The ReplicaSet a controller reference points to, if cached with
    /// the same uid.
    fn resolve(&self, namespace: &str, meta: &ObjectMeta) -> Option<Arc<ReplicaSet>> {
        resolve_controller_ref(meta, self.source.kind(), |name| self.source.get(namespace, name))
    }

    /// ReplicaSets in the pod's namespace whose selector matches it.
    fn selecting(&self, pod: &CachedPod) -> Vec<Arc<ReplicaSet>> {
        let ns = pod.namespace().unwrap_or_default();
        owners_selecting(self.source.list(&ns), &pod.metadata, |rs| {
            rs.spec.as_ref().map(|s| &s.selector)
        })
    }

    fn on_pod(&self, change: Change<'_, CachedPod>) {
        // The index first, so a sync this change queues sees the pod.
        self.index.observe(&change);
        match change {
            Change::Added(pod) => {
                let ns = pod.namespace().unwrap_or_default();
                if pod.metadata.deletion_timestamp.is_some() {
                    return self.on_pod_deleted(pod);
                }
                if let Some(rs) = self.resolve(&ns, &pod.metadata) {
                    let key = rs_key(&ns, &rs.name_any());
                    self.expectations.creation_observed(&key);
                    self.queue.add(key);
                    return;
                }
                if controller_of(&pod.metadata).is_none() {
                    for rs in self.selecting(pod) {
                        self.queue.add(rs_key(&ns, &rs.name_any()));
                    }
                }
            }
            Change::Updated { old, new } => {
                if old.metadata.resource_version == new.metadata.resource_version {
                    return;
                }
                let ns = new.namespace().unwrap_or_default();
                if new.metadata.deletion_timestamp.is_some() && old.metadata.deletion_timestamp.is_none() {
                    // A deleting pod counts as deleted for expectations.
                    self.on_pod_deleted(new);
                }
                let old_ref = controller_of(&old.metadata).map(|r| r.uid.clone());
                let new_ref = controller_of(&new.metadata).map(|r| r.uid.clone());
                if old_ref != new_ref
                    && let Some(rs) = self.resolve(&ns, &old.metadata)
                {
                    self.queue.add(rs_key(&ns, &rs.name_any()));
                }
                if let Some(rs) = self.resolve(&ns, &new.metadata) {
                    let key = rs_key(&ns, &rs.name_any());
                    self.queue.add(key.clone());
                    // A pod that just became ready becomes available after
                    // minReadySeconds.
                    let min_ready = rs.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0);
                    if min_ready > 0 && !is_ready(old) && is_ready(new) {
                        let secs = u64::try_from(min_ready).unwrap_or(0) + 1;
                        self.queue.add_after(key, Duration::from_secs(secs));
                    }
                    return;
                }
                if new_ref.is_none() && (old.metadata.labels != new.metadata.labels || old_ref != new_ref) {
                    for rs in self.selecting(new) {
                        self.queue.add(rs_key(&ns, &rs.name_any()));
                    }
                }
            }
            Change::Deleted(pod) => self.on_pod_deleted(pod),
        }
    }

    fn on_pod_deleted(&self, pod: &Arc<CachedPod>) {
        let ns = pod.namespace().unwrap_or_default();
        if let Some(rs) = self.resolve(&ns, &pod.metadata) {
            let key = rs_key(&ns, &rs.name_any());
            self.expectations.deletion_observed(&key, &object_key(pod.as_ref()));
            self.queue.add(key);
        }
    }

    /// One reconcile of `namespace/name`.
    pub async fn sync(&self, key: &str) -> Result<Action, Error> {
        let (ns, name) = split_key(key);
        let Some(rs) = self.source.get(ns, name) else {
            self.expectations.delete(key);
            return Ok(Action::Done);
        };
        let needs_sync = self.expectations.satisfied(key);
        let Some(spec) = rs.spec.as_ref() else {
            return Ok(Action::Done);
        };
        let uid = rs.metadata.uid.clone().unwrap_or_default();
        let candidates = self.cached_pods(ns, &self.index.claim_candidates(ns, &uid));
        let terminating = candidates
            .iter()
            .filter(|p| is_terminating(p) && controller_of(&p.metadata).is_some_and(|r| r.uid == uid))
            .count();
        let active: Vec<Arc<CachedPod>> = candidates.into_iter().filter(|p| is_active(p)).collect();
        let claimed = self.claim_pods(&rs, active).await?;

        let mut manage_error = None;
        if needs_sync
            && rs.metadata.deletion_timestamp.is_none()
            && let Err(e) = self.manage_replicas(key, &rs, &claimed).await
        {
            manage_error = Some(e);
        }
        let now = Timestamp::now();
        let new_status = status::calculate_status(
            &rs,
            &claimed,
            terminating,
            manage_error.as_ref().map(|e| e.to_string()).as_deref(),
            now,
        );
        let status_changed = rs.status.as_ref() != Some(&new_status);
        if status_changed {
            let mut updated = (*rs).clone();
            updated.status = Some(new_status.clone());
            match self.source.write_status(&self.client, &updated).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => return Ok(Action::Done),
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(e) = manage_error {
            return Err(e);
        }
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        let replicas = spec.replicas.unwrap_or(1);
        if min_ready > 0
            && new_status.ready_replicas == Some(replicas)
            && new_status.available_replicas != Some(replicas)
        {
            return Ok(Action::RequeueAfter(Duration::from_secs(
                u64::try_from(min_ready).unwrap_or(0),
            )));
        }
        Ok(Action::Done)
    }

    /// The cached pods of `namespace` with these names.
    fn cached_pods(&self, namespace: &str, names: &[Arc<str>]) -> Vec<Arc<CachedPod>> {
        names.iter().filter_map(|n| self.pods.get(namespace, n)).collect()
    }

    /// The active pods this ReplicaSet controls after adopting and
    /// releasing by selector.
    async fn claim_pods(&self, rs: &Arc<ReplicaSet>, pods: Vec<Arc<CachedPod>>) -> Result<Vec<Arc<CachedPod>>, Error> {
        let Some(spec) = rs.spec.as_ref() else {
            return Ok(Vec::new());
        };
        let ns = rs.namespace().unwrap_or_default();
        let uid = rs.metadata.uid.clone().unwrap_or_default();
        let deleting = rs.metadata.deletion_timestamp.is_some();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let mut claimed = Vec::new();
        let mut can_adopt: Option<bool> = None;
        let no_labels = BTreeMap::new();
        for pod in pods {
            let labels = pod.metadata.labels.as_ref().unwrap_or(&no_labels);
            let matches = controller_selects(&spec.selector, labels);
            match claim(&pod.metadata, &uid, matches, deleting) {
                Claim::Owned => claimed.push(pod),
                Claim::Ignore => {}
                Claim::Release => {
                    let patch = owner_refs_patch(&pod.metadata, &without_owner(&pod.metadata, &uid));
                    patch_claim(&api, &pod.name_any(), &patch).await?;
                }
                Claim::Adopt => {
                    // Recheck with a live read before adopting, as upstream
                    // does, so a deleted-and-recreated owner adopts nothing.
                    if can_adopt.is_none() {
                        let fresh = self.source.get_live(&self.client, &ns, &rs.name_any()).await?;
                        can_adopt =
                            Some(fresh.is_some_and(|f| {
                                f.uid.as_deref() == Some(uid.as_str()) && f.deletion_timestamp.is_none()
                            }));
                    }
                    if can_adopt != Some(true) {
                        continue;
                    }
                    let owner = new_controller_ref(&rs.metadata, self.source.api_version(), self.source.kind());
                    let patch = owner_refs_patch(&pod.metadata, &with_owner(&pod.metadata, owner));
                    if let Some(p) = patch_claim(&api, &pod.name_any(), &patch).await? {
                        claimed.push(Arc::new(CachedPod::from(p)));
                    }
                }
            }
        }
        Ok(claimed)
    }

    /// Pods of other ReplicaSets with the same controller (siblings).
    fn related_pods(&self, rs: &ReplicaSet, ns: &str) -> Vec<Arc<CachedPod>> {
        let Some(owner) = controller_of(&rs.metadata) else {
            return Vec::new();
        };
        self.source
            .list(ns)
            .into_iter()
            .filter(|s| controller_of(&s.metadata).is_some_and(|r| r.uid == owner.uid))
            .filter_map(|s| s.metadata.uid.clone())
            .flat_map(|uid| self.cached_pods(ns, &self.index.controlled_by(ns, &uid)))
            .filter(|p| is_active(p))
            .collect()
    }

    async fn manage_replicas(&self, key: &str, rs: &Arc<ReplicaSet>, pods: &[Arc<CachedPod>]) -> Result<(), Error> {
        let ns = rs.namespace().unwrap_or_default();
        let desired = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let desired = usize::try_from(desired).unwrap_or(0);
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        if pods.len() < desired {
            let n = (desired - pods.len()).min(BURST_REPLICAS);
            let template = self.pod_from_template(rs);
            let (created, err) = create_expected(&self.expectations, key, n, || {
                let api = api.clone();
                let pod = template.clone();
                async move {
                    match api.create(&PostParams::default(), &pod).await {
                        Ok(_) => Ok(()),
                        // The namespace is terminating: nothing to do.
                        Err(e) if status_code(&e) == Some(403) && is_namespace_terminating(&e) => Ok(()),
                        Err(e) => Err(e),
                    }
                }
            })
            .await;
            if created < n {
                tracing::info!(
                    controller = self.source.controller_name(),
                    replicaset = key,
                    created,
                    wanted = n,
                    "slow-start creation stopped"
                );
            }
            if let Some(e) = err {
                return Err(e.into());
            }
        } else if pods.len() > desired {
            let n = (pods.len() - desired).min(BURST_REPLICAS);
            let related = self.related_pods(rs, &ns);
            let victims = ranking::pods_to_delete(pods, &related, n, Timestamp::now());
            self.expectations
                .expect_deletions(key, victims.iter().map(|p| object_key(p.as_ref())));
            let results = join_all(victims.iter().map(|p| {
                let api = api.clone();
                let name = p.name_any();
                async move { (name.clone(), api.delete(&name, &DeleteParams::default()).await) }
            }))
            .await;
            let mut first_err = None;
            for (name, r) in results {
                match r {
                    Ok(_) => {}
                    Err(e) => {
                        self.expectations.deletion_observed(key, &format!("{ns}/{name}"));
                        if !is_not_found(&e) && first_err.is_none() {
                            first_err = Some(e);
                        }
                    }
                }
            }
            if let Some(e) = first_err {
                return Err(e.into());
            }
        }
        Ok(())
    }

    fn pod_from_template(&self, rs: &ReplicaSet) -> Pod {
        let template = rs.spec.as_ref().and_then(|s| s.template.clone()).unwrap_or_default();
        let meta = template.metadata.unwrap_or_default();
        Pod {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}-", rs.name_any())),
                namespace: rs.namespace(),
                labels: meta.labels,
                annotations: meta.annotations,
                finalizers: meta.finalizers,
                owner_references: Some(vec![new_controller_ref(
                    &rs.metadata,
                    self.source.api_version(),
                    self.source.kind(),
                )]),
                ..ObjectMeta::default()
            },
            spec: template.spec,
            status: None,
        }
    }
}

fn is_namespace_terminating(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.message.contains("because it is being terminated"))
}

/// Expects `n` creations for `key`, makes them with `op` in slow-start
/// batches, and stops expecting those that failed or were skipped (they
/// will never be observed). Returns how many were made and the first
/// error. Until the informer has seen every creation made, the key's
/// expectations are unsatisfied and its syncs create nothing more.
pub async fn create_expected<F, Fut, E>(expectations: &Expectations, key: &str, n: usize, op: F) -> (usize, Option<E>)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
{
    expectations.expect_creations(key, n);
    let (created, err) = slow_start_batch(n, SLOW_START_INITIAL_BATCH, op).await;
    for _ in created..n {
        expectations.creation_observed(key);
    }
    (created, err)
}

/// Runs `count` calls of `op` in batches of 1, 2, 4, ... (starting at
/// `initial`), stopping after the first batch with a failure; returns how
/// many succeeded and the first error. Upstream's `slowStartBatch`: a
/// failing creation (quota, admission) costs one call, not `count`.
pub async fn slow_start_batch<F, Fut, E>(count: usize, initial: usize, op: F) -> (usize, Option<E>)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
{
    let mut remaining = count;
    let mut ok = 0;
    let mut batch = remaining.min(initial.max(1));
    while batch > 0 {
        let results = join_all((0..batch).map(|_| op())).await;
        let mut first_err = None;
        for r in results {
            match r {
                Ok(()) => ok += 1,
                Err(e) => {
                    if first_err.is_none() {
                        first_err = Some(e);
                    }
                }
            }
        }
        if first_err.is_some() {
            return (ok, first_err);
        }
        remaining -= batch;
        batch = remaining.min(batch * 2);
    }
    (ok, None)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::sync::Mutex;

    #[tokio::test]
    async fn slow_start_doubles_and_stops_at_the_first_failing_batch() {
        let calls = Mutex::new(0usize);
        let (ok, err) = slow_start_batch(10, 1, || {
            let n = {
                let mut c = calls.lock().unwrap();
                *c += 1;
                *c
            };
            async move { if n == 5 { Err("boom") } else { Ok(()) } }
        })
        .await;
        // Batches of 1, 2, 4: the 5th call (in the batch of 4) fails, so
        // the batch of 4 runs to the end and nothing after it.
        assert_eq!(*calls.lock().unwrap(), 7);
        assert_eq!(ok, 6);
        assert_eq!(err, Some("boom"));

        let (ok, err) = slow_start_batch(10, 1, || async { Ok::<(), ()>(()) }).await;
        assert_eq!((ok, err), (10, None));
    }

    #[tokio::test]
    async fn batched_creates_are_expected_until_the_informer_sees_them() {
        let e = Expectations::default();
        let calls = Mutex::new(0usize);
        // 10 wanted; the 5th call fails, so batches 1, 2, 4 make 6.
        let (created, err) = create_expected(&e, "ns/rs", 10, || {
            let n = {
                let mut c = calls.lock().unwrap();
                *c += 1;
                *c
            };
            async move { if n == 5 { Err("quota") } else { Ok(()) } }
        })
        .await;
        assert_eq!((created, err), (6, Some("quota")));
        // The 4 never made are not waited for; the 6 made are.
        for seen in 0..6 {
            assert!(
                !e.satisfied("ns/rs"),
                "{seen} of 6 creations seen: a sync must not create more"
            );
            e.creation_observed("ns/rs");
        }
        assert!(e.satisfied("ns/rs"));

        let (created, err) = create_expected(&e, "ns/rs", 3, || async { Ok::<(), ()>(()) }).await;
        assert_eq!((created, err), (3, None));
        assert!(!e.satisfied("ns/rs"), "all 3 made, none seen yet");
    }
}
