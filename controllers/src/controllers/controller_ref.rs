//! Controller references (`ownerReferences` with `controller: true`) and
//! label selectors: who controls an object, and the adopt/release
//! decisions of upstream's `ControllerRefManager`.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde::de::DeserializeOwned;

use crate::error::status_code;
use serde_json::json;

/// The owner reference marked as controller, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// The owner `meta`'s controller reference names, if the reference is to
/// a `kind` and `get` (by name, in `meta`'s namespace) finds it with the
/// referenced uid (upstream's `resolveControllerRef`).
pub fn resolve_controller_ref<K: Resource>(
    meta: &ObjectMeta,
    kind: &str,
    get: impl FnOnce(&str) -> Option<Arc<K>>,
) -> Option<Arc<K>> {
    let r = controller_of(meta)?;
    if r.kind != kind {
        return None;
    }
    let owner = get(&r.name)?;
    (owner.meta().uid.as_deref() == Some(r.uid.as_str())).then_some(owner)
}

/// A controller reference to `owner` (blocking owner deletion, like
/// upstream's `NewControllerRef`).
pub fn new_controller_ref(owner: &ObjectMeta, api_version: &str, kind: &str) -> OwnerReference {
    OwnerReference {
        api_version: api_version.into(),
        kind: kind.into(),
        name: owner.name.clone().unwrap_or_default(),
        uid: owner.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Whether `selector` matches `labels`. An empty selector matches
/// everything; an unknown operator matches nothing.
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    for (k, v) in selector.match_labels.iter().flatten() {
        if labels.get(k) != Some(v) {
            return false;
        }
    }
    for expr in selector.match_expressions.iter().flatten() {
        let value = labels.get(&expr.key);
        let values = expr.values.as_deref().unwrap_or(&[]);
        let ok = match expr.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Whether a controller's `selector` selects `labels`: a controller with
/// an empty selector selects nothing (it would take over a namespace).
pub fn controller_selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    !selector_is_empty(selector) && selector_matches(selector, labels)
}

/// The `owners` whose selector (per [`controller_selects`]) matches the
/// labels of `obj`: the controllers that may adopt it.
pub fn owners_selecting<K>(
    owners: Vec<Arc<K>>,
    obj: &ObjectMeta,
    selector: impl Fn(&K) -> Option<&LabelSelector>,
) -> Vec<Arc<K>> {
    let labels = obj.labels.clone().unwrap_or_default();
    owners
        .into_iter()
        .filter(|o| selector(o).is_some_and(|s| controller_selects(s, &labels)))
        .collect()
}

/// Whether the selector has no requirement (selects everything).
pub fn selector_is_empty(selector: &LabelSelector) -> bool {
    selector.match_labels.as_ref().is_none_or(BTreeMap::is_empty)
        && selector.match_expressions.as_ref().is_none_or(Vec::is_empty)
}

/// What a controller does with one candidate object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Controlled by this owner and selected: keep it.
    Owned,
    /// An orphan the selector matches: adopt it.
    Adopt,
    /// Controlled by this owner but no longer selected: release it.
    Release,
    /// Someone else's, or not ours to take.
    Ignore,
}

/// The claim decision for an object (`meta`) given the owner's uid,
/// whether the selector matches it and whether the owner is being deleted.
pub fn claim(meta: &ObjectMeta, owner_uid: &str, matches: bool, owner_deleting: bool) -> Claim {
    match controller_of(meta) {
        Some(r) if r.uid != owner_uid => Claim::Ignore,
        Some(_) if matches => Claim::Owned,
        // A deleting owner does not release what it controls.
        Some(_) if owner_deleting || meta.deletion_timestamp.is_some() => Claim::Ignore,
        Some(_) => Claim::Release,
        None if !matches || owner_deleting || meta.deletion_timestamp.is_some() => Claim::Ignore,
        None => Claim::Adopt,
    }
}

/// A JSON merge patch setting `meta`'s ownerReferences to `refs`, guarded
/// by its uid and resourceVersion (a conflict if it changed meanwhile).
pub fn owner_refs_patch(meta: &ObjectMeta, refs: &[OwnerReference]) -> serde_json::Value {
    json!({
        "metadata": {
            "ownerReferences": refs,
            "uid": meta.uid,
            "resourceVersion": meta.resource_version,
        }
    })
}

/// Applies a claim's merge patch (adopting or releasing `name`); `None`
/// when the object is gone or changed meanwhile (404, 409, 422), which a
/// claim skips, as upstream's `ControllerRefManager` does.
pub async fn patch_claim<K>(api: &Api<K>, name: &str, patch: &serde_json::Value) -> Result<Option<K>, kube::Error>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    match api.patch(name, &PatchParams::default(), &Patch::Merge(patch)).await {
        Ok(o) => Ok(Some(o)),
        Err(e) if matches!(status_code(&e), Some(404 | 409 | 422)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `meta`'s owner references plus `new` (adoption).
pub fn with_owner(meta: &ObjectMeta, new: OwnerReference) -> Vec<OwnerReference> {
    let mut refs: Vec<OwnerReference> = meta.owner_references.clone().unwrap_or_default();
    refs.retain(|r| r.uid != new.uid);
    refs.push(new);
    refs
}

/// `meta`'s owner references without the one to `owner_uid` (release).
pub fn without_owner(meta: &ObjectMeta, owner_uid: &str) -> Vec<OwnerReference> {
    let mut refs: Vec<OwnerReference> = meta.owner_references.clone().unwrap_or_default();
    refs.retain(|r| r.uid != owner_uid);
    refs
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn sel(v: serde_json::Value) -> LabelSelector {
        serde_json::from_value(v).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn pod(v: serde_json::Value) -> Arc<k8s_openapi::api::core::v1::Pod> {
        Arc::new(serde_json::from_value(v).unwrap())
    }

    #[test]
    fn controller_refs_resolve_by_kind_name_and_uid() {
        let owner = pod(json!({"metadata": {"name": "o", "uid": "u1"}}));
        let child = |kind: &str, uid: &str| -> ObjectMeta {
            serde_json::from_value(json!({"name": "c", "ownerReferences": [
                {"apiVersion": "v1", "kind": kind, "name": "o", "uid": uid, "controller": true}]}))
            .unwrap()
        };
        let get = |name: &str| (name == "o").then(|| owner.clone());
        assert!(resolve_controller_ref(&child("Pod", "u1"), "Pod", get).is_some());
        assert!(resolve_controller_ref(&child("Pod", "u2"), "Pod", get).is_none());
        assert!(resolve_controller_ref(&child("Node", "u1"), "Pod", get).is_none());
        assert!(resolve_controller_ref(&ObjectMeta::default(), "Pod", get).is_none());
    }

    #[test]
    fn owners_select_by_non_empty_selectors() {
        let owners = vec![
            (sel(json!({"matchLabels": {"app": "a"}})), "a"),
            (sel(json!({})), "everything"),
            (sel(json!({"matchLabels": {"app": "b"}})), "b"),
        ]
        .into_iter()
        .map(Arc::new)
        .collect();
        let meta = ObjectMeta {
            labels: Some(labels(&[("app", "a")])),
            ..ObjectMeta::default()
        };
        let got = owners_selecting(owners, &meta, |o| Some(&o.0));
        assert_eq!(got.iter().map(|o| o.1).collect::<Vec<_>>(), ["a"]);
        assert!(!controller_selects(&sel(json!({})), &labels(&[])));
    }

    #[test]
    fn selectors() {
        let s = sel(
            json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}),
        );
        assert!(selector_matches(&s, &labels(&[("app", "web"), ("tier", "a")])));
        assert!(!selector_matches(&s, &labels(&[("app", "web"), ("tier", "c")])));
        assert!(!selector_matches(&s, &labels(&[("tier", "a")])));
        let s = sel(
            json!({"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}, {"key": "y", "operator": "NotIn", "values": ["1"]}]}),
        );
        assert!(selector_matches(&s, &labels(&[("y", "2")])));
        assert!(!selector_matches(&s, &labels(&[("x", "2")])));
        assert!(selector_is_empty(&sel(json!({}))));
        assert!(selector_matches(&sel(json!({})), &labels(&[])));
    }

    #[test]
    fn claims() {
        let owned: ObjectMeta = serde_json::from_value(json!({"ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1", "controller": true}]})).unwrap();
        let orphan = ObjectMeta::default();
        assert_eq!(claim(&owned, "u1", true, false), Claim::Owned);
        assert_eq!(claim(&owned, "u1", false, false), Claim::Release);
        assert_eq!(claim(&owned, "u1", false, true), Claim::Ignore);
        assert_eq!(claim(&owned, "u2", true, false), Claim::Ignore);
        assert_eq!(claim(&orphan, "u1", true, false), Claim::Adopt);
        assert_eq!(claim(&orphan, "u1", true, true), Claim::Ignore);
        assert_eq!(claim(&orphan, "u1", false, false), Claim::Ignore);
    }
}
