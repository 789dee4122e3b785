//! PodTopologySpread: `spec.topologySpreadConstraints` (or, for pods with
//! none, the cluster defaults: hostname maxSkew 3 and zone maxSkew 5,
//! ScheduleAnyway, selecting the pod's Service/ReplicaSet/StatefulSet/RC
//! peers). DoNotSchedule constraints filter on the skew a placement would
//! create; ScheduleAnyway constraints score by matching pods per domain.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Node;

use super::match_counts::{MatchCounts, count_matching};
use super::node_affinity::required_node_affinity_matches;
use super::spread_tallies::{KeptTallies, Tallies};
use crate::cache::Snapshot;
use crate::framework::{ClusterEvent, Code, CycleState, MAX_NODE_SCORE, Plugin, Point, PreFilterResult, Status};
use crate::label_index::Candidates;
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;
use crate::selectors::{Selector, find_untolerated_taint};

/// The plugin's name.
pub const NAME: &str = "PodTopologySpread";
/// Filter reason when the skew would exceed maxSkew.
pub const ERR_REASON_CONSTRAINTS_NOT_MATCH: &str = "node(s) didn't match pod topology spread constraints";
/// Filter reason when the node lacks a constraint's topology key.
pub const ERR_REASON_NODE_LABEL_NOT_MATCH: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";
/// The hostname label.
pub const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";
/// The zone label.
pub const LABEL_ZONE: &str = "topology.kubernetes.io/zone";
const PRE_FILTER_KEY: &str = "PreFilterPodTopologySpread";
const PRE_SCORE_KEY: &str = "PreScorePodTopologySpread";

/// Gives the selector of the workloads (Services, ReplicaSets,
/// StatefulSets, ReplicationControllers) selecting a pod, for the default
/// constraints (upstream's `helper.DefaultSelector`); `None` when nothing
/// selects it.
pub trait WorkloadSelectors: Send + Sync {
    /// The combined selector of the pod's workloads.
    fn default_selector(&self, pod: &PodInfo) -> Option<Selector>;
}

/// No workloads known (tests, or a scheduler without the listers).
#[derive(Debug, Default)]
pub struct NoWorkloads;

impl WorkloadSelectors for NoWorkloads {
    fn default_selector(&self, _pod: &PodInfo) -> Option<Selector> {
        None
    }
}

/// A compiled constraint.
#[derive(Debug, Clone)]
pub(super) struct Constraint {
    pub max_skew: i64,
    pub topology_key: String,
    pub selector: Selector,
    pub min_domains: usize,
    pub honor_node_affinity: bool,
    pub honor_taints: bool,
}

impl Constraint {
    /// Whether `node` counts for this constraint (nodeAffinityPolicy and
    /// nodeTaintsPolicy).
    pub fn includes_node(&self, pod: &PodInfo, node: &Node, taints: &NodeInfo) -> bool {
        if self.honor_node_affinity && !required_node_affinity_matches(pod, node) {
            return false;
        }
        if self.honor_taints {
            let tolerations = pod
                .pod
                .spec
                .as_ref()
                .and_then(|s| s.tolerations.as_deref())
                .unwrap_or_default();
            if find_untolerated_taint(&taints.taints, tolerations, &["NoSchedule", "NoExecute"]).is_some() {
                return false;
            }
        }
        true
    }
}

/// A cluster-level default constraint (selector from the pod's workloads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultConstraint {
    pub max_skew: i64,
    pub topology_key: String,
    pub when_unsatisfiable: String,
}

/// The system defaults (`defaultingType: System`).
pub fn system_default_constraints() -> Vec<DefaultConstraint> {
    let make = |key: &str, skew| DefaultConstraint {
        max_skew: skew,
        topology_key: key.to_string(),
        when_unsatisfiable: "ScheduleAnyway".into(),
    };
    vec![make(LABEL_HOSTNAME, 3), make(LABEL_ZONE, 5)]
}

/// The PodTopologySpread plugin.
pub struct PodTopologySpread {
    workloads: Arc<dyn WorkloadSelectors>,
    defaults: Vec<DefaultConstraint>,
    /// True with `defaultingType: System` (nodes then need not carry every
    /// topology key to be scored).
    system_defaulted: bool,
    /// Matching pods per node, recounted only where nodes changed.
    counts: MatchCounts,
    /// PreFilter's tallies for recent pod shapes ([`shape`]).
    kept: Mutex<HashMap<String, KeptTallies>>,
}

/// Pod shapes whose PreFilter tallies are kept at most.
const KEPT_SHAPES: usize = 16;

/// What PreFilter's tallies depend on besides the nodes: the namespace,
/// the constraints' keys, selectors and policies, and what the policies
/// read from the pod (node selector and required node affinity,
/// tolerations).
fn shape(pod: &PodInfo, constraints: &[Constraint]) -> String {
    let mut key = pod.namespace.clone();
    for c in constraints {
        let _ = write!(
            key,
            "|{}|{}|{}|{:?}",
            c.topology_key, c.honor_node_affinity, c.honor_taints, c.selector
        );
    }
    let spec = pod.pod.spec.as_ref();
    if constraints.iter().any(|c| c.honor_node_affinity) {
        let required = spec
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref());
        if spec.and_then(|s| s.node_selector.as_ref()).is_some() || required.is_some() {
            let _ = write!(key, "|{:?}|{:?}", spec.and_then(|s| s.node_selector.as_ref()), required);
        }
    }
    if constraints.iter().any(|c| c.honor_taints) {
        let _ = write!(key, "|{:?}", spec.and_then(|s| s.tolerations.as_ref()));
    }
    key
}

impl std::fmt::Debug for PodTopologySpread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PodTopologySpread")
    }
}

impl PodTopologySpread {
    /// The plugin with the given workload lookup for default constraints.
    pub fn new(workloads: Arc<dyn WorkloadSelectors>) -> PodTopologySpread {
        PodTopologySpread {
            workloads,
            defaults: system_default_constraints(),
            system_defaulted: true,
            counts: MatchCounts::default(),
            kept: Mutex::default(),
        }
    }

    /// Applies `PodTopologySpreadArgs`: `defaultingType` (`System`, the
    /// default, or `List`) and `defaultConstraints` (used with `List`).
    pub fn with_args(
        mut self,
        defaulting_type: Option<&serde_json::Value>,
        constraints: Option<&serde_json::Value>,
    ) -> PodTopologySpread {
        if defaulting_type.and_then(|t| t.as_str()) == Some("List") {
            self.system_defaulted = false;
            self.defaults = constraints
                .and_then(|c| c.as_array())
                .into_iter()
                .flatten()
                .filter_map(|c| {
                    Some(DefaultConstraint {
                        max_skew: c.get("maxSkew")?.as_i64()?,
                        topology_key: c.get("topologyKey")?.as_str()?.to_string(),
                        when_unsatisfiable: c.get("whenUnsatisfiable")?.as_str()?.to_string(),
                    })
                })
                .collect();
        }
        self
    }

    /// The pod's constraints with `when` (DoNotSchedule or ScheduleAnyway),
    /// and whether they are the system defaults.
    pub(super) fn constraints(&self, pod: &PodInfo, when: &str) -> (Vec<Constraint>, bool) {
        let spec = pod.pod.spec.as_ref();
        let declared = spec
            .and_then(|s| s.topology_spread_constraints.as_deref())
            .unwrap_or_default();
        if declared.is_empty() {
            let wanted: Vec<&DefaultConstraint> =
                self.defaults.iter().filter(|d| d.when_unsatisfiable == when).collect();
            if wanted.is_empty() {
                return (Vec::new(), self.system_defaulted);
            }
            let Some(selector) = self.workloads.default_selector(pod) else {
                return (Vec::new(), self.system_defaulted);
            };
            let constraints = wanted
                .into_iter()
                .map(|d| Constraint {
                    max_skew: d.max_skew,
                    topology_key: d.topology_key.clone(),
                    selector: selector.clone(),
                    min_domains: 1,
                    honor_node_affinity: true,
                    honor_taints: false,
                })
                .collect();
            return (constraints, self.system_defaulted);
        }
        let constraints = declared
            .iter()
            .filter(|c| c.when_unsatisfiable == when)
            .map(|c| {
                let mut selector = Selector::from_label_selector(c.label_selector.as_ref());
                for key in c.match_label_keys.iter().flatten() {
                    if let Some(v) = pod.labels.get(key) {
                        selector = selector.with_equals(key, v);
                    }
                }
                Constraint {
                    max_skew: i64::from(c.max_skew),
                    topology_key: c.topology_key.clone(),
                    selector,
                    min_domains: c.min_domains.map(|m| m.max(1) as usize).unwrap_or(1),
                    honor_node_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
                    honor_taints: c.node_taints_policy.as_deref() == Some("Honor"),
                }
            })
            .collect();
        (constraints, false)
    }
}

fn has_all_keys(node: &NodeInfo, constraints: &[Constraint]) -> bool {
    constraints.iter().all(|c| node.labels.contains_key(&c.topology_key))
}

struct FilterState {
    constraints: Vec<Constraint>,
    /// Per constraint: 1 when the incoming pod matches its own selector.
    self_match: Vec<i64>,
    /// Matching pods per topology value and the smallest count.
    tallies: Arc<Tallies>,
}

struct ScoreState {
    constraints: Vec<Constraint>,
    ignored: HashSet<String>,
    counts: Vec<HashMap<String, i64>>,
    /// Per hostname constraint, when the label index narrowed it: the
    /// matching pods of the nodes that have any.
    host_counts: Vec<Option<HashMap<String, i64>>>,
    weights: Vec<f64>,
}

impl Plugin for PodTopologySpread {
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
            ClusterEvent::UnscheduledPodUpdate,
        ]
    }

    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, snapshot: &Snapshot) -> (Status, PreFilterResult) {
        let (constraints, _) = self.constraints(pod, "DoNotSchedule");
        if constraints.is_empty() {
            return (Status::skip(), None);
        }
        let key = shape(pod, &constraints);
        let taken = self.kept.lock().ok().and_then(|mut m| m.remove(&key));
        let mut kept = taken.unwrap_or_else(|| KeptTallies::new(&constraints));
        kept.update(&constraints, pod, snapshot);
        let tallies = kept.tallies.clone();
        if let Ok(mut m) = self.kept.lock() {
            if m.len() >= KEPT_SHAPES {
                m.clear();
            }
            m.insert(key, kept);
        }
        let self_match = constraints
            .iter()
            .map(|c| i64::from(c.selector.matches(&pod.labels)))
            .collect();
        state.write(
            PRE_FILTER_KEY,
            FilterState {
                constraints,
                self_match,
                tallies,
            },
        );
        (Status::success(), None)
    }

    fn filter(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(st) = state.read::<FilterState>(PRE_FILTER_KEY) else {
            return Status::success();
        };
        for (i, c) in st.constraints.iter().enumerate() {
            let Some(value) = node.labels.get(&c.topology_key) else {
                return Status::with(Code::UnschedulableAndUnresolvable, ERR_REASON_NODE_LABEL_NOT_MATCH);
            };
            let matched = st.tallies.domains[i].get(value.as_str()).map_or(0, |d| d.matched);
            if matched + st.self_match[i] - st.tallies.min_match[i] > c.max_skew {
                return Status::with(Code::Unschedulable, ERR_REASON_CONSTRAINTS_NOT_MATCH);
            }
        }
        Status::success()
    }

    fn pre_score(&self, state: &mut CycleState, pod: &PodInfo, nodes: &[Arc<NodeInfo>], snapshot: &Snapshot) -> Status {
        let (constraints, system_defaulted) = self.constraints(pod, "ScheduleAnyway");
        if constraints.is_empty() {
            return Status::skip();
        }
        let require_all = !system_defaulted;
        let mut ignored = HashSet::new();
        let mut counts: Vec<HashMap<String, i64>> = vec![HashMap::new(); constraints.len()];
        let mut host_domains = vec![0usize; constraints.len()];
        for n in nodes {
            if require_all && !has_all_keys(n, &constraints) {
                ignored.insert(n.name.clone());
                continue;
            }
            for (i, c) in constraints.iter().enumerate() {
                if c.topology_key == LABEL_HOSTNAME {
                    host_domains[i] += 1;
                } else if let Some(v) = n.labels.get(&c.topology_key) {
                    counts[i].entry(v.clone()).or_insert(0);
                }
            }
        }
        // Only the nodes that can hold matching pods are counted (the
        // label index narrows a Deployment's selector to a few nodes).
        let mut host_counts: Vec<Option<HashMap<String, i64>>> = vec![None; constraints.len()];
        for (i, c) in constraints.iter().enumerate() {
            let candidates = match snapshot.labels.candidates(&pod.namespace, &c.selector) {
                Candidates::All => None,
                Candidates::Nodes(names) => Some(names),
            };
            if c.topology_key == LABEL_HOSTNAME {
                // Score counts a node's pods itself unless narrowed here.
                host_counts[i] = candidates.map(|names| {
                    names
                        .into_iter()
                        .filter_map(|name| snapshot.get(name))
                        .map(|n| (n.name.clone(), count_matching(n, &c.selector, &pod.namespace)))
                        .filter(|(_, count)| *count > 0)
                        .collect()
                });
                continue;
            }
            let positions: Vec<usize> = match candidates {
                None => (0..snapshot.nodes.len()).collect(),
                Some(names) => names.into_iter().filter_map(|name| snapshot.position(name)).collect(),
            };
            let mut matching = self.counts.take(&pod.namespace, &c.selector);
            for pos in positions {
                let n = &snapshot.nodes[pos];
                let Some(node) = &n.node else { continue };
                if require_all && !has_all_keys(n, &constraints) {
                    continue;
                }
                if !c.includes_node(pod, node, n) {
                    continue;
                }
                let Some(v) = n.labels.get(&c.topology_key) else {
                    continue;
                };
                if let Some(slot) = counts[i].get_mut(v) {
                    *slot += matching.count(pos, n);
                }
            }
            self.counts.put(matching);
        }
        let weights = constraints
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let size = if c.topology_key == LABEL_HOSTNAME {
                    host_domains[i]
                } else {
                    counts[i].len()
                };
                ((size + 2) as f64).ln()
            })
            .collect();
        state.write(
            PRE_SCORE_KEY,
            ScoreState {
                constraints,
                ignored,
                counts,
                host_counts,
                weights,
            },
        );
        Status::success()
    }

    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(st) = state.read::<ScoreState>(PRE_SCORE_KEY) else {
            return 0;
        };
        if st.ignored.contains(&node.name) {
            return 0;
        }
        let mut score = 0f64;
        for (i, c) in st.constraints.iter().enumerate() {
            let Some(v) = node.labels.get(&c.topology_key) else {
                continue;
            };
            let count = if c.topology_key == LABEL_HOSTNAME {
                match &st.host_counts[i] {
                    Some(counts) => counts.get(&node.name).copied().unwrap_or(0),
                    None => count_matching(node, &c.selector, &pod.namespace),
                }
            } else {
                st.counts[i].get(v).copied().unwrap_or(0)
            };
            score += count as f64 * st.weights[i] + (c.max_skew - 1) as f64;
        }
        score.round() as i64
    }

    fn normalize_score(&self, state: &CycleState, _pod: &PodInfo, nodes: &[Arc<NodeInfo>], scores: &mut [i64]) {
        let Some(st) = state.read::<ScoreState>(PRE_SCORE_KEY) else {
            return;
        };
        let mut min = i64::MAX;
        let mut max = 0;
        for (n, s) in nodes.iter().zip(scores.iter()) {
            if st.ignored.contains(&n.name) {
                continue;
            }
            min = min.min(*s);
            max = max.max(*s);
        }
        for (n, s) in nodes.iter().zip(scores.iter_mut()) {
            if st.ignored.contains(&n.name) {
                *s = 0;
            } else if max == 0 {
                *s = MAX_NODE_SCORE;
            } else {
                *s = MAX_NODE_SCORE * (max + min - *s) / max;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use serde_json::{Value, json};

    use super::*;
    use crate::plugins::testing::{filter_all, node, pod, score_all, short, with_pods};

    fn plugin() -> Arc<PodTopologySpread> {
        Arc::new(PodTopologySpread::new(Arc::new(NoWorkloads)))
    }

    fn zoned(name: &str, zone: &str, pods: usize) -> NodeInfo {
        let pods = (0..pods)
            .map(|i| pod(&format!("{name}-{i}"), json!({"foo": ""}), json!({})))
            .collect();
        with_pods(node(name, json!({"zone": zone}), Value::Null, json!({})), pods)
    }

    fn spread(key: &str, skew: i32, when: &str) -> Value {
        json!({"maxSkew": skew, "topologyKey": key, "whenUnsatisfiable": when,
               "labelSelector": {"matchExpressions": [{"key": "foo", "operator": "Exists"}]}})
    }

    fn incoming(constraints: Value) -> PodInfo {
        pod(
            "p",
            json!({"foo": ""}),
            json!({"topologySpreadConstraints": constraints}),
        )
    }

    #[test]
    fn filter_zone_skew() {
        // Upstream's "pods spread across zones as 3/3, all nodes fit" then
        // "2/1/0/3": zone1 {a:2, b:1}, zone2 {x:0, y:3}; maxSkew 1 on zone.
        let snap = Snapshot::from_nodes(vec![
            zoned("a", "zone1", 2),
            zoned("b", "zone1", 1),
            zoned("x", "zone2", 0),
            zoned("y", "zone2", 3),
        ]);
        let got: Vec<String> = filter_all(plugin(), &incoming(json!([spread("zone", 1, "DoNotSchedule")])), &snap)
            .iter()
            .map(short)
            .collect();
        // zone1 has 3, zone2 has 3: placing one more anywhere gives skew 1.
        assert_eq!(got, ["", "", "", ""]);
        // Node-level spread, maxSkew 1: min is 0 (x), so only x fits (b
        // would reach 2).
        let got: Vec<String> = filter_all(
            plugin(),
            &incoming(json!([spread("kubernetes.io/hostname", 1, "DoNotSchedule")])),
            &snap,
        )
        .iter()
        .map(short)
        .collect();
        let no = ERR_REASON_CONSTRAINTS_NOT_MATCH;
        assert_eq!(got, [no, no, "", no]);
        // maxSkew 2 lets b in too.
        let got: Vec<String> = filter_all(
            plugin(),
            &incoming(json!([spread("kubernetes.io/hostname", 2, "DoNotSchedule")])),
            &snap,
        )
        .iter()
        .map(short)
        .collect();
        assert_eq!(got, [no, "", "", no]);
    }

    #[test]
    fn filter_missing_label_and_min_domains() {
        let snap = Snapshot::from_nodes(vec![
            zoned("a", "zone1", 1),
            with_pods(node("nolabel", json!({}), Value::Null, json!({})), vec![]),
        ]);
        let got: Vec<String> = filter_all(plugin(), &incoming(json!([spread("zone", 1, "DoNotSchedule")])), &snap)
            .iter()
            .map(short)
            .collect();
        assert_eq!(got, ["", ERR_REASON_NODE_LABEL_NOT_MATCH]);
        // minDomains 2 with one domain: the global minimum is 0, so zone1
        // (1 pod + self) is over maxSkew 1.
        let mut c = spread("zone", 1, "DoNotSchedule");
        c["minDomains"] = json!(2);
        let got = filter_all(plugin(), &incoming(json!([c])), &snap);
        assert_eq!(short(&got[0]), ERR_REASON_CONSTRAINTS_NOT_MATCH);
    }

    #[test]
    fn node_inclusion_policies() {
        // zone1: a (2 pods, labelled ssd); zone2: x (0 pods, tainted), y (1 pod).
        let tainted = |name: &str, zone: &str| {
            node(
                name,
                json!({"zone": zone}),
                Value::Null,
                json!({"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]}),
            )
        };
        let mut a = zoned("a", "zone1", 2);
        a.labels.insert("disk".into(), "ssd".into());
        let mut a_node = (**a.node.as_ref().unwrap()).clone();
        a_node
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("disk".into(), "ssd".into());
        a.node = Some(Arc::new(a_node));
        let snap = Snapshot::from_nodes(vec![a, tainted("x", "zone2"), zoned("y", "zone2", 1)]);
        let with = |extra: Value, spec_extra: Value| {
            let mut c = spread("zone", 1, "DoNotSchedule");
            for (k, v) in extra.as_object().unwrap() {
                c[k] = v.clone();
            }
            let mut spec = json!({"topologySpreadConstraints": [c]});
            for (k, v) in spec_extra.as_object().unwrap() {
                spec[k] = v.clone();
            }
            pod("p", json!({"foo": ""}), spec)
        };
        let statuses = |p: &PodInfo| -> Vec<String> { filter_all(plugin(), p, &snap).iter().map(short).collect() };
        let no = ERR_REASON_CONSTRAINTS_NOT_MATCH;
        // Default (affinity Honor, taints Ignore): zone1 2, zone2 1 -> only zone2 fits.
        assert_eq!(statuses(&with(json!({}), json!({}))), [no, "", ""]);
        // nodeSelector disk=ssd with affinity Honor: only zone1 counts, min 2,
        // so zone1 (2+1-2=1) fits; zone2 is not a counted domain (count 0).
        assert_eq!(
            statuses(&with(json!({}), json!({"nodeSelector": {"disk": "ssd"}}))),
            ["", "", ""]
        );
        // nodeTaintsPolicy Honor drops x (tainted) but y still makes zone2 count 1.
        assert_eq!(
            statuses(&with(json!({"nodeTaintsPolicy": "Honor"}), json!({}))),
            [no, "", ""]
        );
    }

    #[test]
    fn score_prefers_emptier_domains() {
        // One hostname constraint, 4 candidate nodes with 2/1/0/3 matching
        // pods: weight ln(4+2), raw score count*weight + (maxSkew-1),
        // normalized 100*(max+min-s)/max.
        let snap = Snapshot::from_nodes(vec![
            zoned("a", "zone1", 2),
            zoned("b", "zone1", 1),
            zoned("x", "zone2", 0),
            zoned("y", "zone2", 3),
        ]);
        let scores = score_all(
            plugin(),
            &incoming(json!([spread("kubernetes.io/hostname", 1, "ScheduleAnyway")])),
            &snap,
        );
        // raw: round(2*1.79)=4, round(1.79)=2, 0, round(5.38)=5 -> 100*(5-s)/5
        assert_eq!(scores, [20, 60, 100, 0]);
    }

    /// The selector of a Deployment's ReplicaSet: the pod's `app` and
    /// `pod-template-hash`.
    struct ReplicaSets;
    impl WorkloadSelectors for ReplicaSets {
        fn default_selector(&self, pod: &PodInfo) -> Option<Selector> {
            let mut s = Selector::everything();
            for k in ["app", "pod-template-hash"] {
                s = s.with_equals(k, pod.labels.get(k)?);
            }
            Some(s)
        }
    }

    #[test]
    fn default_constraint_scores_from_the_label_index_match_a_full_count() {
        use crate::cache::Cache;
        let mut cache = Cache::default();
        let mut snap = Snapshot::default();
        let labels = |app: &str, hash: &str| json!({"app": app, "pod-template-hash": hash});
        let place = |cache: &mut Cache, name: &str, ns: &str, l: Value, on: &str| {
            let mut p = pod(name, l, json!({})).to_pod();
            p.metadata.namespace = Some(ns.into());
            p.spec.as_mut().unwrap().node_name = Some(on.into());
            cache.assume_pod(Arc::new(PodInfo::new(p)), on);
        };
        let add_node = |cache: &mut Cache, name: &str, zone: Option<&str>| {
            let l = zone.map_or(json!({}), |z| json!({LABEL_ZONE: z}));
            cache.add_or_update_node(node(name, l, Value::Null, json!({})).node.unwrap());
        };
        let incoming = [
            pod("a", labels("a", "h1"), json!({})),
            pod("b", labels("b", "h2"), json!({})),
            pod("none-yet", labels("c", "h3"), json!({})),
            pod("affine", labels("a", "h1"), json!({"nodeSelector": {LABEL_ZONE: "z1"}})),
        ];
        let kept = Arc::new(PodTopologySpread::new(Arc::new(ReplicaSets)));
        let check = |snap: &Snapshot, step: &str| {
            assert!(snap.labels.is_complete());
            let mut unindexed = snap.clone();
            unindexed.labels = Arc::default();
            for p in &incoming {
                let fresh = score_all(Arc::new(PodTopologySpread::new(Arc::new(ReplicaSets))), p, &unindexed);
                assert_eq!(score_all(kept.clone(), p, snap), fresh, "{step}: {}", p.name);
            }
        };
        for (i, zone) in ["z1", "z1", "z2", "z3"].iter().enumerate() {
            add_node(&mut cache, &format!("n{i}"), Some(zone));
        }
        add_node(&mut cache, "nozone", None);
        cache.update_snapshot(&mut snap);
        check(&snap, "empty");
        place(&mut cache, "a1", "default", labels("a", "h1"), "n0");
        place(&mut cache, "a2", "default", labels("a", "h1"), "n0");
        place(&mut cache, "a3", "default", labels("a", "h1"), "n2");
        place(&mut cache, "old-a", "default", labels("a", "h0"), "n3");
        place(&mut cache, "other-ns", "other", labels("b", "h2"), "n1");
        place(&mut cache, "b1", "default", labels("b", "h2"), "nozone");
        cache.update_snapshot(&mut snap);
        check(&snap, "placed");
        cache.remove_pod("uid-a1");
        place(&mut cache, "b2", "default", labels("b", "h2"), "n3");
        add_node(&mut cache, "n2", Some("z1"));
        cache.update_snapshot(&mut snap);
        check(&snap, "moved and relabelled");
        cache.remove_node("n0");
        cache.update_snapshot(&mut snap);
        check(&snap, "node gone with its pods");
    }

    #[test]
    fn default_constraints_apply_only_with_a_workload_selector() {
        struct All;
        impl WorkloadSelectors for All {
            fn default_selector(&self, _pod: &PodInfo) -> Option<Selector> {
                Some(Selector::everything())
            }
        }
        let snap = Snapshot::from_nodes(vec![zoned("a", "zone1", 2), zoned("b", "zone1", 0)]);
        let p = pod("p", json!({"foo": ""}), json!({}));
        assert_eq!(score_all(plugin(), &p, &snap), [0, 0], "no selector: skipped");
        let with = Arc::new(PodTopologySpread::new(Arc::new(All)));
        let scores = score_all(with, &p, &snap);
        assert!(scores[1] > scores[0], "{scores:?}");
        // defaultingType List with a DoNotSchedule default filters too.
        let listed = Arc::new(PodTopologySpread::new(Arc::new(All)).with_args(
            Some(&json!("List")),
            Some(
                &json!([{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule"}]),
            ),
        ));
        let got: Vec<String> = filter_all(listed.clone(), &p, &snap).iter().map(short).collect();
        assert_eq!(got, [ERR_REASON_CONSTRAINTS_NOT_MATCH, ""]);
        assert_eq!(
            score_all(listed, &p, &snap),
            [0, 0],
            "no ScheduleAnyway defaults in the list"
        );
    }
}
