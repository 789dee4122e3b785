//! NodeAffinity: `spec.nodeSelector` and required node affinity terms
//! filter; preferred terms score by the sum of matching weights.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, NodeAffinity as KNodeAffinity, PreferredSchedulingTerm};

use crate::cache::Snapshot;
use crate::framework::{
    ClusterEvent, Code, CycleState, MAX_NODE_SCORE, Plugin, Point, PreFilterResult, Status, default_normalize_score,
};
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;
use crate::selectors::{node_selector_term_matches, node_selector_terms_match};

/// The NodeAffinity plugin.
#[derive(Debug, Default)]
pub struct NodeAffinity;

/// The plugin's name.
pub const NAME: &str = "NodeAffinity";
/// Filter rejection reason.
pub const ERR_REASON_POD: &str = "node(s) didn't match Pod's node affinity/selector";

fn node_affinity(pod: &PodInfo) -> Option<&KNodeAffinity> {
    pod.pod.spec.as_ref()?.affinity.as_ref()?.node_affinity.as_ref()
}

/// True when `node` satisfies the pod's nodeSelector and required node
/// affinity (upstream's `GetRequiredNodeAffinity(pod).Match(node)`).
pub fn required_node_affinity_matches(pod: &PodInfo, node: &Node) -> bool {
    let spec = pod.pod.spec.as_ref();
    if let Some(sel) = spec.and_then(|s| s.node_selector.as_ref()) {
        let labels = node.metadata.labels.as_ref();
        if !sel.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v)) {
            return false;
        }
    }
    match node_affinity(pod).and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref()) {
        Some(required) => node_selector_terms_match(&required.node_selector_terms, node),
        None => true,
    }
}

fn preferred(pod: &PodInfo) -> &[PreferredSchedulingTerm] {
    node_affinity(pod)
        .and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_deref())
        .unwrap_or_default()
}

impl Plugin for NodeAffinity {
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
            ClusterEvent::UnscheduledPodUpdate,
        ]
    }

    fn pre_filter(&self, _state: &mut CycleState, pod: &PodInfo, _s: &Snapshot) -> (Status, PreFilterResult) {
        let spec = pod.pod.spec.as_ref();
        let has_selector = spec
            .and_then(|s| s.node_selector.as_ref())
            .is_some_and(|m| !m.is_empty());
        let has_required =
            node_affinity(pod).is_some_and(|a| a.required_during_scheduling_ignored_during_execution.is_some());
        if has_selector || has_required {
            (Status::success(), None)
        } else {
            (Status::skip(), None)
        }
    }

    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(n) = &node.node else {
            return Status::with(Code::UnschedulableAndUnresolvable, ERR_REASON_POD);
        };
        if required_node_affinity_matches(pod, n) {
            Status::success()
        } else {
            Status::with(Code::UnschedulableAndUnresolvable, ERR_REASON_POD)
        }
    }

    fn pre_score(&self, _state: &mut CycleState, pod: &PodInfo, _n: &[Arc<NodeInfo>], _s: &Snapshot) -> Status {
        if preferred(pod).is_empty() {
            Status::skip()
        } else {
            Status::success()
        }
    }

    fn score(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(n) = &node.node else { return 0 };
        preferred(pod)
            .iter()
            .filter(|t| t.weight != 0 && node_selector_term_matches(&t.preference, n))
            .map(|t| i64::from(t.weight))
            .sum()
    }

    fn normalize_score(&self, _state: &CycleState, _pod: &PodInfo, _nodes: &[Arc<NodeInfo>], scores: &mut [i64]) {
        default_normalize_score(MAX_NODE_SCORE, false, scores);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use serde_json::{Value, json};

    use super::*;
    use crate::plugins::testing::{filter_all, node, pod, score_all, short};

    fn labelled(name: &str, labels: Value) -> NodeInfo {
        node(name, labels, Value::Null, json!({}))
    }

    #[test]
    fn node_selector_and_required_terms() {
        let snap = Snapshot::from_nodes(vec![
            labelled("a", json!({"foo": "bar", "zone": "z1"})),
            labelled("b", json!({"foo": "baz"})),
            labelled("c", json!({})),
        ]);
        let check = |spec: Value, want: &[&str]| {
            let got: Vec<String> = filter_all(Arc::new(NodeAffinity), &pod("p", json!({}), spec.clone()), &snap)
                .iter()
                .map(short)
                .collect();
            assert_eq!(got, want, "{spec}");
        };
        let no = ERR_REASON_POD;
        check(json!({}), &["", "", ""]);
        check(json!({"nodeSelector": {"foo": "bar"}}), &["", no, no]);
        check(
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "foo", "operator": "In", "values": ["bar", "baz"]}]}
            ]}}}}),
            &["", "", no],
        );
        // Terms are ORed; expressions within a term are ANDed.
        check(
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "foo", "operator": "In", "values": ["bar"]}, {"key": "zone", "operator": "DoesNotExist"}]},
                {"matchExpressions": [{"key": "foo", "operator": "NotIn", "values": ["bar", "baz"]}]}
            ]}}}}),
            &[no, no, ""],
        );
        // nodeSelector and affinity must both hold.
        check(
            json!({"nodeSelector": {"foo": "baz"}, "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "foo", "operator": "Exists"}]}
            ]}}}}),
            &[no, "", no],
        );
        // An empty term list matches nothing.
        check(
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}}),
            &[no, no, no],
        );
    }

    #[test]
    fn preferred_terms_score_by_weight() {
        // Upstream's "all nodes matches the preferred scheduling requirements
        // of pod but with different priorities".
        let snap = Snapshot::from_nodes(vec![
            labelled("a", json!({"foo": "bar"})),
            labelled("b", json!({"foo": "bar", "key": "value"})),
            labelled("c", json!({"foo": "bar", "key": "value", "az": "az1"})),
        ]);
        let p = pod(
            "p",
            json!({}),
            json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 2, "preference": {"matchExpressions": [{"key": "foo", "operator": "In", "values": ["bar"]}]}},
                {"weight": 4, "preference": {"matchExpressions": [{"key": "key", "operator": "In", "values": ["value"]}]}},
                {"weight": 5, "preference": {"matchExpressions": [{"key": "az", "operator": "In", "values": ["az1"]}]}}
            ]}}}),
        );
        assert_eq!(score_all(Arc::new(NodeAffinity), &p, &snap), [18, 54, 100]);
    }
}
