//! The StatefulSet controller: pods with stable names and storage
//! ([`identity`]), created in ordinal order one Running-and-Ready pod at a
//! time (`OrderedReady`) or all at once (`Parallel`), updated through
//! ControllerRevisions ([`revisions`]) by RollingUpdate (from the highest
//! ordinal down to `partition`, at most `maxUnavailable` at a time) or
//! OnDelete, with claims from `volumeClaimTemplates` owned per
//! `persistentVolumeClaimRetentionPolicy` ([`retention`]). A round is
//! decided without IO ([`plan`]) and carried out by [`pod_control`].

pub mod identity;
pub mod plan;
pub mod pod_control;
pub mod retention;
pub mod revisions;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, PostParams};

use crate::cached_pod::CachedPod;
use crate::controllers::controller_ref::{
    Claim, claim, controller_of, new_controller_ref, owner_refs_patch, owners_selecting, patch_claim,
    resolve_controller_ref, selector_matches, with_owner, without_owner,
};
use crate::controllers::events::EventRecorder;
use crate::controllers::history::{ReleasePolicy, claim_revisions, sort_revisions, template_of};
use crate::error::{Error, ignore_not_found, is_conflict, is_not_found};
use crate::informer::{Change, Informer, enqueue_changes, object_key, split_key};
use crate::manager::ControllerContext;
use crate::queue::WorkQueue;
use crate::runner::{Action, new_queue, run_controller_workers};
use identity::is_member_of;
use plan::{Input, complete_rolling_update, status_changed};
use pod_control::PodControl;

const NAME: &str = "statefulset-controller";
/// Most pods created or deleted at once in Parallel mode (upstream
/// `MaxBatchSize`).
pub const MAX_BATCH: usize = 500;

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, Result<(), Error>> {
    run(ctx).boxed()
}

/// The StatefulSet controller's shared state.
pub struct StatefulSetController {
    client: kube::Client,
    sets: Informer<StatefulSet>,
    pods: Informer<CachedPod>,
    revisions: Informer<ControllerRevision>,
    control: PodControl,
    queue: WorkQueue<String>,
}

async fn run(ctx: ControllerContext) -> Result<(), Error> {
    let queue = new_queue("statefulset", &ctx.metrics);
    let claims = ctx.informers.get::<PersistentVolumeClaim>();
    let c = Arc::new(StatefulSetController {
        client: ctx.client.clone(),
        sets: ctx.informers.get::<StatefulSet>(),
        pods: ctx.informers.get::<CachedPod>(),
        revisions: ctx.informers.get::<ControllerRevision>(),
        control: PodControl {
            client: ctx.client.clone(),
            claims: claims.clone(),
            recorder: EventRecorder::new(ctx.client.clone(), NAME),
        },
        queue: queue.clone(),
    });
    c.sets.add_handler(enqueue_changes(queue.clone()));
    let h = c.clone();
    c.pods.add_handler(move |change| h.on_pod(change));
    c.sets.wait_synced().await;
    c.pods.wait_synced().await;
    c.revisions.wait_synced().await;
    claims.wait_synced().await;
    run_controller_workers(
        NAME,
        queue,
        ctx.config.concurrency.statefulset,
        &ctx.metrics,
        c,
        |c, key| c.sync(key).boxed(),
    )
    .await;
    Ok(())
}

impl StatefulSetController {
    /// The set a controller reference points to, if cached with that uid.
    fn resolve(&self, namespace: &str, meta: &ObjectMeta) -> Option<Arc<StatefulSet>> {
        resolve_controller_ref(meta, "StatefulSet", |name| self.sets.get(namespace, name))
    }

    /// Sets whose selector matches an orphan pod.
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
            Change::Added(pod) | Change::Deleted(pod) => {
                let ns = pod.namespace().unwrap_or_default();
                match self.resolve(&ns, &pod.metadata) {
                    Some(s) => self.queue.add(object_key(s.as_ref())),
                    None if controller_of(&pod.metadata).is_none() && !matches!(change, Change::Deleted(_)) => {
                        self.enqueue_selecting(pod)
                    }
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
                    && let Some(s) = self.resolve(&ns, &old.metadata)
                {
                    self.queue.add(object_key(s.as_ref()));
                }
                match self.resolve(&ns, &new.metadata) {
                    Some(s) => self.queue.add(object_key(s.as_ref())),
                    None if new_ref.is_none() && (old.metadata.labels != new.metadata.labels || old_ref != new_ref) => {
                        self.enqueue_selecting(new)
                    }
                    None => {}
                }
            }
        }
    }

    /// Whether the set still exists with this uid and is not being
    /// deleted (a live read before adopting anything).
    async fn can_adopt(&self, set: &StatefulSet) -> Result<bool, Error> {
        let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), &set.namespace().unwrap_or_default());
        let fresh = ignore_not_found(api.get(&set.name_any()).await)?;
        Ok(fresh.is_some_and(|f| f.metadata.uid == set.metadata.uid && f.metadata.deletion_timestamp.is_none()))
    }

    /// The set's pods after adopting matching orphans named as members
    /// and releasing pods it no longer selects.
    async fn claim_pods(&self, set: &StatefulSet) -> Result<Vec<Arc<CachedPod>>, Error> {
        let ns = set.namespace().unwrap_or_default();
        let selector = set.spec.as_ref().map(|s| s.selector.clone()).unwrap_or_default();
        let uid = set.metadata.uid.clone().unwrap_or_default();
        let deleting = set.metadata.deletion_timestamp.is_some();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let mut owned = Vec::new();
        let mut can_adopt = None;
        for pod in self.pods.list(&ns) {
            let labels = pod.metadata.labels.clone().unwrap_or_default();
            let matches = selector_matches(&selector, &labels) && is_member_of(set, &pod);
            let patch = match claim(&pod.metadata, &uid, matches, deleting) {
                Claim::Owned => {
                    owned.push(pod);
                    continue;
                }
                Claim::Ignore => continue,
                Claim::Release => owner_refs_patch(&pod.metadata, &without_owner(&pod.metadata, &uid)),
                Claim::Adopt => {
                    if can_adopt.is_none() {
                        can_adopt = Some(self.can_adopt(set).await?);
                    }
                    if can_adopt != Some(true) {
                        continue;
                    }
                    let r = new_controller_ref(&set.metadata, "apps/v1", "StatefulSet");
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

    /// The set's revisions (adopting orphans its selector matches), sorted.
    async fn claim_revisions(&self, set: &StatefulSet) -> Result<Vec<Arc<ControllerRevision>>, Error> {
        let ns = set.namespace().unwrap_or_default();
        let selector = set.spec.as_ref().map(|s| s.selector.clone()).unwrap_or_default();
        let candidates: Vec<Arc<ControllerRevision>> = self
            .revisions
            .list(&ns)
            .into_iter()
            .filter(|r| selector_matches(&selector, &r.metadata.labels.clone().unwrap_or_default()))
            .collect();
        let orphans = candidates.iter().any(|r| controller_of(&r.metadata).is_none());
        let can_adopt = orphans && self.can_adopt(set).await?;
        let api: Api<ControllerRevision> = Api::namespaced(self.client.clone(), &ns);
        let mut revs = claim_revisions(
            &api,
            &set.metadata,
            "apps/v1",
            "StatefulSet",
            &selector,
            candidates,
            ReleasePolicy::Keep,
            can_adopt,
        )
        .await?;
        sort_revisions(&mut revs);
        Ok(revs)
    }

    /// One reconcile of `namespace/name`.
    pub async fn sync(&self, key: &str) -> Result<Action, Error> {
        let (ns, name) = split_key(key);
        let Some(set) = self.sets.get(ns, name) else {
            return Ok(Action::Done);
        };
        let revisions = self.claim_revisions(&set).await?;
        let pods = self.claim_pods(&set).await?;
        let rev_api: Api<ControllerRevision> = Api::namespaced(self.client.clone(), ns);
        let revs = revisions::current_and_update(&rev_api, &set, &revisions).await?;
        let current_name = revs.current.metadata.name.clone().unwrap_or_default();
        let update_name = revs.update.metadata.name.clone().unwrap_or_default();
        let spec_template = set.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
        let current_template = template_of(&revs.current).unwrap_or_else(|| spec_template.clone());
        let update_template = template_of(&revs.update).unwrap_or(spec_template);
        let claims: BTreeMap<String, Arc<PersistentVolumeClaim>> = self
            .control
            .claims
            .list(ns)
            .into_iter()
            .map(|c| (c.name_any(), c))
            .collect();
        let round = plan::plan(&Input {
            set: &set,
            current_template: &current_template,
            update_template: &update_template,
            current_revision: &current_name,
            update_revision: &update_name,
            collision_count: revs.collision_count,
            pods: &pods,
            claims: &claims,
            now: Timestamp::now(),
        });
        let mut result = Ok(());
        for phase in &round.phases {
            result = self.control.run_all(&set, phase, round.monotonic).await;
            if result.is_err() {
                break;
            }
        }
        let mut status = round.status;
        complete_rolling_update(&set, &mut status);
        if status_changed(&set, &status) {
            self.write_status(&set, &status).await?;
        }
        result?;
        revisions::truncate_history(&rev_api, &set, &pods, &revisions, &[&current_name, &update_name]).await?;
        let min_ready = set.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0);
        if min_ready > 0 && status.available_replicas.unwrap_or(0) != identity::replicas(&set) {
            return Ok(Action::RequeueAfter(Duration::from_secs(
                u64::try_from(min_ready).unwrap_or(0),
            )));
        }
        Ok(Action::Done)
    }

    /// Writes the status, re-reading the set on conflict.
    async fn write_status(&self, set: &StatefulSet, status: &StatefulSetStatus) -> Result<(), Error> {
        let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), &set.namespace().unwrap_or_default());
        let mut target = set.clone();
        for _ in 0..5 {
            target.status = Some(status.clone());
            match api
                .replace_status(&target.name_any(), &PostParams::default(), &target)
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if is_not_found(&e) => return Ok(()),
                Err(e) if is_conflict(&e) => target = api.get(&set.name_any()).await?,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::other("conflicts writing StatefulSet status"))
    }
}
