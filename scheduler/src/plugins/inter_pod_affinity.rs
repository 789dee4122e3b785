//! InterPodAffinity: required pod affinity and anti-affinity (the incoming
//! pod's and the existing pods' anti-affinity) filter; preferred terms of
//! both sides, and existing pods' required affinity (hard weight 1), score.

use std::collections::HashMap;
use std::sync::Arc;

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

type TopologyPair = (String, String);

/// The InterPodAffinity plugin.
#[derive(Debug)]
pub struct InterPodAffinity {
    /// Score weight of an existing pod's required affinity term that the
    /// incoming pod matches.
    pub hard_pod_affinity_weight: i64,
}

impl Default for InterPodAffinity {
    fn default() -> Self {
        InterPodAffinity {
            hard_pod_affinity_weight: HARD_POD_AFFINITY_WEIGHT,
        }
    }
}

#[derive(Default)]
struct FilterState {
    existing_anti_affinity: HashMap<TopologyPair, i64>,
    affinity: HashMap<TopologyPair, i64>,
    anti_affinity: HashMap<TopologyPair, i64>,
}

fn bump(m: &mut HashMap<TopologyPair, i64>, node: &NodeInfo, key: &str, by: i64) {
    if let Some(v) = node.labels.get(key) {
        *m.entry((key.to_string(), v.clone())).or_default() += by;
    }
}

fn process(
    scores: &mut HashMap<TopologyPair, i64>,
    terms: &[WeightedAffinityTerm],
    target: &PodInfo,
    ns: Option<&crate::selectors::Labels>,
    node: &NodeInfo,
    sign: i64,
) {
    for t in terms {
        if t.term.matches(target, ns) {
            bump(scores, node, &t.term.topology_key, i64::from(t.weight) * sign);
        }
    }
}

fn matches_all(terms: &[AffinityTerm], pod: &PodInfo, snapshot: &Snapshot) -> bool {
    let ns = snapshot.namespace_labels(&pod.namespace);
    !terms.is_empty() && terms.iter().all(|t| t.matches(pod, ns))
}

impl InterPodAffinity {
    fn satisfies_affinity(st: &FilterState, pod: &PodInfo, node: &NodeInfo, self_match: bool) -> bool {
        let mut pods_exist = true;
        for t in &pod.required_affinity {
            let Some(v) = node.labels.get(&t.topology_key) else {
                return false;
            };
            if st
                .affinity
                .get(&(t.topology_key.clone(), v.clone()))
                .copied()
                .unwrap_or(0)
                <= 0
            {
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
        let incoming_ns = snapshot.namespace_labels(&pod.namespace);
        let want_incoming = !(pod.required_affinity.is_empty() && pod.required_anti_affinity.is_empty());
        for n in &snapshot.nodes {
            if n.pods_with_required_anti_affinity > 0 {
                for existing in &n.pods {
                    for t in &existing.required_anti_affinity {
                        if t.matches(pod, incoming_ns) {
                            bump(&mut st.existing_anti_affinity, n, &t.topology_key, 1);
                        }
                    }
                }
            }
            if !want_incoming {
                continue;
            }
            for existing in &n.pods {
                if matches_all(&pod.required_affinity, existing, snapshot) {
                    for t in &pod.required_affinity {
                        bump(&mut st.affinity, n, &t.topology_key, 1);
                    }
                }
                let ns = snapshot.namespace_labels(&existing.namespace);
                for t in &pod.required_anti_affinity {
                    if t.matches(existing, ns) {
                        bump(&mut st.anti_affinity, n, &t.topology_key, 1);
                    }
                }
            }
        }
        st.affinity.retain(|_, v| *v > 0);
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
                && st
                    .anti_affinity
                    .get(&(t.topology_key.clone(), v.clone()))
                    .copied()
                    .unwrap_or(0)
                    > 0
            {
                return Status::with(Code::Unschedulable, ERR_REASON_ANTI_AFFINITY);
            }
        }
        for ((k, v), count) in &st.existing_anti_affinity {
            if *count > 0 && node.labels.get(k) == Some(v) {
                return Status::with(Code::Unschedulable, ERR_REASON_EXISTING_ANTI_AFFINITY);
            }
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
        let mut scores: HashMap<TopologyPair, i64> = HashMap::new();
        for n in &snapshot.nodes {
            if n.labels.is_empty() || (!has_preferred && n.pods_with_affinity == 0) {
                continue;
            }
            for existing in &n.pods {
                let existing_ns = snapshot.namespace_labels(&existing.namespace);
                process(&mut scores, &pod.preferred_affinity, existing, existing_ns, n, 1);
                process(&mut scores, &pod.preferred_anti_affinity, existing, existing_ns, n, -1);
                if !existing.has_affinity() {
                    continue;
                }
                if self.hard_pod_affinity_weight > 0 {
                    for t in &existing.required_affinity {
                        if t.matches(pod, incoming_ns) {
                            bump(&mut scores, n, &t.topology_key, self.hard_pod_affinity_weight);
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
        let Some(scores) = state.read::<HashMap<TopologyPair, i64>>(PRE_SCORE_KEY) else {
            return 0;
        };
        scores
            .iter()
            .filter(|((k, v), _)| node.labels.get(k) == Some(v))
            .map(|(_, s)| *s)
            .sum()
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
