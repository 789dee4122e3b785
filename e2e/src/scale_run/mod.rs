//! The cluster scale run (binary `bench-scale`, run by
//! `hack/bench-scale.sh` with the controller manager, the scheduler and
//! simulated nodes already running), after cluster-loader2's load test:
//! Deployments are created at a fixed rate (10/s x 10 replicas = 100 pods/s
//! by default) while one watch follows every pod of the namespace.
//!
//! Measured, against the SLOs upstream publishes for it:
//! - pod startup latency as [`crate::pod_startup`] defines it (the SLO's
//!   creationTimestamp -> Running seen, SLO p99 <= 5 s; watch first seen
//!   -> Running and Ready; Deployment create request -> Running and
//!   Ready), with a per-stage timeline;
//! - API call latency: p99 per verb from the apiserver's request duration
//!   histograms over the run (see [`api_latency`]), SLO p99 <= 1 s.
//!
//! - each cluster process's CPU ms per pod and memory
//!   ([`crate::components`], `--component NAME=PID`).
//!
//! Deployments come from [`crate::ctrl_bench::deployment`].

pub mod api_latency;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::components::{Component, ComponentClock, ComponentUsage, parse_component};
use crate::ctrl_bench::{creator_result, spawn_creates};
use crate::load::client;
use crate::load::watch_scan::Lines;
use crate::pod_startup::{PodStages, Stage, StartupFigures, Timeline};
use api_latency::{Histograms, VerbLatency};

/// Pod startup SLO: p99 within 5 s.
pub const POD_STARTUP_SLO_MS: f64 = 5000.0;
/// API call SLO: p99 within 1 s per verb (and resource).
pub const API_CALL_SLO_MS: f64 = 1000.0;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "bench-scale",
    about = "cluster-loader2-style load: Deployments at a fixed rate, pod startup and API latency"
)]
pub struct Config {
    /// Kubeconfig of the cluster.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Deployments to create.
    #[arg(long, default_value_t = 3000)]
    pub deployments: usize,
    /// Replicas of each.
    #[arg(long, default_value_t = 10)]
    pub replicas: usize,
    /// Deployment creates per second.
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// Creates in flight at most (the rate drops if they are slower).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Simulated nodes in the cluster (reported only).
    #[arg(long, default_value_t = 0)]
    pub nodes: usize,
    /// Namespace (created if missing).
    #[arg(long, default_value = "scale-run")]
    pub namespace: String,
    /// Give up this long after the last create.
    #[arg(long, default_value_t = 600)]
    pub settle_secs: u64,
    /// A cluster process to report CPU and memory of, `NAME=PID`
    /// (repeatable).
    #[arg(long = "component", value_parser = parse_component)]
    pub components: Vec<Component>,
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
    pub nodes: usize,
    pub deployments: usize,
    pub replicas: usize,
    pub running: usize,
    /// Creating all the Deployments.
    pub create_secs: f64,
    /// First create to the last pod Running.
    pub total_secs: f64,
    pub startup: StartupFigures,
    pub api: Vec<VerbLatency>,
    pub components: Vec<ComponentUsage>,
    pub timeline: Timeline,
}

fn slo(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

impl Outcome {
    /// Whether every pod became Running (an incomplete run still reports
    /// its figures).
    pub fn complete(&self) -> bool {
        self.running >= self.deployments * self.replicas
    }

    pub fn markdown(&self) -> String {
        let pods = self.deployments * self.replicas;
        let slo_p99 = self.startup.slo.p99_ms;
        let mut out = format!(
            "| nodes | Deployments x replicas | pods Running | create rate pods/s | creates took s | first create to last Running s | pod startup SLO p99 ms | SLO p99 <= 5 s |\n\
             |---:|---|---:|---:|---:|---:|---:|---|\n\
             | {} | {} x {} | {} of {} | {:.0} | {:.1} | {:.1} | {:.0} | {} |\n\n{}\n\n",
            self.nodes,
            self.deployments,
            self.replicas,
            self.running,
            pods,
            if self.create_secs > 0.0 {
                pods as f64 / self.create_secs
            } else {
                0.0
            },
            self.create_secs,
            self.total_secs,
            slo_p99,
            slo(self.running == pods && slo_p99 <= POD_STARTUP_SLO_MS),
            self.startup.markdown(),
        );
        out.push_str(
            "| verb | requests | p99 ms (all resources) | worst resource | its p99 ms | SLO p99 <= 1 s |\n|---|---:|---:|---|---:|---|\n",
        );
        for v in &self.api {
            out.push_str(&format!(
                "| {} | {} | {:.0} | {} | {:.0} | {} |\n",
                v.verb,
                v.requests,
                v.p99_ms,
                v.worst_resource,
                v.worst_p99_ms,
                slo(v.worst_p99_ms <= API_CALL_SLO_MS)
            ));
        }
        out.push('\n');
        out.push_str(&crate::components::markdown(&self.components));
        out.push_str("\n\nPer-stage timeline (cumulative counts, s from the first create):\n\n");
        out.push_str(&self.timeline.markdown(25));
        out.trim_end().to_string()
    }
}

async fn scrape(client: &kube::Client) -> anyhow::Result<Histograms> {
    let req = http::Request::get("/metrics")
        .header(http::header::ACCEPT, "text/plain")
        .body(Vec::new())?;
    let body = client::send(client, req)
        .await
        .0
        .map_err(|e| anyhow::anyhow!("reading the apiserver's /metrics: {e}"))?;
    Ok(Histograms::parse(&String::from_utf8_lossy(&body)))
}

pub async fn run(cfg: Config) -> anyhow::Result<Outcome> {
    if cfg.deployments == 0 || cfg.replicas == 0 || cfg.rate <= 0.0 || !cfg.rate.is_finite() {
        bail!("--deployments, --replicas and --rate must be positive");
    }
    let (client, server) = client::connect(cfg.kubeconfig.as_deref(), cfg.allow_remote).await?;
    eprintln!(
        "bench-scale: {server}: {} Deployments x {} replicas at {} Deployments/s",
        cfg.deployments, cfg.replicas, cfg.rate
    );
    client::ensure_namespace(&client, &cfg.namespace).await?;
    let pods_uri = client::collection(&cfg.namespace, "pods");
    let rv = client::current_resource_version(&client, &pods_uri).await?;
    let mut body = client::watch_raw(&client, &pods_uri, &rv, "&allowWatchBookmarks=true").await?;
    let before = scrape(&client).await?;

    // Creates are paced at the rate in their own task.
    let start = Instant::now();
    let clock = ComponentClock::start(&cfg.components);
    let (creator, created) = spawn_creates(
        &client,
        &cfg.namespace,
        cfg.deployments,
        cfg.replicas,
        cfg.concurrency,
        Some(cfg.rate),
    );

    let want = cfg.deployments * cfg.replicas;
    let mut stages = PodStages::new(start, want);
    let mut lines = Lines::default();
    let create_budget = Duration::from_secs_f64(cfg.deployments as f64 / cfg.rate);
    let deadline = tokio::time::Instant::now() + create_budget * 2 + Duration::from_secs(cfg.settle_secs);
    let mut last_progress = Instant::now();
    while stages.running() < want {
        let chunk = tokio::select! {
            chunk = body.next() => chunk,
            _ = tokio::time::sleep_until(deadline) => break,
        };
        stages.observe_chunk(chunk, &mut lines, &created)?;
        if last_progress.elapsed() >= Duration::from_secs(10) {
            last_progress = Instant::now();
            eprintln!(
                "bench-scale: {:.0} s: {} pods seen, {} of {want} Running",
                start.elapsed().as_secs_f64(),
                stages.seen(),
                stages.running()
            );
        }
    }
    let components = clock.stop(stages.running());
    let create_secs = creator_result(creator.await)?;
    if let Ok(times) = created.lock() {
        for t in times.iter().flatten() {
            stages.stage(Stage::DeploymentCreated, *t);
        }
    }
    let after = scrape(&client).await?;
    let outcome = Outcome {
        nodes: cfg.nodes,
        deployments: cfg.deployments,
        replicas: cfg.replicas,
        running: stages.running(),
        create_secs,
        total_secs: stages.last_running_secs(),
        startup: stages.figures(),
        components,
        timeline: stages.timeline().clone(),
        api: after.since(&before).by_verb(),
    };
    if let Some(path) = &cfg.json {
        std::fs::write(path, serde_json::to_vec_pretty(&outcome)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn the_report_marks_missed_slos() {
        let mut o = Outcome {
            nodes: 2,
            deployments: 1,
            replicas: 2,
            running: 2,
            create_secs: 1.0,
            total_secs: 2.0,
            startup: StartupFigures {
                slo: crate::load::latency::LatencySummary {
                    p50_ms: 100.0,
                    p99_ms: 6000.0,
                    max_ms: 7000.0,
                    mean_ms: 1.0,
                },
                ..StartupFigures::default()
            },
            ..Outcome::default()
        };
        o.api.push(VerbLatency {
            verb: "POST".into(),
            requests: 3,
            p99_ms: 10.0,
            worst_resource: "pods".into(),
            worst_p99_ms: 20.0,
        });
        let md = o.markdown();
        assert!(md.contains("| 6000 | MISSED |"), "{md}");
        assert!(
            md.contains("| SLO: creationTimestamp (whole s) -> Running seen | 100 | 6000 | 7000 |"),
            "{md}"
        );
        assert!(md.contains("| POST | 3 | 10 | pods | 20 | met |"), "{md}");
    }

    #[test]
    fn a_run_is_complete_once_every_pod_runs() {
        let mut o = Outcome {
            deployments: 3,
            replicas: 2,
            running: 5,
            ..Outcome::default()
        };
        assert!(!o.complete());
        o.running = 6;
        assert!(o.complete());
    }
}
