//! Builders for plugin tests: pods and nodes from JSON fragments.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{Value, json};

use crate::cache::Snapshot;
use crate::framework::{CycleState, Framework, Plugin, Status};
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;

/// A pod in namespace `default` named `name` with `spec` (containers
/// default to one without requests) and `labels`.
pub fn pod(name: &str, labels: Value, spec: Value) -> PodInfo {
    let mut spec = spec;
    if spec.get("containers").is_none() {
        spec["containers"] = json!([{"name": "c", "image": "busybox"}]);
    }
    let p: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "labels": labels},
        "spec": spec,
    }))
    .expect("pod json");
    PodInfo::new(p)
}

/// A container with cpu/memory requests.
pub fn container(cpu: &str, mem: &str) -> Value {
    json!({"name": "c", "image": "busybox", "resources": {"requests": {"cpu": cpu, "memory": mem}}})
}

/// A node with labels, allocatable and spec.
pub fn node(name: &str, labels: Value, allocatable: Value, spec: Value) -> NodeInfo {
    let mut labels = labels;
    if labels.is_null() {
        labels = json!({});
    }
    labels["kubernetes.io/hostname"] = json!(name);
    let mut alloc = allocatable;
    if alloc.is_null() {
        alloc = json!({"cpu": "4", "memory": "8Gi", "pods": "110"});
    }
    let n: Node = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
        "status": {"allocatable": alloc, "capacity": alloc},
    }))
    .expect("node json");
    NodeInfo::new(Arc::new(n))
}

/// `node` with pods placed on it.
pub fn with_pods(mut n: NodeInfo, pods: Vec<PodInfo>) -> NodeInfo {
    for p in pods {
        n.add_pod(Arc::new(p));
    }
    n
}

/// Runs PreFilter then Filter of `plugin` on every node; the statuses in
/// node order (a PreFilter rejection is returned for every node).
pub fn filter_all(plugin: Arc<dyn Plugin>, pod: &PodInfo, snapshot: &Snapshot) -> Vec<Status> {
    let fw = Framework::new("default-scheduler", vec![(plugin, 1)]);
    let mut state = CycleState::default();
    let (s, _) = fw.run_pre_filter(&mut state, pod, snapshot);
    if !s.is_success() {
        return snapshot.nodes.iter().map(|_| s.clone()).collect();
    }
    snapshot.nodes.iter().map(|n| fw.run_filter(&state, pod, n)).collect()
}

/// Runs PreScore, Score and NormalizeScore of `plugin` (weight 1) on every
/// node of the snapshot.
pub fn score_all(plugin: Arc<dyn Plugin>, pod: &PodInfo, snapshot: &Snapshot) -> Vec<i64> {
    let fw = Framework::new("default-scheduler", vec![(plugin, 1)]);
    let mut state = CycleState::default();
    fw.run_score(&mut state, pod, &snapshot.nodes, snapshot)
}

/// Short form of a status for assertions: `""` for success, else the
/// reasons joined.
pub fn short(s: &Status) -> String {
    if s.is_success() { String::new() } else { s.message() }
}
