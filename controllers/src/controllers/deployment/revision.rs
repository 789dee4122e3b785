//! Revisions: finding the new ReplicaSet (the one whose template matches
//! the Deployment's), creating it as `<deployment>-<pod-template-hash>`,
//! and the revision, revision-history and replicas annotations
//! (upstream `getAllReplicaSetsAndSyncRevision`).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::PostParams;

use super::hash::{POD_TEMPLATE_HASH, compute_hash, equal_ignore_hash};
use super::math::{DESIRED_REPLICAS, MAX_REPLICAS, d_replicas, max_surge, new_rs_new_replicas};
use super::progress::{self, FOUND_NEW_RS_REASON, NEW_RS_REASON, PROGRESSING};
use super::{DeploymentController, NAME};
use crate::controllers::controller_ref::{controller_of, new_controller_ref};
use crate::error::{Error, ignore_not_found, is_already_exists};

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

pub(super) fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub(super) fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

/// The ReplicaSets of one Deployment: the one matching its template (if
/// any) and the others, oldest first.
pub(super) struct ReplicaSets {
    pub(super) new: Option<ReplicaSet>,
    pub(super) old: Vec<ReplicaSet>,
}

impl ReplicaSets {
    pub(super) fn all(&self) -> Vec<&ReplicaSet> {
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
pub(super) fn set_new_rs_annotations(d: &Deployment, rs: &mut ReplicaSet, new_revision: i64, exists: bool) -> bool {
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
pub(super) fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
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

/// Sets the Deployment's revision annotation to `revision` (upstream
/// `SetDeploymentRevision`); returns whether it changed. The caller stores
/// it with its next status update, which carries the annotations.
pub(super) fn set_deployment_revision(d: &mut Deployment, revision: &str) -> bool {
    if revision.is_empty() || annotation(&d.metadata, REVISION) == Some(revision) {
        return false;
    }
    d.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(REVISION.into(), revision.into());
    true
}

impl DeploymentController {
    /// Splits `rs_list` into the new ReplicaSet and old ones, updating the
    /// new one's revision (and creating it when `create`), like upstream's
    /// `getAllReplicaSetsAndSyncRevision`.
    pub(super) async fn replica_sets_and_sync_revision(
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
            // The revision and the Progressing condition, if either is
            // missing, in one status update.
            let rev = annotation(&new.metadata, REVISION).unwrap_or("").to_string();
            let mut changed = set_deployment_revision(d, &rev);
            let mut status = d.status.clone().unwrap_or_default();
            if progress::has_progress_deadline(d) && progress::get_condition(&status, PROGRESSING).is_none() {
                let msg = format!("Found new replica set {:?}", new.name_any());
                progress::set_condition(
                    &mut status,
                    progress::condition(PROGRESSING, "True", FOUND_NEW_RS_REASON, msg, now),
                );
                changed = true;
            }
            if changed {
                d.status = Some(status);
                *d = self.update_status(d).await?;
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
        let (created, already_exists) = match self.rs_api(&ns).create(&PostParams::default(), &new_rs).await {
            Ok(rs) => {
                tracing::info!(controller = NAME, deployment = %d.name_any(), replicaset = %rs.name_any(), replicas, "created new replica set");
                (rs, false)
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
                    Some(rs) if ours => (rs, true),
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
        // The new revision, the Progressing condition and the rollout's
        // status go out in one status update (upstream makes one for the
        // first two, then another for the status). Only the rollouts
        // (RollingUpdate and Recreate) create, and both end with this same
        // status, so their closing write finds nothing changed unless they
        // scaled something meanwhile: a new Deployment's first sync is two
        // requests, the create and this update.
        let mut changed = set_deployment_revision(d, &new_revision.to_string());
        let mut status = d.status.clone().unwrap_or_default();
        if !already_exists && progress::has_progress_deadline(d) {
            let msg = format!("Created new replica set {:?}", created.name_any());
            progress::set_condition(
                &mut status,
                progress::condition(PROGRESSING, "True", NEW_RS_REASON, msg, now),
            );
            changed = true;
        }
        if changed {
            d.status = Some(status);
            let all: Vec<&ReplicaSet> = old.iter().chain(std::iter::once(&created)).collect();
            d.status = Some(progress::rollout_status(d, &all, Some(&created), now));
            *d = self.update_status(d).await?;
        }
        Ok(ReplicaSets {
            new: Some(created),
            old,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

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
