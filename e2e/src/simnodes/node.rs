//! The Node objects of simulated nodes, and their registration.

use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::{SimConfig, SimNode, State};

/// Annotation marking a node as simulated.
pub const SIMULATED_ANNOTATION: &str = "rkube.io/simulated-node";

/// The node's conditions as a healthy kubelet reports them, heartbeat now.
pub fn conditions(now: Timestamp, with_transition: bool) -> Value {
    let cond = |type_: &str, status: &str, reason: &str, message: &str| {
        let mut c = json!({"type": type_, "status": status, "reason": reason, "message": message,
                           "lastHeartbeatTime": now.to_string()});
        if with_transition {
            c["lastTransitionTime"] = json!(now.to_string());
        }
        c
    };
    json!([
        cond(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available"
        ),
        cond(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure"
        ),
        cond(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available"
        ),
        cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ])
}

/// The Node object of `n`.
pub fn node_object(cfg: &SimConfig, n: &SimNode) -> Result<Node> {
    let mut labels = json!({
        "kubernetes.io/hostname": n.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "type": "simulated",
    });
    if !cfg.zones.is_empty() {
        labels["topology.kubernetes.io/zone"] = json!(cfg.zones[n.index % cfg.zones.len()]);
    }
    if let Some(r) = &cfg.region {
        labels["topology.kubernetes.io/region"] = json!(r);
    }
    for (k, v) in &cfg.labels {
        labels[k] = json!(v);
    }
    let resources = json!({"cpu": cfg.cpu, "memory": cfg.memory, "pods": cfg.pods, "ephemeral-storage": "100Gi"});
    let now = Timestamp::now();
    let node = json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": n.name, "labels": labels, "annotations": {SIMULATED_ANNOTATION: "true", "node.alpha.kubernetes.io/ttl": "0"}},
        "spec": {"podCIDR": n.pod_cidr.to_string(), "podCIDRs": [n.pod_cidr.to_string()], "taints": cfg.taints},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": conditions(now, true),
            "addresses": [{"type": "InternalIP", "address": n.ip.to_string()}, {"type": "Hostname", "address": n.name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": format!("sim-{}", n.index), "systemUUID": format!("sim-{}", n.index),
                "bootID": format!("sim-{}", n.index), "kernelVersion": "6.8.0-sim", "osImage": "rkube simulated node",
                "containerRuntimeVersion": "sim://1.0.0", "kubeletVersion": "v1.36.0", "kubeProxyVersion": "",
                "operatingSystem": "linux", "architecture": "amd64"
            },
        },
    });
    serde_json::from_value(node).context("building the Node object")
}

/// Creates every node (updating labels, spec and status of existing ones),
/// `concurrency` at a time.
pub async fn register_all(client: &Client, state: &State) -> Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    let cfg = &state.config;
    futures::stream::iter(state.nodes.values())
        .map(|n| {
            let api = api.clone();
            async move {
                let node = node_object(cfg, n)?;
                match api.create(&PostParams::default(), &node).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(e)) if e.code == 409 => {
                        let body = json!({"metadata": {"labels": node.metadata.labels}, "spec": {"taints": node.spec.as_ref().and_then(|s| s.taints.clone())}});
                        api.patch(&n.name, &PatchParams::default(), &Patch::Merge(body)).await?;
                        let status = json!({"status": node.status});
                        api.patch_status(&n.name, &PatchParams::default(), &Patch::Merge(status)).await?;
                        Ok(())
                    }
                    Err(e) => Err(anyhow::Error::from(e).context(format!("creating node {}", n.name))),
                }
            }
        })
        .buffer_unordered(cfg.concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}
