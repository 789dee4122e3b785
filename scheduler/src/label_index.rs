//! Which nodes hold pods with a given (namespace, label key, value), kept
//! by the cache and carried by the [`Snapshot`](crate::cache::Snapshot) a
//! cycle reads.
//!
//! Counting the pods a selector matches on every node costs every pod of
//! the cluster. The pods a selector can match all carry each of its
//! equality requirements (`key in (values)`), so the nodes worth counting
//! are those in the posting list of its most selective one: for a
//! Deployment's selector (`app` and `pod-template-hash`) a handful of
//! nodes, whatever the cluster's size. Callers still count on those nodes'
//! `NodeInfo`s, so the index only has to hold every node that has such a
//! pod (it holds exactly those: the cache logs pod additions and removals
//! and applies them when it brings the snapshot up to date).

use std::collections::HashMap;

use crate::pod_info::PodInfo;
use crate::selectors::Selector;

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Node name -> pods there carrying the label.
type Postings = Map<String, u32>;

/// Pods by namespace, label key and value, counted per node.
#[derive(Debug, Clone, Default)]
pub struct LabelIndex {
    by_namespace: Map<String, Map<String, Map<String, Postings>>>,
    /// False until the cache fills the index: a snapshot built by hand has
    /// an empty index, and every node is then a candidate.
    complete: bool,
}

/// The nodes worth counting for a selector.
#[derive(Debug, PartialEq, Eq)]
pub enum Candidates<'a> {
    /// Every node (the selector has no equality requirement, or the index
    /// was not filled).
    All,
    /// Only these nodes (each once) can hold a matching pod.
    Nodes(Vec<&'a str>),
}

impl LabelIndex {
    /// Marks the index as kept by a cache (so [`LabelIndex::candidates`]
    /// narrows).
    pub fn set_complete(&mut self) {
        self.complete = true;
    }

    /// Whether a cache filled the index.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Accounts `pod` on `node`.
    pub fn add_pod(&mut self, pod: &PodInfo, node: &str) {
        if pod.labels.is_empty() {
            return;
        }
        let keys = self.by_namespace.entry(pod.namespace.clone()).or_default();
        for (k, v) in &pod.labels {
            let values = match keys.get_mut(k.as_str()) {
                Some(values) => values,
                None => keys.entry(k.clone()).or_default(),
            };
            let nodes = match values.get_mut(v.as_str()) {
                Some(nodes) => nodes,
                None => values.entry(v.clone()).or_default(),
            };
            match nodes.get_mut(node) {
                Some(n) => *n += 1,
                None => {
                    nodes.insert(node.to_string(), 1);
                }
            }
        }
    }

    /// Takes `pod` (as it was added) off `node`.
    pub fn remove_pod(&mut self, pod: &PodInfo, node: &str) {
        let Some(keys) = self.by_namespace.get_mut(pod.namespace.as_str()) else {
            return;
        };
        for (k, v) in &pod.labels {
            let Some(values) = keys.get_mut(k.as_str()) else {
                continue;
            };
            let Some(nodes) = values.get_mut(v.as_str()) else {
                continue;
            };
            if let Some(n) = nodes.get_mut(node) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    nodes.remove(node);
                }
            }
            if nodes.is_empty() {
                values.remove(v.as_str());
            }
            if values.is_empty() {
                keys.remove(k.as_str());
            }
        }
        if keys.is_empty() {
            self.by_namespace.remove(pod.namespace.as_str());
        }
    }

    /// The posting lists a node must be in to hold pods of `namespace`
    /// matching `selector`: those of the values of its equality
    /// requirement with the fewest nodes.
    pub fn narrowing(&self, namespace: &str, selector: &Selector) -> Narrowing<'_> {
        if !self.complete {
            return Narrowing { lists: None };
        }
        if selector.matches_nothing() {
            return Narrowing {
                lists: Some(Vec::new()),
            };
        }
        let keys = self.by_namespace.get(namespace);
        let mut best: Option<(usize, Vec<&Postings>)> = None;
        for (key, values) in selector.equalities() {
            let lists: Vec<&Postings> = values.iter().filter_map(|v| keys?.get(key)?.get(v.as_str())).collect();
            let size = lists.iter().map(|l| l.len()).sum();
            if best.as_ref().is_none_or(|(s, _)| size < *s) {
                best = Some((size, lists));
            }
        }
        Narrowing {
            lists: best.map(|(_, lists)| lists),
        }
    }

    /// The nodes that may hold pods of `namespace` matching `selector`:
    /// the union over the values of its equality requirement with the
    /// fewest nodes.
    pub fn candidates(&self, namespace: &str, selector: &Selector) -> Candidates<'_> {
        let Some(lists) = self.narrowing(namespace, selector).lists else {
            return Candidates::All;
        };
        let mut nodes: Vec<&str> = lists.iter().flat_map(|l| l.keys().map(String::as_str)).collect();
        if lists.len() > 1 {
            nodes.sort_unstable();
            nodes.dedup();
        }
        Candidates::Nodes(nodes)
    }
}

/// Which nodes may hold pods matching a selector
/// ([`LabelIndex::narrowing`]), asked one node at a time: cheaper than
/// [`LabelIndex::candidates`] when only a few nodes are in question.
#[derive(Debug)]
pub struct Narrowing<'a> {
    /// `None`: every node may.
    lists: Option<Vec<&'a Postings>>,
}

impl Narrowing<'_> {
    /// Whether the node named `node` may hold a matching pod (false means
    /// it holds none).
    pub fn may_hold(&self, node: &str) -> bool {
        self.lists
            .as_ref()
            .is_none_or(|lists| lists.iter().any(|l| l.contains_key(node)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::sync::Arc;

    use serde_json::{Value, json};

    use super::*;
    use crate::cache::{Cache, Snapshot};
    use crate::plugins::match_counts::count_matching;
    use crate::plugins::testing::node;

    fn pod(name: &str, ns: &str, labels: Value, on: &str) -> Arc<PodInfo> {
        Arc::new(PodInfo::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": ns, "uid": name, "labels": labels},
                "spec": {"nodeName": on, "containers": [{"name": "c"}]},
            }))
            .unwrap(),
        ))
    }

    fn selector(v: Value) -> Selector {
        Selector::from_label_selector(Some(&serde_json::from_value(v).unwrap()))
    }

    /// Matching pods per node counted on the candidates only, against
    /// counting every node afresh.
    fn check(snap: &Snapshot, step: &str) {
        let selectors = [
            selector(json!({"matchLabels": {"app": "web"}})),
            selector(json!({"matchLabels": {"app": "web", "hash": "h1"}})),
            selector(json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "db"]}]})),
            selector(json!({"matchExpressions": [{"key": "app", "operator": "Exists"}]})),
            selector(json!({"matchLabels": {"app": "none"}})),
            Selector::nothing(),
            Selector::everything(),
        ];
        for ns in ["a", "b", "c"] {
            for s in &selectors {
                let fresh: Vec<(String, i64)> = snap
                    .nodes
                    .iter()
                    .map(|n| (n.name.clone(), count_matching(n, s, ns)))
                    .filter(|(_, c)| *c > 0)
                    .collect();
                let mut got: Vec<(String, i64)> = match snap.labels.candidates(ns, s) {
                    Candidates::All => snap.nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
                    Candidates::Nodes(names) => names,
                }
                .into_iter()
                .filter_map(|name| snap.get(name))
                .map(|n| (n.name.clone(), count_matching(n, s, ns)))
                .filter(|(_, c)| *c > 0)
                .collect();
                got.sort();
                assert_eq!(got, fresh, "{step}: {ns} {s:?}");
            }
        }
    }

    fn add_node(cache: &mut Cache, name: &str) {
        cache.add_or_update_node(node(name, json!({}), Value::Null, json!({})).node.unwrap());
    }

    #[test]
    fn candidates_give_the_counts_of_a_fresh_count_through_cluster_changes() {
        let mut cache = Cache::default();
        let mut snap = Snapshot::default();
        for n in ["n1", "n2", "n3"] {
            add_node(&mut cache, n);
        }
        cache.update_snapshot(&mut snap);
        check(&snap, "empty");
        cache.add_or_update_pod(pod("w1", "a", json!({"app": "web", "hash": "h1"}), "n1"));
        cache.assume_pod(pod("w2", "a", json!({"app": "web", "hash": "h2"}), "n2"), "n2");
        cache.add_or_update_pod(pod("w3", "b", json!({"app": "web", "hash": "h1"}), "n3"));
        cache.add_or_update_pod(pod("d1", "a", json!({"app": "db"}), "n3"));
        cache.add_or_update_pod(pod("x1", "a", json!({}), "n3"));
        cache.update_snapshot(&mut snap);
        check(&snap, "pods placed");
        // Relabelled (an update), confirmed, forgotten, deleted.
        cache.add_or_update_pod(pod("w1", "a", json!({"app": "db"}), "n1"));
        cache.add_or_update_pod(pod("w2", "a", json!({"app": "web", "hash": "h2"}), "n2"));
        cache.assume_pod(pod("w4", "a", json!({"app": "web", "hash": "h1"}), "n2"), "n2");
        cache.update_snapshot(&mut snap);
        check(&snap, "updated");
        cache.forget_pod("w4");
        cache.remove_pod("d1");
        cache.update_snapshot(&mut snap);
        check(&snap, "forgotten and deleted");
        // A node goes with its pods still there, comes back; a pod moves.
        cache.remove_node("n2");
        cache.update_snapshot(&mut snap);
        check(&snap, "node removed");
        add_node(&mut cache, "n2");
        cache.add_or_update_pod(pod("w3", "b", json!({"app": "web", "hash": "h1"}), "n1"));
        cache.update_snapshot(&mut snap);
        check(&snap, "node back, pod moved");
        for p in ["w1", "w2", "w3", "x1"] {
            cache.remove_pod(p);
        }
        cache.update_snapshot(&mut snap);
        check(&snap, "all pods gone");
        assert!(snap.labels.by_namespace.is_empty(), "{:?}", snap.labels);
    }

    #[test]
    fn narrows_to_the_most_selective_requirement() {
        let mut cache = Cache::default();
        let mut snap = Snapshot::default();
        for i in 0..4 {
            let n = format!("n{i}");
            add_node(&mut cache, &n);
            cache.add_or_update_pod(pod(
                &format!("p{i}"),
                "a",
                json!({"app": "web", "hash": format!("h{}", i % 2)}),
                &n,
            ));
        }
        cache.update_snapshot(&mut snap);
        let names = |s: Value| match snap.labels.candidates("a", &selector(s)) {
            Candidates::All => vec!["*".to_string()],
            Candidates::Nodes(mut v) => {
                v.sort_unstable();
                v.into_iter().map(str::to_string).collect()
            }
        };
        assert_eq!(
            names(json!({"matchLabels": {"app": "web", "hash": "h1"}})),
            ["n1", "n3"]
        );
        assert_eq!(
            names(json!({"matchLabels": {"app": "web", "hash": "h9"}})),
            Vec::<String>::new()
        );
        assert_eq!(names(json!({"matchLabels": {"app": "web"}})).len(), 4);
        assert_eq!(
            names(json!({"matchExpressions": [{"key": "hash", "operator": "In", "values": ["h0", "h1"]}]})).len(),
            4
        );
        assert_eq!(
            names(json!({"matchExpressions": [{"key": "hash", "operator": "NotIn", "values": ["h0"]}]})),
            ["*"]
        );
        // One node at a time, the same answer.
        let cases: [(Value, &[&str]); 4] = [
            (json!({"matchLabels": {"app": "web", "hash": "h1"}}), &["n1", "n3"]),
            (json!({"matchLabels": {"app": "web", "hash": "h9"}}), &[]),
            (json!({"matchLabels": {"app": "web"}}), &["n0", "n1", "n2", "n3"]),
            (
                json!({"matchExpressions": [{"key": "hash", "operator": "NotIn", "values": ["h0"]}]}),
                &["n0", "n1", "n2", "n3", "elsewhere"],
            ),
        ];
        for (s, holding) in cases {
            let narrowing = snap.labels.narrowing("a", &selector(s.clone()));
            for n in ["n0", "n1", "n2", "n3", "elsewhere"] {
                assert_eq!(narrowing.may_hold(n), holding.contains(&n), "{s} {n}");
            }
        }
        assert!(!snap.labels.narrowing("a", &Selector::nothing()).may_hold("n0"));
        // A snapshot not kept by a cache narrows nothing.
        assert_eq!(
            LabelIndex::default().candidates("a", &selector(json!({"matchLabels": {"app": "web"}}))),
            Candidates::All
        );
    }
}
