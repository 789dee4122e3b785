//! InterPodAffinity: required pod affinity and anti-affinity (the incoming
//! pod's and the existing pods' anti-affinity) filter; preferred terms of
//! both sides, and existing pods' required affinity (hard weight 1), score.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::cache::Snapshot;
use crate::framework::{ClusterEvent, Code, CycleState, MAX_NODE_SCORE, Plugin, Point, PreFilterResult, Status};
use crate::node_info::NodeInfo;
use crate::pod_info::{AffinityTerm, PodInfo, WeightedAffinityTerm};

/// The plugin's name.
pub const NAME: &str = "InterPodAffinity";
/// The incoming pod's required affinity is not satisfied.
pub const ERR_REASON_AFFINITY: &str = "node(s) didn't match pod affinity rules";
/// The incoming pod's required anti-affinity is not satisfied.
pub const ERR_REASON_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
/// An existing pod's required anti-affinity rejects the incoming pod.
pub const ERR_REASON_EXISTING_ANTI_AFFINITY: &str = "node(s) didn't satisfy existing pods anti-affinity rules";
const PRE_FILTER_KEY: &str = "PreFilterInterPodAffinity";
const PRE_SCORE_KEY: &str = "PreScoreInterPodAffinity";

/// Weight of an existing pod's required affinity term matching the
/// incoming pod (`hardPodAffinityWeight`).
pub const HARD_POD_AFFINITY_WEIGHT: i64 = 1;

/// Counts (or scores) by topology key and then value: lookups for a node
/// take one probe per distinct key, not a scan of every (key, value) pair.
#[derive(Debug, Default)]
struct TopologyCounts(Map<String, Map<String, i64>>);

/// These maps live for one cycle and are keyed by label keys and values.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

impl TopologyCounts {
    /// Adds `by` to the pair of `node`'s value for `key` (nodes without the
    /// label do not count).
    fn bump(&mut self, node: &NodeInfo, key: &str, by: i64) {
        let Some(v) = node.labels.get(key) else { return };
        let values = match self.0.get_mut(key) {
            Some(values) => values,
            None => self.0.entry(key.to_string()).or_default(),
        };
        match values.get_mut(v) {
            Some(n) => *n += by,
            None => {
                values.insert(v.clone(), by);
            }
        }
    }

    fn get(&self, key: &str, value: &str) -> i64 {
        self.0.get(key).and_then(|m| m.get(value)).copied().unwrap_or(0)
    }

    /// The counts of the pairs `node` is in, one per key.
    fn for_node<'a>(&'a self, node: &'a NodeInfo) -> impl Iterator<Item = i64> + 'a {
        self.0
            .iter()
            .filter_map(|(k, values)| values.get(node.labels.get(k)?).copied())
    }

    fn retain_positive(&mut self) {
        for values in self.0.values_mut() {
            values.retain(|_, n| *n > 0);
        }
        self.0.retain(|_, values| !values.is_empty());
    }

    fn is_empty(&self) -> bool {
        self.0.values().all(Map::is_empty)
    }
}

/// The InterPodAffinity plugin.
#[derive(Debug)]
pub struct InterPodAffinity {
    /// Score weight of an existing pod's required affinity term that the
    /// incoming pod matches.
    pub hard_pod_affinity_weight: i64,
    /// PreFilter's per-node findings for recent pod shapes.
    memo: Mutex<HashMap<String, Vec<(u64, NodeFindings)>>>,
}

impl Default for InterPodAffinity {
    fn default() -> Self {
        InterPodAffinity::with_hard_pod_affinity_weight(HARD_POD_AFFINITY_WEIGHT)
    }
}

impl InterPodAffinity {
    pub fn with_hard_pod_affinity_weight(weight: i64) -> InterPodAffinity {
        InterPodAffinity {
            hard_pod_affinity_weight: weight,
            memo: Mutex::default(),
        }
    }
}

/// Pod shapes whose findings are kept at most.
const MEMO_SHAPES: usize = 16;

/// What PreFilter finds on one node for one incoming pod: the topology
/// keys to bump, once per match, in each of the three tallies.
#[derive(Debug, Clone, Default)]
struct NodeFindings {
    existing_anti_affinity: Vec<String>,
    affinity: Vec<String>,
    anti_affinity: Vec<String>,
    /// False when a term read namespace labels (which can change without
    /// the node changing): such findings are not kept.
    keepable: bool,
}

/// The part of a pod PreFilter's findings depend on (besides the nodes),
/// or None when they also depend on namespace labels.
fn shape(pod: &PodInfo) -> Option<String> {
    let terms = pod.required_affinity.iter().chain(&pod.required_anti_affinity);
    if terms.clone().any(AffinityTerm::needs_namespace_labels) {
        return None;
    }
    Some(format!(
        "{}\n{:?}\n{:?}\n{:?}",
        pod.namespace, pod.labels, pod.required_affinity, pod.required_anti_affinity
    ))
}

impl InterPodAffinity {
    /// PreFilter's findings on `n` for `pod`.
    fn find(pod: &PodInfo, n: &NodeInfo, snapshot: &Snapshot) -> NodeFindings {
        let mut f = NodeFindings {
            keepable: true,
            ..NodeFindings::default()
        };
        if n.pods_with_required_anti_affinity > 0 {
            for existing in &n.pods {
                for t in &existing.required_anti_affinity {
                    let ns = if t.needs_namespace_labels() {
                        f.keepable = false;
                        snapshot.namespace_labels(&pod.namespace)
                    } else {
                        None
                    };
                    if t.matches(pod, ns) {
                        f.existing_anti_affinity.push(t.topology_key.clone());
                    }
                }
            }
        }
        if pod.required_affinity.is_empty() && pod.required_anti_affinity.is_empty() {
            return f;
        }
        // Namespace labels are looked up only for terms with a namespace selector.
        let anti_needs_ns = pod
            .required_anti_affinity
            .iter()
            .any(AffinityTerm::needs_namespace_labels);
        for existing in &n.pods {
            if matches_all(&pod.required_affinity, existing, snapshot) {
                f.affinity
                    .extend(pod.required_affinity.iter().map(|t| t.topology_key.clone()));
            }
            let ns = if anti_needs_ns {
                snapshot.namespace_labels(&existing.namespace)
            } else {
                None
            };
            for t in &pod.required_anti_affinity {
                if t.matches(existing, ns) {
                    f.anti_affinity.push(t.topology_key.clone());
                }
            }
        }
        f
    }
}

#[derive(Default)]
struct FilterState {
    existing_anti_affinity: TopologyCounts,
    affinity: TopologyCounts,
    anti_affinity: TopologyCounts,
}

fn process(
    scores: &mut TopologyCounts,
    terms: &[WeightedAffinityTerm],
    target: &PodInfo,
    ns: Option<&crate::selectors::Labels>,
    node: &NodeInfo,
    sign: i64,
) {
    for t in terms {
        if t.term.matches(target, ns) {
            scores.bump(node, &t.term.topology_key, i64::from(t.weight) * sign);
        }
    }
}

fn matches_all(terms: &[AffinityTerm], pod: &PodInfo, snapshot: &Snapshot) -> bool {
    if terms.is_empty() {
        return false;
    }
    let ns = if terms.iter().any(AffinityTerm::needs_namespace_labels) {
        snapshot.namespace_labels(&pod.namespace)
    } else {
        None
    };
    !terms.is_empty() && terms.iter().all(|t| t.matches(pod, ns))
}

impl InterPodAffinity {
    fn satisfies_affinity(st: &FilterState, pod: &PodInfo, node: &NodeInfo, self_match: bool) -> bool {
        let mut pods_exist = true;
        for t in &pod.required_affinity {
            let Some(v) = node.labels.get(&t.topology_key) else {
                return false;
            };
            if st.affinity.get(&t.topology_key, v) <= 0 {
                pods_exist = false;
            }
        }
        // The first pod of a group with affinity to itself may go anywhere
        // that has the topology labels.
        pods_exist || (st.affinity.is_empty() && self_match)
    }
}

struct PreFilterData {
    st: FilterState,
    self_match: bool,
}

impl Plugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        NAME
    }
    fn points(&self) -> &'static [Point] {
        &[Point::PreFilter, Point::Filter, Point::PreScore, Point::Score]
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[
            ClusterEvent::NodeAdd,
            ClusterEvent::NodeUpdate,
            ClusterEvent::AssignedPodAdd,
            ClusterEvent::AssignedPodUpdate,
            ClusterEvent::AssignedPodDelete,
            ClusterEvent::NamespaceUpdate,
            ClusterEvent::UnscheduledPodUpdate,
        ]
    }

    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, snapshot: &Snapshot) -> (Status, PreFilterResult) {
        let any_existing_anti = snapshot.nodes.iter().any(|n| n.pods_with_required_anti_affinity > 0);
        if pod.required_affinity.is_empty() && pod.required_anti_affinity.is_empty() && !any_existing_anti {
            return (Status::skip(), None);
        }
        let mut st = FilterState::default();
        // Findings are kept per node generation for pods of the same shape:
        // between two cycles only the nodes that changed are looked at again.
        let shape = shape(pod);
        let mut memo = shape
            .as_ref()
            .and_then(|k| self.memo.lock().ok()?.remove(k))
            .unwrap_or_default();
        for (pos, n) in snapshot.nodes.iter().enumerate() {
            let scratch;
            let kept = memo
                .get(pos)
                .is_some_and(|(generation, _)| n.generation != 0 && *generation == n.generation);
            let f = if kept {
                memo.get(pos).map(|(_, f)| f)
            } else {
                let found = Self::find(pod, n, snapshot);
                if shape.is_some() {
                    if memo.len() <= pos {
                        memo.resize(pos + 1, (0, NodeFindings::default()));
                    }
                    let generation = if found.keepable { n.generation } else { 0 };
                    if let Some(slot) = memo.get_mut(pos) {
                        *slot = (generation, found);
                    }
                    memo.get(pos).map(|(_, f)| f)
                } else {
                    scratch = found;
                    Some(&scratch)
                }
            };
            let Some(f) = f else { continue };
            for key in &f.existing_anti_affinity {
                st.existing_anti_affinity.bump(n, key, 1);
            }
            for key in &f.affinity {
                st.affinity.bump(n, key, 1);
            }
            for key in &f.anti_affinity {
                st.anti_affinity.bump(n, key, 1);
            }
        }
        if let (Some(k), Ok(mut kept)) = (shape, self.memo.lock()) {
            if kept.len() >= MEMO_SHAPES {
                kept.clear();
            }
            kept.insert(k, memo);
        }
        st.affinity.retain_positive();
        let self_match = matches_all(&pod.required_affinity, pod, snapshot);
        state.write(PRE_FILTER_KEY, PreFilterData { st, self_match });
        (Status::success(), None)
    }

    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(data) = state.read::<PreFilterData>(PRE_FILTER_KEY) else {
            return Status::success();
        };
        let st = &data.st;
        if !Self::satisfies_affinity(st, pod, node, data.self_match) {
            return Status::with(Code::UnschedulableAndUnresolvable, ERR_REASON_AFFINITY);
        }
        for t in &pod.required_anti_affinity {
            if let Some(v) = node.labels.get(&t.topology_key)
                && st.anti_affinity.get(&t.topology_key, v) > 0
            {
                return Status::with(Code::Unschedulable, ERR_REASON_ANTI_AFFINITY);
            }
        }
        if st.existing_anti_affinity.for_node(node).any(|count| count > 0) {
            return Status::with(Code::Unschedulable, ERR_REASON_EXISTING_ANTI_AFFINITY);
        }
        Status::success()
    }

    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _nodes: &[Arc<NodeInfo>],
        snapshot: &Snapshot,
    ) -> Status {
        let has_preferred = !(pod.preferred_affinity.is_empty() && pod.preferred_anti_affinity.is_empty());
        let any_existing = snapshot.nodes.iter().any(|n| n.pods_with_affinity > 0);
        if !has_preferred && !any_existing {
            return Status::skip();
        }
        let incoming_ns = snapshot.namespace_labels(&pod.namespace);
        let preferred_need_ns = pod
            .preferred_affinity
            .iter()
            .chain(&pod.preferred_anti_affinity)
            .any(|t| t.term.needs_namespace_labels());
        let mut scores = TopologyCounts::default();
        for n in &snapshot.nodes {
            if n.labels.is_empty() || (!has_preferred && n.pods_with_affinity == 0) {
                continue;
            }
            for existing in &n.pods {
                let existing_ns = if preferred_need_ns {
                    snapshot.namespace_labels(&existing.namespace)
                } else {
                    None
                };
                process(&mut scores, &pod.preferred_affinity, existing, existing_ns, n, 1);
                process(&mut scores, &pod.preferred_anti_affinity, existing, existing_ns, n, -1);
                if !existing.has_affinity() {
                    continue;
                }
                if self.hard_pod_affinity_weight > 0 {
                    for t in &existing.required_affinity {
                        if t.matches(pod, incoming_ns) {
                            scores.bump(n, &t.topology_key, self.hard_pod_affinity_weight);
                        }
                    }
                }
                process(&mut scores, &existing.preferred_affinity, pod, incoming_ns, n, 1);
                process(&mut scores, &existing.preferred_anti_affinity, pod, incoming_ns, n, -1);
            }
        }
        state.write(PRE_SCORE_KEY, scores);
        Status::success()
    }

    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(scores) = state.read::<TopologyCounts>(PRE_SCORE_KEY) else {
            return 0;
        };
        scores.for_node(node).sum()
    }

    fn normalize_score(&self, _state: &CycleState, _pod: &PodInfo, _nodes: &[Arc<NodeInfo>], scores: &mut [i64]) {
        let (Some(min), Some(max)) = (scores.iter().copied().min(), scores.iter().copied().max()) else {
            return;
        };
        let diff = max - min;
        for s in scores.iter_mut() {
            *s = if diff > 0 {
                (MAX_NODE_SCORE as f64 * ((*s - min) as f64 / diff as f64)) as i64
            } else {
                0
            };
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use serde_json::{Value, json};

    use super::*;
    use crate::plugins::testing::{filter_all, node, pod, score_all, short, with_pods};

    fn term(key: &str, values: &[&str], topology: &str) -> Value {
        json!({"labelSelector": {"matchExpressions": [{"key": key, "operator": "In", "values": values}]}, "topologyKey": topology})
    }

    fn zoned(name: &str, zone: &str, pods: Vec<PodInfo>) -> NodeInfo {
        with_pods(node(name, json!({"zone": zone}), Value::Null, json!({})), pods)
    }

    #[test]
    fn kept_findings_follow_node_generations() {
        use crate::node_info::next_generation;
        let green = || json!({"color": "green"});
        let anti = json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"color": "green"}}, "topologyKey": "kubernetes.io/hostname"}
        ]}}});
        let host = |name: &str, pods: Vec<PodInfo>| {
            let mut n = with_pods(
                node(name, json!({"kubernetes.io/hostname": name}), Value::Null, json!({})),
                pods,
            );
            n.generation = next_generation();
            n
        };
        let plugin = Arc::new(InterPodAffinity::default());
        let incoming = pod("p", green(), anti.clone());
        let run = |snap: &Snapshot| -> Vec<String> {
            filter_all(plugin.clone(), &incoming, snap).iter().map(short).collect()
        };
        let empty_a = host("a", vec![]);
        let b = host("b", vec![]);
        let snap = Snapshot::from_nodes(vec![empty_a.clone(), b.clone()]);
        assert_eq!(run(&snap), vec!["", ""]);
        // Node a gets a green pod (a new generation): both tallies see it,
        // while b's kept findings are reused.
        let full_a = host("a", vec![pod("g", green(), anti.clone())]);
        let snap = Snapshot::from_nodes(vec![full_a, b.clone()]);
        let out = run(&snap);
        assert!(out[0].contains("anti-affinity"), "{out:?}");
        assert_eq!(out[1], "");
        // Back to the empty node (another generation): allowed again.
        let snap = Snapshot::from_nodes(vec![host("a", vec![]), b]);
        assert_eq!(run(&snap), vec!["", ""]);
    }

    fn statuses(p: &PodInfo, snap: &Snapshot) -> Vec<String> {
        filter_all(Arc::new(InterPodAffinity::default()), p, snap)
            .iter()
            .map(short)
            .collect()
    }

    #[test]
    fn required_affinity() {
        let snap = Snapshot::from_nodes(vec![
            zoned(
                "a",
                "z1",
                vec![pod("db", json!({"service": "securityscan"}), json!({}))],
            ),
            zoned("b", "z1", vec![]),
            zoned("c", "z2", vec![]),
        ]);
        let p = pod(
            "p",
            json!({}),
            json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                term("service", &["securityscan", "value2"], "zone")
            ]}}}),
        );
        assert_eq!(statuses(&p, &snap), ["", "", ERR_REASON_AFFINITY]);
        // No pod matches anywhere, but the pod matches its own term: allowed
        // wherever the topology key exists.
        let first = pod(
            "first",
            json!({"app": "x"}),
            json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                term("app", &["x"], "zone")
            ]}}}),
        );
        assert_eq!(statuses(&first, &snap), ["", "", ""]);
        let other = pod(
            "other",
            json!({"app": "y"}),
            json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                term("app", &["x"], "zone")
            ]}}}),
        );
        assert_eq!(
            statuses(&other, &snap),
            [ERR_REASON_AFFINITY, ERR_REASON_AFFINITY, ERR_REASON_AFFINITY]
        );
    }

    #[test]
    fn required_anti_affinity_both_ways() {
        let anti = |name: &str| {
            pod(
                name,
                json!({"app": "web"}),
                json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                    term("app", &["web"], "kubernetes.io/hostname")
                ]}}}),
            )
        };
        let snap = Snapshot::from_nodes(vec![
            zoned("a", "z1", vec![anti("web-0")]),
            zoned("b", "z1", vec![pod("plain", json!({"app": "web"}), json!({}))]),
            zoned("c", "z2", vec![]),
        ]);
        // The incoming pod's own anti-affinity rejects a and b; a's pod
        // would also reject it, but the incoming pod's rule is checked first.
        assert_eq!(
            statuses(&anti("web-1"), &snap),
            [ERR_REASON_ANTI_AFFINITY, ERR_REASON_ANTI_AFFINITY, ""]
        );
        // A plain pod labelled app=web is kept off a by web-0's rule.
        let plain = pod("plain-2", json!({"app": "web"}), json!({}));
        assert_eq!(statuses(&plain, &snap), [ERR_REASON_EXISTING_ANTI_AFFINITY, "", ""]);
    }

    #[test]
    fn namespace_selectors_pick_the_namespaces_of_matching_pods() {
        let in_ns = |name: &str, ns: &str| {
            let mut p = pod(name, json!({"app": "db"}), json!({}));
            p.namespace = ns.to_string();
            p
        };
        let mut snap = Snapshot::from_nodes(vec![
            zoned("a", "z1", vec![in_ns("db-a", "team-a")]),
            zoned("b", "z2", vec![in_ns("db-b", "team-b")]),
        ]);
        snap.namespaces = Arc::new(
            [
                ("team-a".to_string(), [("team".to_string(), "a".to_string())].into()),
                ("team-b".to_string(), [("team".to_string(), "b".to_string())].into()),
            ]
            .into(),
        );
        let p = pod(
            "p",
            json!({}),
            json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
                "labelSelector": {"matchLabels": {"app": "db"}},
                "namespaceSelector": {"matchLabels": {"team": "b"}},
                "topologyKey": "zone"
            }]}}}),
        );
        assert_eq!(statuses(&p, &snap), [ERR_REASON_AFFINITY, ""]);
        // Without a namespace selector only the pod's own namespace counts.
        let own = pod(
            "own",
            json!({}),
            json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                term("app", &["db"], "zone")
            ]}}}),
        );
        assert_eq!(statuses(&own, &snap), [ERR_REASON_AFFINITY, ERR_REASON_AFFINITY]);
    }

    #[test]
    fn preferred_terms_score() {
        let snap = Snapshot::from_nodes(vec![
            zoned("a", "z1", vec![pod("s", json!({"security": "S1"}), json!({}))]),
            zoned("b", "z2", vec![pod("t", json!({"security": "S2"}), json!({}))]),
            zoned("c", "z3", vec![]),
        ]);
        let p = pod(
            "p",
            json!({}),
            json!({"affinity": {
                "podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 5, "podAffinityTerm": term("security", &["S1"], "zone")}
                ]},
                "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 5, "podAffinityTerm": term("security", &["S2"], "zone")}
                ]}
            }}),
        );
        // raw 5 / -5 / 0 -> normalized (s - min) * 100 / (max - min)
        assert_eq!(
            score_all(Arc::new(InterPodAffinity::default()), &p, &snap),
            [100, 0, 50]
        );
    }
}
