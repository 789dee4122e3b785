//! Helpers for `tests/controllers.rs`: the controller manager run
//! in-process against a [`TestCluster`], a kube-rs client, waiting for a
//! condition, and marking pods Running and Ready through `pods/status`
//! (there are no nodes or kubelets in these tests yet).

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use rkube_controllers::leader_election::LeaderElectionConfig;
use serde_json::json;
use tokio::sync::oneshot;

use crate::cluster::TestCluster;

/// A kube-rs client from the cluster's admin kubeconfig.
pub async fn client(c: &TestCluster) -> Result<Client> {
    let kubeconfig = Kubeconfig::read_from(c.kubeconfig())?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

/// A controller manager running in this process; stopped (lease released)
/// by [`ControllerManager::stop`], aborted on drop.
pub struct ControllerManager {
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), rkube_controllers::RunError>>>,
}

impl ControllerManager {
    /// Starts every default controller, publishing the cluster's CA, with
    /// `configure` applied to the config first.
    pub fn start(c: &TestCluster, configure: impl FnOnce(&mut rkube_controllers::Config)) -> Result<Self> {
        let mut config = rkube_controllers::Config::new(Some(c.kubeconfig()));
        config.root_ca = Some(std::fs::read_to_string(c.data_dir().join("pki/ca.crt"))?);
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
/// that is not Ready as Running and Ready, and records the most pods (not
/// being deleted) seen at once. Stops when dropped.
pub struct FakeKubelet {
    task: tokio::task::JoinHandle<()>,
    max_pods: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl FakeKubelet {
    pub fn start(client: &Client, namespace: &str) -> FakeKubelet {
        Self::start_with(client, namespace, |_| true)
    }

    /// Like [`FakeKubelet::start`], marking only the pods `healthy` accepts
    /// (the others stay Pending, like pods whose image never starts).
    pub fn start_with(client: &Client, namespace: &str, healthy: fn(&Pod) -> bool) -> FakeKubelet {
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        let max_pods = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let max = max_pods.clone();
        let task = tokio::spawn(async move {
            loop {
                if let Ok(list) = pods.list(&Default::default()).await {
                    let live: Vec<&Pod> = list
                        .items
                        .iter()
                        .filter(|p| p.metadata.deletion_timestamp.is_none())
                        .collect();
                    max.fetch_max(live.len(), std::sync::atomic::Ordering::SeqCst);
                    for p in live {
                        let ready = p
                            .status
                            .as_ref()
                            .and_then(|s| s.conditions.as_ref())
                            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                        if !ready
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
        FakeKubelet { task, max_pods }
    }

    /// The most live pods seen at once.
    pub fn max_pods(&self) -> usize {
        self.max_pods.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Forgets the maximum so far.
    pub fn reset_max(&self) {
        self.max_pods.store(0, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for FakeKubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}
