//! The Nodes and Pods of the scheduler benchmark, shaped like upstream
//! scheduler_perf's templates (node-default, pod-default,
//! pod-with-pod-anti-affinity, pod-with-topology-spreading).

use clap::ValueEnum;
use serde_json::{Value, json};

/// Zones the nodes are spread over (label `topology.kubernetes.io/zone`).
pub const ZONES: usize = 10;

/// The pods' shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// scheduler_perf's pod-default: one pause container, 100m CPU and
    /// 500Mi memory requested.
    Basic,
    /// pod-default plus required anti-affinity to its own kind on
    /// `kubernetes.io/hostname`: one pod per node.
    AntiAffinity,
    /// pod-default plus a topology spread constraint over zones (maxSkew 5,
    /// DoNotSchedule).
    Spread,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Basic => "basic",
            Workload::AntiAffinity => "anti-affinity",
            Workload::Spread => "spread",
        }
    }
}

/// Node `sched-perf-<i>`: 4 CPUs, 32 GiB, 110 pods, Ready.
pub fn node(i: usize) -> Vec<u8> {
    let name = format!("sched-perf-{i}");
    let resources = json!({"cpu": "4", "memory": "32Gi", "pods": "110"});
    let body = json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "topology.kubernetes.io/zone": format!("zone-{}", i % ZONES),
            },
        },
        "spec": {},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            "phase": "Running",
        },
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Pending pod `pod-<i>` of `workload` in `namespace`.
pub fn pod(i: usize, workload: Workload, namespace: &str) -> Vec<u8> {
    let resources = json!({"cpu": "100m", "memory": "500Mi"});
    let mut spec = json!({
        "containers": [{
            "name": "pause",
            "image": "registry.k8s.io/pause:3.10.1",
            "ports": [{"containerPort": 80}],
            "resources": {"limits": resources, "requests": resources},
        }],
    });
    let mut labels = json!({});
    match workload {
        Workload::Basic => {}
        Workload::AntiAffinity => {
            labels = json!({"color": "green"});
            spec["affinity"] = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
                "labelSelector": {"matchLabels": {"color": "green"}},
                "topologyKey": "kubernetes.io/hostname",
                "namespaces": [namespace],
            }]}});
        }
        Workload::Spread => {
            labels = json!({"color": "blue"});
            spec["topologySpreadConstraints"] = json!([{
                "maxSkew": 5,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"color": "blue"}},
            }]);
        }
    }
    let body: Value = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": format!("pod-{i}"), "labels": labels},
        "spec": spec,
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use k8s_openapi::api::core::v1::{Node, Pod};

    #[test]
    fn nodes_and_pods_are_valid_objects() {
        let n: Node = serde_json::from_slice(&node(13)).unwrap();
        assert_eq!(n.metadata.name.as_deref(), Some("sched-perf-13"));
        let labels = n.metadata.labels.unwrap();
        assert_eq!(labels["topology.kubernetes.io/zone"], "zone-3");
        for w in [Workload::Basic, Workload::AntiAffinity, Workload::Spread] {
            let p: Pod = serde_json::from_slice(&pod(7, w, "ns")).unwrap();
            assert_eq!(p.metadata.name.as_deref(), Some("pod-7"));
            let spec = p.spec.unwrap();
            assert_eq!(spec.affinity.is_some(), w == Workload::AntiAffinity);
            assert_eq!(spec.topology_spread_constraints.is_some(), w == Workload::Spread);
        }
    }
}
