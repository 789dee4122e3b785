//! NodeResourcesFit: the pod's requests must fit the node's allocatable
//! minus what its pods request (and one more pod must be allowed); the
//! score follows the configured strategy (LeastAllocated by default,
//! MostAllocated, RequestedToCapacityRatio) over the configured resources
//! (cpu and memory, weight 1 each, by default).

use std::sync::Arc;

use crate::cache::Snapshot;
use crate::framework::{ClusterEvent, Code, CycleState, MAX_NODE_SCORE, Plugin, Point, PreFilterResult, Status};
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;

/// The plugin's name.
pub const NAME: &str = "NodeResourcesFit";

/// How nodes are scored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ScoringStrategy {
    /// Favor nodes with more free resources (spreading).
    #[default]
    LeastAllocated,
    /// Favor nodes with fewer free resources (bin packing).
    MostAllocated,
    /// A piecewise-linear function of utilization (0..=100) to score
    /// (0..=10, scaled to 0..=100), as `(utilization, score)` points.
    RequestedToCapacityRatio(Vec<(i64, i64)>),
}

/// The NodeResourcesFit plugin.
#[derive(Debug)]
pub struct NodeResourcesFit {
    pub strategy: ScoringStrategy,
    /// Scored resources and weights.
    pub resources: Vec<(String, i64)>,
}

impl Default for NodeResourcesFit {
    fn default() -> Self {
        NodeResourcesFit {
            strategy: ScoringStrategy::LeastAllocated,
            resources: SCORED_RESOURCES.iter().map(|(r, w)| (r.to_string(), *w)).collect(),
        }
    }
}

impl NodeResourcesFit {
    /// From `NodeResourcesFitArgs.scoringStrategy` (`type`, `resources`,
    /// `requestedToCapacityRatio.shape`); defaults for what is missing.
    pub fn from_args(scoring_strategy: Option<&serde_json::Value>) -> NodeResourcesFit {
        let mut fit = NodeResourcesFit::default();
        let Some(ss) = scoring_strategy else { return fit };
        if let Some(rs) = ss.get("resources").and_then(|r| r.as_array()) {
            fit.resources = rs
                .iter()
                .filter_map(|r| Some((r.get("name")?.as_str()?.to_string(), r.get("weight")?.as_i64()?)))
                .collect();
        }
        fit.strategy = match ss.get("type").and_then(|t| t.as_str()) {
            Some("MostAllocated") => ScoringStrategy::MostAllocated,
            Some("RequestedToCapacityRatio") => {
                let shape = ss
                    .pointer("/requestedToCapacityRatio/shape")
                    .and_then(|s| s.as_array())
                    .map(|pts| {
                        pts.iter()
                            .filter_map(|p| Some((p.get("utilization")?.as_i64()?, p.get("score")?.as_i64()?)))
                            .collect()
                    })
                    .unwrap_or_else(|| vec![(0, 10), (100, 0)]);
                ScoringStrategy::RequestedToCapacityRatio(shape)
            }
            _ => ScoringStrategy::LeastAllocated,
        };
        fit
    }
}

/// The shape function of RequestedToCapacityRatio at `utilization`
/// (scores already scaled to 0..=100).
fn shape_score(shape: &[(i64, i64)], utilization: i64) -> i64 {
    let scale = MAX_NODE_SCORE / 10;
    let Some(first) = shape.first() else { return 0 };
    if utilization <= first.0 {
        return first.1 * scale;
    }
    for w in shape.windows(2) {
        let ((u0, s0), (u1, s1)) = (w[0], w[1]);
        if utilization <= u1 {
            let (s0, s1) = (s0 * scale, s1 * scale);
            return s0 + (s1 - s0) * (utilization - u0) / (u1 - u0).max(1);
        }
    }
    shape.last().map(|l| l.1 * scale).unwrap_or(0)
}

/// The resources scored, with weights.
pub const SCORED_RESOURCES: [(&str, i64); 2] = [("cpu", 1), ("memory", 1)];

/// Reasons the pod does not fit, and whether any request exceeds the
/// node's allocatable outright (so preemption cannot help).
pub fn insufficient_resources(pod: &PodInfo, node: &NodeInfo) -> (Vec<String>, bool) {
    let mut reasons = Vec::new();
    let mut unresolvable = false;
    let alloc = &node.allocatable;
    let used = &node.requested;
    let req = &pod.requests;
    if node.pods.len() as i64 + 1 > alloc.allowed_pod_number {
        reasons.push("Too many pods".to_string());
    }
    if req.is_zero() {
        return (reasons, unresolvable);
    }
    let mut check = |name: &str, want: i64, have: i64, in_use: i64| {
        if want > 0 && want > have - in_use {
            reasons.push(format!("Insufficient {name}"));
            unresolvable |= want > have;
        }
    };
    check("cpu", req.milli_cpu, alloc.milli_cpu, used.milli_cpu);
    check("memory", req.memory, alloc.memory, used.memory);
    check(
        "ephemeral-storage",
        req.ephemeral_storage,
        alloc.ephemeral_storage,
        used.ephemeral_storage,
    );
    for (name, want) in &req.scalar {
        check(name, *want, alloc.get(name), used.get(name));
    }
    (reasons, unresolvable)
}

/// `requested` and `allocatable` of a resource once the pod is added,
/// with scoring defaults (`useRequested` false) or actual requests.
pub fn requested_with_pod(pod: &PodInfo, node: &NodeInfo, resource: &str, use_requested: bool) -> (i64, i64) {
    let (node_req, pod_req) = if use_requested {
        (node.requested.get(resource), pod.requests.get(resource))
    } else {
        (
            node.non_zero_requested.get(resource),
            pod.non_zero_requests.get(resource),
        )
    };
    (node_req + pod_req, node.allocatable.get(resource))
}

impl Plugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        NAME
    }
    fn points(&self) -> &'static [Point] {
        &[Point::PreFilter, Point::Filter, Point::Score]
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[
            ClusterEvent::NodeAdd,
            ClusterEvent::NodeUpdate,
            ClusterEvent::AssignedPodDelete,
            ClusterEvent::UnscheduledPodUpdate,
        ]
    }
    fn pre_filter(&self, _state: &mut CycleState, _pod: &PodInfo, _s: &Snapshot) -> (Status, PreFilterResult) {
        (Status::success(), None)
    }

    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let (reasons, unresolvable) = insufficient_resources(pod, node);
        if reasons.is_empty() {
            Status::success()
        } else if unresolvable {
            Status::new(Code::UnschedulableAndUnresolvable, reasons)
        } else {
            Status::new(Code::Unschedulable, reasons)
        }
    }

    fn score(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let mut total = 0;
        let mut weights = 0;
        for (resource, weight) in &self.resources {
            let scalar = !matches!(resource.as_str(), "cpu" | "memory" | "ephemeral-storage");
            if scalar && pod.requests.get(resource) == 0 {
                continue;
            }
            let (requested, allocatable) = requested_with_pod(pod, node, resource, false);
            if allocatable == 0 {
                continue;
            }
            let weight = *weight;
            let s = match &self.strategy {
                ScoringStrategy::LeastAllocated => {
                    if requested > allocatable {
                        0
                    } else {
                        (allocatable - requested) * MAX_NODE_SCORE / allocatable
                    }
                }
                ScoringStrategy::MostAllocated => requested.min(allocatable) * MAX_NODE_SCORE / allocatable,
                ScoringStrategy::RequestedToCapacityRatio(shape) => {
                    let utilization = if requested > allocatable {
                        100
                    } else {
                        requested * 100 / allocatable
                    };
                    shape_score(shape, utilization)
                }
            };
            total += s * weight;
            weights += weight;
        }
        match (&self.strategy, weights) {
            (_, 0) => 0,
            (ScoringStrategy::RequestedToCapacityRatio(_), w) => (total as f64 / w as f64).round() as i64,
            (_, w) => total / w,
        }
    }
}

/// NodeResourcesBalancedAllocation: favors nodes where cpu and memory would
/// be used in equal fractions (score = (1 - std dev of fractions) * 100);
/// skipped for pods requesting nothing.
#[derive(Debug, Default)]
pub struct BalancedAllocation;

/// The balanced-allocation plugin's name.
pub const BALANCED_NAME: &str = "NodeResourcesBalancedAllocation";

impl Plugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        BALANCED_NAME
    }
    fn points(&self) -> &'static [Point] {
        &[Point::PreScore, Point::Score]
    }
    fn pre_score(&self, _state: &mut CycleState, pod: &PodInfo, _n: &[Arc<NodeInfo>], _s: &Snapshot) -> Status {
        if SCORED_RESOURCES.iter().all(|(r, _)| pod.requests.get(r) == 0) {
            Status::skip()
        } else {
            Status::success()
        }
    }
    fn score(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let fractions: Vec<f64> = SCORED_RESOURCES
            .iter()
            .filter_map(|(r, _)| {
                let (requested, allocatable) = requested_with_pod(pod, node, r, true);
                (allocatable != 0).then(|| (requested as f64 / allocatable as f64).min(1.0))
            })
            .collect();
        let std = match fractions.len() {
            0 | 1 => 0.0,
            2 => ((fractions[0] - fractions[1]) / 2.0).abs(),
            n => {
                let mean = fractions.iter().sum::<f64>() / n as f64;
                (fractions.iter().map(|f| (f - mean) * (f - mean)).sum::<f64>() / n as f64).sqrt()
            }
        };
        ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use serde_json::{Value, json};

    use super::*;
    use crate::plugins::testing::{container, filter_all, node, pod, score_all, short, with_pods};

    fn sized(name: &str, cpu: &str, mem: &str, pods: &str) -> NodeInfo {
        node(
            name,
            Value::Null,
            json!({"cpu": cpu, "memory": mem, "pods": pods}),
            json!({}),
        )
    }

    fn requesting(name: &str, cpu: &str, mem: &str) -> PodInfo {
        pod(name, json!({}), json!({"containers": [container(cpu, mem)]}))
    }

    #[test]
    fn fit_cases() {
        // Node: 10 cpu, 20 bytes of memory, 32 pods (upstream's
        // makeAllocatableResources(10, 20, 32, ...)), with 5 cpu/19 used.
        let base = || with_pods(sized("n", "10", "20", "32"), vec![requesting("used", "5", "19")]);
        let check = |p: PodInfo, n: NodeInfo, want: &str| {
            let snap = Snapshot::from_nodes(vec![n]);
            let got = filter_all(Arc::new(NodeResourcesFit::default()), &p, &snap);
            assert_eq!(short(&got[0]), want, "{}", p.name);
        };
        check(requesting("no-resources", "0", "0"), base(), "");
        check(requesting("fits", "1", "1"), base(), "");
        check(requesting("too-much-cpu", "6", "1"), base(), "Insufficient cpu");
        check(
            requesting("too-much-both", "6", "2"),
            base(),
            "Insufficient cpu, Insufficient memory",
        );
        // Init containers: the max, not the sum.
        let init = pod(
            "init",
            json!({}),
            json!({"containers": [container("1", "1")], "initContainers": [container("3", "1")]}),
        );
        check(init, base(), "");
        let big_init = pod(
            "big-init",
            json!({}),
            json!({"containers": [container("1", "1")], "initContainers": [container("6", "1")]}),
        );
        check(big_init, base(), "Insufficient cpu");
        // Overhead counts.
        let overhead = pod(
            "overhead",
            json!({}),
            json!({"containers": [container("1", "1")], "overhead": {"cpu": "5"}}),
        );
        check(overhead, base(), "Insufficient cpu");
        // Pod count.
        let full = with_pods(sized("n", "10", "20", "1"), vec![requesting("used", "0", "0")]);
        check(requesting("one-more", "0", "0"), full, "Too many pods");
    }

    #[test]
    fn asking_more_than_allocatable_is_unresolvable() {
        let snap = Snapshot::from_nodes(vec![sized("n", "2", "4Gi", "110")]);
        let got = filter_all(
            Arc::new(NodeResourcesFit::default()),
            &requesting("huge", "3", "1Gi"),
            &snap,
        );
        assert_eq!(got[0].code, Code::UnschedulableAndUnresolvable);
        let with_used = Snapshot::from_nodes(vec![with_pods(
            sized("n", "2", "4Gi", "110"),
            vec![requesting("u", "1500m", "0")],
        )]);
        let got = filter_all(
            Arc::new(NodeResourcesFit::default()),
            &requesting("p", "1", "1Gi"),
            &with_used,
        );
        assert_eq!(got[0].code, Code::Unschedulable);
    }

    #[test]
    fn least_and_most_allocated_scores() {
        // Upstream's "nothing scheduled, resources requested, differently
        // sized nodes": node1 4000m/10000, node2 6000m/10000; pod 3000m/5000.
        let snap = Snapshot::from_nodes(vec![sized("a", "4", "10000", "110"), sized("b", "6", "10000", "110")]);
        let p = requesting("p", "3", "5000");
        // cpu (4000-3000)*100/4000 = 25, mem 50 -> 37; cpu 50, mem 50 -> 50
        assert_eq!(score_all(Arc::new(NodeResourcesFit::default()), &p, &snap), [37, 50]);
        let most = NodeResourcesFit {
            strategy: ScoringStrategy::MostAllocated,
            ..NodeResourcesFit::default()
        };
        // cpu 75, mem 50 -> 62; cpu 50, mem 50 -> 50
        assert_eq!(score_all(Arc::new(most), &p, &snap), [62, 50]);
        // Pods without requests count 100m / 200Mi.
        let snap = Snapshot::from_nodes(vec![sized("a", "1", "400Mi", "110")]);
        assert_eq!(
            score_all(
                Arc::new(NodeResourcesFit::default()),
                &pod("e", json!({}), json!({})),
                &snap
            ),
            [70]
        );
    }

    #[test]
    fn requested_to_capacity_ratio_follows_the_shape() {
        // Bin packing shape: 0% -> 0, 100% -> 10 (scaled to 100).
        let fit = NodeResourcesFit::from_args(Some(&json!({
            "type": "RequestedToCapacityRatio",
            "resources": [{"name": "cpu", "weight": 1}, {"name": "memory", "weight": 1}],
            "requestedToCapacityRatio": {"shape": [{"utilization": 0, "score": 0}, {"utilization": 100, "score": 10}]},
        })));
        let snap = Snapshot::from_nodes(vec![sized("a", "4", "10000", "110"), sized("b", "6", "10000", "110")]);
        // a: cpu 75%, mem 50% -> 62.5 -> 63; b: 50%, 50% -> 50
        assert_eq!(score_all(Arc::new(fit), &requesting("p", "3", "5000"), &snap), [63, 50]);
        assert_eq!(shape_score(&[(0, 10), (100, 0)], 30), 70);
        assert_eq!(shape_score(&[(20, 10), (80, 0)], 10), 100);
        assert_eq!(shape_score(&[(20, 10), (80, 0)], 90), 0);
        // Resource weights: only cpu, weight 3.
        let cpu_only = NodeResourcesFit::from_args(Some(
            &json!({"type": "LeastAllocated", "resources": [{"name": "cpu", "weight": 3}]}),
        ));
        assert_eq!(
            score_all(Arc::new(cpu_only), &requesting("p", "3", "5000"), &snap),
            [25, 50]
        );
    }

    #[test]
    fn balanced_allocation_scores() {
        // Upstream's "nothing scheduled, resources requested, differently
        // sized nodes" for balanced allocation: cpu 3000/4000, mem 5000/10000
        // -> std 0.125 -> 87; cpu 3000/6000, mem 5000/10000 -> 100.
        let snap = Snapshot::from_nodes(vec![sized("a", "4", "10000", "110"), sized("b", "6", "10000", "110")]);
        assert_eq!(
            score_all(Arc::new(BalancedAllocation), &requesting("p", "3", "5000"), &snap),
            [87, 100]
        );
        // Best-effort pods are not scored by it.
        assert_eq!(
            score_all(Arc::new(BalancedAllocation), &pod("e", json!({}), json!({})), &snap),
            [0, 0]
        );
    }
}
