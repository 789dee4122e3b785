//! How many pods on each node match a (namespace, label selector), kept
//! across scheduling cycles. PodTopologySpread needs these counts for every
//! node in every cycle; between two cycles only the nodes that got or lost
//! a pod change, so a node is recounted only when its NodeInfo generation
//! differs from the one counted. Counts are kept by the node's position in
//! the snapshot: generations are unique over all NodeInfos, so a position
//! that now holds another node simply does not match. The result is the
//! same as counting afresh.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::node_info::NodeInfo;
use crate::selectors::Selector;

/// Selectors remembered at most; past this the memory starts over.
const MAX_SELECTORS: usize = 64;

type Key = (String, String);

/// Counts for one namespace and selector, by snapshot position:
/// (generation, count).
pub struct NodeCounts {
    key: Key,
    selector: Selector,
    namespace: String,
    by_position: Vec<(u64, i64)>,
}

impl NodeCounts {
    /// Pods on `node`, at `position` in the snapshot, in the namespace that
    /// match the selector and are not terminating.
    pub fn count(&mut self, position: usize, node: &NodeInfo) -> i64 {
        if node.generation == 0 {
            return count_matching(node, &self.selector, &self.namespace);
        }
        if let Some((generation, count)) = self.by_position.get(position)
            && *generation == node.generation
        {
            return *count;
        }
        let count = count_matching(node, &self.selector, &self.namespace);
        if self.by_position.len() <= position {
            self.by_position.resize(position + 1, (0, 0));
        }
        if let Some(slot) = self.by_position.get_mut(position) {
            *slot = (node.generation, count);
        }
        count
    }
}

/// Counts afresh (what [`NodeCounts::count`] keeps).
pub fn count_matching(node: &NodeInfo, selector: &Selector, namespace: &str) -> i64 {
    node.pods
        .iter()
        .filter(|p| p.namespace == namespace && !p.is_terminating() && selector.matches(&p.labels))
        .count() as i64
}

/// The counts of every selector seen recently.
#[derive(Default)]
pub struct MatchCounts {
    kept: Mutex<HashMap<Key, NodeCounts>>,
}

impl MatchCounts {
    /// The counts for `selector` in `namespace`; give them back with
    /// [`MatchCounts::put`] when done.
    pub fn take(&self, namespace: &str, selector: &Selector) -> NodeCounts {
        let key = (namespace.to_string(), format!("{selector:?}"));
        let kept = self.kept.lock().ok().and_then(|mut m| m.remove(&key));
        kept.unwrap_or_else(|| NodeCounts {
            key,
            selector: selector.clone(),
            namespace: namespace.to_string(),
            by_position: Vec::new(),
        })
    }

    pub fn put(&self, counts: NodeCounts) {
        if let Ok(mut m) = self.kept.lock() {
            if m.len() >= MAX_SELECTORS {
                m.clear();
            }
            m.insert(counts.key.clone(), counts);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;

    use super::*;
    use crate::node_info::next_generation;
    use crate::pod_info::PodInfo;
    use k8s_openapi::api::core::v1::Pod;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    fn pod(ns: &str, uid: &str, app: &str) -> Arc<PodInfo> {
        let p: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": uid, "namespace": ns, "uid": uid, "labels": {"app": app}},
            "spec": {"containers": [{"name": "c"}]},
        }))
        .unwrap();
        Arc::new(PodInfo::new(p))
    }

    fn selector(app: &str) -> Selector {
        let ls: LabelSelector = serde_json::from_value(serde_json::json!({"matchLabels": {"app": app}})).unwrap();
        Selector::from_label_selector(Some(&ls))
    }

    #[test]
    fn recounts_only_changed_nodes_and_matches_a_fresh_count() {
        let mc = MatchCounts::default();
        let mut node = NodeInfo {
            name: "n1".into(),
            generation: next_generation(),
            ..NodeInfo::default()
        };
        node.add_pod(pod("a", "1", "web"));
        node.add_pod(pod("b", "2", "web"));
        node.add_pod(pod("a", "3", "db"));
        let mut c = mc.take("a", &selector("web"));
        assert_eq!(c.count(0, &node), 1);
        mc.put(c);
        // Same generation: the kept count, even if (against the rules) the
        // pods changed without a new generation.
        let kept = node.generation;
        node.add_pod(pod("a", "4", "web"));
        node.generation = kept;
        let mut c = mc.take("a", &selector("web"));
        assert_eq!(c.count(0, &node), 1);
        mc.put(c);
        node.generation = next_generation();
        let mut c = mc.take("a", &selector("web"));
        assert_eq!(c.count(0, &node), 2);
        mc.put(c);
        // Another selector or namespace has its own counts.
        assert_eq!(mc.take("a", &selector("db")).count(0, &node), 1);
        assert_eq!(mc.take("b", &selector("web")).count(0, &node), 1);
        // Another node at that position is counted afresh.
        let mut other = NodeInfo {
            name: "n2".into(),
            generation: next_generation(),
            ..NodeInfo::default()
        };
        other.add_pod(pod("a", "9", "web"));
        let mut c = mc.take("a", &selector("web"));
        assert_eq!(c.count(0, &other), 1);
        assert_eq!(c.count(5, &node), 2);
        mc.put(c);
        // Generation 0 is never cached.
        node.generation = 0;
        let mut c = mc.take("a", &selector("web"));
        assert_eq!(c.count(0, &node), 2);
        node.add_pod(pod("a", "5", "web"));
        assert_eq!(c.count(0, &node), 3);
    }
}
