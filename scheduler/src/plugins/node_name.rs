//! NodeName: a pod that names a node fits only that node.

use crate::framework::{ClusterEvent, Code, CycleState, Plugin, Point, Status};
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;

/// The NodeName plugin.
#[derive(Debug, Default)]
pub struct NodeName;

/// The plugin's name.
pub const NAME: &str = "NodeName";
/// Filter rejection reason.
pub const ERR_REASON: &str = "node(s) didn't match the requested node name";

impl Plugin for NodeName {
    fn name(&self) -> &'static str {
        NAME
    }
    fn points(&self) -> &'static [Point] {
        &[Point::Filter]
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[ClusterEvent::NodeAdd]
    }
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        match pod.node_name() {
            Some(n) if n != node.name => Status::with(Code::UnschedulableAndUnresolvable, ERR_REASON),
            _ => Status::success(),
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
    fn only_the_named_node_fits() {
        let snap = Snapshot::from_nodes(vec![
            node("a", Value::Null, Value::Null, json!({})),
            node("b", Value::Null, Value::Null, json!({})),
        ]);
        // Upstream's cases: a pod naming "b" fits b only, and preemption
        // cannot make a fit (UnschedulableAndUnresolvable).
        let named = pod("p", json!({}), json!({"nodeName": "b"}));
        let got = filter_all(Arc::new(NodeName), &named, &snap);
        assert_eq!(got.iter().map(short).collect::<Vec<_>>(), [ERR_REASON, ""]);
        assert_eq!(got[0].code, Code::UnschedulableAndUnresolvable);
        assert_eq!(got[0].message(), "node(s) didn't match the requested node name");
        assert_eq!(got[1].code, Code::Success);
        // A pod naming no node fits everywhere.
        let any = pod("q", json!({}), json!({}));
        let got = filter_all(Arc::new(NodeName), &any, &snap);
        assert!(got.iter().all(Status::is_success), "{got:?}");
    }
}
