//! The ownership graph (upstream `GraphBuilder`'s `uidToNode`): one node
//! per object uid, with its owner references and the uids of its
//! dependents. Owners not (yet) seen are *virtual* nodes, whose existence
//! the collector verifies with a live read. Applying an object change
//! returns the [`Effects`]: which nodes to re-examine for deletion and
//! which to orphan.

use std::collections::{BTreeSet, HashMap};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

/// The finalizer asking for dependents to be deleted before the owner.
pub const FOREGROUND_DELETION: &str = "foregroundDeletion";
/// The finalizer asking for dependents to be orphaned.
pub const ORPHAN: &str = "orphan";

/// Who an object is: enough to read or delete it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub api_version: String,
    pub kind: String,
    /// The object's namespace; for a virtual owner, its dependent's
    /// namespace (used only if the owner's kind is namespaced).
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

/// One object in the graph.
#[derive(Debug, Clone)]
pub struct Node {
    pub identity: Identity,
    pub owners: Vec<OwnerReference>,
    pub dependents: BTreeSet<String>,
    /// Has a deletionTimestamp.
    pub being_deleted: bool,
    /// Being deleted with the `foregroundDeletion` finalizer: waits for
    /// its blocking dependents.
    pub deleting_dependents: bool,
    /// Known only from a dependent's owner reference.
    pub virtual_node: bool,
}

/// Work the collector should do after a graph change.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// Nodes (by uid) to check for deletion.
    pub attempt_to_delete: Vec<String>,
    /// Owners (by uid) whose dependents must be orphaned.
    pub attempt_to_orphan: Vec<String>,
}

/// The graph itself.
#[derive(Debug, Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
}

fn has_finalizer(meta: &ObjectMeta, f: &str) -> bool {
    meta.finalizers.iter().flatten().any(|x| x == f)
}

impl Graph {
    pub fn get(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The dependents of `uid`.
    pub fn dependents(&self, uid: &str) -> Vec<&Node> {
        self.nodes
            .get(uid)
            .map(|n| n.dependents.iter().filter_map(|d| self.nodes.get(d)).collect())
            .unwrap_or_default()
    }

    /// Dependents whose reference to `uid` blocks its deletion.
    pub fn blocking_dependents(&self, uid: &str) -> Vec<&Node> {
        self.dependents(uid)
            .into_iter()
            .filter(|d| {
                d.owners
                    .iter()
                    .any(|o| o.uid == uid && o.block_owner_deletion == Some(true))
            })
            .collect()
    }

    fn add_dependent(&mut self, owner: &OwnerReference, dependent: &Identity, fx: &mut Effects) {
        let node = self.nodes.entry(owner.uid.clone()).or_insert_with(|| {
            fx.attempt_to_delete.push(owner.uid.clone());
            Node {
                identity: Identity {
                    api_version: owner.api_version.clone(),
                    kind: owner.kind.clone(),
                    namespace: dependent.namespace.clone(),
                    name: owner.name.clone(),
                    uid: owner.uid.clone(),
                },
                owners: Vec::new(),
                dependents: BTreeSet::new(),
                being_deleted: false,
                deleting_dependents: false,
                virtual_node: true,
            }
        });
        node.dependents.insert(dependent.uid.clone());
    }

    fn remove_dependent(&mut self, owner_uid: &str, dependent_uid: &str) {
        if let Some(n) = self.nodes.get_mut(owner_uid) {
            n.dependents.remove(dependent_uid);
        }
    }

    /// An object was added or changed.
    pub fn upsert(&mut self, identity: Identity, meta: &ObjectMeta) -> Effects {
        let mut fx = Effects::default();
        let uid = identity.uid.clone();
        let owners = meta.owner_references.clone().unwrap_or_default();
        let being_deleted = meta.deletion_timestamp.is_some();
        let deleting_dependents = being_deleted && has_finalizer(meta, FOREGROUND_DELETION);
        let (old_owners, was_deleting_dependents) = match self.nodes.get(&uid) {
            Some(n) => (Some(n.owners.clone()), n.deleting_dependents),
            None => (None, false),
        };
        match old_owners {
            None => {
                for o in &owners {
                    self.add_dependent(o, &identity, &mut fx);
                }
                self.nodes.insert(
                    uid.clone(),
                    Node {
                        identity,
                        owners,
                        dependents: BTreeSet::new(),
                        being_deleted,
                        deleting_dependents,
                        virtual_node: false,
                    },
                );
            }
            Some(old) => {
                for o in owners.iter().filter(|o| !old.iter().any(|x| x.uid == o.uid)) {
                    self.add_dependent(o, &identity, &mut fx);
                }
                for o in &old {
                    let now = owners.iter().find(|x| x.uid == o.uid);
                    let unblocked = o.block_owner_deletion == Some(true)
                        && now.is_none_or(|x| x.block_owner_deletion != Some(true));
                    if now.is_none() {
                        self.remove_dependent(&o.uid, &uid);
                    }
                    // An owner waiting for its dependents may now proceed.
                    if unblocked && self.nodes.get(&o.uid).is_some_and(|n| n.deleting_dependents) {
                        fx.attempt_to_delete.push(o.uid.clone());
                    }
                }
                if let Some(n) = self.nodes.get_mut(&uid) {
                    n.identity = identity;
                    n.owners = owners;
                    n.being_deleted = being_deleted;
                    n.deleting_dependents = deleting_dependents;
                    n.virtual_node = false;
                }
            }
        }
        if being_deleted && has_finalizer(meta, ORPHAN) {
            fx.attempt_to_orphan.push(uid.clone());
        }
        if deleting_dependents {
            if !was_deleting_dependents {
                fx.attempt_to_delete
                    .extend(self.dependents(&uid).iter().map(|d| d.identity.uid.clone()));
            }
            fx.attempt_to_delete.push(uid.clone());
        }
        // Owners not (yet) in the graph were added as virtual nodes and are
        // checked with a live read; a dependent is only re-examined when one
        // of them turns out to be gone, as upstream does. Checking every
        // object with owners on each change cost two live reads per pod
        // update.
        fx
    }

    /// An object is gone (or a virtual owner does not exist).
    pub fn remove(&mut self, uid: &str) -> Effects {
        let mut fx = Effects::default();
        let Some(node) = self.nodes.remove(uid) else {
            return fx;
        };
        for o in &node.owners {
            self.remove_dependent(&o.uid, uid);
            if self.nodes.get(&o.uid).is_some_and(|n| n.deleting_dependents) {
                fx.attempt_to_delete.push(o.uid.clone());
            }
        }
        // Its dependents check their owners with live reads.
        fx.attempt_to_delete.extend(node.dependents.iter().cloned());
        fx
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn id(kind: &str, name: &str, uid: &str) -> Identity {
        Identity {
            api_version: "apps/v1".into(),
            kind: kind.into(),
            namespace: "ns".into(),
            name: name.into(),
            uid: uid.into(),
        }
    }

    fn meta(v: serde_json::Value) -> ObjectMeta {
        serde_json::from_value(v).unwrap()
    }

    fn owned_by(uid: &str, block: bool) -> serde_json::Value {
        json!({"ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "d", "uid": uid, "blockOwnerDeletion": block}]})
    }

    #[test]
    fn dependents_of_unseen_owners_create_virtual_nodes() {
        let mut g = Graph::default();
        let fx = g.upsert(id("ReplicaSet", "rs", "r1"), &meta(owned_by("d1", true)));
        assert_eq!(fx.attempt_to_delete, ["d1"]);
        assert!(g.get("d1").unwrap().virtual_node);
        // The owner appears: no longer virtual, dependents kept.
        g.upsert(id("Deployment", "d", "d1"), &meta(json!({})));
        let d = g.get("d1").unwrap();
        assert!(!d.virtual_node);
        assert_eq!(g.dependents("d1").len(), 1);
        assert_eq!(g.blocking_dependents("d1").len(), 1);
    }

    #[test]
    fn changes_of_dependents_with_known_owners_need_no_live_reads() {
        let mut g = Graph::default();
        g.upsert(id("ReplicaSet", "rs", "r1"), &meta(json!({})));
        let fx = g.upsert(id("Pod", "p", "p1"), &meta(owned_by("r1", true)));
        assert!(fx.attempt_to_delete.is_empty());
        let fx = g.upsert(id("Pod", "p", "p1"), &meta(owned_by("r1", true)));
        assert!(fx.attempt_to_delete.is_empty());
        // The owner goes: its dependents check their owners.
        let fx = g.remove("r1");
        assert_eq!(fx.attempt_to_delete, ["p1"]);
    }

    #[test]
    fn foreground_deletion_enqueues_dependents_and_owner() {
        let mut g = Graph::default();
        g.upsert(id("Deployment", "d", "d1"), &meta(json!({})));
        g.upsert(id("ReplicaSet", "rs", "r1"), &meta(owned_by("d1", true)));
        let fx = g.upsert(
            id("Deployment", "d", "d1"),
            &meta(json!({"deletionTimestamp": "2026-01-01T00:00:00Z", "finalizers": [FOREGROUND_DELETION]})),
        );
        assert_eq!(fx.attempt_to_delete, ["r1", "d1"]);
        assert!(g.get("d1").unwrap().deleting_dependents);
        // The dependent goes: the owner is checked again.
        let fx = g.remove("r1");
        assert_eq!(fx.attempt_to_delete, ["d1"]);
        assert!(g.blocking_dependents("d1").is_empty());
    }

    #[test]
    fn orphan_finalizer_and_owner_removal() {
        let mut g = Graph::default();
        g.upsert(id("Deployment", "d", "d1"), &meta(json!({})));
        g.upsert(id("ReplicaSet", "rs", "r1"), &meta(owned_by("d1", false)));
        let fx = g.upsert(
            id("Deployment", "d", "d1"),
            &meta(json!({"deletionTimestamp": "2026-01-01T00:00:00Z", "finalizers": [ORPHAN]})),
        );
        assert_eq!(fx.attempt_to_orphan, ["d1"]);
        // The reference is removed: the owner no longer lists it.
        g.upsert(id("ReplicaSet", "rs", "r1"), &meta(json!({})));
        assert!(g.dependents("d1").is_empty());
        // The owner is gone: nothing is left of it.
        let fx = g.remove("d1");
        assert!(fx.attempt_to_delete.is_empty());
        assert!(g.get("d1").is_none());
    }
}
