//! InterPodAffinity: required pod affinity and anti-affinity (the incoming
//! pod's and the existing pods' anti-affinity) filter; preferred terms of
//! both sides, and existing pods' required affinity (hard weight 1), score.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::cache::Snapshot;
use crate::framework::{ClusterEvent, Code, CycleState, MAX_NODE_SCORE, Plugin, Point, PreFilterResult, Status};
use crate::node_info::NodeInfo;
use crate::pod_info::{AffinityTerm, PodInfo, WeightedAffinityTerm};

mod verdicts;

use verdicts::{Verdict, class};

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
#[derive(Debug, Default, Clone)]
struct TopologyCounts<C = i64>(Map<String, Map<String, C>>);

/// These maps are keyed by label keys and values.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

impl<C: Copy + Default + PartialEq> TopologyCounts<C> {
    /// Changes the count of the pair (`key`, `value`) with `f` and returns
    /// it before and after; a pair whose count comes back to zero is
    /// dropped, so a tally of additions and their undoing holds only pairs
    /// that count.
    fn update(&mut self, key: &str, value: &str, f: impl FnOnce(&mut C)) -> (C, C) {
        let values = match self.0.get_mut(key) {
            Some(values) => values,
            None => self.0.entry(key.to_string()).or_default(),
        };
        let n = match values.get_mut(value) {
            Some(n) => n,
            None => values.entry(value.to_string()).or_default(),
        };
        let before = *n;
        f(n);
        let after = *n;
        if after == C::default() {
            values.remove(value);
            if values.is_empty() {
                self.0.remove(key);
            }
        }
        (before, after)
    }

    /// The counts of the pairs `node` is in, one per key.
    fn for_node<'a>(&'a self, node: &'a NodeInfo) -> impl Iterator<Item = C> + 'a {
        self.0
            .iter()
            .filter_map(|(k, values)| values.get(node.labels.get(k)?).copied())
    }

    fn is_empty(&self) -> bool {
        self.0.values().all(Map::is_empty)
    }
}

impl TopologyCounts {
    /// Adds `by` to the pair of `node`'s value for `key` (nodes without the
    /// label do not count).
    fn bump(&mut self, node: &NodeInfo, key: &str, by: i64) {
        let Some(v) = node.labels.get(key) else { return };
        self.update(key, v, |n| *n += by);
    }

    fn get(&self, key: &str, value: &str) -> i64 {
        self.0.get(key).and_then(|m| m.get(value)).copied().unwrap_or(0)
    }
}

/// The InterPodAffinity plugin.
#[derive(Debug)]
pub struct InterPodAffinity {
    /// Score weight of an existing pod's required affinity term that the
    /// incoming pod matches.
    pub hard_pod_affinity_weight: i64,
    /// PreFilter's per-node findings and their tallies for recent pod shapes.
    memo: Mutex<HashMap<String, Kept>>,
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

/// A (topology key, the node's value for it) pair found on a node.
type Pair = (String, String);

/// What PreFilter finds on one node for one incoming pod: the topology
/// pairs to count, once per match, in each of the three tallies.
#[derive(Debug, Clone, Default)]
struct NodeFindings {
    existing_anti_affinity: Vec<Pair>,
    affinity: Vec<Pair>,
    anti_affinity: Vec<Pair>,
    /// False when a term read namespace labels (which can change without
    /// the node changing): such findings are made again every cycle.
    keepable: bool,
}

impl NodeFindings {
    fn is_empty(&self) -> bool {
        self.existing_anti_affinity.is_empty() && self.affinity.is_empty() && self.anti_affinity.is_empty()
    }
}

/// PreFilter's findings for one pod shape, by snapshot position, with
/// their tallies. Between two cycles only the nodes that changed are
/// looked at again (their old findings are taken out of the tallies, the
/// new ones put in), so a cycle costs a pointer compare per node plus the
/// work on the nodes that changed. A position keeps the `Arc` of the
/// NodeInfo its findings were made on: while it is held that NodeInfo
/// cannot change or be freed, so the same pointer in the snapshot means
/// the same node in the same state (the cache replaces a changed NodeInfo,
/// a preemption dry run works on copies). Findings that read namespace
/// labels, which change without the node changing, keep no NodeInfo and
/// are made again every cycle.
#[derive(Debug, Default)]
struct Kept {
    /// (the NodeInfo the findings were made on, findings) per position.
    nodes: Vec<(Option<Arc<NodeInfo>>, NodeFindings)>,
    /// The sum of every position's findings.
    st: Arc<FilterState>,
    /// What keeps `st.verdicts` up to date.
    index: verdicts::Index,
}

impl Kept {
    /// Brings the findings and tallies up to date with `snapshot`, and the
    /// Filter verdicts by generation when `with_verdicts` (findings kept
    /// across cycles; a Kept used once would judge every node for nothing).
    fn update(&mut self, pod: &PodInfo, snapshot: &Snapshot, with_verdicts: bool) {
        let st = Arc::make_mut(&mut self.st);
        let mut changed = Vec::new();
        let mut changed_pairs = Vec::new();
        for (pos, n) in snapshot.nodes.iter().enumerate() {
            if let Some((Some(seen), _)) = self.nodes.get(pos)
                && Arc::ptr_eq(seen, n)
            {
                continue;
            }
            changed.push(pos);
            let found = InterPodAffinity::find(pod, n, snapshot);
            let seen = found.keepable.then(|| n.clone());
            st.count(&found, 1, &mut changed_pairs);
            match self.nodes.get_mut(pos) {
                Some(slot) => {
                    let (_, old) = std::mem::replace(slot, (seen, found));
                    st.count(&old, -1, &mut changed_pairs);
                }
                None => self.nodes.push((seen, found)),
            }
        }
        for (_, old) in self.nodes.drain(snapshot.nodes.len().min(self.nodes.len())..) {
            st.count(&old, -1, &mut changed_pairs);
        }
        if with_verdicts {
            self.index
                .refresh(&mut st.verdicts, &st.anti, snapshot, &changed, &changed_pairs);
        }
    }
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

/// The pair of `node`'s value for `key`, when it has the label.
fn pair(node: &NodeInfo, key: &str) -> Option<Pair> {
    node.labels.get(key).map(|v| (key.to_string(), v.clone()))
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
                        f.existing_anti_affinity.extend(pair(n, &t.topology_key));
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
                    .extend(pod.required_affinity.iter().filter_map(|t| pair(n, &t.topology_key)));
            }
            let ns = if anti_needs_ns {
                snapshot.namespace_labels(&existing.namespace)
            } else {
                None
            };
            for t in &pod.required_anti_affinity {
                if t.matches(existing, ns) {
                    f.anti_affinity.extend(pair(n, &t.topology_key));
                }
            }
        }
        f
    }
}

#[derive(Debug, Default, Clone)]
struct FilterState {
    affinity: TopologyCounts,
    /// Per pair: [matches of the incoming pod's anti-affinity terms,
    /// existing pods' anti-affinity terms matching the incoming pod]; one
    /// tally so that Filter looks a node's pairs up once for both.
    anti: verdicts::AntiTally,
    /// What `anti` says about each node of the snapshot, by NodeInfo
    /// generation (see [`verdicts`]); empty when not kept.
    verdicts: Map<u64, Verdict>,
}

impl FilterState {
    /// Adds (`sign` 1) or takes out (-1) one node's findings, noting in
    /// `changed` the anti-affinity pairs whose [`class`] changed.
    fn count(&mut self, f: &NodeFindings, sign: i64, changed: &mut Vec<Pair>) {
        if f.is_empty() {
            return;
        }
        let mut note = |k: &String, v: &String, (before, after): ([i64; 2], [i64; 2])| {
            if class(before) != class(after) {
                changed.push((k.clone(), v.clone()));
            }
        };
        for (k, v) in &f.anti_affinity {
            note(k, v, self.anti.update(k, v, |c| c[0] += sign));
        }
        for (k, v) in &f.existing_anti_affinity {
            note(k, v, self.anti.update(k, v, |c| c[1] += sign));
        }
        for (k, v) in &f.affinity {
            self.affinity.update(k, v, |n| *n += sign);
        }
    }
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
    st: Arc<FilterState>,
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
        let any_existing_anti = snapshot.pods_with_required_anti_affinity > 0;
        if pod.required_affinity.is_empty() && pod.required_anti_affinity.is_empty() && !any_existing_anti {
            return (Status::skip(), None);
        }
        let shape = shape(pod);
        let mut kept = shape
            .as_ref()
            .and_then(|k| self.memo.lock().ok()?.remove(k))
            .unwrap_or_default();
        kept.update(pod, snapshot, shape.is_some());
        let st = kept.st.clone();
        if let (Some(k), Ok(mut memo)) = (shape, self.memo.lock()) {
            if memo.len() >= MEMO_SHAPES {
                memo.clear();
            }
            memo.insert(k, kept);
        }
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
        let kept = (node.generation != 0)
            .then(|| st.verdicts.get(&node.generation).copied())
            .flatten();
        match kept.unwrap_or_else(|| Verdict::of(&st.anti, node)) {
            Verdict::Fits => Status::success(),
            Verdict::AntiAffinity => Status::with(Code::Unschedulable, ERR_REASON_ANTI_AFFINITY),
            Verdict::ExistingAntiAffinity => Status::with(Code::Unschedulable, ERR_REASON_EXISTING_ANTI_AFFINITY),
        }
    }

    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _nodes: &[Arc<NodeInfo>],
        snapshot: &Snapshot,
    ) -> Status {
        let has_preferred = !(pod.preferred_affinity.is_empty() && pod.preferred_anti_affinity.is_empty());
        let any_existing = snapshot.pods_with_scoring_affinity > 0;
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
            if n.labels.is_empty() || (!has_preferred && n.pods_with_scoring_affinity == 0) {
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
                if !existing.has_scoring_affinity() {
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
        if scores.is_empty() {
            // Every node would score 0: same totals as not scoring.
            return Status::skip();
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

    #[test]
    fn kept_tallies_match_fresh_ones_through_cluster_changes() {
        use crate::cache::Cache;
        let anti = |topology: &str| {
            json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"color": "green"}}, "topologyKey": topology}
            ]}}})
        };
        let affinity = json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"}
        ]}}});
        let incoming = [
            pod("host-anti", json!({"color": "green"}), anti("kubernetes.io/hostname")),
            pod("zone-anti", json!({"color": "green"}), anti("zone")),
            pod("with-db", json!({}), affinity),
            pod("plain", json!({"color": "green"}), json!({})),
        ];
        let kept = Arc::new(InterPodAffinity::default());
        let mut cache = Cache::default();
        let mut snap = Snapshot::default();
        let check = |snap: &Snapshot, step: &str| {
            for p in &incoming {
                let fresh: Vec<String> = filter_all(Arc::new(InterPodAffinity::default()), p, snap)
                    .iter()
                    .map(short)
                    .collect();
                let got: Vec<String> = filter_all(kept.clone(), p, snap).iter().map(short).collect();
                assert_eq!(got, fresh, "{step}: {}", p.name);
                // The kept verdicts were used, and judging from the tally
                // alone (copies without a generation have no kept verdict)
                // gives the same.
                if let Some(k) = shape(p) {
                    let memo = kept.memo.lock().unwrap();
                    let judged = memo.get(&k).map_or(0, |e| e.st.verdicts.len());
                    let ran = !(p.required_affinity.is_empty() && p.required_anti_affinity.is_empty())
                        || snap.pods_with_required_anti_affinity > 0;
                    assert_eq!(judged, if ran { snap.nodes.len() } else { 0 }, "{step}: {}", p.name);
                }
                let unkept = Snapshot::from_nodes(
                    snap.nodes
                        .iter()
                        .map(|n| NodeInfo {
                            generation: 0,
                            ..(**n).clone()
                        })
                        .collect(),
                );
                let slow: Vec<String> = filter_all(Arc::new(InterPodAffinity::default()), p, &unkept)
                    .iter()
                    .map(short)
                    .collect();
                assert_eq!(slow, fresh, "{step}: {} from the tally", p.name);
            }
        };
        let add_node = |cache: &mut Cache, name: &str, zone: &str| {
            let labels = json!({"zone": zone, "kubernetes.io/hostname": name});
            let n = node(name, labels, Value::Null, json!({}));
            cache.add_or_update_node(n.node.unwrap());
        };
        let place = |cache: &mut Cache, name: &str, labels: Value, spec: Value, on: &str| {
            let mut p = pod(name, labels, spec);
            let mut bound = p.to_pod();
            bound.spec.as_mut().unwrap().node_name = Some(on.into());
            p = PodInfo::new(bound);
            cache.assume_pod(Arc::new(p), on);
        };
        for (i, zone) in ["z1", "z1", "z2", "z3"].iter().enumerate() {
            add_node(&mut cache, &format!("n{i}"), zone);
        }
        cache.update_snapshot(&mut snap);
        check(&snap, "empty");
        place(
            &mut cache,
            "g1",
            json!({"color": "green"}),
            anti("kubernetes.io/hostname"),
            "n1",
        );
        place(&mut cache, "db", json!({"app": "db"}), json!({}), "n2");
        cache.update_snapshot(&mut snap);
        check(&snap, "two pods");
        place(&mut cache, "g2", json!({"color": "green"}), anti("zone"), "n3");
        place(&mut cache, "g3", json!({"color": "green"}), json!({}), "n0");
        cache.update_snapshot(&mut snap);
        check(&snap, "four pods");
        // Pods go, a node goes (positions shift), another comes first in order.
        cache.remove_pod("uid-g1");
        cache.remove_pod("uid-db");
        cache.update_snapshot(&mut snap);
        check(&snap, "pods removed");
        cache.remove_node("n0");
        cache.update_snapshot(&mut snap);
        check(&snap, "node removed");
        add_node(&mut cache, "a0", "z2");
        place(&mut cache, "db2", json!({"app": "db"}), json!({}), "a0");
        cache.update_snapshot(&mut snap);
        check(&snap, "node added");
        // A node relabelled into another zone.
        add_node(&mut cache, "n3", "z1");
        cache.update_snapshot(&mut snap);
        check(&snap, "relabelled");
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
