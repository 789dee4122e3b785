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
