//! One reconcile of a Deployment (upstream `syncDeployment`): claim
//! ReplicaSets, then dispatch to scaling ([`super::scale`]), a rollout
//! ([`super::rollout`]) or a status-only sync, and write status.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, PostParams};

use super::math::{by_creation, is_rolling};
use super::progress::{self, PAUSED_REASON, PROGRESSING, RESUMED_REASON};
use super::revision::ReplicaSets;
use super::{DeploymentController, NAME};
use crate::controllers::controller_ref::{
    Claim, claim, new_controller_ref, owner_refs_patch, patch_claim, selector_is_empty, selector_matches, with_owner,
    without_owner,
};
use crate::error::{Error, ignore_not_found};
use crate::informer::split_key;
use crate::runner::Action;

impl DeploymentController {
    pub(super) fn rs_api(&self, ns: &str) -> Api<ReplicaSet> {
        Api::namespaced(self.client.clone(), ns)
    }

    pub(super) fn d_api(&self, ns: &str) -> Api<Deployment> {
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
    pub(super) async fn claim_replica_sets(&self, d: &Deployment) -> Result<Vec<ReplicaSet>, Error> {
        let ns = d.namespace().unwrap_or_default();
        let Some(spec) = d.spec.as_ref() else {
            return Ok(Vec::new());
        };
        let uid = d.metadata.uid.clone().unwrap_or_default();
        let deleting = d.metadata.deletion_timestamp.is_some();
        let api = self.rs_api(&ns);
        let mut out = Vec::new();
        let mut can_adopt: Option<bool> = None;
        let no_labels = BTreeMap::new();
        let candidates = self.rs_index.claim_candidates(&ns, &uid);
        for rs in candidates.iter().filter_map(|name| self.replica_sets.get(&ns, name)) {
            let labels = rs.metadata.labels.as_ref().unwrap_or(&no_labels);
            let matches = selector_matches(&spec.selector, labels);
            match claim(&rs.metadata, &uid, matches, deleting) {
                Claim::Owned => out.push((*rs).clone()),
                Claim::Ignore => {}
                Claim::Release => {
                    let patch = owner_refs_patch(&rs.metadata, &without_owner(&rs.metadata, &uid));
                    patch_claim(&api, &rs.name_any(), &patch).await?;
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
                    if let Some(adopted) = patch_claim(&api, &rs.name_any(), &patch).await? {
                        out.push(adopted);
                    }
                }
            }
        }
        out.sort_by(by_creation);
        Ok(out)
    }

    /// Writes `status` if it differs from the Deployment's.
    pub(super) async fn write_status(&self, d: &Deployment, status: DeploymentStatus) -> Result<Deployment, Error> {
        if d.status.as_ref() == Some(&status) {
            return Ok(d.clone());
        }
        let mut updated = d.clone();
        updated.status = Some(status);
        self.update_status(&updated).await
    }

    /// Stores `d`'s status and, with it, its annotations: a status update
    /// carries a Deployment's annotations (but not its labels or spec),
    /// which is how upstream stores the revision annotation too.
    pub(super) async fn update_status(&self, d: &Deployment) -> Result<Deployment, Error> {
        let ns = d.namespace().unwrap_or_default();
        Ok(self
            .d_api(&ns)
            .replace_status(&d.name_any(), &PostParams::default(), d)
            .await?)
    }

    /// Status without Progressing changes (deleting, paused, scaling).
    pub(super) async fn sync_status(&self, d: &Deployment, rss: &ReplicaSets) -> Result<(), Error> {
        let status = progress::calculate_status(d, &rss.all(), rss.new.as_ref(), Timestamp::now());
        self.write_status(d, status).await?;
        Ok(())
    }

    /// Status with the Progressing condition; requeues a progressing
    /// Deployment for its deadline.
    pub(super) async fn sync_rollout_status(&self, d: &Deployment, rss: &ReplicaSets) -> Result<Action, Error> {
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
    pub(super) async fn check_paused_conditions(&self, d: &mut Deployment) -> Result<(), Error> {
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
