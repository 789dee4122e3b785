//! Controller throughput (binary `bench-controllers`, run by
//! `hack/bench-controllers.sh` with the controller manager, the scheduler
//! and simulated nodes already running): creates D Deployments of R
//! replicas and watches their pods until all D x R are Ready. Per pod, the
//! latency is from just before its Deployment's create request to the pod
//! event that first shows it Ready (so it includes the Deployment and
//! ReplicaSet controllers, scheduling, and the simulated kubelet). Also
//! reports the controller manager's CPU and peak RSS when given its pid.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::load::client;
use crate::load::cpu::CpuClock;
use crate::load::latency::{LatencySummary, Recorder};
use crate::load::rss;
use crate::load::watch_scan::Lines;

#[derive(Debug, Clone, Parser)]
#[command(name = "bench-controllers", about = "Deployments to Ready pods, timed per pod")]
pub struct Config {
    /// Kubeconfig of the cluster.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Deployments to create.
    #[arg(long, default_value_t = 1000)]
    pub deployments: usize,
    /// Replicas of each.
    #[arg(long, default_value_t = 10)]
    pub replicas: usize,
    /// Deployment creates in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Namespace (created if missing).
    #[arg(long, default_value = "ctrl-bench")]
    pub namespace: String,
    /// The controller manager's pid, for its CPU and memory.
    #[arg(long)]
    pub controllers_pid: Option<u32>,
    /// Give up after this long.
    #[arg(long, default_value_t = 900)]
    pub timeout_secs: u64,
    /// Also write the result as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Load a server that is not on loopback.
    #[arg(long)]
    pub allow_remote: bool,
}

/// One run's result.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Outcome {
    pub deployments: usize,
    pub replicas: usize,
    pub ready: usize,
    /// First create to the last pod Ready.
    pub total_secs: f64,
    /// Creating all the Deployments.
    pub create_secs: f64,
    pub pod_ready: LatencySummary,
    pub controllers_cores: Option<f64>,
    pub controllers_peak_rss_mib: Option<f64>,
}

impl Outcome {
    pub fn markdown(&self) -> String {
        let opt = |v: Option<f64>, prec: usize| v.map_or("-".to_string(), |v| format!("{v:.prec$}"));
        format!(
            "| Deployments x replicas | pods Ready | creates took s | first create to last Ready s | pods Ready/s | pod Ready p50 / p99 / max ms | controller-manager CPU cores | controller-manager peak RSS MiB |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|\n\
             | {} x {} | {} | {:.1} | {:.1} | {:.0} | {:.0} / {:.0} / {:.0} | {} | {} |",
            self.deployments,
            self.replicas,
            self.ready,
            self.create_secs,
            self.total_secs,
            if self.total_secs > 0.0 {
                self.ready as f64 / self.total_secs
            } else {
                0.0
            },
            self.pod_ready.p50_ms,
            self.pod_ready.p99_ms,
            self.pod_ready.max_ms,
            opt(self.controllers_cores, 2),
            opt(self.controllers_peak_rss_mib, 1),
        )
    }
}

/// Deployment `d-<i>` with `replicas` pause pods (10m CPU, 16Mi).
pub fn deployment(i: usize, replicas: usize) -> Vec<u8> {
    let name = format!("d-{i}");
    let resources = serde_json::json!({"cpu": "10m", "memory": "16Mi"});
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{
                    "name": "pause",
                    "image": "registry.k8s.io/pause:3.10.1",
                    "resources": {"requests": resources, "limits": resources},
                }]},
            },
        },
    }))
    .unwrap_or_default()
}

/// What the watch reads of a pod.
#[derive(Deserialize)]
struct Event {
    object: PodView,
}

#[derive(Deserialize, Default)]
struct PodView {
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    status: Status,
}

#[derive(Deserialize, Default)]
struct Meta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    labels: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
struct Status {
    #[serde(default)]
    conditions: Vec<Condition>,
}

#[derive(Deserialize)]
struct Condition {
    #[serde(rename = "type")]
    type_: String,
    status: String,
}

/// Reads one pod event: the pod's name and its Deployment's index when it
/// is Ready.
fn ready_pod(line: &[u8]) -> Option<(String, usize)> {
    let ev: Event = serde_json::from_slice(line).ok()?;
    let pod = ev.object;
    let ready = pod
        .status
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    if !ready {
        return None;
    }
    let i = pod.metadata.labels.get("app")?.strip_prefix("d-")?.parse().ok()?;
    Some((pod.metadata.name, i))
}

pub async fn run(cfg: Config) -> anyhow::Result<Outcome> {
    if cfg.deployments == 0 || cfg.replicas == 0 {
        bail!("--deployments and --replicas must be positive");
    }
    let (client, server) = client::connect(cfg.kubeconfig.as_deref(), cfg.allow_remote).await?;
    eprintln!(
        "bench-controllers: {server}: {} Deployments x {} replicas",
        cfg.deployments, cfg.replicas
    );
    client::ensure_namespace(&client, &cfg.namespace).await?;
    let pods_uri = client::collection(&cfg.namespace, "pods");
    let rv = client::current_resource_version(&client, &pods_uri).await?;
    let mut body = client::watch_raw(
        &client,
        &pods_uri,
        &rv,
        &format!("&timeoutSeconds={}", cfg.timeout_secs + 60),
    )
    .await?;

    let start = Instant::now();
    let cpu = CpuClock::start(cfg.controllers_pid);
    let (creator, created) = spawn_creates(
        &client,
        &cfg.namespace,
        cfg.deployments,
        cfg.replicas,
        cfg.concurrency,
        None,
    );

    let want = cfg.deployments * cfg.replicas;
    let mut ready: HashSet<String> = HashSet::with_capacity(want);
    let mut latency = Recorder::new();
    let mut lines = Lines::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(cfg.timeout_secs);
    let mut last_progress = Instant::now();
    let mut last_ready = start;
    // A failed create (say a 429) ends the run at once instead of waiting
    // out the deadline for pods that will never exist.
    let mut creator = creator;
    let mut create_secs = None;
    while ready.len() < want {
        let chunk = tokio::select! {
            chunk = body.next() => chunk,
            done = &mut creator, if create_secs.is_none() => {
                create_secs = Some(creator_result(done)?);
                continue;
            }
            _ = tokio::time::sleep_until(deadline) => break,
        };
        let chunk = match chunk {
            Some(Ok(c)) => c,
            Some(Err(e)) => bail!("reading the pod watch: {e}"),
            None => bail!("the pod watch ended with {} pods Ready", ready.len()),
        };
        let at = Instant::now();
        for line in lines.push(chunk) {
            let Some((name, i)) = ready_pod(&line) else { continue };
            if ready.contains(&name) {
                continue;
            }
            let sent = created.lock().ok().and_then(|m| m.get(i).copied().flatten());
            if let Some(sent) = sent {
                latency.success(at.duration_since(sent));
            }
            ready.insert(name);
            last_ready = at;
        }
        if last_progress.elapsed() >= Duration::from_secs(5) {
            last_progress = Instant::now();
            eprintln!("bench-controllers: {} of {want} pods Ready", ready.len());
        }
    }
    let usage = cpu.stop();
    let create_secs = match create_secs {
        Some(secs) => secs,
        None => creator_result(creator.await)?,
    };
    let outcome = Outcome {
        deployments: cfg.deployments,
        replicas: cfg.replicas,
        ready: ready.len(),
        total_secs: last_ready.duration_since(start).as_secs_f64(),
        create_secs,
        pod_ready: latency.summary(),
        controllers_cores: usage.server_cores,
        controllers_peak_rss_mib: cfg.controllers_pid.and_then(rss::read).map(|m| rss::mib(m.hwm_kib)),
    };
    if let Some(path) = &cfg.json {
        std::fs::write(path, serde_json::to_vec_pretty(&outcome)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if ready.len() < want {
        bail!(
            "only {} of {want} pods were Ready within {} s\n{}",
            ready.len(),
            cfg.timeout_secs,
            outcome.markdown()
        );
    }
    Ok(outcome)
}

/// When each Deployment's create request was sent, by index.
pub type SendTimes = Arc<std::sync::Mutex<Vec<Option<Instant>>>>;

/// Creates Deployments `d-0..count` of `replicas` in `namespace` in a task
/// of their own, at most `concurrency` in flight and, with `rate`, at most
/// that many per second; the task ends with the seconds it took or the
/// first failed create. Their send times go into the returned list.
pub fn spawn_creates(
    client: &kube::Client,
    namespace: &str,
    count: usize,
    replicas: usize,
    concurrency: usize,
    rate: Option<f64>,
) -> (tokio::task::JoinHandle<anyhow::Result<f64>>, SendTimes) {
    let created: SendTimes = Arc::new(std::sync::Mutex::new(vec![None; count]));
    let start = Instant::now();
    let (client, times) = (client.clone(), created.clone());
    let uri = format!("/apis/apps/v1/namespaces/{namespace}/deployments");
    let task = tokio::spawn(async move {
        let gate = Arc::new(Semaphore::new(concurrency.max(1)));
        let mut tick = rate.map(|r| tokio::time::interval(Duration::from_secs_f64(1.0 / r)));
        let mut tasks = JoinSet::new();
        for i in 0..count {
            if let Some(t) = tick.as_mut() {
                t.tick().await;
            }
            let permit = gate.clone().acquire_owned().await?;
            let (c, u, times) = (client.clone(), uri.clone(), times.clone());
            let body = deployment(i, replicas);
            tasks.spawn(async move {
                if let Ok(mut m) = times.lock()
                    && let Some(slot) = m.get_mut(i)
                {
                    *slot = Some(Instant::now());
                }
                let res = client::create(&c, &u, body, false).await;
                drop(permit);
                res.map_err(|e| anyhow::anyhow!("creating d-{i}: {e}"))
            });
            while let Some(done) = tasks.try_join_next() {
                done??;
            }
        }
        while let Some(done) = tasks.join_next().await {
            done??;
        }
        anyhow::Ok(start.elapsed().as_secs_f64())
    });
    (task, created)
}

/// The creating task's outcome: its duration, or why it failed.
pub fn creator_result(done: Result<anyhow::Result<f64>, tokio::task::JoinError>) -> anyhow::Result<f64> {
    match done {
        Ok(r) => r,
        Err(e) => bail!("the creating task failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;

    #[test]
    fn deployments_are_valid() {
        let d: Deployment = serde_json::from_slice(&deployment(7, 10)).unwrap();
        assert_eq!(d.metadata.name.as_deref(), Some("d-7"));
        assert_eq!(d.spec.unwrap().replicas, Some(10));
    }

    #[test]
    fn ready_pods_are_recognised() {
        let ready = br#"{"type":"MODIFIED","object":{"metadata":{"name":"d-3-abc","labels":{"app":"d-3"}},"status":{"conditions":[{"type":"PodScheduled","status":"True"},{"status":"True","type":"Ready"}]}}}"#;
        assert_eq!(ready_pod(ready), Some(("d-3-abc".to_string(), 3)));
        let not_ready = br#"{"type":"MODIFIED","object":{"metadata":{"name":"d-3-abc","labels":{"app":"d-3"}},"status":{"conditions":[{"type":"Ready","status":"False"}]}}}"#;
        assert_eq!(ready_pod(not_ready), None);
        let other = br#"{"type":"MODIFIED","object":{"metadata":{"name":"x","labels":{"app":"web"}},"status":{"conditions":[{"type":"Ready","status":"True"}]}}}"#;
        assert_eq!(ready_pod(other), None);
        assert_eq!(ready_pod(b"garbage"), None);
    }
}
