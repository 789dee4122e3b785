//! The cached pods of each node (upstream's `spec.nodeName` pod indexer
//! that the taint-eviction controller reads): names only, fed every pod
//! [`Change`] by an informer handler, so a pass over the pods of a few
//! tainted nodes does not walk every pod of the cluster.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::cached_pod::CachedPod;
use crate::informer::Change;

/// `(namespace, name)` of a cached pod.
pub type PodKey = (Arc<str>, Arc<str>);

/// Pod keys by node name; unbound pods are not indexed.
#[derive(Debug, Default)]
pub struct PodsByNode {
    nodes: Mutex<HashMap<Arc<str>, HashSet<PodKey>>>,
}

fn node_of(pod: &CachedPod) -> Option<&str> {
    pod.spec.as_ref()?.node_name.as_deref().filter(|n| !n.is_empty())
}

fn key_of(pod: &CachedPod) -> PodKey {
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    (Arc::from(ns), Arc::from(name))
}

impl PodsByNode {
    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, HashSet<PodKey>>> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Updates the index with one informer change.
    pub fn observe(&self, change: &Change<'_, CachedPod>) {
        match change {
            Change::Added(pod) => self.insert(pod),
            Change::Updated { old, new } => {
                // A pod is bound once; only a first binding moves it.
                if node_of(old) != node_of(new) {
                    self.remove(old);
                }
                self.insert(new);
            }
            Change::Deleted(pod) => self.remove(pod),
        }
    }

    fn insert(&self, pod: &CachedPod) {
        let Some(node) = node_of(pod) else { return };
        let mut nodes = self.lock();
        match nodes.get_mut(node) {
            Some(pods) => {
                let key = key_of(pod);
                if !pods.contains(&key) {
                    pods.insert(key);
                }
            }
            None => {
                nodes.insert(Arc::from(node), HashSet::from([key_of(pod)]));
            }
        }
    }

    fn remove(&self, pod: &CachedPod) {
        let Some(node) = node_of(pod) else { return };
        let mut nodes = self.lock();
        if let Some(pods) = nodes.get_mut(node) {
            pods.remove(&key_of(pod));
            if pods.is_empty() {
                nodes.remove(node);
            }
        }
    }

    /// The keys of the pods bound to `node`.
    pub fn pods_on(&self, node: &str) -> Vec<PodKey> {
        self.lock()
            .get(node)
            .map(|pods| pods.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn pod(name: &str, node: Option<&str>) -> Arc<CachedPod> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": name, "namespace": "ns"},
                "spec": {"nodeName": node, "containers": []}}))
            .unwrap(),
        )
    }

    fn names(index: &PodsByNode, node: &str) -> Vec<String> {
        let mut v: Vec<String> = index.pods_on(node).iter().map(|(_, n)| n.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn pods_follow_their_binding_and_deletion() {
        let index = PodsByNode::default();
        let (a, b) = (pod("a", None), pod("b", Some("n1")));
        index.observe(&Change::Added(&a));
        index.observe(&Change::Added(&b));
        assert_eq!(names(&index, "n1"), ["b"]);
        let bound = pod("a", Some("n1"));
        index.observe(&Change::Updated { old: &a, new: &bound });
        index.observe(&Change::Updated {
            old: &bound,
            new: &bound,
        });
        assert_eq!(names(&index, "n1"), ["a", "b"]);
        index.observe(&Change::Deleted(&b));
        assert_eq!(names(&index, "n1"), ["a"]);
        index.observe(&Change::Deleted(&bound));
        assert!(index.pods_on("n1").is_empty());
        assert!(index.lock().is_empty());
    }
}
