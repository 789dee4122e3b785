//! Controller throughput (binary `bench-controllers`, run by
//! `hack/bench-controllers.sh` with the controller manager, the scheduler
//! and simulated nodes already running): creates D Deployments of R
//! replicas at once and watches their pods (and ReplicaSets) until all
//! D x R are Ready. Pod startup is reported as [`crate::pod_startup`]
//! defines it (the SLO's creationTimestamp -> Running, watch first seen ->
//! Running and Ready, Deployment create request -> Running and Ready),
//! with a per-stage timeline, and each cluster process's CPU ms per pod
//! and memory ([`crate::components`], `--component NAME=PID`).

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

use crate::components::{Component, ComponentClock, ComponentUsage, parse_component};
use crate::load::client;
use crate::load::watch_scan::Lines;
use crate::pod_startup::{PodStages, Stage, StartupFigures, Timeline};

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
    /// A cluster process to report CPU and memory of, `NAME=PID`
    /// (repeatable).
    #[arg(long = "component", value_parser = parse_component)]
    pub components: Vec<Component>,
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
    pub startup: StartupFigures,
    pub components: Vec<ComponentUsage>,
    pub timeline: Timeline,
}

impl Outcome {
    pub fn markdown(&self) -> String {
        format!(
            "| Deployments x replicas | pods Ready | creates took s | first create to last Ready s | pods Ready/s |\n\
             |---|---:|---:|---:|---:|\n\
             | {} x {} | {} | {:.1} | {:.1} | {:.0} |\n\n{}\n\n{}\n\nPer-stage timeline (cumulative counts, s from the first create):\n\n{}",
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
            self.startup.markdown(),
            crate::components::markdown(&self.components),
            self.timeline.markdown(25),
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

/// The name of the ReplicaSet a watch event adds.
fn added_replica_set(line: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Event {
        #[serde(rename = "type")]
        type_: String,
        object: Object,
    }
    #[derive(Deserialize)]
    struct Object {
        metadata: Meta,
    }
    #[derive(Deserialize)]
    struct Meta {
        name: String,
    }
    let ev: Event = serde_json::from_slice(line).ok()?;
    (ev.type_ == "ADDED").then_some(ev.object.metadata.name)
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
    let watch = |uri: String| {
        let client = client.clone();
        let params = format!("&timeoutSeconds={}", cfg.timeout_secs + 60);
        async move {
            let rv = client::current_resource_version(&client, &uri).await?;
            client::watch_raw(&client, &uri, &rv, &params).await
        }
    };
    let mut pod_body = watch(client::collection(&cfg.namespace, "pods")).await?;
    let mut rs_body = watch(format!("/apis/apps/v1/namespaces/{}/replicasets", cfg.namespace)).await?;

    let start = Instant::now();
    let clock = ComponentClock::start(&cfg.components);
    let (creator, created) = spawn_creates(
        &client,
        &cfg.namespace,
        cfg.deployments,
        cfg.replicas,
        cfg.concurrency,
        None,
    );

    let want = cfg.deployments * cfg.replicas;
    let mut stages = PodStages::new(start, want);
    let mut replica_sets: HashSet<String> = HashSet::with_capacity(cfg.deployments);
    let (mut pod_lines, mut rs_lines) = (Lines::default(), Lines::default());
    let mut rs_open = true;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(cfg.timeout_secs);
    let mut last_progress = Instant::now();
    // A failed create (say a 429) ends the run at once instead of waiting
    // out the deadline for pods that will never exist.
    let mut creator = creator;
    let mut create_secs = None;
    while stages.ready() < want {
        let chunk = tokio::select! {
            chunk = pod_body.next() => chunk,
            rs = rs_body.next(), if rs_open => {
                match rs {
                    Some(Ok(c)) => {
                        let at = Instant::now();
                        for line in rs_lines.push(c) {
                            if let Some(name) = added_replica_set(&line)
                                && replica_sets.insert(name)
                            {
                                stages.stage(Stage::ReplicaSetSeen, at);
                            }
                        }
                    }
                    // The timeline loses its ReplicaSet column; the run goes on.
                    _ => rs_open = false,
                }
                continue;
            }
            done = &mut creator, if create_secs.is_none() => {
                create_secs = Some(creator_result(done)?);
                continue;
            }
            _ = tokio::time::sleep_until(deadline) => break,
        };
        stages.observe_chunk(chunk, &mut pod_lines, &created)?;
        if last_progress.elapsed() >= Duration::from_secs(5) {
            last_progress = Instant::now();
            eprintln!("bench-controllers: {} of {want} pods Ready", stages.ready());
        }
    }
    let components = clock.stop(stages.ready());
    let create_secs = match create_secs {
        Some(secs) => secs,
        None => creator_result(creator.await)?,
    };
    if let Ok(times) = created.lock() {
        for t in times.iter().flatten() {
            stages.stage(Stage::DeploymentCreated, *t);
        }
    }
    let outcome = Outcome {
        deployments: cfg.deployments,
        replicas: cfg.replicas,
        ready: stages.ready(),
        total_secs: stages.last_ready_secs(),
        create_secs,
        startup: stages.figures(),
        components,
        timeline: stages.timeline().clone(),
    };
    if let Some(path) = &cfg.json {
        std::fs::write(path, serde_json::to_vec_pretty(&outcome)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if stages.ready() < want {
        bail!(
            "only {} of {want} pods were Ready within {} s\n{}",
            stages.ready(),
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
    fn added_replica_sets_are_recognised() {
        let added = br#"{"type":"ADDED","object":{"metadata":{"name":"d-3-abc"}}}"#;
        assert_eq!(added_replica_set(added), Some("d-3-abc".to_string()));
        let modified = br#"{"type":"MODIFIED","object":{"metadata":{"name":"d-3-abc"}}}"#;
        assert_eq!(added_replica_set(modified), None);
        assert_eq!(added_replica_set(b"garbage"), None);
    }
}
