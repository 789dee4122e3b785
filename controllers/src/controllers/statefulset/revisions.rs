//! A StatefulSet's current and update revisions (upstream
//! `getStatefulSetRevisions` and `truncateHistory`): the update revision
//! records the set's template now — the newest revision if it already
//! does, an older equal one renumbered as the newest (a rollback), or a
//! new one; the current revision is the one `status.currentRevision`
//! names (the update revision at first). History beyond
//! `revisionHistoryLimit` that no pod uses is deleted, oldest first.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use kube::api::Api;

use super::identity::pod_revision;
use crate::cached_pod::CachedPod;
use crate::controllers::history::{
    create_revision, delete_revision, equal_revision, new_revision, next_revision, template_patch,
    update_revision_number,
};
use crate::error::Error;

/// The revisions a round works with.
#[derive(Debug)]
pub struct Revisions {
    pub current: Arc<ControllerRevision>,
    pub update: Arc<ControllerRevision>,
    pub collision_count: i32,
}

/// The revision recording `set`'s template, numbered `number`.
pub fn revision_for(set: &StatefulSet, number: i64, collision_count: i32) -> ControllerRevision {
    let template = set.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    let labels: BTreeMap<String, String> = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let mut rev = new_revision(
        &set.metadata,
        "apps/v1",
        "StatefulSet",
        labels,
        template_patch(&template),
        number,
        collision_count,
    );
    rev.metadata.annotations = set.metadata.annotations.clone();
    rev
}

/// Finds or records the current and update revisions; `sorted` are the
/// set's revisions by number.
pub async fn current_and_update(
    api: &Api<ControllerRevision>,
    set: &StatefulSet,
    sorted: &[Arc<ControllerRevision>],
) -> Result<Revisions, Error> {
    let mut collision_count = set.status.as_ref().and_then(|s| s.collision_count).unwrap_or(0);
    let wanted = revision_for(set, next_revision(sorted), collision_count);
    let equal: Vec<&Arc<ControllerRevision>> = sorted.iter().filter(|r| equal_revision(r, &wanted)).collect();
    let update = match (equal.last(), sorted.last()) {
        (Some(eq), Some(latest)) if equal_revision(latest, eq) => latest.clone(),
        (Some(eq), _) => Arc::new(update_revision_number(api, eq, wanted.revision).await?),
        (None, _) => Arc::new(create_revision(api, &set.metadata, &wanted, &mut collision_count).await?),
    };
    let recorded = set.status.as_ref().and_then(|s| s.current_revision.as_deref());
    let current = sorted
        .iter()
        .find(|r| recorded.is_some() && r.metadata.name.as_deref() == recorded)
        .cloned()
        .unwrap_or_else(|| update.clone());
    Ok(Revisions {
        current,
        update,
        collision_count,
    })
}

/// The revisions (of `sorted`) to delete to keep `limit` of those neither
/// current, update, nor used by a pod.
pub fn revisions_to_truncate<'a>(
    sorted: &'a [Arc<ControllerRevision>],
    pods: &[Arc<CachedPod>],
    live: &[&str],
    limit: usize,
) -> Vec<&'a Arc<ControllerRevision>> {
    let mut in_use: HashSet<&str> = live.iter().copied().collect();
    in_use.extend(pods.iter().map(|p| pod_revision(p)));
    let history: Vec<&Arc<ControllerRevision>> = sorted
        .iter()
        .filter(|r| !in_use.contains(r.metadata.name.as_deref().unwrap_or_default()))
        .collect();
    let excess = history.len().saturating_sub(limit);
    history.into_iter().take(excess).collect()
}

/// Deletes history beyond `revisionHistoryLimit` (default 10).
pub async fn truncate_history(
    api: &Api<ControllerRevision>,
    set: &StatefulSet,
    pods: &[Arc<CachedPod>],
    sorted: &[Arc<ControllerRevision>],
    live: &[&str],
) -> Result<(), Error> {
    let limit = set.spec.as_ref().and_then(|s| s.revision_history_limit).unwrap_or(10);
    let limit = usize::try_from(limit).unwrap_or(0);
    for rev in revisions_to_truncate(sorted, pods, live, limit) {
        delete_revision(api, rev).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::controllers::history::{REVISION_HASH_LABEL, hash_revision};
    use serde_json::json;

    fn set(image: &str) -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "u", "annotations": {"a": "b"}},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": image}]}}},
        }))
        .unwrap()
    }

    #[test]
    fn revisions_record_the_template_labels_and_annotations() {
        let r = revision_for(&set("v1"), 3, 1);
        assert_eq!(r.revision, 3);
        let labels = r.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["app"], "web");
        let hash = hash_revision(&r.data.as_ref().unwrap().0, Some(1));
        assert_eq!(labels[REVISION_HASH_LABEL], hash);
        assert_eq!(r.metadata.name.as_deref(), Some(format!("web-{hash}").as_str()));
        assert_eq!(r.metadata.annotations.as_ref().unwrap()["a"], "b");
        assert!(equal_revision(&r, &revision_for(&set("v1"), 7, 1)));
        assert!(!equal_revision(&r, &revision_for(&set("v2"), 3, 1)));
    }

    #[test]
    fn truncation_keeps_live_and_used_revisions() {
        let revs: Vec<Arc<ControllerRevision>> = (1..=5)
            .map(|i| {
                let mut r = revision_for(&set(&format!("v{i}")), i, 0);
                r.metadata.name = Some(format!("r{i}"));
                Arc::new(r)
            })
            .collect();
        let pod: CachedPod = serde_json::from_value(
            json!({"metadata": {"name": "web-0", "labels": {"controller-revision-hash": "r1"}}}),
        )
        .unwrap();
        let names = |v: Vec<&Arc<ControllerRevision>>| -> Vec<String> {
            v.iter().map(|r| r.metadata.name.clone().unwrap()).collect()
        };
        // r1 (a pod's), r4 and r5 (live) stay; of r2 and r3, one is kept.
        assert_eq!(
            names(revisions_to_truncate(&revs, &[Arc::new(pod.clone())], &["r4", "r5"], 1)),
            ["r2"]
        );
        assert_eq!(
            names(revisions_to_truncate(&revs, &[], &["r5"], 0)),
            ["r1", "r2", "r3", "r4"]
        );
        assert!(revisions_to_truncate(&revs, &[], &["r5"], 10).is_empty());
    }
}
