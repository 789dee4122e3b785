//! The Nodes and Pods of the scheduler benchmark, shaped like upstream
//! scheduler_perf's templates (node-default, pod-default,
//! pod-with-pod-anti-affinity, pod-with-topology-spreading), and pods of
//! ReplicaSets shaped like the cluster scale run's Deployments.

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
    /// pod-default owned by a ReplicaSet as a Deployment makes it (labels
    /// `app` and `pod-template-hash`, the ReplicaSet selecting both),
    /// [`PODS_PER_REPLICA_SET`] pods per ReplicaSet and so as many
    /// selectors as ReplicaSets: the system default spread constraints
    /// apply, as in the cluster scale run.
    Deploy,
}

/// Pods of each ReplicaSet with [`Workload::Deploy`].
pub const PODS_PER_REPLICA_SET: usize = 10;

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Basic => "basic",
            Workload::AntiAffinity => "anti-affinity",
            Workload::Spread => "spread",
            Workload::Deploy => "deploy",
        }
    }

    /// The pod's name: `pod-<i>`, zero-padded for [`Workload::Deploy`] so
    /// that name order (the order a list returns them, hence the queue's)
    /// is creation order and a ReplicaSet's pods come one after another,
    /// as they do when a Deployment is scaled up.
    pub fn pod_name(self, i: usize) -> String {
        match self {
            Workload::Deploy => format!("pod-{i:06}"),
            _ => format!("pod-{i}"),
        }
    }
}

/// The `pod-template-hash` of ReplicaSet `rs`: ten hex digits, spread like
/// real hashes (so selectors do not share long prefixes).
pub fn template_hash(rs: usize) -> String {
    let mut x = (rs as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    format!("{:010x}", (x ^ (x >> 31)) & 0xff_ffff_ffff)
}

/// Labels of ReplicaSet `rs`'s pods (also its selector).
fn replica_set_labels(rs: usize) -> Value {
    json!({"app": format!("d-{rs}"), "pod-template-hash": template_hash(rs)})
}

/// Name of ReplicaSet `rs`: `d-<rs>-<hash>`, as a Deployment names it.
pub fn replica_set_name(rs: usize) -> String {
    format!("d-{rs}-{}", template_hash(rs))
}

/// ReplicaSet `rs` (its pods are created by the benchmark; no controller
/// runs).
pub fn replica_set(rs: usize) -> Vec<u8> {
    let labels = replica_set_labels(rs);
    let body = json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": replica_set_name(rs), "labels": labels},
        "spec": {
            "replicas": PODS_PER_REPLICA_SET,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10.1"}]},
            },
        },
    });
    serde_json::to_vec(&body).unwrap_or_default()
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

/// Pending pod `pod-<i>` of `workload` in `namespace`; with
/// [`Workload::Deploy`], `owner_uid` gives the UID of ReplicaSet
/// `i / PODS_PER_REPLICA_SET` for the owner reference.
pub fn pod(i: usize, workload: Workload, namespace: &str, owner_uid: Option<&str>) -> Vec<u8> {
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
    let mut owners = Value::Null;
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
        Workload::Deploy => {
            let rs = i / PODS_PER_REPLICA_SET;
            labels = replica_set_labels(rs);
            owners = json!([{
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": replica_set_name(rs),
                "uid": owner_uid.unwrap_or_default(),
                "controller": true,
                "blockOwnerDeletion": true,
            }]);
        }
    }
    let mut metadata = json!({"name": workload.pod_name(i), "labels": labels});
    if !owners.is_null() {
        metadata["ownerReferences"] = owners;
    }
    let body: Value = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
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
            let p: Pod = serde_json::from_slice(&pod(7, w, "ns", None)).unwrap();
            assert_eq!(p.metadata.name.as_deref(), Some("pod-7"));
            let spec = p.spec.unwrap();
            assert_eq!(spec.affinity.is_some(), w == Workload::AntiAffinity);
            assert_eq!(spec.topology_spread_constraints.is_some(), w == Workload::Spread);
        }
    }

    #[test]
    fn deploy_pods_are_selected_by_their_replica_set_only() {
        use k8s_openapi::api::apps::v1::ReplicaSet;
        let rs: ReplicaSet = serde_json::from_slice(&replica_set(3)).unwrap();
        assert_eq!(rs.metadata.name.as_deref(), Some(replica_set_name(3).as_str()));
        let selector = rs.spec.unwrap().selector.match_labels.unwrap();
        let p: Pod = serde_json::from_slice(&pod(35, Workload::Deploy, "ns", Some("u-3"))).unwrap();
        assert_eq!(p.metadata.name.as_deref(), Some("pod-000035"));
        assert_eq!(p.metadata.labels.as_ref(), Some(&selector));
        let owner = &p.metadata.owner_references.unwrap()[0];
        assert_eq!(
            (owner.name.as_str(), owner.uid.as_str()),
            (replica_set_name(3).as_str(), "u-3")
        );
        // The next ReplicaSet selects other pods.
        let next: Pod = serde_json::from_slice(&pod(40, Workload::Deploy, "ns", Some("u-4"))).unwrap();
        assert_ne!(next.metadata.labels.as_ref(), Some(&selector));
        assert_ne!(template_hash(3), template_hash(4));
        assert_eq!(template_hash(3).len(), 10);
    }
}
