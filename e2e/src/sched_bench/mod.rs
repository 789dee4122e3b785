//! Scheduler throughput in the style of upstream's `scheduler_perf`
//! (binary `bench-scheduler`, run by `hack/bench-scheduler.sh`).
//!
//! Against any API server behind a kubeconfig: registers N Nodes of
//! scheduler_perf's default shape (4 CPUs, 32 GiB, 110 pods; a hostname and
//! one of ten zones as labels), creates P pending pods of the chosen
//! workload, then starts the scheduler binary given and counts binds on a
//! watch. Throughput is binds from the first to the last one, divided by
//! that time. The scheduler is started only once everything exists, so
//! its informer sync is not in the figure but every pod is waiting, as in
//! the issue's reference run ("10,000 pending pods, then ...").

mod objects;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::load::client;
use crate::load::cpu::CpuClock;
use crate::load::rss;
use crate::load::watch_scan::{Field, Lines};

pub use objects::{Workload, node, pod};

/// Creates in flight at once while setting up.
const SETUP_CONCURRENCY: usize = 64;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "bench-scheduler",
    about = "scheduler_perf-style scheduler throughput against an API server"
)]
pub struct Config {
    /// Kubeconfig of the cluster (its credentials must create Nodes and Pods).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Nodes to register.
    #[arg(long, default_value_t = 1000)]
    pub nodes: usize,
    /// Pending pods to schedule.
    #[arg(long, default_value_t = 10_000)]
    pub pods: usize,
    /// Pod shape: scheduler_perf's pod-default, pod-with-pod-anti-affinity
    /// (one per node) or pod-with-topology-spreading (maxSkew 5 over zones).
    #[arg(long, value_enum, default_value_t = Workload::Basic)]
    pub workload: Workload,
    /// The scheduler binary to start once nodes and pods exist; it gets
    /// `--kubeconfig` and the `--scheduler-arg`s.
    #[arg(long)]
    pub scheduler_bin: PathBuf,
    /// Extra arguments for the scheduler (repeat).
    #[arg(long = "scheduler-arg", allow_hyphen_values = true)]
    pub scheduler_args: Vec<String>,
    /// Where the scheduler's log goes.
    #[arg(long, default_value = "scheduler.log")]
    pub scheduler_log: PathBuf,
    /// Namespace of the pods (created if missing).
    #[arg(long, default_value = "sched-bench")]
    pub namespace: String,
    /// Give up after this long from the scheduler's start.
    #[arg(long, default_value_t = 900)]
    pub timeout_secs: u64,
    /// Label of the result row.
    #[arg(long, default_value = "rkube")]
    pub label: String,
    /// Also write the result as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Load a server that is not on loopback.
    #[arg(long)]
    pub allow_remote: bool,
}

/// One run's result.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Result_ {
    pub label: String,
    pub workload: String,
    pub nodes: usize,
    pub pods: usize,
    pub bound: usize,
    /// From the scheduler's start to the first bind.
    pub first_bind_secs: f64,
    /// From the first bind to the last.
    pub bind_secs: f64,
    pub pods_per_sec: f64,
    pub scheduler_cores: Option<f64>,
    pub scheduler_peak_rss_mib: Option<f64>,
    pub setup_secs: f64,
}

impl Result_ {
    pub fn markdown_header() -> &'static str {
        "| run | workload | nodes | pods | bound | start to first bind s | first to last bind s | pods/s | scheduler CPU cores | scheduler peak RSS MiB |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    }

    pub fn markdown_row(&self) -> String {
        let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
        format!(
            "| {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.0} | {} | {} |",
            self.label,
            self.workload,
            self.nodes,
            self.pods,
            self.bound,
            self.first_bind_secs,
            self.bind_secs,
            self.pods_per_sec,
            opt(self.scheduler_cores),
            self.scheduler_peak_rss_mib.map_or("-".into(), |v| format!("{v:.1}")),
        )
    }
}

/// Creates `bodies` at `uri` with SETUP_CONCURRENCY requests in flight.
async fn create_all(client: &kube::Client, what: &str, uri: &str, bodies: Vec<Vec<u8>>) -> anyhow::Result<()> {
    let total = bodies.len();
    let gate = Arc::new(Semaphore::new(SETUP_CONCURRENCY));
    let mut tasks = JoinSet::new();
    let mut last = Instant::now();
    for (i, body) in bodies.into_iter().enumerate() {
        let permit = gate.clone().acquire_owned().await?;
        let (c, u) = (client.clone(), uri.to_string());
        tasks.spawn(async move {
            let res = client::create(&c, &u, body, true).await;
            drop(permit);
            res
        });
        while let Some(done) = tasks.try_join_next() {
            done?.map_err(|e| anyhow::anyhow!("creating {what}: {e}"))?;
        }
        if last.elapsed() >= Duration::from_secs(5) {
            last = Instant::now();
            eprintln!("bench-scheduler: {i} of {total} {what} created");
        }
    }
    while let Some(done) = tasks.join_next().await {
        done?.map_err(|e| anyhow::anyhow!("creating {what}: {e}"))?;
    }
    Ok(())
}

/// Counts first binds of `pod-<i>` seen on a pod watch.
struct BindCounter {
    seen: Vec<bool>,
    bound: usize,
    first: Option<Instant>,
    last: Option<Instant>,
    name: Field,
    node_name: Field,
}

impl BindCounter {
    fn new(pods: usize) -> BindCounter {
        BindCounter {
            seen: vec![false; pods],
            bound: 0,
            first: None,
            last: None,
            name: Field::new("name"),
            node_name: Field::new("nodeName"),
        }
    }

    /// Reads one watch line (a pod event) received at `at`.
    fn line(&mut self, line: &Bytes, at: Instant) {
        if self.node_name.value(line).is_none_or(<[u8]>::is_empty) {
            return;
        }
        let Some(i) = self
            .name
            .value(line)
            .and_then(|n| n.strip_prefix(b"pod-"))
            .and_then(|n| std::str::from_utf8(n).ok()?.parse::<usize>().ok())
        else {
            return;
        };
        if let Some(s) = self.seen.get_mut(i)
            && !*s
        {
            *s = true;
            self.bound += 1;
            self.first.get_or_insert(at);
            self.last = Some(at);
        }
    }
}

pub async fn run(cfg: Config) -> anyhow::Result<Result_> {
    if cfg.pods == 0 || cfg.nodes == 0 {
        bail!("--nodes and --pods must be positive");
    }
    if cfg.workload == Workload::AntiAffinity && cfg.pods > cfg.nodes {
        bail!("with --workload anti-affinity at most one pod fits a node: --pods must not exceed --nodes");
    }
    let (client, server) = client::connect(cfg.kubeconfig.as_deref(), cfg.allow_remote).await?;
    eprintln!(
        "bench-scheduler: {server}: {} nodes, {} {:?} pods",
        cfg.nodes, cfg.pods, cfg.workload
    );
    let setup = Instant::now();
    client::ensure_namespace(&client, &cfg.namespace).await?;
    let nodes = (0..cfg.nodes).map(node).collect();
    create_all(&client, "nodes", "/api/v1/nodes", nodes).await?;
    let pods_uri = client::collection(&cfg.namespace, "pods");
    let pods = (0..cfg.pods).map(|i| pod(i, cfg.workload, &cfg.namespace)).collect();
    create_all(&client, "pods", &pods_uri, pods).await?;
    let setup_secs = setup.elapsed().as_secs_f64();
    eprintln!("bench-scheduler: set up in {setup_secs:.1} s");

    // The watch starts before the scheduler so that no bind is missed.
    let rv = client::current_resource_version(&client, &pods_uri).await?;
    let mut body = client::watch_raw(
        &client,
        &pods_uri,
        &rv,
        &format!("&timeoutSeconds={}", cfg.timeout_secs + 60),
    )
    .await?;

    let log = std::fs::File::create(&cfg.scheduler_log)
        .with_context(|| format!("creating {}", cfg.scheduler_log.display()))?;
    let kubeconfig = cfg
        .kubeconfig
        .clone()
        .context("--kubeconfig is needed to start the scheduler")?;
    let mut scheduler = tokio::process::Command::new(&cfg.scheduler_bin)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(&cfg.scheduler_args)
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", cfg.scheduler_bin.display()))?;
    let pid = scheduler.id();
    let started = Instant::now();
    let cpu = CpuClock::start(pid);
    eprintln!("bench-scheduler: scheduler started (pid {pid:?})");

    let mut counter = BindCounter::new(cfg.pods);
    let mut lines = Lines::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(cfg.timeout_secs);
    let mut last_progress = Instant::now();
    while counter.bound < cfg.pods {
        let chunk = tokio::select! {
            chunk = body.next() => chunk,
            _ = tokio::time::sleep_until(deadline) => break,
            exit = scheduler.wait() => bail!("the scheduler exited early: {exit:?} (see {})", cfg.scheduler_log.display()),
        };
        let chunk = match chunk {
            Some(Ok(c)) => c,
            Some(Err(e)) => bail!("reading the pod watch: {e}"),
            None => bail!("the pod watch ended after {} binds", counter.bound),
        };
        let at = Instant::now();
        for line in lines.push(chunk) {
            counter.line(&line, at);
        }
        if last_progress.elapsed() >= Duration::from_secs(5) {
            last_progress = Instant::now();
            eprintln!("bench-scheduler: {} of {} pods bound", counter.bound, cfg.pods);
        }
    }
    let usage = cpu.stop();
    let peak = pid.and_then(rss::read).map(|m| rss::mib(m.hwm_kib));
    let _ = scheduler.kill().await;

    let bind_secs = match (counter.first, counter.last) {
        (Some(f), Some(l)) => l.duration_since(f).as_secs_f64(),
        _ => 0.0,
    };
    let result = Result_ {
        label: cfg.label.clone(),
        workload: cfg.workload.name().to_string(),
        nodes: cfg.nodes,
        pods: cfg.pods,
        bound: counter.bound,
        first_bind_secs: counter.first.map_or(0.0, |f| f.duration_since(started).as_secs_f64()),
        bind_secs,
        pods_per_sec: if bind_secs > 0.0 {
            (counter.bound.saturating_sub(1)) as f64 / bind_secs
        } else {
            0.0
        },
        scheduler_cores: usage.server_cores,
        scheduler_peak_rss_mib: peak,
        setup_secs,
    };
    if let Some(path) = &cfg.json {
        std::fs::write(path, serde_json::to_vec_pretty(&result)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if counter.bound < cfg.pods {
        bail!(
            "only {} of {} pods were bound in {} s\n{}",
            counter.bound,
            cfg.pods,
            cfg.timeout_secs,
            result.markdown_row()
        );
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn counts_first_binds_only() {
        let mut c = BindCounter::new(3);
        let t0 = Instant::now();
        let pending = Bytes::from_static(
            br#"{"type":"ADDED","object":{"metadata":{"name":"pod-1"},"spec":{"containers":[{"name":"pause"}]}}}"#,
        );
        let bound = Bytes::from_static(br#"{"type":"MODIFIED","object":{"metadata":{"name":"pod-1"},"spec":{"nodeName":"n-3","containers":[{"name":"pause"}]}}}"#);
        let other = Bytes::from_static(
            br#"{"type":"MODIFIED","object":{"metadata":{"name":"web-1"},"spec":{"nodeName":"n-3"}}}"#,
        );
        let out_of_range = Bytes::from_static(
            br#"{"type":"MODIFIED","object":{"metadata":{"name":"pod-7"},"spec":{"nodeName":"n-3"}}}"#,
        );
        c.line(&pending, t0);
        assert_eq!(c.bound, 0);
        c.line(&bound, t0);
        c.line(&bound, t0 + Duration::from_secs(1));
        c.line(&other, t0);
        c.line(&out_of_range, t0);
        assert_eq!(c.bound, 1);
        assert_eq!(c.first, Some(t0));
        assert_eq!(c.last, Some(t0));
    }

    #[test]
    fn rows_render() {
        let r = Result_ {
            label: "rkube".into(),
            workload: "basic".into(),
            nodes: 1000,
            pods: 10,
            bound: 10,
            bind_secs: 0.5,
            pods_per_sec: 18.0,
            ..Default::default()
        };
        let row = r.markdown_row();
        assert!(row.starts_with("| rkube | basic | 1000 | 10 | 10 |"), "{row}");
        assert_eq!(
            Result_::markdown_header().lines().next().unwrap().matches('|').count(),
            row.matches('|').count()
        );
    }
}
