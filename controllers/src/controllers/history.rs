//! ControllerRevisions: the recorded pod templates of StatefulSets and
//! DaemonSets (upstream `pkg/controller/history`). A revision's `data` is
//! the patch `{"spec":{"template":{..., "$patch":"replace"}}}` that puts
//! its template back; revisions are named `<owner>-<hash>` and numbered
//! by `revision`, the highest being the newest.
//!
//! Upstream hashes the Go encoding of `data`; this hashes its JSON
//! encoding (FNV-1, then upstream's `SafeEncodeString`), so names differ
//! from kube-controller-manager's but are just as stable.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{Value, json};

use crate::controllers::controller_ref::{
    Claim, claim, controller_selects, new_controller_ref, owner_refs_patch, patch_claim, with_owner, without_owner,
};
use crate::controllers::deployment::hash::safe_encode;
use crate::error::{Error, is_already_exists, is_conflict, is_not_found};

/// Label on a StatefulSet's revisions: the hash in their name
/// (upstream `ControllerRevisionHashLabel`).
pub const REVISION_HASH_LABEL: &str = "controller.kubernetes.io/hash";
/// Label on pods (and DaemonSet revisions) naming their revision
/// (`apps/v1` `ControllerRevisionHashLabelKey`).
pub const CONTROLLER_REVISION_HASH_LABEL: &str = "controller-revision-hash";

/// `<prefix>-<hash>`, the prefix cut to 223 bytes so the name fits 253.
pub fn revision_name(prefix: &str, hash: &str) -> String {
    let mut end = prefix.len().min(223);
    while !prefix.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}-{hash}", &prefix[..end])
}

/// 32-bit FNV-1 (Go's `fnv.New32`).
pub fn fnv32(data: &[u8], mut hash: u32) -> u32 {
    for b in data {
        hash = hash.wrapping_mul(0x0100_0193);
        hash ^= u32::from(*b);
    }
    hash
}

/// FNV-1's offset basis.
pub const FNV32_OFFSET: u32 = 0x811c_9dc5;

/// The hash naming a revision with `data`, after `probe` name collisions
/// (upstream `HashControllerRevision`).
pub fn hash_revision(data: &Value, probe: Option<i32>) -> String {
    let bytes = serde_json::to_vec(data).unwrap_or_default();
    let mut h = fnv32(&bytes, FNV32_OFFSET);
    if let Some(p) = probe {
        h = fnv32(p.to_string().as_bytes(), h);
    }
    safe_encode(&h.to_string())
}

/// The revision data recording `template`.
pub fn template_patch(template: &PodTemplateSpec) -> Value {
    let mut t = serde_json::to_value(template).unwrap_or_else(|_| json!({}));
    if let Some(m) = t.as_object_mut() {
        m.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": t}})
}

/// The template a revision records, if its data is a template patch.
pub fn template_of(revision: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut t = revision.data.as_ref()?.0.get("spec")?.get("template")?.clone();
    t.as_object_mut()?.remove("$patch");
    serde_json::from_value(t).ok()
}

fn data_of(revision: &ControllerRevision) -> &Value {
    static NULL: Value = Value::Null;
    revision.data.as_ref().map_or(&NULL, |d| &d.0)
}

/// Sorts by `revision`, then creation time, then name (upstream
/// `SortControllerRevisions`).
pub fn sort_revisions(revisions: &mut [Arc<ControllerRevision>]) {
    revisions.sort_by(|a, b| {
        a.revision
            .cmp(&b.revision)
            .then_with(|| {
                let at = a.metadata.creation_timestamp.as_ref().map(|t| t.0);
                let bt = b.metadata.creation_timestamp.as_ref().map(|t| t.0);
                at.cmp(&bt)
            })
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
}

/// Whether two revisions record the same data. (Upstream first compares
/// their hash labels as integers, which its encoded hashes never parse
/// as, so in effect it compares data alone, as here.)
pub fn equal_revision(a: &ControllerRevision, b: &ControllerRevision) -> bool {
    data_of(a) == data_of(b)
}

/// The revision number after the last of `sorted` (1 for none).
pub fn next_revision(sorted: &[Arc<ControllerRevision>]) -> i64 {
    sorted.last().map_or(1, |r| r.revision + 1)
}

/// A new revision of `owner` (a controller reference to it) with `data`,
/// labelled with `labels` plus the hash, named after the owner and the
/// hash of `data` and `collision_count` (upstream `NewControllerRevision`).
pub fn new_revision(
    owner: &ObjectMeta,
    api_version: &str,
    kind: &str,
    labels: std::collections::BTreeMap<String, String>,
    data: Value,
    revision: i64,
    collision_count: i32,
) -> ControllerRevision {
    let hash = hash_revision(&data, Some(collision_count));
    let mut labels = labels;
    labels.insert(REVISION_HASH_LABEL.into(), hash.clone());
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(revision_name(owner.name.as_deref().unwrap_or_default(), &hash)),
            namespace: owner.namespace.clone(),
            labels: Some(labels),
            owner_references: Some(vec![new_controller_ref(owner, api_version, kind)]),
            ..ObjectMeta::default()
        },
        data: Some(RawExtension(data)),
        revision,
    }
}

/// Creates `revision`, renaming it with a higher collision count while
/// its name is taken by different data; an existing revision with the
/// same data is returned as is (upstream `CreateControllerRevision`).
pub async fn create_revision(
    api: &Api<ControllerRevision>,
    owner: &ObjectMeta,
    revision: &ControllerRevision,
    collision_count: &mut i32,
) -> Result<ControllerRevision, Error> {
    let mut attempt = revision.clone();
    // A bound on renames: each one needs a different revision squatting
    // on the name, so more than a few means something else is wrong.
    for _ in 0..100 {
        let hash = hash_revision(data_of(revision), Some(*collision_count));
        attempt.metadata.name = Some(revision_name(owner.name.as_deref().unwrap_or_default(), &hash));
        if let Some(l) = attempt.metadata.labels.as_mut() {
            l.insert(REVISION_HASH_LABEL.into(), hash);
        }
        match api.create(&PostParams::default(), &attempt).await {
            Ok(created) => return Ok(created),
            Err(e) if is_already_exists(&e) => {
                let name = attempt.metadata.name.clone().unwrap_or_default();
                let existing = api.get(&name).await?;
                if data_of(&existing) == data_of(revision) {
                    return Ok(existing);
                }
                *collision_count = collision_count.saturating_add(1);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::other("too many ControllerRevision name collisions"))
}

/// Sets a revision's number (a rollback to it), retrying on conflict.
pub async fn update_revision_number(
    api: &Api<ControllerRevision>,
    revision: &ControllerRevision,
    number: i64,
) -> Result<ControllerRevision, Error> {
    let mut current = revision.clone();
    for _ in 0..5 {
        if current.revision == number {
            return Ok(current);
        }
        current.revision = number;
        let name = current.metadata.name.clone().unwrap_or_default();
        match api.replace(&name, &PostParams::default(), &current).await {
            Ok(r) => return Ok(r),
            Err(e) if is_conflict(&e) => current = api.get(&name).await?,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::other("conflicts updating ControllerRevision"))
}

/// Deletes a revision; one already gone is fine.
pub async fn delete_revision(api: &Api<ControllerRevision>, revision: &ControllerRevision) -> Result<(), kube::Error> {
    let name = revision.metadata.name.clone().unwrap_or_default();
    match api.delete(&name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

/// What to do with revisions an owner does not control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleasePolicy {
    /// Release owned revisions the selector no longer matches
    /// (DaemonSets, through `ControllerRefManager`).
    Release,
    /// Leave them (StatefulSets only list revisions their selector matches).
    Keep,
}

/// The revisions in `candidates` that `owner` controls, after adopting
/// orphans its selector matches (when `can_adopt` says the owner is still
/// there) and, per `policy`, releasing those it no longer matches.
#[allow(clippy::too_many_arguments)]
pub async fn claim_revisions(
    api: &Api<ControllerRevision>,
    owner: &ObjectMeta,
    api_version: &str,
    kind: &str,
    selector: &LabelSelector,
    candidates: Vec<Arc<ControllerRevision>>,
    policy: ReleasePolicy,
    can_adopt: bool,
) -> Result<Vec<Arc<ControllerRevision>>, kube::Error> {
    let uid = owner.uid.clone().unwrap_or_default();
    let deleting = owner.deletion_timestamp.is_some();
    let mut owned = Vec::new();
    for rev in candidates {
        let labels = rev.metadata.labels.clone().unwrap_or_default();
        let matches = controller_selects(selector, &labels);
        let name = rev.metadata.name.clone().unwrap_or_default();
        match claim(&rev.metadata, &uid, matches, deleting) {
            Claim::Owned => owned.push(rev),
            Claim::Ignore => {}
            Claim::Release if policy == ReleasePolicy::Keep => {}
            Claim::Release => {
                let patch = owner_refs_patch(&rev.metadata, &without_owner(&rev.metadata, &uid));
                patch_claim(api, &name, &patch).await?;
            }
            Claim::Adopt if !can_adopt => {}
            Claim::Adopt => {
                let r = new_controller_ref(owner, api_version, kind);
                let patch = owner_refs_patch(&rev.metadata, &with_owner(&rev.metadata, r));
                if let Some(r) = patch_claim(api, &name, &patch).await? {
                    owned.push(Arc::new(r));
                }
            }
        }
    }
    Ok(owned)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn template(image: &str) -> PodTemplateSpec {
        serde_json::from_value(
            json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": image}]}}),
        )
        .unwrap()
    }

    fn rev(name: &str, number: i64, data: Value) -> Arc<ControllerRevision> {
        Arc::new(ControllerRevision {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            data: Some(RawExtension(data)),
            revision: number,
        })
    }

    #[test]
    fn fnv1_matches_published_vectors() {
        // FNV-1 32-bit test vectors (Landon Curt Noll's fnv test suite).
        assert_eq!(fnv32(b"", FNV32_OFFSET), 0x811c_9dc5);
        assert_eq!(fnv32(b"a", FNV32_OFFSET), 0x050c_5d7e);
        assert_eq!(fnv32(b"foobar", FNV32_OFFSET), 0x31f0_b262);
    }

    #[test]
    fn names_hash_data_and_collisions() {
        let a = template_patch(&template("nginx:1"));
        let h = hash_revision(&a, Some(0));
        assert_eq!(h, hash_revision(&a, Some(0)));
        assert_ne!(h, hash_revision(&a, Some(1)));
        assert_ne!(h, hash_revision(&template_patch(&template("nginx:2")), Some(0)));
        assert_eq!(revision_name("web", "abc"), "web-abc");
        assert_eq!(revision_name(&"x".repeat(300), "abc").len(), 227);
    }

    #[test]
    fn patches_round_trip_templates() {
        let t = template("nginx:1");
        let data = template_patch(&t);
        assert_eq!(data["spec"]["template"]["$patch"], "replace");
        let r = rev("web-1", 1, data);
        assert_eq!(template_of(&r), Some(t));
        assert_eq!(template_of(&rev("bad", 1, json!({"spec": 3}))), None);
    }

    #[test]
    fn sorting_equality_and_next_numbers() {
        let mut revs = vec![rev("c", 3, json!(1)), rev("a", 1, json!(1)), rev("b", 1, json!(2))];
        sort_revisions(&mut revs);
        let names: Vec<_> = revs.iter().map(|r| r.metadata.name.clone().unwrap()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(next_revision(&revs), 4);
        assert_eq!(next_revision(&[]), 1);
        assert!(equal_revision(&revs[0], &revs[2]));
        assert!(!equal_revision(&revs[0], &revs[1]));
    }

    #[test]
    fn new_revisions_are_owned_labelled_and_named_by_hash() {
        let owner: ObjectMeta = serde_json::from_value(json!({"name": "web", "namespace": "ns", "uid": "u1"})).unwrap();
        let data = template_patch(&template("nginx:1"));
        let r = new_revision(
            &owner,
            "apps/v1",
            "StatefulSet",
            [("app".to_string(), "web".to_string())].into(),
            data.clone(),
            2,
            0,
        );
        let hash = hash_revision(&data, Some(0));
        assert_eq!(r.metadata.name.as_deref(), Some(format!("web-{hash}").as_str()));
        assert_eq!(r.metadata.labels.as_ref().unwrap()[REVISION_HASH_LABEL], hash);
        assert_eq!(r.metadata.labels.as_ref().unwrap()["app"], "web");
        assert_eq!(r.revision, 2);
        let owner_ref = &r.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner_ref.kind.as_str(), owner_ref.uid.as_str(), owner_ref.controller),
            ("StatefulSet", "u1", Some(true))
        );
    }
}
