//! TaintToleration: a node's NoSchedule/NoExecute taints keep away pods
//! that do not tolerate them; PreferNoSchedule taints lower the score.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Toleration;

use crate::cache::Snapshot;
use crate::framework::{
    ClusterEvent, Code, CycleState, MAX_NODE_SCORE, Plugin, Point, Status, default_normalize_score,
};
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;
use crate::selectors::{find_untolerated_taint, tolerates};

/// The TaintToleration plugin.
#[derive(Debug, Default)]
pub struct TaintToleration;

/// The plugin's name.
pub const NAME: &str = "TaintToleration";
const PRE_SCORE_KEY: &str = "PreScoreTaintToleration";

fn tolerations(pod: &PodInfo) -> &[Toleration] {
    pod.pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or_default()
}

impl Plugin for TaintToleration {
    fn name(&self) -> &'static str {
        NAME
    }
    fn points(&self) -> &'static [Point] {
        &[Point::Filter, Point::PreScore, Point::Score]
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[
            ClusterEvent::NodeAdd,
            ClusterEvent::NodeUpdate,
            ClusterEvent::UnscheduledPodUpdate,
        ]
    }

    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        match find_untolerated_taint(&node.taints, tolerations(pod), &["NoSchedule", "NoExecute"]) {
            None => Status::success(),
            Some(t) => Status::with(
                Code::UnschedulableAndUnresolvable,
                format!(
                    "node(s) had untolerated taint {{{}: {}}}",
                    t.key,
                    t.value.as_deref().unwrap_or("")
                ),
            ),
        }
    }

    fn pre_score(&self, state: &mut CycleState, pod: &PodInfo, _nodes: &[Arc<NodeInfo>], _s: &Snapshot) -> Status {
        let prefer: Vec<Toleration> = tolerations(pod)
            .iter()
            .filter(|t| matches!(t.effect.as_deref(), None | Some("") | Some("PreferNoSchedule")))
            .cloned()
            .collect();
        state.write(PRE_SCORE_KEY, prefer);
        Status::success()
    }

    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> i64 {
        let tols: &[Toleration] = state
            .read::<Vec<Toleration>>(PRE_SCORE_KEY)
            .map(Vec::as_slice)
            .unwrap_or_default();
        node.taints
            .iter()
            .filter(|t| t.effect == "PreferNoSchedule" && !tols.iter().any(|tol| tolerates(tol, t)))
            .count() as i64
    }

    fn normalize_score(&self, _state: &CycleState, _pod: &PodInfo, _nodes: &[Arc<NodeInfo>], scores: &mut [i64]) {
        default_normalize_score(MAX_NODE_SCORE, true, scores);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use serde_json::{Value, json};

    use super::*;
    use crate::plugins::testing::{filter_all, node, pod, score_all, short};

    fn tainted(name: &str, taints: Value) -> NodeInfo {
        node(name, Value::Null, Value::Null, json!({"taints": taints}))
    }

    #[test]
    fn filter_cases() {
        let snap = Snapshot::from_nodes(vec![
            tainted(
                "a",
                json!([{"key": "dedicated", "value": "user1", "effect": "NoSchedule"}]),
            ),
            tainted(
                "b",
                json!([{"key": "dedicated", "value": "user1", "effect": "NoExecute"}]),
            ),
            tainted(
                "c",
                json!([{"key": "dedicated", "value": "user1", "effect": "PreferNoSchedule"}]),
            ),
            tainted("d", json!([])),
        ]);
        let none = pod("p", json!({}), json!({}));
        let got: Vec<String> = filter_all(Arc::new(TaintToleration), &none, &snap)
            .iter()
            .map(short)
            .collect();
        assert_eq!(
            got,
            [
                "node(s) had untolerated taint {dedicated: user1}",
                "node(s) had untolerated taint {dedicated: user1}",
                "",
                ""
            ]
        );
        let equal = pod(
            "p",
            json!({}),
            json!({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "user1", "effect": "NoSchedule"}]}),
        );
        let got: Vec<String> = filter_all(Arc::new(TaintToleration), &equal, &snap)
            .iter()
            .map(short)
            .collect();
        assert_eq!(got, ["", "node(s) had untolerated taint {dedicated: user1}", "", ""]);
        let other_value = pod(
            "p",
            json!({}),
            json!({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "user2", "effect": "NoSchedule"}]}),
        );
        assert!(!filter_all(Arc::new(TaintToleration), &other_value, &snap)[0].is_success());
    }

    #[test]
    fn score_prefers_fewer_intolerable_prefer_no_schedule_taints() {
        // Upstream's "the more intolerable taints a node has, the lower its score".
        let snap = Snapshot::from_nodes(vec![
            tainted("a", json!([])),
            tainted(
                "b",
                json!([{"key": "cpu-type", "value": "arm64", "effect": "PreferNoSchedule"}]),
            ),
            tainted(
                "c",
                json!([
                    {"key": "cpu-type", "value": "arm64", "effect": "PreferNoSchedule"},
                    {"key": "disk-type", "value": "ssd", "effect": "PreferNoSchedule"}
                ]),
            ),
        ]);
        let p = pod(
            "p",
            json!({}),
            json!({"tolerations": [{"key": "foo", "operator": "Equal", "value": "bar", "effect": "PreferNoSchedule"}]}),
        );
        assert_eq!(score_all(Arc::new(TaintToleration), &p, &snap), [100, 50, 0]);
        // A node whose taints are all tolerated scores as if untainted.
        let tolerant = pod(
            "p",
            json!({}),
            json!({"tolerations": [{"key": "cpu-type", "operator": "Equal", "value": "arm64", "effect": "PreferNoSchedule"}]}),
        );
        assert_eq!(score_all(Arc::new(TaintToleration), &tolerant, &snap), [100, 100, 0]);
    }
}
