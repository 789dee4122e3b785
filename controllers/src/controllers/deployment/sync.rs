//! One reconcile of a Deployment (upstream `syncDeployment` and the
//! rollout files): claim ReplicaSets, find or create the new one and sync
//! revisions, then scale (paused or resized), roll (RollingUpdate) or
//! recreate, clean up old revisions and write status.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use serde_json::json;

use super::hash::{POD_TEMPLATE_HASH, compute_hash, equal_ignore_hash};
use super::math::{
    self, DESIRED_REPLICAS, MAX_REPLICAS, by_creation, d_replicas, is_rolling, max_scaled_down, max_surge,
    new_rs_new_replicas, rs_replicas,
};
use super::progress::{self, FOUND_NEW_RS_REASON, NEW_RS_REASON, PAUSED_REASON, PROGRESSING, RESUMED_REASON};
use super::{DeploymentController, NAME};
use crate::controllers::controller_ref::{
    Claim, claim, controller_of, new_controller_ref, owner_refs_patch, selector_is_empty, selector_matches, with_owner,
    without_owner,
};
use crate::controllers::pod_status::phase;
use crate::error::{Error, ignore_not_found, is_already_exists, is_not_found, status_code};
use crate::informer::split_key;
use crate::runner::Action;

/// The annotation holding a ReplicaSet's (and the Deployment's) revision.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// Earlier revisions of a ReplicaSet whose template was rolled back to.
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
/// Upstream's cap on the revision-history annotation's length.
const MAX_REVISION_HISTORY_CHARS: usize = 2000;

/// Deployment annotations not copied to its ReplicaSets.
const SKIPPED_ANNOTATIONS: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

/// The ReplicaSets of one Deployment: the one matching its template (if
/// any) and the others, oldest first.
struct ReplicaSets {
    new: Option<ReplicaSet>,
    old: Vec<ReplicaSet>,
}

impl ReplicaSets {
    fn all(&self) -> Vec<&ReplicaSet> {
        let mut v: Vec<&ReplicaSet> = self.old.iter().collect();
        if let Some(n) = &self.new {
            v.push(n);
        }
        v
    }
}

/// Copies the Deployment's annotations (except the controller's own) to
/// `rs`, and moves it to `new_revision` when that is higher, recording
/// its old revision in the history. Returns whether anything changed.
fn set_new_rs_annotations(d: &Deployment, rs: &mut ReplicaSet, new_revision: i64, exists: bool) -> bool {
    let mut changed = false;
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if SKIPPED_ANNOTATIONS.contains(&k.as_str()) {
            continue;
        }
        if annotations.get(k) != Some(v) {
            annotations.insert(k.clone(), v.clone());
            changed = true;
        }
    }
    let old_revision = annotations.get(REVISION).cloned();
    let old_number: i64 = old_revision.as_deref().and_then(|r| r.parse().ok()).unwrap_or(0);
    if old_number < new_revision {
        annotations.insert(REVISION.into(), new_revision.to_string());
        changed = true;
        if let Some(old) = old_revision.filter(|r| !r.is_empty()) {
            let history = match annotations.get(REVISION_HISTORY) {
                Some(h) if !h.is_empty() => format!("{h},{old}"),
                _ => old,
            };
            let history = if history.len() > MAX_REVISION_HISTORY_CHARS {
                // Drop the oldest entries to stay under the cap.
                let mut parts: Vec<&str> = history.split(',').collect();
                while parts.join(",").len() > MAX_REVISION_HISTORY_CHARS && parts.len() > 1 {
                    parts.remove(0);
                }
                parts.join(",")
            } else {
                history
            };
            annotations.insert(REVISION_HISTORY.into(), history);
        }
    }
    if !exists && set_replicas_annotations(rs, d_replicas(d), d_replicas(d) + max_surge(d)) {
        changed = true;
    }
    changed
}

/// Sets the desired- and max-replicas annotations; returns whether changed.
fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (k, v) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let v = v.to_string();
        if annotations.get(k) != Some(&v) {
            annotations.insert(k.into(), v);
            changed = true;
        }
    }
    changed
}

impl DeploymentController {
    fn rs_api(&self, ns: &str) -> Api<ReplicaSet> {
        Api::namespaced(self.client.clone(), ns)
    }

    fn d_api(&self, ns: &str) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// One reconcile of `namespace/name`.
    pub async fn sync(&self, key: &str) -> Result<Action, Error> {
        let (ns, name) = split_key(key);
        let Some(cached) = self.deployments.get(ns, name) else {
            return Ok(Action::Done);
        };
        let mut d = (*cached).clone();
        let Some(spec) = d.spec.as_ref() else {
            return Ok(Action::Done);
        };
        if selector_is_empty(&spec.selector) {
            tracing::warn!(
                controller = NAME,
                deployment = key,
                "this deployment selects all pods; a non-empty selector is required"
            );
            let mut status = d.status.clone().unwrap_or_default();
            if status.observed_generation < d.metadata.generation {
                status.observed_generation = d.metadata.generation;
                self.write_status(&d, status).await?;
            }
            return Ok(Action::Done);
        }
        let rs_list = self.claim_replica_sets(&d).await?;
        if d.metadata.deletion_timestamp.is_some() {
            let rss = self.replica_sets_and_sync_revision(&mut d, rs_list, false).await?;
            self.sync_status(&d, &rss).await?;
            return Ok(Action::Done);
        }
        self.check_paused_conditions(&mut d).await?;
        let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
        if paused || self.is_scaling_event(&mut d, &rs_list).await? {
            return self.sync_scale(&mut d, rs_list).await;
        }
        if is_rolling(&d) {
            self.rollout_rolling(&mut d, rs_list).await
        } else {
            self.rollout_recreate(&mut d, rs_list).await
        }
    }

    /// The ReplicaSets this Deployment controls, after adopting orphans its
    /// selector matches and releasing those it no longer selects.
    async fn claim_replica_sets(&self, d: &Deployment) -> Result<Vec<ReplicaSet>, Error> {
        let ns = d.namespace().unwrap_or_default();
        let Some(spec) = d.spec.as_ref() else {
            return Ok(Vec::new());
        };
        let uid = d.metadata.uid.clone().unwrap_or_default();
        let deleting = d.metadata.deletion_timestamp.is_some();
        let api = self.rs_api(&ns);
        let mut out = Vec::new();
        let mut can_adopt: Option<bool> = None;
        for rs in self.replica_sets.list(&ns) {
            let labels = rs.metadata.labels.clone().unwrap_or_default();
            let matches = selector_matches(&spec.selector, &labels);
            match claim(&rs.metadata, &uid, matches, deleting) {
                Claim::Owned => out.push((*rs).clone()),
                Claim::Ignore => {}
                Claim::Release => {
                    let patch = owner_refs_patch(&rs.metadata, &without_owner(&rs.metadata, &uid));
                    match api
                        .patch(&rs.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                    {
                        Ok(_) => {}
                        Err(e) if matches!(status_code(&e), Some(404 | 409 | 422)) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Claim::Adopt => {
                    if can_adopt.is_none() {
                        let fresh = ignore_not_found(self.d_api(&ns).get(&d.name_any()).await)?;
                        can_adopt = Some(fresh.is_some_and(|f| {
                            f.metadata.uid.as_deref() == Some(uid.as_str()) && f.metadata.deletion_timestamp.is_none()
                        }));
                    }
                    if can_adopt != Some(true) {
                        continue;
                    }
                    let owner = new_controller_ref(&d.metadata, "apps/v1", "Deployment");
                    let patch = owner_refs_patch(&rs.metadata, &with_owner(&rs.metadata, owner));
                    match api
                        .patch(&rs.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                    {
                        Ok(adopted) => out.push(adopted),
                        Err(e) if matches!(status_code(&e), Some(404 | 409 | 422)) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        out.sort_by(by_creation);
        Ok(out)
    }

    /// Writes `status` if it differs from the Deployment's.
    async fn write_status(&self, d: &Deployment, status: DeploymentStatus) -> Result<Deployment, Error> {
        if d.status.as_ref() == Some(&status) {
            return Ok(d.clone());
        }
        let mut updated = d.clone();
        updated.status = Some(status);
        let ns = d.namespace().unwrap_or_default();
        Ok(self
            .d_api(&ns)
            .replace_status(&d.name_any(), &PostParams::default(), &updated)
            .await?)
    }

    /// Sets the Deployment's own revision annotation (a metadata patch).
    async fn set_deployment_revision(&self, d: &mut Deployment, revision: &str) -> Result<(), Error> {
        if annotation(&d.metadata, REVISION) == Some(revision) || revision.is_empty() {
            return Ok(());
        }
        let ns = d.namespace().unwrap_or_default();
        let patch = json!({"metadata": {"annotations": {REVISION: revision}}});
        let updated = self
            .d_api(&ns)
            .patch(&d.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        d.metadata = updated.metadata;
        Ok(())
    }

    /// Splits `rs_list` into the new ReplicaSet and old ones, updating the
    /// new one's revision (and creating it when `create`), like upstream's
    /// `getAllReplicaSetsAndSyncRevision`.
    async fn replica_sets_and_sync_revision(
        &self,
        d: &mut Deployment,
        rs_list: Vec<ReplicaSet>,
        create: bool,
    ) -> Result<ReplicaSets, Error> {
        let template = d.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
        let new_index = rs_list.iter().position(|rs| {
            rs.spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .is_some_and(|t| equal_ignore_hash(t, &template))
        });
        let mut old = rs_list;
        let existing = new_index.map(|i| old.remove(i));
        let max_old_revision = old.iter().map(revision).max().unwrap_or(0);
        let new_revision = max_old_revision + 1;
        let ns = d.namespace().unwrap_or_default();
        let now = Timestamp::now();
        if let Some(rs) = existing {
            let mut copy = rs.clone();
            let annotations_changed = set_new_rs_annotations(d, &mut copy, new_revision, true);
            let min_ready = d.spec.as_ref().and_then(|s| s.min_ready_seconds);
            let min_ready_changed = copy.spec.as_ref().and_then(|s| s.min_ready_seconds) != min_ready;
            let new = if annotations_changed || min_ready_changed {
                if let Some(s) = copy.spec.as_mut() {
                    s.min_ready_seconds = min_ready;
                }
                self.rs_api(&ns)
                    .replace(&copy.name_any(), &PostParams::default(), &copy)
                    .await?
            } else {
                rs
            };
            let rev = annotation(&new.metadata, REVISION).unwrap_or("").to_string();
            self.set_deployment_revision(d, &rev).await?;
            let mut status = d.status.clone().unwrap_or_default();
            if progress::has_progress_deadline(d) && progress::get_condition(&status, PROGRESSING).is_none() {
                let msg = format!("Found new replica set {:?}", new.name_any());
                progress::set_condition(
                    &mut status,
                    progress::condition(PROGRESSING, "True", FOUND_NEW_RS_REASON, msg, now),
                );
                *d = self.write_status(d, status).await?;
            }
            return Ok(ReplicaSets { new: Some(new), old });
        }
        if !create {
            return Ok(ReplicaSets { new: None, old });
        }
        let collision_count = d.status.as_ref().and_then(|s| s.collision_count);
        let hash = compute_hash(&template, collision_count);
        let mut rs_template = template.clone();
        rs_template
            .metadata
            .get_or_insert_with(ObjectMeta::default)
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let mut selector = d.spec.as_ref().map(|s| s.selector.clone()).unwrap_or_default();
        selector
            .match_labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let mut new_rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(format!("{}-{hash}", d.name_any())),
                namespace: Some(ns.clone()),
                owner_references: Some(vec![new_controller_ref(&d.metadata, "apps/v1", "Deployment")]),
                labels: rs_template.metadata.as_ref().and_then(|m| m.labels.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: d.spec.as_ref().and_then(|s| s.min_ready_seconds),
                selector,
                template: Some(rs_template),
            }),
            status: None,
        };
        let all: Vec<&ReplicaSet> = old.iter().chain(std::iter::once(&new_rs)).collect();
        let replicas = new_rs_new_replicas(d, &all, 0);
        if let Some(s) = new_rs.spec.as_mut() {
            s.replicas = Some(replicas);
        }
        set_new_rs_annotations(d, &mut new_rs, new_revision, false);
        let created = match self.rs_api(&ns).create(&PostParams::default(), &new_rs).await {
            Ok(rs) => {
                tracing::info!(controller = NAME, deployment = %d.name_any(), replicaset = %rs.name_any(), replicas, "created new replica set");
                let mut status = d.status.clone().unwrap_or_default();
                if progress::has_progress_deadline(d) {
                    let msg = format!("Created new replica set {:?}", rs.name_any());
                    progress::set_condition(
                        &mut status,
                        progress::condition(PROGRESSING, "True", NEW_RS_REASON, msg, now),
                    );
                    *d = self.write_status(d, status).await?;
                }
                rs
            }
            Err(e) if is_already_exists(&e) => {
                let name = new_rs.name_any();
                let current = ignore_not_found(self.rs_api(&ns).get(&name).await)?;
                let ours = current.as_ref().is_some_and(|rs| {
                    controller_of(&rs.metadata).map(|r| r.uid.as_str()) == d.metadata.uid.as_deref()
                        && rs
                            .spec
                            .as_ref()
                            .and_then(|s| s.template.as_ref())
                            .is_some_and(|t| equal_ignore_hash(t, &template))
                });
                match current {
                    Some(rs) if ours => rs,
                    _ => {
                        // A hash collision: try the next name.
                        let mut status = d.status.clone().unwrap_or_default();
                        status.collision_count = Some(collision_count.unwrap_or(0).saturating_add(1));
                        self.write_status(d, status).await?;
                        return Err(Error::other(format!(
                            "replica set {name} already exists with another template"
                        )));
                    }
                }
            }
            Err(e) => {
                let mut status = d.status.clone().unwrap_or_default();
                if progress::has_progress_deadline(d) {
                    let msg = format!("Failed to create new replica set {:?}: {e}", new_rs.name_any());
                    progress::set_condition(
                        &mut status,
                        progress::condition(PROGRESSING, "False", progress::FAILED_RS_CREATE_REASON, msg, now),
                    );
                    let _ = self.write_status(d, status).await;
                }
                return Err(e.into());
            }
        };
        self.set_deployment_revision(d, &new_revision.to_string()).await?;
        Ok(ReplicaSets {
            new: Some(created),
            old,
        })
    }

    /// Scales `rs` to `size`, refreshing its replicas annotations.
    async fn scale_replica_set(&self, d: &Deployment, rs: &mut ReplicaSet, size: i32) -> Result<bool, Error> {
        let size_changed = rs_replicas(rs) != size;
        let mut copy = rs.clone();
        let annotations_changed = set_replicas_annotations(&mut copy, d_replicas(d), d_replicas(d) + max_surge(d));
        if !size_changed && !annotations_changed {
            return Ok(false);
        }
        if let Some(s) = copy.spec.as_mut() {
            s.replicas = Some(size);
        }
        let ns = rs.namespace().unwrap_or_default();
        *rs = self
            .rs_api(&ns)
            .replace(&rs.name_any(), &PostParams::default(), &copy)
            .await?;
        if size_changed {
            tracing::info!(controller = NAME, deployment = %d.name_any(), replicaset = %rs.name_any(), replicas = size, "scaled replica set");
        }
        Ok(size_changed)
    }

    /// Whether some active ReplicaSet was last scaled for another
    /// Deployment size.
    async fn is_scaling_event(&self, d: &mut Deployment, rs_list: &[ReplicaSet]) -> Result<bool, Error> {
        let rss = self.replica_sets_and_sync_revision(d, rs_list.to_vec(), false).await?;
        let desired = d_replicas(d).to_string();
        Ok(rss
            .all()
            .iter()
            .filter(|rs| rs_replicas(rs) > 0)
            .any(|rs| annotation(&rs.metadata, DESIRED_REPLICAS).is_some_and(|v| v != desired)))
    }

    /// Paused or resized: scale the ReplicaSets (proportionally during a
    /// rollout), clean up history when paused, and write status.
    async fn sync_scale(&self, d: &mut Deployment, rs_list: Vec<ReplicaSet>) -> Result<Action, Error> {
        let mut rss = self.replica_sets_and_sync_revision(d, rs_list, false).await?;
        self.scale(d, &mut rss).await?;
        if d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false) {
            self.cleanup(d, &rss).await?;
        }
        self.sync_status(d, &rss).await?;
        Ok(Action::Done)
    }

    async fn scale(&self, d: &Deployment, rss: &mut ReplicaSets) -> Result<(), Error> {
        let desired = d_replicas(d);
        // One active (or only the latest) ReplicaSet: it gets everything.
        let active_count = rss.all().iter().filter(|rs| rs_replicas(rs) > 0).count();
        if active_count <= 1 {
            let target: Option<&mut ReplicaSet> = if active_count == 1 {
                rss.new
                    .as_mut()
                    .filter(|rs| rs_replicas(rs) > 0)
                    .or_else(|| rss.old.iter_mut().find(|rs| rs_replicas(rs) > 0))
            } else if rss.new.is_some() {
                rss.new.as_mut()
            } else {
                rss.old.iter_mut().max_by(|a, b| by_creation(a, b))
            };
            if let Some(rs) = target {
                if rs_replicas(rs) == desired {
                    return Ok(());
                }
                self.scale_replica_set(d, rs, desired).await?;
                return Ok(());
            }
            return Ok(());
        }
        // The new ReplicaSet is saturated: old ones go to zero.
        if let Some(new) = rss.new.as_ref()
            && rs_replicas(new) == desired
            && annotation(&new.metadata, DESIRED_REPLICAS) == Some(desired.to_string().as_str())
            && new.status.as_ref().and_then(|s| s.available_replicas) == Some(desired)
        {
            for rs in rss.old.iter_mut().filter(|rs| rs_replicas(rs) > 0) {
                self.scale_replica_set(d, rs, 0).await?;
            }
            return Ok(());
        }
        if !is_rolling(d) {
            return Ok(());
        }
        let sizes = {
            let active: Vec<&ReplicaSet> = rss.all().into_iter().filter(|rs| rs_replicas(rs) > 0).collect();
            math::proportional_sizes(d, &active)
        };
        for (name, size) in sizes {
            let rs = match rss
                .new
                .as_mut()
                .filter(|rs| rs.metadata.name.as_deref() == Some(name.as_str()))
            {
                Some(rs) => rs,
                None => match rss
                    .old
                    .iter_mut()
                    .find(|rs| rs.metadata.name.as_deref() == Some(name.as_str()))
                {
                    Some(rs) => rs,
                    None => continue,
                },
            };
            self.scale_replica_set(d, rs, size).await?;
        }
        Ok(())
    }

    /// RollingUpdate: grow the new ReplicaSet within maxSurge, shrink old
    /// ones within maxUnavailable, then status.
    async fn rollout_rolling(&self, d: &mut Deployment, rs_list: Vec<ReplicaSet>) -> Result<Action, Error> {
        let mut rss = self.replica_sets_and_sync_revision(d, rs_list, true).await?;
        // Scale up the new ReplicaSet.
        if let Some(mut new) = rss.new.take() {
            let desired = d_replicas(d);
            let current = rs_replicas(&new);
            let target = if current > desired {
                desired
            } else {
                let all: Vec<&ReplicaSet> = rss.old.iter().chain(std::iter::once(&new)).collect();
                new_rs_new_replicas(d, &all, current)
            };
            let scaled = target != current && self.scale_replica_set(d, &mut new, target).await?;
            rss.new = Some(new);
            if scaled {
                return self.sync_rollout_status(d, &rss).await;
            }
        }
        // Scale down old ReplicaSets.
        if self.reconcile_old_replica_sets(d, &mut rss).await? {
            return self.sync_rollout_status(d, &rss).await;
        }
        let status = progress::calculate_status(d, &rss.all(), rss.new.as_ref(), Timestamp::now());
        if progress::deployment_complete(d, &status) {
            self.cleanup(d, &rss).await?;
        }
        self.sync_rollout_status(d, &rss).await
    }

    /// Scales old ReplicaSets down as far as availability allows, unhealthy
    /// ones first; returns whether any was scaled.
    async fn reconcile_old_replica_sets(&self, d: &Deployment, rss: &mut ReplicaSets) -> Result<bool, Error> {
        let old_pods: i32 = rss.old.iter().map(rs_replicas).sum();
        if old_pods == 0 {
            return Ok(false);
        }
        let max_down = max_scaled_down(d, &rss.all(), rss.new.as_ref());
        if max_down <= 0 {
            return Ok(false);
        }
        // Old pods that are not available go first: removing them costs
        // no availability.
        let mut cleaned = 0;
        rss.old.sort_by(by_creation);
        let mut scaled = false;
        for rs in rss.old.iter_mut() {
            if cleaned >= max_down {
                break;
            }
            let replicas = rs_replicas(rs);
            if replicas == 0 {
                continue;
            }
            let available = rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0);
            if replicas == available {
                continue;
            }
            let down = (max_down - cleaned).min(replicas - available);
            cleaned += down;
            scaled |= self.scale_replica_set(d, rs, replicas - down).await?;
        }
        // Then healthy ones, keeping replicas - maxUnavailable available.
        let min_available = d_replicas(d) - math::max_unavailable(d);
        let available: i32 = rss
            .all()
            .iter()
            .map(|rs| rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0))
            .sum();
        if available > min_available {
            let mut total = (available - min_available).min(max_down - cleaned);
            for rs in rss.old.iter_mut() {
                if total <= 0 {
                    break;
                }
                let replicas = rs_replicas(rs);
                if replicas == 0 {
                    continue;
                }
                let down = replicas.min(total);
                total -= down;
                scaled |= self.scale_replica_set(d, rs, replicas - down).await?;
            }
        }
        Ok(scaled)
    }

    /// Recreate: scale every old ReplicaSet to zero, wait until their pods
    /// are gone, then create and scale up the new one.
    async fn rollout_recreate(&self, d: &mut Deployment, rs_list: Vec<ReplicaSet>) -> Result<Action, Error> {
        let mut rss = self.replica_sets_and_sync_revision(d, rs_list, false).await?;
        let mut scaled = false;
        for rs in rss.old.iter_mut().filter(|rs| rs_replicas(rs) > 0) {
            scaled |= self.scale_replica_set(d, rs, 0).await?;
        }
        if scaled {
            return self.sync_rollout_status(d, &rss).await;
        }
        if self.old_pods_running(d, &rss) {
            return self.sync_rollout_status(d, &rss).await;
        }
        if rss.new.is_none() {
            let old = std::mem::take(&mut rss.old);
            rss = self.replica_sets_and_sync_revision(d, old, true).await?;
        }
        if let Some(mut new) = rss.new.take() {
            self.scale_replica_set(d, &mut new, d_replicas(d)).await?;
            rss.new = Some(new);
        }
        let status = progress::calculate_status(d, &rss.all(), rss.new.as_ref(), Timestamp::now());
        if progress::deployment_complete(d, &status) {
            self.cleanup(d, &rss).await?;
        }
        self.sync_rollout_status(d, &rss).await
    }

    /// Whether any pod of an old ReplicaSet may still be running.
    fn old_pods_running(&self, d: &Deployment, rss: &ReplicaSets) -> bool {
        if rss
            .old
            .iter()
            .any(|rs| rs.status.as_ref().is_some_and(|s| s.replicas > 0))
        {
            return true;
        }
        let ns = d.namespace().unwrap_or_default();
        let old_uids: HashSet<&str> = rss.old.iter().filter_map(|rs| rs.metadata.uid.as_deref()).collect();
        self.pods.list(&ns).iter().any(|p| {
            controller_of(&p.metadata).is_some_and(|r| old_uids.contains(r.uid.as_str()))
                && !matches!(phase(p), "Succeeded" | "Failed")
        })
    }

    /// Deletes the oldest old ReplicaSets with no pods beyond
    /// `revisionHistoryLimit`.
    async fn cleanup(&self, d: &Deployment, rss: &ReplicaSets) -> Result<(), Error> {
        let Some(limit) = d.spec.as_ref().and_then(|s| s.revision_history_limit) else {
            return Ok(());
        };
        let mut cleanable: Vec<&ReplicaSet> = rss
            .old
            .iter()
            .filter(|rs| rs.metadata.deletion_timestamp.is_none())
            .collect();
        let excess = i64::try_from(cleanable.len()).unwrap_or(0) - i64::from(limit);
        if excess <= 0 {
            return Ok(());
        }
        cleanable.sort_by(|a, b| revision(a).cmp(&revision(b)).then_with(|| by_creation(a, b)));
        let ns = d.namespace().unwrap_or_default();
        for rs in cleanable.into_iter().take(usize::try_from(excess).unwrap_or(0)) {
            let status = rs.status.clone().unwrap_or_default();
            if status.replicas != 0 || rs_replicas(rs) != 0 || rs.metadata.generation > status.observed_generation {
                continue;
            }
            let dp = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: rs.metadata.uid.clone(),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            match self.rs_api(&ns).delete(&rs.name_any(), &dp).await {
                Ok(_) => {
                    tracing::info!(controller = NAME, deployment = %d.name_any(), replicaset = %rs.name_any(), "deleted old replica set")
                }
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Status without Progressing changes (deleting, paused, scaling).
    async fn sync_status(&self, d: &Deployment, rss: &ReplicaSets) -> Result<(), Error> {
        let status = progress::calculate_status(d, &rss.all(), rss.new.as_ref(), Timestamp::now());
        self.write_status(d, status).await?;
        Ok(())
    }

    /// Status with the Progressing condition; requeues a progressing
    /// Deployment for its deadline.
    async fn sync_rollout_status(&self, d: &Deployment, rss: &ReplicaSets) -> Result<Action, Error> {
        let now = Timestamp::now();
        let status = progress::rollout_status(d, &rss.all(), rss.new.as_ref(), now);
        let after = progress::stuck_requeue_after(d, &status, now);
        self.write_status(d, status).await?;
        Ok(match after {
            Some(secs) => Action::RequeueAfter(Duration::from_secs(secs)),
            None => Action::Done,
        })
    }

    /// Sets Progressing to Unknown/DeploymentPaused on pause and
    /// Unknown/DeploymentResumed on resume.
    async fn check_paused_conditions(&self, d: &mut Deployment) -> Result<(), Error> {
        if !progress::has_progress_deadline(d) {
            return Ok(());
        }
        let mut status = d.status.clone().unwrap_or_default();
        let cond = progress::get_condition(&status, PROGRESSING);
        if cond.and_then(|c| c.reason.as_deref()) == Some(progress::TIMED_OUT_REASON) {
            return Ok(());
        }
        let paused_exists = cond.and_then(|c| c.reason.as_deref()) == Some(PAUSED_REASON);
        let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
        let now = Timestamp::now();
        let new = if paused && !paused_exists {
            progress::condition(
                PROGRESSING,
                "Unknown",
                PAUSED_REASON,
                "Deployment is paused".into(),
                now,
            )
        } else if !paused && paused_exists {
            progress::condition(
                PROGRESSING,
                "Unknown",
                RESUMED_REASON,
                "Deployment is resumed".into(),
                now,
            )
        } else {
            return Ok(());
        };
        progress::set_condition(&mut status, new);
        *d = self.write_status(d, status).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn revision_annotations() {
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "d", "annotations": {"team": "a", REVISION: "9", "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "spec": {"replicas": 4, "selector": {}, "template": {},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}},
        }))
        .unwrap();
        let mut rs = ReplicaSet::default();
        assert!(set_new_rs_annotations(&d, &mut rs, 1, false));
        let a = rs.metadata.annotations.clone().unwrap();
        assert_eq!(a.get("team").map(String::as_str), Some("a"));
        assert_eq!(a.get(REVISION).map(String::as_str), Some("1"));
        assert_eq!(a.get(DESIRED_REPLICAS).map(String::as_str), Some("4"));
        assert_eq!(a.get(MAX_REPLICAS).map(String::as_str), Some("5"));
        assert!(!a.contains_key("kubectl.kubernetes.io/last-applied-configuration"));
        assert!(
            !set_new_rs_annotations(&d, &mut rs, 1, true),
            "nothing changes at the same revision"
        );
        // Rolled back to: revision 3, history "1".
        assert!(set_new_rs_annotations(&d, &mut rs, 3, true));
        assert!(set_new_rs_annotations(&d, &mut rs, 5, true));
        let a = rs.metadata.annotations.clone().unwrap();
        assert_eq!(a.get(REVISION).map(String::as_str), Some("5"));
        assert_eq!(a.get(REVISION_HISTORY).map(String::as_str), Some("1,3"));
        assert_eq!(revision(&rs), 5);
    }
}
