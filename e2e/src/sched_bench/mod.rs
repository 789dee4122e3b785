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
//!
//! The `deploy` workload also creates the pods' ReplicaSets first, so the
//! scheduler applies the system default spread constraints with one new
//! selector per ten pods, as in the cluster scale run. For every workload
//! the scheduler's CPU time per pod is reported for the first and the last
//! third of the binds (from the first bind on, so the informers' initial
//! list is not in it): whether a pod costs more as the cluster fills.

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

pub use objects::{PODS_PER_REPLICA_SET, Workload, node, pod, replica_set, replica_set_name};

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
    /// Scheduler CPU ms per pod over the first third of the binds (from
    /// the first bind).
    pub cpu_ms_per_pod_first_third: Option<f64>,
    /// Scheduler CPU ms per pod over the last third of the binds.
    pub cpu_ms_per_pod_last_third: Option<f64>,
    pub setup_secs: f64,
}

impl Result_ {
    pub fn markdown_header() -> &'static str {
        "| run | workload | nodes | pods | bound | start to first bind s | first to last bind s | pods/s | scheduler CPU cores | CPU ms/pod first third | CPU ms/pod last third | scheduler peak RSS MiB |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    }

    pub fn markdown_row(&self) -> String {
        let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
        format!(
            "| {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.0} | {} | {} | {} | {} |",
            self.label,
            self.workload,
            self.nodes,
            self.pods,
            self.bound,
            self.first_bind_secs,
            self.bind_secs,
            self.pods_per_sec,
            opt(self.scheduler_cores),
            opt(self.cpu_ms_per_pod_first_third),
            opt(self.cpu_ms_per_pod_last_third),
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
    /// Scheduler CPU seconds read at the first bind and when a third, two
    /// thirds and all of the pods were bound.
    cpu_marks: [Option<f64>; 4],
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
            cpu_marks: [None; 4],
            first: None,
            last: None,
            name: Field::new("name"),
            node_name: Field::new("nodeName"),
        }
    }

    /// Which CPU mark is due after the bind that made `bound` (1-based):
    /// 0 at the first bind, then 1, 2, 3 at a third, two thirds and all.
    fn mark_due(&self) -> Option<usize> {
        let n = self.seen.len();
        let b = self.bound;
        if b == 1 {
            return Some(0);
        }
        (1..=3).find(|k| b == (n * k).div_ceil(3) && self.cpu_marks[*k].is_none())
    }

    /// Records the scheduler's CPU seconds for the mark due, if any.
    fn mark(&mut self, cpu_secs: impl FnOnce() -> Option<f64>) {
        if let Some(k) = self.mark_due()
            && self.cpu_marks[k].is_none()
        {
            self.cpu_marks[k] = cpu_secs();
        }
    }

    /// CPU ms per pod from mark `a` to mark `b` (pods bound in between).
    fn cpu_ms_per_pod(&self, a: usize, b: usize) -> Option<f64> {
        let n = self.seen.len();
        let at = |k: usize| if k == 0 { 1 } else { (n * k).div_ceil(3) };
        let pods = at(b).checked_sub(at(a)).filter(|p| *p > 0)?;
        Some((self.cpu_marks[b]? - self.cpu_marks[a]?) * 1000.0 / pods as f64)
    }

    /// Reads one watch line (a pod event) received at `at`.
    fn line(&mut self, line: &Bytes, at: Instant) -> bool {
        if self.node_name.value(line).is_none_or(<[u8]>::is_empty) {
            return false;
        }
        let Some(i) = self
            .name
            .value(line)
            .and_then(|n| n.strip_prefix(b"pod-"))
            .and_then(|n| std::str::from_utf8(n).ok()?.parse::<usize>().ok())
        else {
            return false;
        };
        if let Some(s) = self.seen.get_mut(i)
            && !*s
        {
            *s = true;
            self.bound += 1;
            self.first.get_or_insert(at);
            self.last = Some(at);
            return true;
        }
        false
    }
}

/// utime + stime of process `pid` in seconds.
fn cpu_secs(pid: u32) -> Option<f64> {
    crate::load::cpu::parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Creates `count` ReplicaSets (none of their pods) and returns their UIDs
/// by index, for the pods' owner references.
async fn replica_sets(client: &kube::Client, namespace: &str, count: usize) -> anyhow::Result<Vec<String>> {
    let uri = format!("/apis/apps/v1/namespaces/{namespace}/replicasets");
    create_all(client, "replicasets", &uri, (0..count).map(replica_set).collect()).await?;
    let req = client::request_json(http::Method::GET, &uri, Vec::new())?;
    let body = client::send(client, req)
        .await
        .0
        .map_err(|e| anyhow::anyhow!("listing replicasets: {e}"))?;
    let list: k8s_openapi::List<k8s_openapi::api::apps::v1::ReplicaSet> =
        serde_json::from_slice(&body).context("decoding the replicaset list")?;
    let uids: std::collections::HashMap<String, String> = list
        .items
        .into_iter()
        .filter_map(|rs| Some((rs.metadata.name?, rs.metadata.uid?)))
        .collect();
    (0..count)
        .map(|i| {
            let name = replica_set_name(i);
            uids.get(&name)
                .cloned()
                .with_context(|| format!("replicaset {name} is not in the list"))
        })
        .collect()
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
    let owners = if cfg.workload == Workload::Deploy {
        replica_sets(&client, &cfg.namespace, cfg.pods.div_ceil(PODS_PER_REPLICA_SET)).await?
    } else {
        Vec::new()
    };
    let pods_uri = client::collection(&cfg.namespace, "pods");
    let pods = (0..cfg.pods)
        .map(|i| {
            let owner = owners.get(i / PODS_PER_REPLICA_SET).map(String::as_str);
            pod(i, cfg.workload, &cfg.namespace, owner)
        })
        .collect();
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
            if counter.line(&line, at) {
                counter.mark(|| pid.and_then(cpu_secs));
            }
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
        cpu_ms_per_pod_first_third: counter.cpu_ms_per_pod(0, 1),
        cpu_ms_per_pod_last_third: counter.cpu_ms_per_pod(2, 3),
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
        assert!(!c.line(&pending, t0));
        assert_eq!(c.bound, 0);
        assert!(c.line(&bound, t0));
        assert!(!c.line(&bound, t0 + Duration::from_secs(1)));
        assert!(!c.line(&other, t0));
        assert!(!c.line(&out_of_range, t0));
        assert_eq!(c.bound, 1);
        assert_eq!(c.first, Some(t0));
        assert_eq!(c.last, Some(t0));
    }

    #[test]
    fn cpu_per_pod_is_taken_over_the_first_and_last_thirds() {
        let mut c = BindCounter::new(7);
        // Marks at binds 1, 3 (7/3 rounded up), 5 and 7.
        let mut cpu = 10.0;
        let mut marked = Vec::new();
        for i in 0..7 {
            let line = Bytes::from(format!(
                r#"{{"type":"MODIFIED","object":{{"metadata":{{"name":"pod-{i:06}"}},"spec":{{"nodeName":"n"}}}}}}"#
            ));
            assert!(c.line(&line, Instant::now()));
            cpu += 0.01 * (i + 1) as f64;
            let bound = c.bound;
            c.mark(|| {
                marked.push(bound);
                Some(cpu)
            });
        }
        assert_eq!(marked, [1, 3, 5, 7]);
        // First third: binds 1 -> 3 used 0.02 + 0.03 s for 2 pods.
        let first = c.cpu_ms_per_pod(0, 1).unwrap();
        assert!((first - 25.0).abs() < 1e-9, "{first}");
        // Last third: binds 5 -> 7 used 0.06 + 0.07 s for 2 pods.
        let last = c.cpu_ms_per_pod(2, 3).unwrap();
        assert!((last - 65.0).abs() < 1e-9, "{last}");
        // Too few pods for thirds: no figure rather than a division by 0.
        let mut one = BindCounter::new(1);
        one.bound = 1;
        one.mark(|| Some(1.0));
        assert_eq!(one.cpu_ms_per_pod(0, 1), None);
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
