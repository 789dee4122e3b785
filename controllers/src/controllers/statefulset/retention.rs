//! `persistentVolumeClaimRetentionPolicy`: who owns a member's claims, so
//! the garbage collector deletes them when the policy says (upstream
//! `isClaimOwnerUpToDate` and `updateClaimOwnerRefForSetAndPod`):
//!
//! | whenScaled | whenDeleted | claim's owners |
//! |---|---|---|
//! | Retain | Retain | neither the set nor the pod |
//! | Retain | Delete | the set |
//! | Delete | Retain | the pod, once scaled away (out of range) |
//! | Delete | Delete | the pod once scaled away, else the set |
//!
//! A claim with a reference to an older set or pod of the same name, or
//! another controller, is left alone.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::cached_pod::CachedPod;
use crate::controllers::controller_ref::new_controller_ref;

/// `Retain` or `Delete`, per event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub delete_when_scaled: bool,
    pub delete_when_deleted: bool,
}

/// The set's policy (Retain for anything unset or unknown).
pub fn policy(set: &StatefulSet) -> Policy {
    let p = set
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_claim_retention_policy.as_ref());
    Policy {
        delete_when_scaled: p.and_then(|p| p.when_scaled.as_deref()) == Some("Delete"),
        delete_when_deleted: p.and_then(|p| p.when_deleted.as_deref()) == Some("Delete"),
    }
}

/// An owner as a claim's references see it.
struct Owner<'a> {
    api_version: &'a str,
    kind: &'a str,
    meta: &'a ObjectMeta,
}

impl Owner<'_> {
    fn name(&self) -> &str {
        self.meta.name.as_deref().unwrap_or_default()
    }
    fn uid(&self) -> &str {
        self.meta.uid.as_deref().unwrap_or_default()
    }
    /// Same kind and name (any uid).
    fn named_by(&self, r: &OwnerReference) -> bool {
        r.api_version == self.api_version && r.kind == self.kind && r.name == self.name()
    }
    fn referenced_by(&self, claim: &PersistentVolumeClaim) -> bool {
        refs(claim).iter().any(|r| r.uid == self.uid())
    }
    /// The first reference naming this owner has another uid.
    fn stale_in(&self, claim: &PersistentVolumeClaim) -> bool {
        refs(claim)
            .iter()
            .find(|r| self.named_by(r))
            .is_some_and(|r| r.uid != self.uid())
    }
}

fn refs(claim: &PersistentVolumeClaim) -> &[OwnerReference] {
    claim.metadata.owner_references.as_deref().unwrap_or_default()
}

fn owners<'a>(set: &'a StatefulSet, pod: &'a CachedPod) -> (Owner<'a>, Owner<'a>) {
    (
        Owner {
            api_version: "apps/v1",
            kind: "StatefulSet",
            meta: &set.metadata,
        },
        Owner {
            api_version: "v1",
            kind: "Pod",
            meta: &pod.metadata,
        },
    )
}

/// A controller of the claim other than the set and pod (or a reference
/// to an older set or pod), while a Delete policy is in force.
pub fn has_unexpected_controller(claim: &PersistentVolumeClaim, set: &StatefulSet, pod: &CachedPod) -> bool {
    let p = policy(set);
    if !p.delete_when_scaled && !p.delete_when_deleted {
        return false;
    }
    let (s, o) = owners(set, pod);
    refs(claim).iter().any(|r| {
        if s.named_by(r) {
            return r.uid != s.uid();
        }
        if o.named_by(r) {
            return r.uid != o.uid();
        }
        r.controller == Some(true)
    })
}

/// The pod is no longer in the set's ordinal range.
fn scaled_down(set: &StatefulSet, pod: &CachedPod) -> bool {
    !super::identity::in_ordinal_range(pod, set)
}

/// Whether the claim's references already follow the policy.
pub fn claim_owner_up_to_date(claim: &PersistentVolumeClaim, set: &StatefulSet, pod: &CachedPod) -> bool {
    let (s, o) = owners(set, pod);
    if s.stale_in(claim) || o.stale_in(claim) {
        // Managed by an earlier set or pod of the same name: not ours.
        return true;
    }
    if has_unexpected_controller(claim, set, pod) {
        return !(s.referenced_by(claim) || o.referenced_by(claim));
    }
    let uids = [s.uid(), o.uid()];
    if refs(claim)
        .iter()
        .any(|r| uids.contains(&r.uid.as_str()) && r.controller != Some(true))
    {
        return false;
    }
    let p = policy(set);
    let down = scaled_down(set, pod);
    let want_set = p.delete_when_deleted && !(p.delete_when_scaled && down);
    let want_pod = p.delete_when_scaled && down;
    s.referenced_by(claim) == want_set && o.referenced_by(claim) == want_pod
}

/// The claim's references rewritten to follow the policy.
pub fn updated_claim_refs(claim: &PersistentVolumeClaim, set: &StatefulSet, pod: &CachedPod) -> Vec<OwnerReference> {
    let (s, o) = owners(set, pod);
    let unexpected = has_unexpected_controller(claim, set, pod);
    let mut out: Vec<OwnerReference> = refs(claim)
        .iter()
        .filter(|r| !s.named_by(r) && !o.named_by(r))
        .cloned()
        .collect();
    if unexpected {
        return out;
    }
    let p = policy(set);
    let down = scaled_down(set, pod);
    if p.delete_when_scaled && down {
        out.push(new_controller_ref(&pod.metadata, "v1", "Pod"));
    }
    if p.delete_when_deleted && !(p.delete_when_scaled && down) {
        out.push(new_controller_ref(&set.metadata, "apps/v1", "StatefulSet"));
    }
    out
}

/// Whether a claim still references an earlier pod of this name, which
/// blocks creating the pod while a Delete-on-scale policy is in force
/// (upstream `PodClaimIsStale`).
pub fn claim_is_stale(claim: &PersistentVolumeClaim, set: &StatefulSet, pod: &CachedPod) -> bool {
    policy(set).delete_when_scaled && owners(set, pod).1.stale_in(claim)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn set(scaled: &str, deleted: &str) -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "set-uid"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}},
                     "persistentVolumeClaimRetentionPolicy": {"whenScaled": scaled, "whenDeleted": deleted}},
        }))
        .unwrap()
    }

    fn pod(ordinal: i32) -> CachedPod {
        serde_json::from_value(json!({"metadata": {"name": format!("web-{ordinal}"), "uid": format!("pod-{ordinal}")}}))
            .unwrap()
    }

    fn claim(refs: serde_json::Value) -> PersistentVolumeClaim {
        serde_json::from_value(json!({"metadata": {"name": "www-web-0", "ownerReferences": refs}})).unwrap()
    }

    fn owner_uids(refs: &[OwnerReference]) -> Vec<&str> {
        refs.iter().map(|r| r.uid.as_str()).collect()
    }

    #[test]
    fn each_policy_wants_its_owners() {
        // (whenScaled, whenDeleted, ordinal) -> owners wanted.
        let cases: &[(&str, &str, i32, &[&str])] = &[
            ("Retain", "Retain", 0, &[]),
            ("Retain", "Retain", 5, &[]),
            ("Retain", "Delete", 0, &["set-uid"]),
            ("Retain", "Delete", 5, &["set-uid"]),
            ("Delete", "Retain", 0, &[]),
            ("Delete", "Retain", 5, &["pod-5"]),
            ("Delete", "Delete", 0, &["set-uid"]),
            ("Delete", "Delete", 5, &["pod-5"]),
        ];
        for (scaled, deleted, ord, want) in cases {
            let s = set(scaled, deleted);
            let p = pod(*ord);
            let c = claim(json!([]));
            let refs = updated_claim_refs(&c, &s, &p);
            assert_eq!(owner_uids(&refs), *want, "{scaled}/{deleted} ordinal {ord}");
            let mut fixed = c.clone();
            fixed.metadata.owner_references = Some(refs);
            assert!(
                claim_owner_up_to_date(&fixed, &s, &p),
                "{scaled}/{deleted} ordinal {ord}"
            );
            assert_eq!(
                claim_owner_up_to_date(&c, &s, &p),
                want.is_empty(),
                "{scaled}/{deleted} ordinal {ord}"
            );
        }
    }

    #[test]
    fn other_controllers_and_stale_references_are_respected() {
        let s = set("Delete", "Delete");
        let p = pod(0);
        let other = claim(json!([{"apiVersion": "v1", "kind": "Foo", "name": "x", "uid": "x", "controller": true}]));
        assert!(has_unexpected_controller(&other, &s, &p));
        assert!(
            claim_owner_up_to_date(&other, &s, &p),
            "nothing to add on top of another controller"
        );
        assert_eq!(owner_uids(&updated_claim_refs(&other, &s, &p)), ["x"]);
        let stale =
            claim(json!([{"apiVersion": "v1", "kind": "Pod", "name": "web-0", "uid": "old", "controller": true}]));
        assert!(
            claim_owner_up_to_date(&stale, &s, &p),
            "an earlier pod's claim is not touched"
        );
        assert!(claim_is_stale(&stale, &s, &p));
        assert!(!claim_is_stale(&stale, &set("Retain", "Delete"), &p));
        let not_controller =
            claim(json!([{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "set-uid"}]));
        assert!(
            !claim_owner_up_to_date(&not_controller, &s, &p),
            "references must be controllers"
        );
        assert!(!has_unexpected_controller(&other, &set("Retain", "Retain"), &p));
    }
}
