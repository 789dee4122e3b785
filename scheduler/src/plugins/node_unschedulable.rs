//! NodeUnschedulable: cordoned nodes (`spec.unschedulable`) take only pods
//! tolerating `node.kubernetes.io/unschedulable:NoSchedule`.

use k8s_openapi::api::core::v1::Taint;

use crate::framework::{ClusterEvent, Code, CycleState, Plugin, Point, Status};
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;
use crate::selectors::tolerates;

/// The NodeUnschedulable plugin.
#[derive(Debug, Default)]
pub struct NodeUnschedulable;

/// The plugin's name.
pub const NAME: &str = "NodeUnschedulable";
/// Filter rejection reason.
pub const ERR_REASON: &str = "node(s) were unschedulable";

impl Plugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        NAME
    }
    fn points(&self) -> &'static [Point] {
        &[Point::Filter]
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[
            ClusterEvent::NodeAdd,
            ClusterEvent::NodeUpdate,
            ClusterEvent::UnscheduledPodUpdate,
        ]
    }
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if !node.unschedulable {
            return Status::success();
        }
        let taint = Taint {
            key: "node.kubernetes.io/unschedulable".into(),
            effect: "NoSchedule".into(),
            ..Taint::default()
        };
        let tolerated = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.as_ref())
            .is_some_and(|ts| ts.iter().any(|t| tolerates(t, &taint)));
        if tolerated {
            Status::success()
        } else {
            Status::with(Code::UnschedulableAndUnresolvable, ERR_REASON)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::sync::Arc;

    use serde_json::{Value, json};

    use super::*;
    use crate::cache::Snapshot;
    use crate::plugins::testing::{filter_all, node, pod, short};

    #[test]
    fn cordoned_nodes_need_the_toleration() {
        let snap = Snapshot::from_nodes(vec![
            node("a", Value::Null, Value::Null, json!({})),
            node("b", Value::Null, Value::Null, json!({"unschedulable": true})),
        ]);
        let plain = pod("p", json!({}), json!({}));
        let got: Vec<String> = filter_all(Arc::new(NodeUnschedulable), &plain, &snap)
            .iter()
            .map(short)
            .collect();
        assert_eq!(got, ["", ERR_REASON]);
        let tolerant = pod(
            "p",
            json!({}),
            json!({"tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]}),
        );
        let got: Vec<String> = filter_all(Arc::new(NodeUnschedulable), &tolerant, &snap)
            .iter()
            .map(short)
            .collect();
        assert_eq!(got, ["", ""]);
    }
}
