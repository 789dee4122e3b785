//! rkube's controller manager (kube-controller-manager's model): one
//! process running named controllers, each a reconcile loop over shared
//! informers ([`informer`]) with a rate-limited work queue ([`queue`],
//! [`runner`]), talking to the cluster only through the Kubernetes API with
//! kube-rs. Only the holder of the `kube-system/kube-controller-manager`
//! Lease runs controllers ([`leader_election`]).
//!
//! `options.rs` (flags) → [`Config`] → [`run`]. The controllers live one
//! module each under [`controllers`], registered by upstream name in
//! [`manager::CONTROLLERS`].

pub mod cached_pod;
pub mod controllers;
pub mod discovery;
pub mod error;
pub mod expectations;
pub mod informer;
pub mod leader_election;
pub mod manager;
pub mod metrics;
pub mod options;
pub mod queue;
pub mod runner;
pub mod selection;
pub mod server;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use error::Error;
pub use manager::ControllerContext;

use crate::leader_election::{LeaderElectionConfig, LeaderElector};
use crate::metrics::{Metrics, NameLabel};
use crate::selection::Selection;

/// Everything [`run`] needs; built from flags by [`options::Options`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Kubeconfig to use; `None` infers (in-cluster or `$KUBECONFIG`).
    pub kubeconfig: Option<PathBuf>,
    /// Which controllers run (`--controllers`).
    pub controllers: Selection,
    /// `None` runs without leader election (`--leader-elect=false`).
    pub leader_election: Option<LeaderElectionConfig>,
    /// Where `/healthz` and `/metrics` are served; `None` serves nothing.
    pub bind: Option<SocketAddr>,
    /// PEM CA bundle published as `kube-root-ca.crt` (`--root-ca-file`).
    pub root_ca: Option<String>,
    /// Key signing legacy service-account tokens
    /// (`--service-account-private-key-file`).
    pub service_account_private_key_file: Option<PathBuf>,
    /// Workers per controller (`--concurrent-*-syncs`).
    pub concurrency: Concurrency,
    /// Endpoints, EndpointSlice, mirroring and pod GC settings.
    pub endpoints: controllers::endpoints::Settings,
    /// Node lifecycle and taint-eviction settings.
    pub node_lifecycle: controllers::node_lifecycle::Settings,
    /// Node IPAM settings (`--allocate-node-cidrs`, `--cluster-cidr`).
    pub node_ipam: controllers::node_ipam::Settings,
    /// ResourceQuota controller settings.
    pub resourcequota: controllers::resourcequota::Settings,
    /// CSR signing CAs and duration (`--cluster-signing-*`).
    pub certificates: controllers::certificates::Settings,
}

/// Worker counts, upstream's defaults.
#[derive(Debug, Clone)]
pub struct Concurrency {
    pub replicaset: usize,
    pub deployment: usize,
    pub namespace: usize,
    pub garbage_collector: usize,
    pub serviceaccount: usize,
    pub statefulset: usize,
    pub daemonset: usize,
    pub job: usize,
    pub cronjob: usize,
}

impl Default for Concurrency {
    fn default() -> Self {
        Concurrency {
            replicaset: 5,
            deployment: 5,
            namespace: 10,
            garbage_collector: 20,
            serviceaccount: 1,
            statefulset: 5,
            daemonset: 2,
            job: 5,
            cronjob: 5,
        }
    }
}

impl Config {
    /// A config for `kubeconfig` with every default (tests).
    pub fn new(kubeconfig: Option<PathBuf>) -> Self {
        Config {
            kubeconfig,
            controllers: Selection::default(),
            leader_election: None,
            bind: None,
            root_ca: None,
            service_account_private_key_file: None,
            concurrency: Concurrency::default(),
            endpoints: controllers::endpoints::Settings::default(),
            node_lifecycle: controllers::node_lifecycle::Settings::default(),
            node_ipam: controllers::node_ipam::Settings::default(),
            resourcequota: controllers::resourcequota::Settings::default(),
            certificates: controllers::certificates::Settings::default(),
        }
    }
}

/// Why [`run`] failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("loading kubeconfig: {0}")]
    Kubeconfig(String),
    #[error("building client: {0}")]
    Client(#[from] kube::Error),
    #[error("serving health and metrics: {0}")]
    Serve(#[from] std::io::Error),
    #[error(transparent)]
    LeaderElection(#[from] leader_election::LeaderElectionError),
}

/// A kube-rs client from `kubeconfig`, or inferred.
pub async fn client(kubeconfig: Option<&std::path::Path>) -> Result<kube::Client, RunError> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| RunError::Kubeconfig(e.to_string()))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| RunError::Kubeconfig(e.to_string()))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| RunError::Kubeconfig(e.to_string()))?,
    };
    Ok(kube::Client::try_from(config)?)
}

/// Runs the controller manager until `shutdown` completes (then releases
/// the lease) or leadership is lost (an error, as upstream exits).
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
    let client = client(config.kubeconfig.as_deref()).await?;
    let metrics = Arc::new(Metrics::new());
    let _server = match config.bind {
        Some(addr) => {
            let (bound, task) = server::serve(addr, metrics.clone()).await?;
            tracing::info!(address = %bound, "serving /healthz and /metrics");
            Some(AbortOnDrop(task))
        }
        None => None,
    };
    let ctx = ControllerContext::new(client.clone(), metrics.clone(), &config);
    let start = {
        let ctx = ctx.clone();
        let selection = config.controllers.clone();
        move || async move { manager::run_controllers(ctx, &selection).await }
    };
    match config.leader_election.clone() {
        None => {
            tokio::select! {
                _ = shutdown => {}
                _ = start() => {}
            }
            ctx.informers.shut_down();
            Ok(())
        }
        Some(le) => {
            let label = NameLabel { name: le.name.clone() };
            let elector = LeaderElector::new(client, le);
            let leader_gauge = metrics.leader.get_or_create(&label).clone();
            let gauge = leader_gauge.clone();
            let informers = ctx.informers.clone();
            let result = elector
                .run(
                    shutdown,
                    move || {
                        gauge.set(1);
                        start()
                    },
                    move || informers.shut_down(),
                )
                .await;
            leader_gauge.set(0);
            Ok(result?)
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Upstream's default leader-election durations.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(10);
pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(2);
