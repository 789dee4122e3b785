//! The two strategies: RollingUpdate (grow the new ReplicaSet within
//! maxSurge, shrink old ones within maxUnavailable) and Recreate (old pods
//! gone before new ones start).

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::jiff::Timestamp;

use super::DeploymentController;
use super::math::{self, by_creation, d_replicas, max_scaled_down, new_rs_new_replicas, rs_replicas};
use super::progress;
use super::revision::ReplicaSets;
use crate::error::Error;
use crate::runner::Action;

impl DeploymentController {
    /// RollingUpdate: grow the new ReplicaSet within maxSurge, shrink old
    /// ones within maxUnavailable, then status.
    pub(super) async fn rollout_rolling(&self, d: &mut Deployment, rs_list: Vec<ReplicaSet>) -> Result<Action, Error> {
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
    pub(super) async fn reconcile_old_replica_sets(
        &self,
        d: &Deployment,
        rss: &mut ReplicaSets,
    ) -> Result<bool, Error> {
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
    pub(super) async fn rollout_recreate(&self, d: &mut Deployment, rs_list: Vec<ReplicaSet>) -> Result<Action, Error> {
        let mut rss = self.replica_sets_and_sync_revision(d, rs_list, false).await?;
        let mut scaled = false;
        for rs in rss.old.iter_mut().filter(|rs| rs_replicas(rs) > 0) {
            scaled |= self.scale_replica_set(d, rs, 0).await?;
        }
        if scaled {
            return self.sync_rollout_status(d, &rss).await;
        }
        if self.old_pods_running(&rss) {
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
    pub(super) fn old_pods_running(&self, rss: &ReplicaSets) -> bool {
        if rss
            .old
            .iter()
            .any(|rs| rs.status.as_ref().is_some_and(|s| s.replicas > 0))
        {
            return true;
        }
        self.active_pods
            .any(rss.old.iter().filter_map(|rs| rs.metadata.uid.as_deref()))
    }
}
