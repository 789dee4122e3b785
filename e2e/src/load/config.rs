//! `kube-load`'s flags.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use serde::{Deserialize, Serialize};

/// A load scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// N clients create new ConfigMaps (~0.5 KiB each).
    CreateConfigmaps,
    /// N clients GET random ConfigMaps by name out of `--objects` preloaded.
    Get,
    /// N clients PUT their own share of `--objects` preloaded ConfigMaps.
    Update,
    /// N clients create new Pods (~2 KiB each).
    CreatePods,
    /// Full LIST of `--objects` Pods, then the same paginated.
    List,
    /// M watchers on ConfigMaps while ConfigMaps are created at R/s.
    Watch,
    /// Every scenario above, in that order.
    All,
}

impl Scenario {
    /// The scenarios `self` stands for, in running order.
    pub fn expand(self) -> Vec<Scenario> {
        match self {
            Scenario::All => vec![
                Scenario::CreateConfigmaps,
                Scenario::Get,
                Scenario::Update,
                Scenario::CreatePods,
                Scenario::List,
                Scenario::Watch,
            ],
            one => vec![one],
        }
    }

    /// `--objects` when not given: what the scenario preloads.
    pub fn default_objects(self) -> usize {
        match self {
            Scenario::List => 10_000,
            _ => 1_000,
        }
    }
}

impl std::fmt::Display for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Scenario::CreateConfigmaps => "create-configmaps",
            Scenario::Get => "get",
            Scenario::Update => "update",
            Scenario::CreatePods => "create-pods",
            Scenario::List => "list",
            Scenario::Watch => "watch",
            Scenario::All => "all",
        })
    }
}

/// How long a measurement runs: a number of operations shared by all
/// clients, or a wall-clock duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// Exactly this many operations (attempts, errors included).
    Count(u64),
    /// Operations start until this much time has passed.
    Duration(Duration),
}

/// What to run (`kube-load --help`).
#[derive(Debug, Clone, Serialize, clap::Parser)]
#[command(
    name = "kube-load",
    about = "Load on any Kubernetes API server (JSON over HTTPS through kube-rs): \
             ops/s and p50/p99/max latency per scenario, watch delivery and \
             latency, and the server's memory when it runs on this machine."
)]
pub struct LoadConfig {
    /// The kubeconfig to use (its current context).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// The namespace to work in; created if missing.
    #[arg(long, default_value = "kube-load")]
    pub namespace: String,

    /// What to run.
    #[arg(long, value_enum, default_value_t = Scenario::All)]
    pub scenario: Scenario,

    /// Concurrent clients (closed loop: each sends its next request when
    /// the previous one is answered). The LISTs run one at a time.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,

    /// Operations per measurement, shared by all clients (list: runs).
    #[arg(long, conflicts_with = "duration_secs")]
    pub count: Option<u64>,

    /// Length of each measurement in seconds (default 10 when --count is
    /// not given; watch: how long objects are created).
    #[arg(long)]
    pub duration_secs: Option<u64>,

    /// Objects preloaded for get/update (default 1000) and Pods for list
    /// (default 10000).
    #[arg(long)]
    pub objects: Option<usize>,

    /// Page size of the paginated LIST.
    #[arg(long, default_value_t = 500)]
    pub page_size: u32,

    /// Watchers for the watch scenario.
    #[arg(long, default_value_t = 100)]
    pub watchers: usize,

    /// ConfigMaps created per second while the watchers watch.
    #[arg(long, default_value_t = 100.0)]
    pub event_rate: f64,

    /// How long watchers may take, after the last create, to receive every
    /// event before the rest are counted missing (seconds).
    #[arg(long, default_value_t = 30)]
    pub drain_secs: u64,

    /// PID of the API server when it runs on this machine: its resident
    /// memory (VmRSS, VmHWM from /proc/PID/status) is sampled and reported.
    #[arg(long)]
    pub server_pid: Option<u32>,

    /// Speak Kubernetes protobuf (`application/vnd.kubernetes.protobuf`
    /// request bodies and responses), as client-go's typed clients do:
    /// creates, GETs, PUTs and LISTs; watches stay JSON.
    #[arg(long)]
    pub protobuf: bool,

    /// create-pods: post Pods that already carry what the default admission
    /// chain adds (service account, token volume and mounts, default
    /// tolerations, priority), so a server without the chain stores the
    /// same object as one with it stores for the plain Pod.
    #[arg(long)]
    pub admitted_pods: bool,

    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,

    /// A name for this run, shown in merged tables (e.g. the backend).
    #[arg(long)]
    pub label: Option<String>,

    /// Allow a server that is not on a loopback address (the tool is made
    /// to measure a local server; this is a guard against loading a real
    /// cluster by mistake).
    #[arg(long)]
    pub allow_remote: bool,

    /// Instead of running anything, print one markdown table from these
    /// JSON reports (written earlier with --json).
    #[arg(long, num_args = 1.., value_name = "JSON")]
    #[serde(skip)]
    pub merge: Vec<PathBuf>,
}

/// Used when neither `--count` nor `--duration-secs` is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);
/// Requests that take longer than this count as failed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

impl LoadConfig {
    /// Rejects values that would make a measurement meaningless.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.clients == 0 {
            bail!("--clients must be positive");
        }
        if self.count == Some(0) || self.duration_secs == Some(0) {
            bail!("--count and --duration-secs must be positive");
        }
        if self.objects == Some(0) {
            bail!("--objects must be positive");
        }
        if self.page_size == 0 {
            bail!("--page-size must be positive");
        }
        if self.scenario.expand().contains(&Scenario::Watch) {
            if self.watchers == 0 {
                bail!("--watchers must be positive");
            }
            if !(self.event_rate.is_finite() && self.event_rate > 0.0) {
                bail!("--event-rate must be a positive number");
            }
        }
        Ok(())
    }

    /// How long each measurement runs.
    pub fn budget(&self) -> Budget {
        match (self.count, self.duration_secs) {
            (Some(n), _) => Budget::Count(n),
            (None, Some(s)) => Budget::Duration(Duration::from_secs(s)),
            (None, None) => Budget::Duration(DEFAULT_DURATION),
        }
    }

    /// Objects `scenario` preloads.
    pub fn objects_for(&self, scenario: Scenario) -> usize {
        self.objects.unwrap_or_else(|| scenario.default_objects())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use clap::Parser;

    use super::*;

    fn parse(args: &[&str]) -> LoadConfig {
        let mut all = vec!["kube-load"];
        all.extend_from_slice(args);
        LoadConfig::try_parse_from(all).expect("flags parse")
    }

    #[test]
    fn defaults() {
        let c = parse(&[]);
        assert_eq!(c.scenario, Scenario::All);
        assert_eq!(c.budget(), Budget::Duration(DEFAULT_DURATION));
        assert_eq!(c.objects_for(Scenario::List), 10_000);
        assert_eq!(c.objects_for(Scenario::Get), 1_000);
        c.validate().expect("defaults are valid");
    }

    #[test]
    fn budgets() {
        assert_eq!(parse(&["--count", "5"]).budget(), Budget::Count(5));
        assert_eq!(
            parse(&["--duration-secs", "3"]).budget(),
            Budget::Duration(Duration::from_secs(3))
        );
        assert!(LoadConfig::try_parse_from(["kube-load", "--count", "1", "--duration-secs", "1"]).is_err());
    }

    #[test]
    fn scenarios() {
        assert_eq!(parse(&["--scenario", "create-pods"]).scenario, Scenario::CreatePods);
        assert_eq!(Scenario::All.expand().len(), 6);
        assert_eq!(Scenario::Get.expand(), vec![Scenario::Get]);
        assert!(LoadConfig::try_parse_from(["kube-load", "--scenario", "delete"]).is_err());
    }

    #[test]
    fn rejects_nonsense() {
        for args in [
            &["--clients", "0"][..],
            &["--count", "0"][..],
            &["--objects", "0"][..],
            &["--scenario", "watch", "--watchers", "0"][..],
            &["--scenario", "watch", "--event-rate", "0"][..],
            &["--scenario", "watch", "--event-rate", "NaN"][..],
        ] {
            assert!(parse(args).validate().is_err(), "{args:?} should be rejected");
        }
    }
}
