//! Scaling without a template change (paused or resized Deployments,
//! proportionally across ReplicaSets mid-rollout) and history cleanup
//! (`revisionHistoryLimit`).

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::ResourceExt;
use kube::api::{DeleteParams, PostParams, Preconditions};

use super::math::{self, DESIRED_REPLICAS, by_creation, d_replicas, is_rolling, max_surge, rs_replicas};
use super::revision::{ReplicaSets, annotation, revision, set_replicas_annotations};
use super::{DeploymentController, NAME};
use crate::error::{Error, is_not_found};
use crate::runner::Action;

impl DeploymentController {
    /// Scales `rs` to `size`, refreshing its replicas annotations.
    pub(super) async fn scale_replica_set(
        &self,
        d: &Deployment,
        rs: &mut ReplicaSet,
        size: i32,
    ) -> Result<bool, Error> {
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
    pub(super) async fn is_scaling_event(&self, d: &mut Deployment, rs_list: &[ReplicaSet]) -> Result<bool, Error> {
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
    pub(super) async fn sync_scale(&self, d: &mut Deployment, rs_list: Vec<ReplicaSet>) -> Result<Action, Error> {
        let mut rss = self.replica_sets_and_sync_revision(d, rs_list, false).await?;
        self.scale(d, &mut rss).await?;
        if d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false) {
            self.cleanup(d, &rss).await?;
        }
        self.sync_status(d, &rss).await?;
        Ok(Action::Done)
    }

    pub(super) async fn scale(&self, d: &Deployment, rss: &mut ReplicaSets) -> Result<(), Error> {
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

    /// Deletes the oldest old ReplicaSets with no pods beyond
    /// `revisionHistoryLimit`.
    pub(super) async fn cleanup(&self, d: &Deployment, rss: &ReplicaSets) -> Result<(), Error> {
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
}
