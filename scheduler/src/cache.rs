//! The scheduler cache: nodes and the pods bound or assumed on them, fed by
//! the informers and by the scheduling cycle (assume / forget), and copied
//! incrementally into the [`Snapshot`] each cycle reads.
//!
//! An *assumed* pod is one the scheduler has decided on but whose binding
//! is not yet confirmed by the watch; it counts on its node so that the
//! next decisions see it. When the watch shows the pod bound it is
//! confirmed; when the binding fails it is forgotten.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Node;

use crate::label_index::LabelIndex;
use crate::node_info::{NodeInfo, next_generation};
use crate::pod_info::PodInfo;
use crate::selectors::Labels;

#[derive(Debug)]
struct PodState {
    info: Arc<PodInfo>,
    node: String,
    assumed: bool,
}

/// What a node update changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeChange {
    Added,
    /// Something scheduling depends on changed.
    Updated,
    /// Only status details (heartbeats, conditions) changed.
    Unchanged,
}

/// Nodes and pods as the scheduler knows them.
#[derive(Debug, Default)]
pub struct Cache {
    nodes: HashMap<String, Arc<NodeInfo>>,
    pods: HashMap<String, PodState>,
    namespaces: HashMap<String, Labels>,
    dirty: HashSet<String>,
    node_set_changed: bool,
    images_changed: bool,
    namespaces_changed: bool,
    /// Pods added (true) to or removed from a node since the snapshot was
    /// last brought up to date, for its [`LabelIndex`] (pods with labels
    /// only).
    label_log: Vec<(Arc<PodInfo>, String, bool)>,
}

/// A consistent view of the cluster for one scheduling cycle.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Nodes that exist, in name order.
    pub nodes: Vec<Arc<NodeInfo>>,
    index: HashMap<String, usize>,
    /// Labels of each namespace (for namespace selectors).
    pub namespaces: Arc<HashMap<String, Labels>>,
    /// How many nodes hold each (normalized) image.
    pub image_nodes: Arc<HashMap<String, usize>>,
    /// Pods nominated to each node (set per cycle from the queue).
    pub nominated: HashMap<String, Vec<Arc<PodInfo>>>,
    /// Pods with required anti-affinity on the nodes (summed from
    /// [`NodeInfo::pods_with_required_anti_affinity`]). A copy whose nodes
    /// were replaced afterwards (a preemption dry run) may overcount, never
    /// undercount: plugins use it only to skip work when it is 0.
    pub pods_with_required_anti_affinity: usize,
    /// Pods with terms that score incoming pods (summed from
    /// [`NodeInfo::pods_with_scoring_affinity`]), with the same caveat.
    pub pods_with_scoring_affinity: usize,
    /// The nodes holding pods with each (namespace, label key, value): a
    /// superset of the nodes whose pods a selector can match (exact for
    /// the cache's snapshot; copies changed afterwards only lose pods).
    pub labels: Arc<LabelIndex>,
}

impl Snapshot {
    /// A snapshot of exactly these nodes (for tests and benchmarks).
    pub fn from_nodes(nodes: Vec<NodeInfo>) -> Snapshot {
        let mut cache = Cache::default();
        for n in nodes {
            cache.node_set_changed = true;
            cache.images_changed = true;
            cache.nodes.insert(n.name.clone(), Arc::new(n));
        }
        let mut snapshot = Snapshot::default();
        cache.update_snapshot(&mut snapshot);
        snapshot
    }

    /// The node named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<NodeInfo>> {
        self.index.get(name).map(|i| &self.nodes[*i])
    }

    /// The position of the node named `name` in [`Snapshot::nodes`].
    pub fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// Labels of namespace `ns`.
    pub fn namespace_labels(&self, ns: &str) -> Option<&Labels> {
        self.namespaces.get(ns)
    }
}

impl Cache {
    fn node_mut(&mut self, name: &str) -> &mut NodeInfo {
        self.dirty.insert(name.to_string());
        let entry = self.nodes.entry(name.to_string()).or_insert_with(|| {
            Arc::new(NodeInfo {
                name: name.to_string(),
                ..NodeInfo::default()
            })
        });
        let info = Arc::make_mut(entry);
        info.generation = next_generation();
        info
    }

    /// Adds or replaces a node; says whether it is new, and whether
    /// anything scheduling depends on changed (labels, taints,
    /// schedulability, allocatable, images).
    pub fn add_or_update_node(&mut self, node: Arc<Node>) -> NodeChange {
        let name = node.metadata.name.clone().unwrap_or_default();
        let old = self.nodes.get(&name).filter(|n| n.node.is_some());
        if let Some(o) = old {
            let fresh = NodeInfo::new(node.clone());
            let same = o.labels == fresh.labels
                && o.taints == fresh.taints
                && o.unschedulable == fresh.unschedulable
                && o.allocatable == fresh.allocatable
                && o.images == fresh.images;
            if same {
                return NodeChange::Unchanged;
            }
        }
        let added = old.is_none();
        self.node_mut(&name).set_node(node);
        self.node_set_changed |= added;
        self.images_changed = true;
        if added { NodeChange::Added } else { NodeChange::Updated }
    }

    /// Names of the nodes that exist.
    pub fn node_names(&self) -> Vec<String> {
        self.nodes
            .values()
            .filter(|n| n.node.is_some())
            .map(|n| n.name.clone())
            .collect()
    }

    /// UIDs of bound (not assumed) pods.
    pub fn bound_pod_uids(&self) -> Vec<String> {
        self.pods
            .iter()
            .filter(|(_, s)| !s.assumed)
            .map(|(u, _)| u.clone())
            .collect()
    }

    /// The pod known under `uid`.
    pub fn pod(&self, uid: &str) -> Option<Arc<PodInfo>> {
        self.pods.get(uid).map(|s| s.info.clone())
    }

    /// Removes a node (its pods stay accounted until they go).
    pub fn remove_node(&mut self, name: &str) {
        let Some(info) = self.nodes.get_mut(name) else { return };
        if info.pods.is_empty() {
            self.nodes.remove(name);
        } else {
            let info = Arc::make_mut(info);
            info.node = None;
            info.generation = next_generation();
        }
        self.dirty.insert(name.to_string());
        self.node_set_changed = true;
        self.images_changed = true;
    }

    /// Names of nodes that exist.
    pub fn node_count(&self) -> usize {
        self.nodes.values().filter(|n| n.node.is_some()).count()
    }

    /// Records a namespace's labels.
    pub fn set_namespace(&mut self, name: &str, labels: Option<Labels>) {
        match labels {
            Some(l) => self.namespaces.insert(name.to_string(), l),
            None => self.namespaces.remove(name),
        };
        self.namespaces_changed = true;
    }

    fn log_labels(&mut self, info: &Arc<PodInfo>, node: &str, added: bool) {
        if !info.labels.is_empty() {
            self.label_log.push((info.clone(), node.to_string(), added));
        }
    }

    fn add_pod_to_node(&mut self, info: Arc<PodInfo>, node: &str, assumed: bool) {
        self.log_labels(&info, node, true);
        self.node_mut(node).add_pod(info.clone());
        self.pods.insert(
            info.uid.clone(),
            PodState {
                node: node.to_string(),
                info,
                assumed,
            },
        );
    }

    fn remove_pod_state(&mut self, uid: &str) -> Option<PodState> {
        let state = self.pods.remove(uid)?;
        self.log_labels(&state.info, &state.node, false);
        let node = self.node_mut(&state.node);
        node.remove_pod(uid);
        let orphan = node.node.is_none() && node.pods.is_empty();
        if orphan {
            self.nodes.remove(&state.node);
        }
        Some(state)
    }

    /// Assumes `info` (whose spec names its node) is on `node` until the
    /// watch confirms the binding or [`Cache::forget_pod`] is called.
    pub fn assume_pod(&mut self, info: Arc<PodInfo>, node: &str) {
        self.remove_pod_state(&info.uid);
        self.add_pod_to_node(info, node, true);
    }

    /// Drops an assumed pod after its binding failed.
    pub fn forget_pod(&mut self, uid: &str) {
        if self.pods.get(uid).is_some_and(|s| s.assumed) {
            self.remove_pod_state(uid);
        }
    }

    /// True when the pod is assumed and not yet confirmed.
    pub fn is_assumed(&self, uid: &str) -> bool {
        self.pods.get(uid).is_some_and(|s| s.assumed)
    }

    /// Adds or replaces a bound pod seen by the watch (confirming an assumed
    /// one).
    pub fn add_or_update_pod(&mut self, info: Arc<PodInfo>) {
        let Some(node) = info.node_name().map(str::to_string) else {
            return;
        };
        self.remove_pod_state(&info.uid);
        self.add_pod_to_node(info, &node, false);
    }

    /// Removes a pod (deleted, or finished).
    pub fn remove_pod(&mut self, uid: &str) {
        self.remove_pod_state(uid);
    }

    /// Number of pods known (bound and assumed).
    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    /// Brings `snapshot` up to date, copying only what changed.
    pub fn update_snapshot(&mut self, snapshot: &mut Snapshot) {
        if self.node_set_changed {
            let mut nodes: Vec<Arc<NodeInfo>> = self.nodes.values().filter(|n| n.node.is_some()).cloned().collect();
            nodes.sort_by(|a, b| a.name.cmp(&b.name));
            snapshot.index = nodes.iter().enumerate().map(|(i, n)| (n.name.clone(), i)).collect();
            snapshot.pods_with_required_anti_affinity = nodes.iter().map(|n| n.pods_with_required_anti_affinity).sum();
            snapshot.pods_with_scoring_affinity = nodes.iter().map(|n| n.pods_with_scoring_affinity).sum();
            snapshot.nodes = nodes;
        } else {
            for name in &self.dirty {
                if let (Some(i), Some(info)) = (snapshot.index.get(name), self.nodes.get(name)) {
                    let old = std::mem::replace(&mut snapshot.nodes[*i], info.clone());
                    snapshot.pods_with_required_anti_affinity = (snapshot.pods_with_required_anti_affinity
                        + info.pods_with_required_anti_affinity)
                        .saturating_sub(old.pods_with_required_anti_affinity);
                    snapshot.pods_with_scoring_affinity = (snapshot.pods_with_scoring_affinity
                        + info.pods_with_scoring_affinity)
                        .saturating_sub(old.pods_with_scoring_affinity);
                }
            }
        }
        if self.images_changed {
            let mut counts: HashMap<String, usize> = HashMap::new();
            for n in &snapshot.nodes {
                for (img, _) in &n.images {
                    *counts.entry(img.clone()).or_default() += 1;
                }
            }
            snapshot.image_nodes = Arc::new(counts);
        }
        if self.namespaces_changed {
            snapshot.namespaces = Arc::new(self.namespaces.clone());
        }
        if !snapshot.labels.is_complete() {
            // A snapshot this cache did not fill yet: every pod it knows.
            let mut index = LabelIndex::default();
            index.set_complete();
            for state in self.pods.values() {
                index.add_pod(&state.info, &state.node);
            }
            for (name, n) in &self.nodes {
                // Pods put on NodeInfos directly (Snapshot::from_nodes).
                for p in n.pods.iter().filter(|p| !self.pods.contains_key(&p.uid)) {
                    index.add_pod(p, name);
                }
            }
            snapshot.labels = Arc::new(index);
            self.label_log.clear();
        } else if !self.label_log.is_empty() {
            let index = Arc::make_mut(&mut snapshot.labels);
            for (pod, node, added) in self.label_log.drain(..) {
                if added {
                    index.add_pod(&pod, &node);
                } else {
                    index.remove_pod(&pod, &node);
                }
            }
        }
        self.dirty.clear();
        self.node_set_changed = false;
        self.images_changed = false;
        self.namespaces_changed = false;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn node(name: &str) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(
                json!({"metadata": {"name": name}, "status": {"allocatable": {"cpu": "4", "pods": "110"}}}),
            )
            .unwrap(),
        )
    }

    fn pod(uid: &str, node: &str) -> Arc<PodInfo> {
        Arc::new(PodInfo::new(
            serde_json::from_value(json!({
                "metadata": {"name": uid, "namespace": "d", "uid": uid},
                "spec": {"nodeName": node, "containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]},
            }))
            .unwrap(),
        ))
    }

    #[test]
    fn assumed_pods_count_until_forgotten_and_snapshots_follow() {
        let mut cache = Cache::default();
        let mut snap = Snapshot::default();
        cache.add_or_update_node(node("a"));
        cache.add_or_update_node(node("b"));
        cache.update_snapshot(&mut snap);
        assert_eq!(snap.nodes.len(), 2);
        cache.assume_pod(pod("p1", "a"), "a");
        cache.update_snapshot(&mut snap);
        assert_eq!(snap.get("a").unwrap().requested.milli_cpu, 1000);
        // The watch confirms it: still counted once.
        cache.add_or_update_pod(pod("p1", "a"));
        assert!(!cache.is_assumed("p1"));
        cache.update_snapshot(&mut snap);
        assert_eq!(snap.get("a").unwrap().pods.len(), 1);
        cache.assume_pod(pod("p2", "b"), "b");
        cache.forget_pod("p2");
        cache.update_snapshot(&mut snap);
        assert_eq!(snap.get("b").unwrap().requested.milli_cpu, 0);
        cache.remove_node("a");
        cache.update_snapshot(&mut snap);
        assert_eq!(snap.nodes.len(), 1);
        cache.remove_pod("p1");
        assert_eq!(cache.pod_count(), 0);
    }

    fn pod_with_affinity(uid: &str, node: &str, affinity: serde_json::Value) -> Arc<PodInfo> {
        Arc::new(PodInfo::new(
            serde_json::from_value(json!({
                "metadata": {"name": uid, "namespace": "d", "uid": uid},
                "spec": {"nodeName": node, "containers": [{"name": "c"}], "affinity": affinity},
            }))
            .unwrap(),
        ))
    }

    #[test]
    fn snapshot_sums_the_affinity_counters_of_its_nodes() {
        let term = json!([{"labelSelector": {"matchLabels": {"a": "b"}}, "topologyKey": "zone"}]);
        let anti = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": term}});
        let preferred = json!({"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 1, "podAffinityTerm": term[0]}
        ]}});
        let mut cache = Cache::default();
        let mut snap = Snapshot::default();
        let check = |snap: &Snapshot, anti: usize, scoring: usize| {
            assert_eq!(
                (snap.pods_with_required_anti_affinity, snap.pods_with_scoring_affinity),
                (anti, scoring)
            );
        };
        cache.add_or_update_node(node("a"));
        cache.add_or_update_node(node("b"));
        cache.assume_pod(pod_with_affinity("p1", "a", anti.clone()), "a");
        cache.update_snapshot(&mut snap);
        check(&snap, 1, 0);
        // Incremental updates of changed nodes.
        cache.assume_pod(pod_with_affinity("p2", "b", anti.clone()), "b");
        cache.assume_pod(pod_with_affinity("p3", "b", preferred), "b");
        cache.assume_pod(pod("p4", "a"), "a");
        cache.update_snapshot(&mut snap);
        check(&snap, 2, 1);
        cache.remove_pod("p2");
        cache.remove_pod("p3");
        cache.update_snapshot(&mut snap);
        check(&snap, 1, 0);
        // A new node set is summed afresh; a node that went takes its pods'
        // counts with it.
        cache.remove_node("a");
        cache.update_snapshot(&mut snap);
        check(&snap, 0, 0);
        cache.add_or_update_node(node("a"));
        cache.update_snapshot(&mut snap);
        check(&snap, 1, 0);
    }
}
