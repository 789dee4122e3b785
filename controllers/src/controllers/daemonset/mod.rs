//! The DaemonSet controller: one pod on every node that fits
//! ([`node_fit`]: nodeSelector, node affinity, taints and the tolerations
//! daemon pods get), pinned to it by node affinity on `metadata.name` and
//! left to the scheduler; new nodes get theirs as they appear; failed
//! pods are replaced (with per-node back-off); templates are recorded in
//! ControllerRevisions ([`revisions`]) and rolled out with
//! RollingUpdate (`maxUnavailable`, `maxSurge`) or OnDelete
//! ([`manage`]); creations and deletions are tracked by expectations.

pub mod manage;
pub mod node_fit;
pub mod revisions;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{BoxFuture, join_all};
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};

use crate::cached_pod::CachedPod;
use crate::controllers::controller_ref::{
    Claim, claim, controller_of, new_controller_ref, owner_refs_patch, owners_selecting, patch_claim,
    resolve_controller_ref, selector_is_empty, selector_matches, with_owner, without_owner,
};
use crate::controllers::events::{EventRecorder, EventType, reference};
use crate::controllers::history::{CONTROLLER_REVISION_HASH_LABEL, ReleasePolicy, claim_revisions, delete_revision};
use crate::error::{Error, ignore_not_found, is_conflict, is_not_found};
use crate::expectations::Expectations;
use crate::informer::{Change, Informer, object_key, split_key};
use crate::manager::ControllerContext;
use crate::queue::WorkQueue;
use crate::runner::{Action, new_queue, run_controller_workers};
use manage::{NodePods, node_needs, pods_by_node, pods_for_missing_nodes, rolling_update};
use node_fit::{pin_to_node, pod_template};

const NAME: &str = "daemonset-controller";
/// Most pods created or deleted per sync (upstream `BurstReplicas`).
const BURST_REPLICAS: usize = 250;
/// Back-off before deleting another failed pod on the same node.
const FAILED_POD_BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(15 * 60));

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, Result<(), Error>> {
    run(ctx).boxed()
}

/// The DaemonSet controller's shared state.
pub struct DaemonSetController {
    client: kube::Client,
    sets: Informer<DaemonSet>,
    pods: Informer<CachedPod>,
    nodes: Informer<Node>,
    revisions: Informer<ControllerRevision>,
    expectations: Expectations,
    recorder: EventRecorder,
    /// Per `ds-uid/node`: when a failed pod was last deleted, and the
    /// delay before the next may be.
    failed_backoff: Mutex<HashMap<String, (Instant, Duration)>>,
    queue: WorkQueue<String>,
}

async fn run(ctx: ControllerContext) -> Result<(), Error> {
    let queue = new_queue("daemonset", &ctx.metrics);
    let c = Arc::new(DaemonSetController {
        client: ctx.client.clone(),
        sets: ctx.informers.get::<DaemonSet>(),
        pods: ctx.informers.get::<CachedPod>(),
        nodes: ctx.informers.get::<Node>(),
        revisions: ctx.informers.get::<ControllerRevision>(),
        expectations: Expectations::default(),
        recorder: EventRecorder::new(ctx.client.clone(), NAME),
        failed_backoff: Mutex::default(),
        queue: queue.clone(),
    });
    let h = c.clone();
    c.sets.add_handler(move |change| {
        let key = object_key(change.object().as_ref());
        if change.is_deleted() {
            h.expectations.delete(&key);
        }
        h.queue.add(key);
    });
    let h = c.clone();
    c.pods.add_handler(move |change| h.on_pod(change));
    let h = c.clone();
    c.nodes.add_handler(move |change| {
        let relevant = match change {
            Change::Updated { old, new } => {
                old.metadata.labels != new.metadata.labels
                    || old.spec.as_ref().map(|s| (&s.taints, s.unschedulable))
                        != new.spec.as_ref().map(|s| (&s.taints, s.unschedulable))
            }
            _ => true,
        };
        if relevant {
            for d in h.sets.list_all() {
                h.queue.add(object_key(d.as_ref()));
            }
        }
    });
    c.sets.wait_synced().await;
    c.pods.wait_synced().await;
    c.nodes.wait_synced().await;
    c.revisions.wait_synced().await;
    run_controller_workers(
        NAME,
        queue,
        ctx.config.concurrency.daemonset,
        &ctx.metrics,
        c,
        |c, key| c.sync(key).boxed(),
    )
    .await;
    Ok(())
}

impl DaemonSetController {
    fn resolve(&self, namespace: &str, meta: &ObjectMeta) -> Option<Arc<DaemonSet>> {
        resolve_controller_ref(meta, "DaemonSet", |name| self.sets.get(namespace, name))
    }

    fn enqueue_selecting(&self, pod: &CachedPod) {
        let ns = pod.namespace().unwrap_or_default();
        let owners = owners_selecting(self.sets.list(&ns), &pod.metadata, |o| {
            o.spec.as_ref().map(|s| &s.selector)
        });
        for o in owners {
            self.queue.add(object_key(o.as_ref()));
        }
    }

    fn on_pod(&self, change: Change<'_, CachedPod>) {
        match change {
            Change::Added(pod) => {
                let ns = pod.namespace().unwrap_or_default();
                if pod.metadata.deletion_timestamp.is_some() {
                    return self.on_pod_deleted(pod);
                }
                match self.resolve(&ns, &pod.metadata) {
                    Some(d) => {
                        let key = object_key(d.as_ref());
                        self.expectations.creation_observed(&key);
                        self.queue.add(key);
                    }
                    None if controller_of(&pod.metadata).is_none() => self.enqueue_selecting(pod),
                    None => {}
                }
            }
            Change::Updated { old, new } => {
                if old.metadata.resource_version == new.metadata.resource_version {
                    return;
                }
                let ns = new.namespace().unwrap_or_default();
                if new.metadata.deletion_timestamp.is_some() && old.metadata.deletion_timestamp.is_none() {
                    self.on_pod_deleted(new);
                }
                let old_ref = controller_of(&old.metadata).map(|r| r.uid.clone());
                let new_ref = controller_of(&new.metadata).map(|r| r.uid.clone());
                if old_ref != new_ref
                    && let Some(d) = self.resolve(&ns, &old.metadata)
                {
                    self.queue.add(object_key(d.as_ref()));
                }
                match self.resolve(&ns, &new.metadata) {
                    Some(d) => {
                        let key = object_key(d.as_ref());
                        let min_ready = d.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0);
                        if min_ready > 0
                            && !crate::controllers::pod_status::is_ready(old)
                            && crate::controllers::pod_status::is_ready(new)
                        {
                            let secs = u64::try_from(min_ready).unwrap_or(0) + 1;
                            self.queue.add_after(key.clone(), Duration::from_secs(secs));
                        }
                        self.queue.add(key);
                    }
                    None if new_ref.is_none() && (old.metadata.labels != new.metadata.labels || old_ref != new_ref) => {
                        self.enqueue_selecting(new)
                    }
                    None => {}
                }
            }
            Change::Deleted(pod) => self.on_pod_deleted(pod),
        }
    }

    fn on_pod_deleted(&self, pod: &Arc<CachedPod>) {
        let ns = pod.namespace().unwrap_or_default();
        if let Some(d) = self.resolve(&ns, &pod.metadata) {
            let key = object_key(d.as_ref());
            self.expectations.deletion_observed(&key, &object_key(pod.as_ref()));
            self.queue.add(key);
        }
    }

    async fn can_adopt(&self, ds: &DaemonSet) -> Result<bool, Error> {
        let api: Api<DaemonSet> = Api::namespaced(self.client.clone(), &ds.namespace().unwrap_or_default());
        let fresh = ignore_not_found(api.get(&ds.name_any()).await)?;
        Ok(fresh.is_some_and(|f| f.metadata.uid == ds.metadata.uid && f.metadata.deletion_timestamp.is_none()))
    }

    /// The DaemonSet's pods after adopting and releasing by selector.
    async fn claim_pods(&self, ds: &DaemonSet) -> Result<Vec<Arc<CachedPod>>, Error> {
        let ns = ds.namespace().unwrap_or_default();
        let selector = ds.spec.as_ref().map(|s| s.selector.clone()).unwrap_or_default();
        let uid = ds.metadata.uid.clone().unwrap_or_default();
        let deleting = ds.metadata.deletion_timestamp.is_some();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let mut owned = Vec::new();
        let mut can_adopt = None;
        for pod in self.pods.list(&ns) {
            // Finished pods that are being deleted are gone for our purposes.
            let ph = crate::controllers::pod_status::phase(&pod);
            if pod.metadata.deletion_timestamp.is_some() && (ph == "Succeeded" || ph == "Failed") {
                continue;
            }
            let labels = pod.metadata.labels.clone().unwrap_or_default();
            let matches = selector_matches(&selector, &labels);
            let patch = match claim(&pod.metadata, &uid, matches, deleting) {
                Claim::Owned => {
                    owned.push(pod);
                    continue;
                }
                Claim::Ignore => continue,
                Claim::Release => owner_refs_patch(&pod.metadata, &without_owner(&pod.metadata, &uid)),
                Claim::Adopt => {
                    if can_adopt.is_none() {
                        can_adopt = Some(self.can_adopt(ds).await?);
                    }
                    if can_adopt != Some(true) {
                        continue;
                    }
                    let r = new_controller_ref(&ds.metadata, "apps/v1", "DaemonSet");
                    owner_refs_patch(&pod.metadata, &with_owner(&pod.metadata, r))
                }
            };
            if let Some(p) = patch_claim(&api, &pod.name_any(), &patch).await?
                && controller_of(&p.metadata).is_some_and(|r| r.uid == uid)
            {
                owned.push(Arc::new(CachedPod::from(p)));
            }
        }
        Ok(owned)
    }

    /// Whether another failed pod on `node` may be deleted now; if not,
    /// the DaemonSet is re-queued for when it may.
    fn failed_pod_may_go(&self, ds: &DaemonSet, key: &str, node: &str) -> bool {
        let backoff_key = format!("{}/{node}", ds.metadata.uid.as_deref().unwrap_or_default());
        let mut map = self.failed_backoff.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if let Some((at, delay)) = map.get(&backoff_key).copied()
            && now.duration_since(at) < delay
        {
            self.queue.add_after(key.to_string(), delay - now.duration_since(at));
            return false;
        }
        let next = match map.get(&backoff_key) {
            Some((_, d)) => (*d * 2).min(FAILED_POD_BACKOFF.1),
            None => FAILED_POD_BACKOFF.0,
        };
        map.insert(backoff_key, (now, next));
        true
    }

    /// One reconcile of `namespace/name`.
    pub async fn sync(&self, key: &str) -> Result<Action, Error> {
        let (ns, name) = split_key(key);
        let Some(ds) = self.sets.get(ns, name) else {
            self.expectations.delete(key);
            return Ok(Action::Done);
        };
        let selector = ds.spec.as_ref().map(|s| s.selector.clone()).unwrap_or_default();
        if selector_is_empty(&selector) {
            self.recorder.record(
                reference(ds.as_ref()),
                EventType::Warning,
                "SelectingAll",
                "Sync",
                "This daemon set is selecting all pods. A non-empty selector is required.".into(),
            );
            return Ok(Action::Done);
        }
        if ds.metadata.deletion_timestamp.is_some() {
            return Ok(Action::Done);
        }
        let nodes = self.nodes.list_all();
        let rev_api: Api<ControllerRevision> = Api::namespaced(self.client.clone(), ns);
        let ds_api: Api<DaemonSet> = Api::namespaced(self.client.clone(), ns);
        let candidates = self.revisions.list(ns);
        let orphans = candidates.iter().any(|r| {
            controller_of(&r.metadata).is_none()
                && selector_matches(&selector, &r.metadata.labels.clone().unwrap_or_default())
        });
        let can_adopt = orphans && self.can_adopt(&ds).await?;
        let owned = claim_revisions(
            &rev_api,
            &ds.metadata,
            "apps/v1",
            "DaemonSet",
            &selector,
            candidates,
            ReleasePolicy::Release,
            can_adopt,
        )
        .await?;
        let (cur, old) = revisions::construct_history(&rev_api, &ds_api, &ds, owned).await?;
        let hash = cur
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(CONTROLLER_REVISION_HASH_LABEL))
            .cloned()
            .unwrap_or_default();
        let pods = self.claim_pods(&ds).await?;
        let by_node = pods_by_node(&pods);
        let now = Timestamp::now();
        let mut observed = false;
        if self.expectations.satisfied(key) {
            self.manage(key, &ds, &nodes, &pods, &by_node, &hash, now).await?;
            if self.expectations.satisfied(key) && rolling_strategy(&ds) {
                let step = rolling_update(&ds, &nodes, &by_node, &hash, now);
                let pod_keys = step.delete.iter().map(|n| format!("{ns}/{n}"));
                self.sync_nodes(key, &ds, pod_keys.collect(), step.create_on, &hash)
                    .await?;
            }
            let limit = ds.spec.as_ref().and_then(|s| s.revision_history_limit).unwrap_or(10);
            for rev in revisions::revisions_to_clean(&old, &pods, usize::try_from(limit).unwrap_or(0)) {
                delete_revision(&rev_api, rev).await?;
            }
            observed = true;
        }
        let status = manage::status(&ds, &nodes, &by_node, &hash, now);
        self.write_status(&ds, status.clone(), observed).await?;
        let min_ready = ds.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0);
        if min_ready > 0 && status.number_ready != status.number_available.unwrap_or(0) {
            return Ok(Action::RequeueAfter(Duration::from_secs(
                u64::try_from(min_ready).unwrap_or(0),
            )));
        }
        Ok(Action::Done)
    }

    /// Creates a pod on every fitting node without one and deletes
    /// excess, misplaced and failed pods.
    #[allow(clippy::too_many_arguments)]
    async fn manage(
        &self,
        key: &str,
        ds: &DaemonSet,
        nodes: &[Arc<Node>],
        pods: &[Arc<CachedPod>],
        by_node: &NodePods,
        hash: &str,
        now: Timestamp,
    ) -> Result<(), Error> {
        let ns = ds.namespace().unwrap_or_default();
        let mut create_on = Vec::new();
        let mut delete = Vec::new();
        for node in nodes {
            let node_name = node.name_any();
            let needs = node_needs(node, by_node.get(&node_name), ds, hash, now);
            if needs.create {
                create_on.push(node_name.clone());
            }
            delete.extend(needs.delete);
            for failed in needs.failed {
                if self.failed_pod_may_go(ds, key, &node_name) {
                    self.recorder.record(
                        reference(ds),
                        EventType::Warning,
                        "FailedDaemonPod",
                        "Delete",
                        format!("Found failed daemon pod {ns}/{failed} on node {node_name}, will try to kill it"),
                    );
                    delete.push(failed);
                }
            }
        }
        delete.extend(pods_for_missing_nodes(nodes, by_node));
        let _ = pods;
        let keys = delete.iter().map(|n| format!("{ns}/{n}")).collect();
        self.sync_nodes(key, ds, keys, create_on, hash).await
    }

    /// Creates pods pinned to `create_on` and deletes `delete` (pod keys),
    /// at most [`BURST_REPLICAS`] of each, expecting to see them.
    async fn sync_nodes(
        &self,
        key: &str,
        ds: &DaemonSet,
        mut delete: Vec<String>,
        mut create_on: Vec<String>,
        hash: &str,
    ) -> Result<(), Error> {
        create_on.truncate(BURST_REPLICAS);
        delete.truncate(BURST_REPLICAS);
        if create_on.is_empty() && delete.is_empty() {
            return Ok(());
        }
        self.expectations.expect(key, create_on.len(), delete.iter().cloned());
        let ns = ds.namespace().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let template = pod_template(ds, hash);
        let mut errors: Vec<String> = Vec::new();
        // Slow start: batches of 1, 2, 4, ... stopping after a failure.
        let mut pos = 0;
        let mut batch = 1usize;
        while pos < create_on.len() {
            let end = (pos + batch).min(create_on.len());
            let results = join_all(create_on[pos..end].iter().map(|node| {
                let pod = self.new_pod(ds, &template, node);
                let api = api.clone();
                async move { api.create(&PostParams::default(), &pod).await }
            }))
            .await;
            let mut failed = false;
            for r in results {
                match r {
                    Ok(p) => self.recorder.record(
                        reference(ds),
                        EventType::Normal,
                        "SuccessfulCreate",
                        "Create",
                        format!("Created pod: {}", p.name_any()),
                    ),
                    Err(e) => {
                        self.expectations.creation_observed(key);
                        if is_namespace_terminating(&e) {
                            continue;
                        }
                        failed = true;
                        self.recorder.record(
                            reference(ds),
                            EventType::Warning,
                            "FailedCreate",
                            "Create",
                            format!("Error creating: {e}"),
                        );
                        errors.push(e.to_string());
                    }
                }
            }
            pos = end;
            if failed {
                for _ in pos..create_on.len() {
                    self.expectations.creation_observed(key);
                }
                break;
            }
            batch *= 2;
        }
        let results = join_all(delete.iter().map(|pod_key| {
            let api = api.clone();
            let name = split_key(pod_key).1.to_string();
            async move { (name.clone(), api.delete(&name, &DeleteParams::default()).await) }
        }))
        .await;
        for (name, r) in results {
            match r {
                Ok(_) => self.recorder.record(
                    reference(ds),
                    EventType::Normal,
                    "SuccessfulDelete",
                    "Delete",
                    format!("Deleted pod: {name}"),
                ),
                Err(e) => {
                    self.expectations.deletion_observed(key, &format!("{ns}/{name}"));
                    if !is_not_found(&e) {
                        self.recorder.record(
                            reference(ds),
                            EventType::Warning,
                            "FailedDelete",
                            "Delete",
                            format!("Error deleting: {e}"),
                        );
                        errors.push(e.to_string());
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::other(errors.join("; ")))
        }
    }

    fn new_pod(&self, ds: &DaemonSet, template: &k8s_openapi::api::core::v1::PodTemplateSpec, node: &str) -> Pod {
        let meta = template.metadata.clone().unwrap_or_default();
        let mut spec = template.spec.clone().unwrap_or_default();
        spec.affinity = Some(pin_to_node(spec.affinity.take(), node));
        Pod {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}-", ds.name_any())),
                namespace: ds.namespace(),
                labels: meta.labels,
                annotations: meta.annotations,
                finalizers: meta.finalizers,
                owner_references: Some(vec![new_controller_ref(&ds.metadata, "apps/v1", "DaemonSet")]),
                ..ObjectMeta::default()
            },
            spec: Some(spec),
            status: None,
        }
    }

    /// Writes the status if a count changed (and, when `observed`, the
    /// generation), re-reading on conflict.
    async fn write_status(&self, ds: &DaemonSet, status: DaemonSetStatus, observed: bool) -> Result<(), Error> {
        let old = ds.status.clone().unwrap_or_default();
        let generation = ds.metadata.generation;
        let same = old.desired_number_scheduled == status.desired_number_scheduled
            && old.current_number_scheduled == status.current_number_scheduled
            && old.number_misscheduled == status.number_misscheduled
            && old.number_ready == status.number_ready
            && old.updated_number_scheduled.unwrap_or(0) == status.updated_number_scheduled.unwrap_or(0)
            && old.number_available.unwrap_or(0) == status.number_available.unwrap_or(0)
            && old.number_unavailable.unwrap_or(0) == status.number_unavailable.unwrap_or(0)
            && old.observed_generation >= generation;
        if same {
            return Ok(());
        }
        let api: Api<DaemonSet> = Api::namespaced(self.client.clone(), &ds.namespace().unwrap_or_default());
        let mut target = ds.clone();
        for _ in 0..2 {
            let s = target.status.get_or_insert_with(Default::default);
            if observed {
                s.observed_generation = generation;
            }
            s.desired_number_scheduled = status.desired_number_scheduled;
            s.current_number_scheduled = status.current_number_scheduled;
            s.number_misscheduled = status.number_misscheduled;
            s.number_ready = status.number_ready;
            s.updated_number_scheduled = status.updated_number_scheduled;
            s.number_available = status.number_available;
            s.number_unavailable = status.number_unavailable;
            match api
                .replace_status(&ds.name_any(), &PostParams::default(), &target)
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if is_not_found(&e) => return Ok(()),
                Err(e) if is_conflict(&e) => target = api.get(&ds.name_any()).await?,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::other("conflicts writing DaemonSet status"))
    }
}

fn rolling_strategy(ds: &DaemonSet) -> bool {
    ds.spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.type_.as_deref())
        .unwrap_or("RollingUpdate")
        == "RollingUpdate"
}

fn is_namespace_terminating(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 403 && s.message.contains("because it is being terminated"))
}
