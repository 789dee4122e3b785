//! A DaemonSet's ControllerRevisions (upstream `constructHistory`,
//! `snapshot`, `cleanupHistory`): the current revision is the one whose
//! data records the template now, named `<ds>-<hash>` with the template
//! hash (as a Deployment's `pod-template-hash`) also in its
//! `controller-revision-hash` label, numbered above every older one.
//! Old revisions beyond `revisionHistoryLimit` that no pod uses are
//! deleted, oldest first.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::cached_pod::CachedPod;
use crate::controllers::controller_ref::new_controller_ref;
use crate::controllers::deployment::hash::compute_hash;
use crate::controllers::history::{
    CONTROLLER_REVISION_HASH_LABEL, delete_revision, template_patch, update_revision_number,
};
use crate::error::{Error, is_already_exists};

/// Whether `rev` records the DaemonSet's template now.
pub fn matches(ds: &DaemonSet, rev: &ControllerRevision) -> bool {
    let template = ds.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    rev.data.as_ref().map(|d| &d.0) == Some(&template_patch(&template))
}

/// The revision recording the template now, numbered `number`.
pub fn snapshot(ds: &DaemonSet, number: i64) -> ControllerRevision {
    let template = ds.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    let hash = compute_hash(&template, ds.status.as_ref().and_then(|s| s.collision_count));
    let mut labels: BTreeMap<String, String> = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(CONTROLLER_REVISION_HASH_LABEL.into(), hash.clone());
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(format!("{}-{hash}", ds.name_any())),
            namespace: ds.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: ds.metadata.annotations.clone(),
            owner_references: Some(vec![new_controller_ref(&ds.metadata, "apps/v1", "DaemonSet")]),
            ..ObjectMeta::default()
        },
        data: Some(RawExtension(template_patch(&template))),
        revision: number,
    }
}

/// The current revision (found, renumbered or created) and the old ones.
pub async fn construct_history(
    api: &Api<ControllerRevision>,
    ds_api: &Api<DaemonSet>,
    ds: &DaemonSet,
    owned: Vec<Arc<ControllerRevision>>,
) -> Result<(Arc<ControllerRevision>, Vec<Arc<ControllerRevision>>), Error> {
    let mut current = Vec::new();
    let mut old = Vec::new();
    for rev in owned {
        let rev = if rev
            .metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(CONTROLLER_REVISION_HASH_LABEL))
        {
            rev
        } else {
            let name = rev.name_any();
            let patch = json!({"metadata": {"labels": {CONTROLLER_REVISION_HASH_LABEL: name}}});
            Arc::new(api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?)
        };
        if matches(ds, &rev) {
            current.push(rev);
        } else {
            old.push(rev);
        }
    }
    let next = old.iter().map(|r| r.revision).max().unwrap_or(0) + 1;
    current.sort_by_key(|r| r.revision);
    let cur = match current.pop() {
        None => Arc::new(create_snapshot(api, ds_api, ds, next).await?),
        Some(keep) => {
            // Duplicates of the current revision go (their pods' labels are
            // judged by template generation until recreated).
            for dup in &current {
                delete_revision(api, dup).await?;
            }
            if keep.revision < next {
                Arc::new(update_revision_number(api, &keep, next).await?)
            } else {
                keep
            }
        }
    };
    Ok((cur, old))
}

async fn create_snapshot(
    api: &Api<ControllerRevision>,
    ds_api: &Api<DaemonSet>,
    ds: &DaemonSet,
    number: i64,
) -> Result<ControllerRevision, Error> {
    let rev = snapshot(ds, number);
    match api.create(&PostParams::default(), &rev).await {
        Ok(r) => Ok(r),
        Err(e) if is_already_exists(&e) => {
            let existing = api.get(&rev.name_any()).await?;
            if matches(ds, &existing) {
                return Ok(existing);
            }
            // A hash collision: count it, so the next sync uses a new name.
            let mut fresh = ds_api.get(&ds.name_any()).await?;
            let recorded = ds.status.as_ref().and_then(|s| s.collision_count);
            let live = fresh.status.as_ref().and_then(|s| s.collision_count);
            if recorded != live {
                return Err(Error::other(format!(
                    "found a stale collision count of DaemonSet {}; will retry until it is updated",
                    ds.name_any()
                )));
            }
            let status = fresh.status.get_or_insert_with(Default::default);
            status.collision_count = Some(live.unwrap_or(0).saturating_add(1));
            ds_api
                .replace_status(&ds.name_any(), &PostParams::default(), &fresh)
                .await?;
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}

/// Old revisions to delete: beyond `limit`, oldest first, skipping any
/// whose hash a pod still carries.
pub fn revisions_to_clean<'a>(
    old: &'a [Arc<ControllerRevision>],
    pods: &[Arc<CachedPod>],
    limit: usize,
) -> Vec<&'a Arc<ControllerRevision>> {
    let mut to_kill = old.len().saturating_sub(limit);
    let live: HashSet<&str> = pods
        .iter()
        .filter_map(|p| p.metadata.labels.as_ref()?.get(CONTROLLER_REVISION_HASH_LABEL))
        .map(String::as_str)
        .collect();
    let mut sorted: Vec<&Arc<ControllerRevision>> = old.iter().collect();
    sorted.sort_by_key(|r| r.revision);
    let mut out = Vec::new();
    for r in sorted {
        if to_kill == 0 {
            break;
        }
        let hash = r
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(CONTROLLER_REVISION_HASH_LABEL))
            .map(String::as_str)
            .unwrap_or_default();
        if live.contains(hash) {
            continue;
        }
        out.push(r);
        to_kill -= 1;
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn ds(image: &str) -> DaemonSet {
        serde_json::from_value(json!({
            "metadata": {"name": "agent", "namespace": "ns", "uid": "u"},
            "spec": {"selector": {"matchLabels": {"app": "a"}},
                     "template": {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": image}]}}},
        }))
        .unwrap()
    }

    #[test]
    fn snapshots_are_named_by_template_hash() {
        let d = ds("v1");
        let r = snapshot(&d, 2);
        let hash = compute_hash(&d.spec.as_ref().unwrap().template, None);
        assert_eq!(r.metadata.name.as_deref(), Some(format!("agent-{hash}").as_str()));
        assert_eq!(
            r.metadata.labels.as_ref().unwrap()[CONTROLLER_REVISION_HASH_LABEL],
            hash
        );
        assert_eq!(r.revision, 2);
        assert!(matches(&d, &r));
        assert!(!matches(&ds("v2"), &r));
    }

    #[test]
    fn cleanup_keeps_the_limit_and_revisions_in_use() {
        let old: Vec<Arc<ControllerRevision>> = (1..=4).map(|i| Arc::new(snapshot(&ds(&format!("v{i}")), i))).collect();
        let hash1 = old[0].metadata.labels.as_ref().unwrap()[CONTROLLER_REVISION_HASH_LABEL].clone();
        let pod: CachedPod = serde_json::from_value(
            json!({"metadata": {"name": "p", "labels": {CONTROLLER_REVISION_HASH_LABEL: hash1}}}),
        )
        .unwrap();
        let gone: Vec<i64> = revisions_to_clean(&old, &[Arc::new(pod)], 2)
            .iter()
            .map(|r| r.revision)
            .collect();
        assert_eq!(gone, [2, 3]);
        assert!(revisions_to_clean(&old, &[], 10).is_empty());
    }
}
