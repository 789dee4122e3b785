//! rkube's scheduler (kube-scheduler's model), a client of the API only.
//!
//! Data flow: [`informers`] (kube-rs watchers on Nodes, Pods, Namespaces)
//! feed the [`cache::Cache`] (bound and assumed pods per node) and the
//! [`queue::SchedulingQueue`] (pending pods: active, backoff,
//! unschedulable, gated). The loop in [`scheduler::Scheduler::run`] pops one
//! pod at a time, brings its [`cache::Snapshot`] up to date, and runs the
//! profile's [`framework::Framework`] through [`algorithm::schedule_pod`]
//! (PreFilter, Filter, Score over the [`plugins`]); the chosen node is
//! *assumed* in the cache at once, and the binding (`pods/binding`) runs in
//! its own task. Failures go back to the queue with a FailedScheduling
//! event and a `PodScheduled=False` condition.
//!
//! The scheduling logic (`algorithm`, `framework`, `plugins`, `cache`,
//! `queue`) does no IO and takes time as an argument, so it is tested, and
//! benchmarked, without an API server.

pub mod algorithm;
pub mod cache;
pub mod config;
pub mod events;
pub mod framework;
pub mod informers;
pub mod label_index;
pub mod leader_election;
pub mod metrics;
pub mod node_info;
pub mod plugins;
pub mod pod_info;
pub mod quantity;
pub mod queue;
pub mod resources;
pub mod scheduler;
pub mod selectors;
pub mod server;
pub mod volume_binder;
pub mod workload_selectors;
pub mod workloads;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::task::JoinSet;
use tracing::info;

pub use config::KubeSchedulerConfiguration;
pub use metrics::Metrics;

/// The scheduler name of the default profile.
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";

/// Errors that stop the scheduler.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("building the API client: {0}")]
    Client(String),
    #[error("serving /healthz and /metrics: {0}")]
    Serve(#[from] std::io::Error),
    #[error("leader election lost")]
    LeadershipLost,
}

/// Flags of the `rkube-scheduler` binary.
#[derive(Debug, Clone)]
pub struct Options {
    /// Kubeconfig to reach the API server (in-cluster or default when
    /// unset).
    pub kubeconfig: Option<PathBuf>,
    /// A `KubeSchedulerConfiguration` file.
    pub config: Option<PathBuf>,
    /// Where `/healthz` and `/metrics` are served.
    pub listen: SocketAddr,
    /// Schedule only while holding this Lease (by default
    /// `kube-system/kube-scheduler`); `None` schedules at once.
    pub leader_election: Option<leader_election::LeaderElection>,
}

/// This instance's identity (events' reportingInstance, the lease holder):
/// `<hostname>_<pid>`.
pub fn instance_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host}_{}", std::process::id())
}

/// A kube-rs client from a kubeconfig path, or the inferred config.
pub async fn client_from(kubeconfig: Option<&std::path::Path>) -> Result<Client, Error> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path).map_err(|e| Error::Client(e.to_string()))?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|e| Error::Client(e.to_string()))?
        }
        None => kube::Config::infer().await.map_err(|e| Error::Client(e.to_string()))?,
    };
    Client::try_from(config).map_err(|e| Error::Client(e.to_string()))
}

/// Runs the binary: reads the configuration, serves health and metrics,
/// and schedules until the process ends.
pub async fn run(opts: Options) -> Result<(), Error> {
    let cfg = match &opts.config {
        Some(p) => KubeSchedulerConfiguration::from_file(p)?,
        None => KubeSchedulerConfiguration::default(),
    };
    let client = client_from(opts.kubeconfig.as_deref()).await?;
    let metrics = Arc::new(Metrics::default());
    let (addr, serve) = server::bind(opts.listen, metrics.clone()).await?;
    info!(%addr, "serving /healthz and /metrics");
    let schedule = async {
        match &opts.leader_election {
            Some(le) => {
                le.acquire(&client).await;
                tokio::select! {
                    r = run_with_client(client.clone(), cfg, metrics) => r,
                    () = le.keep(&client) => Err(Error::LeadershipLost),
                }
            }
            None => run_with_client(client.clone(), cfg, metrics).await,
        }
    };
    tokio::select! {
        r = serve => r?,
        r = schedule => r?,
    }
    Ok(())
}

/// Runs a scheduler against `client` until the future is dropped (which
/// stops every task it started): starts the informers, waits for their
/// first lists, then schedules.
pub async fn run_with_client(
    client: Client,
    cfg: KubeSchedulerConfiguration,
    metrics: Arc<Metrics>,
) -> Result<(), Error> {
    let storage_changed = Arc::new(tokio::sync::Notify::new());
    let (workloads, feed) = workloads::start(&client, storage_changed.clone());
    let workloads = Arc::new(workloads);
    let ctx = plugins::PluginContext {
        workloads: workloads.clone(),
        budgets: workloads.clone(),
        volumes: workloads,
    };
    let profiles = cfg.frameworks(&ctx)?;
    let queue = Arc::new(queue::SchedulingQueue::new(cfg.queue_config()));
    let instance = instance_name();
    let sched = Arc::new(scheduler::Scheduler::new(
        client,
        profiles,
        queue.clone(),
        metrics.clone(),
        instance,
    ));
    let (synced_tx, mut synced_rx) = tokio::sync::watch::channel(0usize);
    let mut tasks = JoinSet::new();
    tasks.spawn(feed);
    tasks.spawn(informers::run(sched.clone(), synced_tx));
    let started = Instant::now();
    let _ = synced_rx.wait_for(|n| *n >= 3).await;
    info!(elapsed = ?started.elapsed(), profiles = ?sched.profiles.keys().collect::<Vec<_>>(), "caches synced; scheduling");
    {
        let queue = queue.clone();
        let metrics = metrics.clone();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            let mut n = 0u32;
            loop {
                tick.tick().await;
                queue.flush(Instant::now());
                n += 1;
                if n.is_multiple_of(10) {
                    metrics.set_queue_sizes(queue.sizes());
                }
            }
        });
    }
    {
        let sched = sched.clone();
        tasks.spawn(async move {
            loop {
                storage_changed.notified().await;
                sched.on_cluster_event(framework::ClusterEvent::StorageChange);
            }
        });
    }
    tasks.spawn(sched.run());
    tasks.join_next().await;
    Ok(())
}
