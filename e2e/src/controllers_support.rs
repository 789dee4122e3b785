//! Helpers for the controller e2e tests (`tests/controllers.rs`,
//! `node_lifecycle.rs`, `statefulset.rs`, ...): one [`Env`] that starts
//! the apiserver binary with, as a test asks, a namespace, simulated
//! nodes, the scheduler and the controller manager (in-process or the
//! binary); waiting for a condition; a fake kubelet marking pods Running
//! and Ready through `pods/status` for tests without nodes; and a watch
//! counting the most live pods at once.

use std::collections::HashSet;
use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher::{self, Event};
use kube::{Client, Config, ResourceExt};
use rkube_controllers::leader_election::LeaderElectionConfig;
use serde_json::json;
use tokio::sync::oneshot;

use crate::cluster::{Backend, TEST_DISABLED_ADMISSION, TestCluster, target_dir};
use crate::simnodes::{SimConfig, SimNodes};

/// Sends the tests' tracing to the test writer when `RKUBE_TEST_LOG` is
/// set (an `EnvFilter`); quiet otherwise.
pub fn init_test_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("RKUBE_TEST_LOG").unwrap_or_else(|_| "off".into()))
        .with_test_writer()
        .try_init();
}

/// Which controller manager an [`Env`] runs.
#[derive(Debug, Default)]
pub enum Controllers {
    /// None: the test starts its own, if any.
    #[default]
    None,
    /// Every default controller in this process ([`ControllerManager`]).
    InProcess,
    /// The `rkube-controllers` binary with these extra flags.
    Binary(Vec<String>),
}

/// What an [`Env`] starts besides the apiserver.
#[derive(Debug, Default)]
pub struct EnvOptions {
    /// Apiserver flags; `None` is [`TEST_DISABLED_ADMISSION`].
    pub apiserver_args: Option<Vec<String>>,
    /// A namespace to create.
    pub namespace: Option<String>,
    /// Simulated node groups, started in order.
    pub nodes: Vec<SimConfig>,
    /// Whether to run the scheduler in-process.
    pub scheduler: bool,
    pub controllers: Controllers,
}

/// A control plane for one test; everything stops on drop (the scheduler,
/// controller manager and simulated nodes before the apiserver).
pub struct Env {
    pub client: Client,
    /// The simulated node groups, in [`EnvOptions::nodes`] order.
    pub sims: Vec<SimNodes>,
    pub cm: Option<ControllerManager>,
    pub cm_binary: Option<ControllersBinary>,
    scheduler: Option<tokio::task::JoinHandle<()>>,
    pub cluster: TestCluster,
}

impl Env {
    /// Starts the apiserver on the embedded store, then what `opts` asks
    /// for, in the order a cluster comes up: namespace, nodes, scheduler,
    /// controllers.
    pub async fn start(opts: EnvOptions) -> Result<Env> {
        init_test_logging();
        let cluster = match &opts.apiserver_args {
            None => TestCluster::start_with(Backend::Embedded, &[TEST_DISABLED_ADMISSION]).await?,
            Some(args) => {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                TestCluster::start_with(Backend::Embedded, &args).await?
            }
        };
        let client = client(&cluster).await?;
        if let Some(ns) = &opts.namespace {
            create_namespace(&client, ns).await?;
        }
        let mut sims = Vec::new();
        for config in opts.nodes {
            sims.push(
                SimNodes::start(client.clone(), config)
                    .await
                    .context("simulated nodes start")?,
            );
        }
        let scheduler = opts.scheduler.then(|| start_scheduler(&client));
        let (mut cm, mut cm_binary) = (None, None);
        match &opts.controllers {
            Controllers::None => {}
            Controllers::InProcess => cm = Some(ControllerManager::start(&cluster, |_| {})?),
            Controllers::Binary(flags) => {
                let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
                cm_binary = Some(ControllersBinary::start(&cluster, &flags)?);
            }
        }
        Ok(Env {
            client,
            sims,
            cm,
            cm_binary,
            scheduler,
            cluster,
        })
    }

    /// The controller-manager binary's log so far (empty without one).
    pub fn controllers_log(&self) -> String {
        self.cm_binary.as_ref().map(ControllersBinary::log).unwrap_or_default()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(s) = self.scheduler.take() {
            s.abort();
        }
    }
}

/// Simulated nodes `{prefix}{i}` with 5 s lease renewals (fewer writes
/// than the default, still well inside the node monitor's grace period).
pub fn sim_nodes(prefix: &str, count: usize) -> SimConfig {
    SimConfig {
        count,
        name_prefix: prefix.into(),
        lease_interval: Duration::from_secs(5),
        ..SimConfig::default()
    }
}

/// The scheduler with its default configuration, in a task.
pub fn start_scheduler(client: &Client) -> tokio::task::JoinHandle<()> {
    let client = client.clone();
    tokio::spawn(async move {
        let cfg = rkube_scheduler::KubeSchedulerConfiguration::default();
        let metrics = Arc::new(rkube_scheduler::Metrics::default());
        let _ = rkube_scheduler::run_with_client(client, cfg, metrics).await;
    })
}

/// Creates the namespace `name`.
pub async fn create_namespace(client: &Client, name: &str) -> Result<()> {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    Ok(())
}

/// The `rkube-controllers` binary without leader election, its log in
/// the cluster's data directory; killed on drop.
pub struct ControllersBinary {
    child: Child,
    log: PathBuf,
}

impl ControllersBinary {
    pub fn start(c: &TestCluster, extra: &[&str]) -> Result<ControllersBinary> {
        let bin = target_dir()?.join("rkube-controllers");
        if !bin.exists() {
            bail!(
                "{} is missing: build it with `cargo build -p rkube-controllers`",
                bin.display()
            );
        }
        let log = c.data_dir().join("controllers.log");
        let child = Command::new(bin)
            .arg("--kubeconfig")
            .arg(c.kubeconfig())
            .args(["--leader-elect=false", "--port=0"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        Ok(ControllersBinary { child, log })
    }

    /// The log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ControllersBinary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A kube-rs client from the cluster's admin kubeconfig.
pub async fn client(c: &TestCluster) -> Result<Client> {
    Ok(Client::try_from(admin_config(c).await?)?)
}

/// Like [`client`], without kube-rs's default retries of 429, 503 and
/// 504. A refused eviction is a 429 without `Retry-After`, which the
/// default policy retries 15 times with exponential back-off (minutes);
/// tests that expect a 429 use this client to see it at once.
pub async fn client_without_retries(c: &TestCluster) -> Result<Client> {
    let mut config = admin_config(c).await?;
    config.default_retry = false;
    Ok(Client::try_from(config)?)
}

async fn admin_config(c: &TestCluster) -> Result<Config> {
    let kubeconfig = Kubeconfig::read_from(c.kubeconfig())?;
    Ok(Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?)
}

/// A controller manager running in this process; stopped (lease released)
/// by [`ControllerManager::stop`], aborted on drop.
pub struct ControllerManager {
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), rkube_controllers::RunError>>>,
}

impl ControllerManager {
    /// Starts every default controller, publishing the cluster's CA and
    /// signing CSRs with it, with
    /// `configure` applied to the config first.
    pub fn start(c: &TestCluster, configure: impl FnOnce(&mut rkube_controllers::Config)) -> Result<Self> {
        let mut config = rkube_controllers::Config::new(Some(c.kubeconfig()));
        config.root_ca = Some(std::fs::read_to_string(c.data_dir().join("pki/ca.crt"))?);
        config.certificates = rkube_controllers::controllers::certificates::Settings::with_cluster_ca(
            c.data_dir().join("pki/ca.crt"),
            c.data_dir().join("pki/ca.key"),
        );
        configure(&mut config);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(rkube_controllers::run(config, async move {
            let _ = rx.await;
        }));
        Ok(ControllerManager {
            stop: Some(tx),
            task: Some(task),
        })
    }

    /// Whether the manager's `run` has returned.
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Asks the manager to shut down and waits for it.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await??;
        }
        Ok(())
    }
}

impl Drop for ControllerManager {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Leader election with short terms, for tests.
pub fn fast_leader_election(identity: &str) -> LeaderElectionConfig {
    LeaderElectionConfig {
        namespace: "kube-system".into(),
        name: "kube-controller-manager".into(),
        identity: identity.into(),
        lease_duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(300),
    }
}

/// Polls `check` every 100 ms until it returns `Some`, or fails after
/// `timeout` with `what` and the last `None`-producing state.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_err = None;
    loop {
        match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if Instant::now() > deadline {
            match last_err {
                Some(e) => bail!("timed out waiting for {what}: last error: {e:#}"),
                None => bail!("timed out waiting for {what}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Marks `pod` Running with every condition True (what a kubelet would
/// report), through `pods/status`.
pub async fn mark_running_ready(pods: &Api<Pod>, name: &str) -> Result<()> {
    mark_running_ready_since(pods, name, Duration::ZERO).await
}

/// Like [`mark_running_ready`], with the conditions' transition time `ago`
/// in the past.
pub async fn mark_running_ready_since(pods: &Api<Pod>, name: &str, ago: Duration) -> Result<()> {
    let mut pod = pods.get_status(name).await?;
    let at = k8s_openapi::jiff::Timestamp::now() - k8s_openapi::jiff::SignedDuration::try_from(ago)?;
    let now = at.to_string();
    let now = &now[..19];
    let conditions: Vec<_> = ["PodScheduled", "Initialized", "ContainersReady", "Ready"]
        .iter()
        .map(|t| json!({"type": t, "status": "True", "lastTransitionTime": format!("{now}Z")}))
        .collect();
    pod.status = Some(serde_json::from_value(json!({
        "phase": "Running",
        "conditions": conditions,
        "podIP": "10.244.0.10",
        "startTime": format!("{now}Z"),
    }))?);
    pods.replace_status(name, &PostParams::default(), &pod).await?;
    Ok(())
}

/// A stand-in for kubelets: every 50 ms, marks each pod of `namespace`
/// that is not Ready as Running and Ready. Stops when dropped.
pub struct FakeKubelet {
    task: tokio::task::JoinHandle<()>,
}

impl FakeKubelet {
    pub fn start(client: &Client, namespace: &str) -> FakeKubelet {
        Self::start_with(client, namespace, |_| true)
    }

    /// Like [`FakeKubelet::start`], marking only the pods `healthy` accepts
    /// (the others stay Pending, like pods whose image never starts).
    pub fn start_with(client: &Client, namespace: &str, healthy: fn(&Pod) -> bool) -> FakeKubelet {
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        let task = tokio::spawn(async move {
            loop {
                if let Ok(list) = pods.list(&Default::default()).await {
                    for p in &list.items {
                        if p.metadata.deletion_timestamp.is_none()
                            && !is_ready(p)
                            && healthy(p)
                            && let Some(name) = p.metadata.name.as_deref()
                        {
                            let _ = mark_running_ready(&pods, name).await;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        FakeKubelet { task }
    }
}

impl Drop for FakeKubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Watches the pods of a namespace and records the fewest and the most
/// live pods (not being deleted) that `counts` accepts, at every
/// resourceVersion: every state the apiserver went through, not only
/// those a poll happens to see. Stops when dropped.
pub struct PodCountWatch {
    task: tokio::task::JoinHandle<()>,
    now: Arc<AtomicUsize>,
    min: Arc<AtomicUsize>,
    max: Arc<AtomicUsize>,
}

impl PodCountWatch {
    /// Counts every live pod; returns once the initial list is in.
    pub async fn live(client: &Client, namespace: &str) -> PodCountWatch {
        Self::start(client, namespace, |_| true).await
    }

    /// Counts the live pods that are Ready.
    pub async fn ready(client: &Client, namespace: &str) -> PodCountWatch {
        Self::start(client, namespace, is_ready).await
    }

    /// Counts the live pods `counts` accepts; returns once the initial
    /// list is in.
    pub async fn start(client: &Client, namespace: &str, counts: fn(&Pod) -> bool) -> PodCountWatch {
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        let now = Arc::new(AtomicUsize::new(0));
        let min = Arc::new(AtomicUsize::new(usize::MAX));
        let max = Arc::new(AtomicUsize::new(0));
        let synced = Arc::new(tokio::sync::Notify::new());
        let (n, lo, hi, s) = (now.clone(), min.clone(), max.clone(), synced.clone());
        let counted = move |p: &Pod| p.metadata.deletion_timestamp.is_none() && counts(p);
        let task = tokio::spawn(async move {
            let mut set: HashSet<String> = HashSet::new();
            let mut init: HashSet<String> = HashSet::new();
            let mut stream = watcher::watcher(pods, watcher::Config::default()).boxed();
            while let Some(ev) = stream.next().await {
                // A (re-)list is counted once whole, at its InitDone.
                match ev {
                    Ok(Event::Init) => {
                        init.clear();
                        continue;
                    }
                    Ok(Event::InitApply(p)) => {
                        if counted(&p) {
                            init.insert(p.name_any());
                        }
                        continue;
                    }
                    Ok(Event::InitDone) => {
                        set = std::mem::take(&mut init);
                        s.notify_one();
                    }
                    Ok(Event::Apply(p)) => {
                        if counted(&p) {
                            set.insert(p.name_any());
                        } else {
                            set.remove(&p.name_any());
                        }
                    }
                    Ok(Event::Delete(p)) => {
                        set.remove(&p.name_any());
                    }
                    Err(_) => continue,
                }
                n.store(set.len(), Ordering::SeqCst);
                lo.fetch_min(set.len(), Ordering::SeqCst);
                hi.fetch_max(set.len(), Ordering::SeqCst);
            }
        });
        synced.notified().await;
        PodCountWatch { task, now, min, max }
    }

    /// The current count.
    pub fn now(&self) -> usize {
        self.now.load(Ordering::SeqCst)
    }

    /// The fewest counted at once since the start or the last
    /// [`PodCountWatch::reset`].
    pub fn min(&self) -> usize {
        self.min.load(Ordering::SeqCst)
    }

    /// The most counted at once since the start or the last
    /// [`PodCountWatch::reset`].
    pub fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }

    /// Restarts the minimum and maximum from the current count.
    pub fn reset(&self) {
        let now = self.now();
        self.min.store(now, Ordering::SeqCst);
        self.max.store(now, Ordering::SeqCst);
    }
}

impl Drop for PodCountWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether the pod's Ready condition is True.
pub fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}
