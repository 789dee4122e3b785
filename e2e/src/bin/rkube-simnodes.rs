//! `rkube-simnodes`: registers N simulated nodes and plays their kubelets
//! through the API (see `rkube_e2e::simnodes`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use rkube_e2e::simnodes::{SimConfig, SimNodes, parse_taint};

/// How to inject failures, shown by `--help`.
const FAILURE_INJECTION: &str = "\
Failure injection:
  kubectl label node <node> sim.rkube.io/heartbeats=stopped
      stops the node's Lease renewals and status heartbeats (a dead kubelet);
      the node lifecycle controller then sets its Ready condition to Unknown.
  kubectl label node <node> sim.rkube.io/heartbeats-
      resumes them.
  Pod annotations: sim.rkube.io/exit-after-seconds=<s> (with
  sim.rkube.io/exit-code=<n>, default 0) makes the containers exit;
  sim.rkube.io/start-failure=<reason> (e.g. ImagePullBackOff) keeps them
  from starting.";

/// Simulated nodes for rkube (or any Kubernetes API server).
#[derive(Debug, Parser)]
#[command(name = "rkube-simnodes", after_help = FAILURE_INJECTION)]
struct Flags {
    /// Kubeconfig of the cluster.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Node name prefix.
    #[arg(long, default_value = "sim-node-")]
    name_prefix: String,
    /// Index of the first node (names and CIDRs follow).
    #[arg(long, default_value_t = 0)]
    first_index: usize,
    #[arg(long, default_value = "4")]
    cpu: String,
    #[arg(long, default_value = "16Gi")]
    memory: String,
    #[arg(long, default_value = "110")]
    pods: String,
    /// Zones, assigned round-robin (comma-separated).
    #[arg(long, value_delimiter = ',')]
    zones: Vec<String>,
    /// Region label.
    #[arg(long)]
    region: Option<String>,
    /// Extra labels, key=value (comma-separated).
    #[arg(long, value_delimiter = ',')]
    labels: Vec<String>,
    /// Taints, key=value:Effect (comma-separated).
    #[arg(long, value_delimiter = ',')]
    taints: Vec<String>,
    /// Seconds between lease renewals.
    #[arg(long, default_value_t = 10)]
    lease_interval: u64,
    /// Seconds between node status heartbeats.
    #[arg(long, default_value_t = 60)]
    status_interval: u64,
    /// Concurrent API calls.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let f = Flags::parse();
    let mut labels = BTreeMap::new();
    for l in &f.labels {
        let (k, v) = l
            .split_once('=')
            .with_context(|| format!("label {l:?}: want key=value"))?;
        labels.insert(k.to_string(), v.to_string());
    }
    let cfg = SimConfig {
        count: f.nodes,
        name_prefix: f.name_prefix,
        first_index: f.first_index,
        cpu: f.cpu,
        memory: f.memory,
        pods: f.pods,
        zones: f.zones,
        region: f.region,
        labels,
        taints: f.taints.iter().map(|t| parse_taint(t)).collect::<Result<_>>()?,
        lease_interval: Duration::from_secs(f.lease_interval.max(1)),
        status_interval: Duration::from_secs(f.status_interval.max(1)),
        concurrency: f.concurrency,
        ..SimConfig::default()
    };
    let client = rkube_e2e::simnodes::client(f.kubeconfig.as_deref()).await?;
    let count = cfg.count;
    let mut sim = SimNodes::start(client, cfg).await?;
    tracing::info!(nodes = count, "simulated nodes registered");
    sim.wait().await;
    Ok(())
}
