//! NodePorts: a pod's host ports must be free on the node (same protocol
//! and port, on the same IP or either side on 0.0.0.0, conflict).

use crate::cache::Snapshot;
use crate::framework::{ClusterEvent, Code, CycleState, Plugin, Point, PreFilterResult, Status};
use crate::node_info::NodeInfo;
use crate::pod_info::{HostPort, PodInfo};

/// The NodePorts plugin.
#[derive(Debug, Default)]
pub struct NodePorts;

/// The plugin's name.
pub const NAME: &str = "NodePorts";
/// Filter rejection reason.
pub const ERR_REASON: &str = "node(s) didn't have free ports for the requested pod ports";

fn conflicts(want: &HostPort, used: &HostPort) -> bool {
    want.port == used.port
        && want.protocol == used.protocol
        && (want.ip == used.ip || want.ip == "0.0.0.0" || used.ip == "0.0.0.0")
}

impl Plugin for NodePorts {
    fn name(&self) -> &'static str {
        NAME
    }
    fn points(&self) -> &'static [Point] {
        &[Point::PreFilter, Point::Filter]
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[
            ClusterEvent::NodeAdd,
            ClusterEvent::AssignedPodDelete,
            ClusterEvent::UnscheduledPodUpdate,
        ]
    }
    fn pre_filter(&self, _state: &mut CycleState, pod: &PodInfo, _s: &Snapshot) -> (Status, PreFilterResult) {
        if pod.host_ports.is_empty() {
            (Status::skip(), None)
        } else {
            (Status::success(), None)
        }
    }
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let clash = pod
            .host_ports
            .iter()
            .any(|w| node.used_ports.iter().any(|u| conflicts(w, u)));
        if clash {
            Status::with(Code::Unschedulable, ERR_REASON)
        } else {
            Status::success()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::sync::Arc;

    use serde_json::{Value, json};

    use super::*;
    use crate::plugins::testing::{filter_all, node, pod, short, with_pods};

    fn ports(name: &str, ports: Value) -> crate::pod_info::PodInfo {
        pod(
            name,
            json!({}),
            json!({"containers": [{"name": "c", "image": "i", "ports": ports}]}),
        )
    }

    #[test]
    fn host_port_conflicts() {
        // Upstream's cases: same port/protocol conflicts; different protocol
        // or IP does not; 0.0.0.0 conflicts with every IP.
        let cases = [
            (
                json!([{"containerPort": 80, "hostPort": 8080}]),
                json!([{"containerPort": 80, "hostPort": 8080}]),
                false,
            ),
            (
                json!([{"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}]),
                json!([{"containerPort": 80, "hostPort": 8080}]),
                true,
            ),
            (
                json!([{"containerPort": 80, "hostPort": 8080, "hostIP": "127.0.0.1"}]),
                json!([{"containerPort": 80, "hostPort": 8080, "hostIP": "127.0.0.2"}]),
                true,
            ),
            (
                json!([{"containerPort": 80, "hostPort": 8080, "hostIP": "127.0.0.1"}]),
                json!([{"containerPort": 80, "hostPort": 8080}]),
                false,
            ),
            (
                json!([{"containerPort": 80}]),
                json!([{"containerPort": 80, "hostPort": 80}]),
                true,
            ),
        ];
        for (want, used, fits) in cases {
            let snap = Snapshot::from_nodes(vec![with_pods(
                node("a", Value::Null, Value::Null, json!({})),
                vec![ports("existing", used.clone())],
            )]);
            let got = filter_all(Arc::new(NodePorts), &ports("p", want.clone()), &snap);
            let expect = if fits { "" } else { ERR_REASON };
            assert_eq!(short(&got[0]), expect, "want {want} used {used}");
        }
    }
}
