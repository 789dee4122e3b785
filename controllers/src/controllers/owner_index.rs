//! An index of one kind's cached objects by controller: the names of the
//! objects whose controller reference has a given uid, and the orphans
//! (no controller) of each namespace. Upstream's `controllerUIDIndex`:
//! the ReplicaSet controller claims from "its pods plus the namespace's
//! orphans" instead of filtering every pod of the namespace on each sync,
//! and the Deployment controller does the same for ReplicaSets.
//!
//! The index is fed every informer [`Change`] of the kind
//! ([`OwnerIndex::observe`], from a handler registered with
//! `Informer::add_handler`); it holds names only, and callers read the
//! objects themselves from the informer's cache.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use kube::Resource;

use crate::controllers::controller_ref::controller_of;
use crate::informer::Change;

/// Which bucket an object is in: `(namespace, controller uid)`, the uid
/// empty for orphans.
type Bucket = (String, String);

/// Cached objects by controller uid, and orphans by namespace.
#[derive(Debug, Default)]
pub struct OwnerIndex {
    buckets: Mutex<HashMap<Bucket, HashSet<Arc<str>>>>,
}

fn bucket_of<K: Resource>(obj: &K) -> Bucket {
    let meta = obj.meta();
    let uid = controller_of(meta).map(|r| r.uid.clone()).unwrap_or_default();
    (meta.namespace.clone().unwrap_or_default(), uid)
}

fn name_of<K: Resource>(obj: &K) -> &str {
    obj.meta().name.as_deref().unwrap_or_default()
}

impl OwnerIndex {
    fn lock(&self) -> MutexGuard<'_, HashMap<Bucket, HashSet<Arc<str>>>> {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Updates the index with one informer change.
    pub fn observe<K: Resource>(&self, change: &Change<'_, K>) {
        match change {
            Change::Added(obj) => self.insert(bucket_of(obj.as_ref()), name_of(obj.as_ref())),
            Change::Updated { old, new } => {
                let (from, to) = (bucket_of(old.as_ref()), bucket_of(new.as_ref()));
                // The name never changes; the controller may.
                if from != to {
                    self.remove(&from, name_of(old.as_ref()));
                }
                self.insert(to, name_of(new.as_ref()));
            }
            Change::Deleted(obj) => self.remove(&bucket_of(obj.as_ref()), name_of(obj.as_ref())),
        }
    }

    fn insert(&self, bucket: Bucket, name: &str) {
        let mut buckets = self.lock();
        let names = buckets.entry(bucket).or_default();
        if !names.contains(name) {
            names.insert(Arc::from(name));
        }
    }

    fn remove(&self, bucket: &Bucket, name: &str) {
        let mut buckets = self.lock();
        if let Some(names) = buckets.get_mut(bucket) {
            names.remove(name);
            if names.is_empty() {
                buckets.remove(bucket);
            }
        }
    }

    fn names(&self, namespace: &str, uid: &str) -> Vec<Arc<str>> {
        self.lock()
            .get(&(namespace.to_string(), uid.to_string()))
            .map(|names| names.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Names of the objects in `namespace` whose controller has `uid`.
    pub fn controlled_by(&self, namespace: &str, uid: &str) -> Vec<Arc<str>> {
        if uid.is_empty() {
            return Vec::new();
        }
        self.names(namespace, uid)
    }

    /// Names of the objects in `namespace` without a controller.
    pub fn orphans(&self, namespace: &str) -> Vec<Arc<str>> {
        self.names(namespace, "")
    }

    /// What a controller with `uid` may claim in `namespace`: the objects
    /// it controls, then the orphans (others' objects are never claimed).
    pub fn claim_candidates(&self, namespace: &str, uid: &str) -> Vec<Arc<str>> {
        let mut names = self.controlled_by(namespace, uid);
        names.extend(self.orphans(namespace));
        names
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    fn pod(ns: &str, name: &str, owner_uid: Option<&str>) -> Arc<Pod> {
        let refs = match owner_uid {
            Some(uid) => json!([
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "not-a-controller", "uid": "x"},
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": uid, "controller": true},
            ]),
            None => json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "cm", "uid": "x"}]),
        };
        Arc::new(
            serde_json::from_value(json!({"metadata": {"namespace": ns, "name": name, "ownerReferences": refs}}))
                .unwrap(),
        )
    }

    fn sorted(names: Vec<Arc<str>>) -> Vec<String> {
        let mut v: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        v.sort();
        v
    }

    /// `(controlled by u1, controlled by u2, orphans)` in namespace `ns`.
    fn state(index: &OwnerIndex) -> (Vec<String>, Vec<String>, Vec<String>) {
        (
            sorted(index.controlled_by("ns", "u1")),
            sorted(index.controlled_by("ns", "u2")),
            sorted(index.orphans("ns")),
        )
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn adds_and_deletes_are_indexed_by_controller_uid_and_namespace() {
        let index = OwnerIndex::default();
        let (a, b, c, other_ns) = (
            pod("ns", "a", Some("u1")),
            pod("ns", "b", Some("u1")),
            pod("ns", "c", None),
            pod("other", "d", Some("u1")),
        );
        for p in [&a, &b, &c, &other_ns] {
            index.observe(&Change::Added(p));
        }
        assert_eq!(state(&index), (s(&["a", "b"]), s(&[]), s(&["c"])));
        assert_eq!(sorted(index.controlled_by("other", "u1")), s(&["d"]));
        assert_eq!(sorted(index.claim_candidates("ns", "u1")), s(&["a", "b", "c"]));
        assert_eq!(sorted(index.claim_candidates("ns", "u2")), s(&["c"]));
        assert!(index.controlled_by("ns", "").is_empty(), "no uid controls nothing");

        index.observe(&Change::Deleted(&a));
        index.observe(&Change::Deleted(&c));
        assert_eq!(state(&index), (s(&["b"]), s(&[]), s(&[])));
        // A deletion seen twice (a relist) is harmless.
        index.observe(&Change::Deleted(&a));
        index.observe(&Change::Deleted(&b));
        index.observe(&Change::Deleted(&other_ns));
        assert!(index.lock().is_empty(), "empty buckets are dropped");
    }

    #[test]
    fn adoption_release_and_owner_change_move_the_object() {
        let index = OwnerIndex::default();
        let orphan = pod("ns", "p", None);
        index.observe(&Change::Added(&orphan));
        assert_eq!(state(&index), (s(&[]), s(&[]), s(&["p"])));

        let adopted = pod("ns", "p", Some("u1"));
        index.observe(&Change::Updated {
            old: &orphan,
            new: &adopted,
        });
        assert_eq!(state(&index), (s(&["p"]), s(&[]), s(&[])), "adopted");

        let moved = pod("ns", "p", Some("u2"));
        index.observe(&Change::Updated {
            old: &adopted,
            new: &moved,
        });
        assert_eq!(state(&index), (s(&[]), s(&["p"]), s(&[])), "owner changed");

        let released = pod("ns", "p", None);
        index.observe(&Change::Updated {
            old: &moved,
            new: &released,
        });
        assert_eq!(state(&index), (s(&[]), s(&[]), s(&["p"])), "released");

        // An update that keeps the controller (a status change) and a
        // repeated add (a handler registered late) change nothing.
        index.observe(&Change::Updated {
            old: &released,
            new: &released,
        });
        index.observe(&Change::Added(&released));
        assert_eq!(state(&index), (s(&[]), s(&[]), s(&["p"])));
    }
}
