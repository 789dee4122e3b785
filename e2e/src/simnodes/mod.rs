//! Simulated nodes (in the spirit of kwok and hollow nodes): one process
//! registers N Nodes and plays their kubelets through the API only.
//!
//! - [`node`]: the Node objects (capacity, labels with hostname and
//!   round-robin zones, taints, podCIDR, Ready condition) and their
//!   registration;
//! - [`heartbeat`]: Leases in `kube-node-lease` renewed every
//!   `lease_interval`, and the Ready condition's heartbeat every
//!   `status_interval`, each spread evenly over its interval
//!   ([`pacing`]);
//! - [`pods`]: one watch on all pods; pods bound to our nodes become
//!   Running and Ready (IPs from the node's podCIDR, container statuses),
//!   and pods being deleted are finished (`gracePeriodSeconds=0`);
//! - [`ipam`]: per-node pod IP allocation.
//!
//! Failure injection: [`SimNodes::set_down`] stops (and resumes) a node's
//! lease renewals and status heartbeats, and so does the node label
//! `sim.rkube.io/heartbeats=stopped` from outside the process
//! ([`stop_label`]); pod annotations make containers exit or fail to start
//! (see [`pods`]).

pub mod heartbeat;
pub mod ipam;
pub mod node;
pub mod pacing;
pub mod pods;
pub mod stop_label;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::core::v1::Taint;
use kube::Client;
use tokio::task::JoinSet;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// How many nodes.
    pub count: usize,
    /// Node names are `<prefix><index>`.
    pub name_prefix: String,
    /// Capacity (= allocatable) per node.
    pub cpu: String,
    pub memory: String,
    pub pods: String,
    /// Extra labels on every node.
    pub labels: BTreeMap<String, String>,
    /// Zones assigned round-robin (`topology.kubernetes.io/zone`); none
    /// when empty.
    pub zones: Vec<String>,
    /// Region label (`topology.kubernetes.io/region`), when set.
    pub region: Option<String>,
    /// Taints on every node.
    pub taints: Vec<Taint>,
    /// Index of the first node (to run several simulators side by side
    /// with distinct names and CIDRs).
    pub first_index: usize,
    /// Pod CIDRs are consecutive /24s from here.
    pub pod_cidr_base: Ipv4Addr,
    /// Node InternalIPs are consecutive addresses from here.
    pub node_ip_base: Ipv4Addr,
    /// Lease renewal period (upstream kubelet: 10 s, lease 40 s).
    pub lease_interval: Duration,
    /// Node status (Ready heartbeat) period.
    pub status_interval: Duration,
    /// Concurrent API calls per bulk operation.
    pub concurrency: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            count: 1,
            name_prefix: "sim-node-".into(),
            cpu: "4".into(),
            memory: "16Gi".into(),
            pods: "110".into(),
            labels: BTreeMap::new(),
            zones: Vec::new(),
            region: None,
            taints: Vec::new(),
            first_index: 0,
            pod_cidr_base: Ipv4Addr::new(10, 64, 0, 0),
            node_ip_base: Ipv4Addr::new(172, 16, 0, 1),
            lease_interval: Duration::from_secs(10),
            status_interval: Duration::from_secs(60),
            concurrency: 32,
        }
    }
}

/// A simulated node's identity.
#[derive(Debug, Clone)]
pub struct SimNode {
    pub name: String,
    pub index: usize,
    pub ip: Ipv4Addr,
    pub pod_cidr: ipam::Cidr24,
}

impl SimConfig {
    /// The nodes this configuration describes.
    pub fn nodes(&self) -> Vec<SimNode> {
        (self.first_index..self.first_index + self.count)
            .map(|index| SimNode {
                name: format!("{}{}", self.name_prefix, index),
                index,
                ip: Ipv4Addr::from(u32::from(self.node_ip_base).wrapping_add(index as u32)),
                pod_cidr: ipam::Cidr24::nth(self.pod_cidr_base, index),
            })
            .collect()
    }
}

/// Shared state of a running simulator.
#[derive(Debug)]
pub struct State {
    pub config: SimConfig,
    pub nodes: HashMap<String, SimNode>,
    pub ipam: Mutex<ipam::Ipam>,
    /// Nodes whose heartbeats are stopped ([`SimNodes::set_down`]).
    pub down: Mutex<HashSet<String>>,
    /// Nodes whose heartbeats are stopped by their label
    /// ([`stop_label::HEARTBEATS_LABEL`]).
    pub stopped_by_label: Mutex<HashSet<String>>,
}

impl State {
    /// True when the node's heartbeats are stopped, by the library or by
    /// its label.
    pub fn is_down(&self, node: &str) -> bool {
        self.down.lock().unwrap_or_else(|e| e.into_inner()).contains(node)
            || self.lock_stopped_by_label().contains(node)
    }

    /// The label-stopped nodes.
    pub fn lock_stopped_by_label(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.stopped_by_label.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running simulator; stops (its tasks end) on drop. The Nodes stay.
pub struct SimNodes {
    pub state: Arc<State>,
    tasks: JoinSet<()>,
}

impl std::fmt::Debug for SimNodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimNodes")
            .field("nodes", &self.state.nodes.len())
            .finish()
    }
}

impl SimNodes {
    /// Registers the nodes and their leases, then keeps them alive and
    /// runs their pods in background tasks.
    pub async fn start(client: Client, config: SimConfig) -> Result<SimNodes> {
        let nodes: HashMap<String, SimNode> = config.nodes().into_iter().map(|n| (n.name.clone(), n)).collect();
        let state = Arc::new(State {
            ipam: Mutex::new(ipam::Ipam::default()),
            down: Mutex::default(),
            stopped_by_label: Mutex::default(),
            nodes,
            config,
        });
        node::register_all(&client, &state).await?;
        heartbeat::ensure_leases(&client, &state).await?;
        let mut tasks = JoinSet::new();
        tasks.spawn(heartbeat::renew_leases(client.clone(), state.clone()));
        tasks.spawn(heartbeat::report_status(client.clone(), state.clone()));
        tasks.spawn(pods::run(client.clone(), state.clone()));
        tasks.spawn(stop_label::run(client.clone(), state.clone()));
        Ok(SimNodes { state, tasks })
    }

    /// Stops (`true`) or resumes a node's lease renewals and status
    /// heartbeats, as a kubelet that died or came back.
    pub fn set_down(&self, node: &str, down: bool) {
        let mut set = self.state.down.lock().unwrap_or_else(|e| e.into_inner());
        if down {
            set.insert(node.to_string());
        } else {
            set.remove(node);
        }
    }

    /// Waits until a task ends (they run forever unless they fail).
    pub async fn wait(&mut self) {
        self.tasks.join_next().await;
    }
}

/// Parses `key=value:Effect` (or `key:Effect`) taints.
pub fn parse_taint(s: &str) -> Result<Taint> {
    let (kv, effect) = s
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!("taint {s:?}: want key=value:Effect"))?;
    let (key, value) = match kv.split_once('=') {
        Some((k, v)) => (k.to_string(), Some(v.to_string())),
        None => (kv.to_string(), None),
    };
    if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        anyhow::bail!("taint {s:?}: unknown effect {effect:?}");
    }
    Ok(Taint {
        key,
        value,
        effect: effect.to_string(),
        time_added: None,
    })
}

/// A kube-rs client from a kubeconfig path, or the inferred config.
pub async fn client(kubeconfig: Option<&std::path::Path>) -> Result<Client> {
    use kube::config::{KubeConfigOptions, Kubeconfig};
    let config = match kubeconfig {
        Some(p) => {
            kube::Config::from_custom_kubeconfig(Kubeconfig::read_from(p)?, &KubeConfigOptions::default()).await?
        }
        None => kube::Config::infer().await?,
    };
    Ok(Client::try_from(config)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn nodes_get_names_ips_and_cidrs() {
        let cfg = SimConfig {
            count: 2,
            first_index: 255,
            ..SimConfig::default()
        };
        let nodes = cfg.nodes();
        assert_eq!(nodes[0].name, "sim-node-255");
        assert_eq!(nodes[0].ip, Ipv4Addr::new(172, 16, 1, 0));
        assert_eq!(nodes[1].pod_cidr.to_string(), "10.65.0.0/24");
    }

    #[test]
    fn taints_parse() {
        let t = parse_taint("dedicated=gpu:NoSchedule").unwrap();
        assert_eq!(
            (t.key.as_str(), t.value.as_deref(), t.effect.as_str()),
            ("dedicated", Some("gpu"), "NoSchedule")
        );
        assert!(parse_taint("k:Bad").is_err());
        assert_eq!(parse_taint("k:NoExecute").unwrap().value, None);
    }
}
