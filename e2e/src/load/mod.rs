//! The API load tool behind `kube-load` and `hack/bench-api.sh`: load on
//! any Kubernetes API server reached through a kubeconfig (rkube's or an
//! upstream kube-apiserver), JSON over HTTPS through kube-rs.
//!
//! Scenarios ([`config::Scenario`]), in the order `--scenario all` runs
//! them:
//!
//! - **create-configmaps**, **create-pods**: N closed-loop clients POST new
//!   objects (~0.5 KiB ConfigMaps, ~2 KiB Pods);
//! - **get**: `--objects` ConfigMaps are made sure to exist, then N clients
//!   GET random ones by name;
//! - **update**: N clients PUT their own objects with the last
//!   resourceVersion as precondition;
//! - **list**: the namespace is filled to `--objects` Pods, then full and
//!   paginated LISTs are timed;
//! - **watch**: M watchers while ConfigMaps are created at R/s: events
//!   delivered per watcher versus expected, delivery latency, re-watches.
//!
//! Each request measurement reports ops/s and p50/p99/max latency (HDR
//! histogram) and errors by kind; with `--server-pid`, the server's peak
//! VmRSS during it. Progress goes to stderr, the markdown table to stdout.
//!
//! Code map: [`config`] (flags), [`client`] (connection, loopback guard,
//! raw JSON requests), [`objects`] (request bodies), [`latency`]
//! (histograms and errors), [`closed_loop`] (N clients under a budget), [`cpu`] (CPU use),
//! [`crud`], [`list`], [`watch`] (the scenarios), [`rss`] (server memory),
//! [`report`] (markdown and JSON).
//!
//! Bounds: every request times out ([`config::REQUEST_TIMEOUT`]), every
//! measurement has a count or a duration, the watch scenario has setup and
//! drain deadlines; the server must be on loopback unless `--allow-remote`.

pub mod client;
pub mod closed_loop;
pub mod config;
pub mod cpu;
pub mod crud;
pub mod latency;
pub mod list;
pub mod objects;
pub mod report;
pub mod rss;
pub mod watch;
pub mod watch_scan;

use std::time::Duration;

pub use config::{Budget, LoadConfig, Scenario};
pub use report::Report;

use self::rss::{RssMonitor, mib};

/// Concurrent creators used to preload objects for get, update and list.
pub const PRELOAD_CLIENTS: usize = 32;

/// What a scenario needs: the client and the measurement's parameters.
#[derive(Clone)]
pub struct Ctx {
    pub client: kube::Client,
    pub namespace: String,
    /// Short id of this run, in the names of the objects it creates.
    pub run: String,
    pub clients: usize,
    pub budget: Budget,
    pub page_size: u32,
    pub watchers: usize,
    pub event_rate: f64,
    pub drain: Duration,
    /// The server's PID, for CPU and memory figures.
    pub server_pid: Option<u32>,
    /// create-pods posts [`objects::admitted_pod`]s.
    pub admitted_pods: bool,
    objects: Option<usize>,
}

impl Ctx {
    /// Objects `scenario` preloads (`--objects` or its default).
    pub fn objects(&self, scenario: Scenario) -> usize {
        self.objects.unwrap_or_else(|| scenario.default_objects())
    }
}

/// A short id that differs between runs: base-36 of the clock's
/// milliseconds, last 6 digits.
fn run_id() -> String {
    let mut n = objects::now_ns() / 1_000_000;
    let mut s = String::new();
    for _ in 0..6 {
        let d = (n % 36) as u32;
        s.push(char::from_digit(d, 36).unwrap_or('0'));
        n /= 36;
    }
    s
}

/// Runs the scenarios of `config` and returns the report (also written to
/// `--json` when asked). A scenario whose setup fails is recorded in
/// [`Report::failures`] and the next one runs.
pub async fn run(config: LoadConfig) -> anyhow::Result<Report> {
    config.validate()?;
    client::use_protobuf(config.protobuf);
    let (client, server) = client::connect(config.kubeconfig.as_deref(), config.allow_remote).await?;
    let server_version = client::server_version(&client).await;
    client::ensure_namespace(&client, &config.namespace).await?;
    let monitor = config.server_pid.and_then(|pid| {
        let m = RssMonitor::start(pid);
        if m.is_none() {
            eprintln!("kube-load: cannot read /proc/{pid}/status; no memory figures");
        }
        m
    });
    let ctx = Ctx {
        client,
        namespace: config.namespace.clone(),
        run: run_id(),
        clients: config.clients,
        budget: config.budget(),
        page_size: config.page_size,
        watchers: config.watchers,
        event_rate: config.event_rate,
        drain: Duration::from_secs(config.drain_secs),
        server_pid: config.server_pid,
        admitted_pods: config.admitted_pods,
        objects: config.objects,
    };
    eprintln!(
        "kube-load: {server} ({}), namespace {}, run {}",
        server_version.as_deref().unwrap_or("version unknown"),
        ctx.namespace,
        ctx.run
    );
    let mut report = Report {
        label: config.label.clone(),
        server,
        server_version,
        namespace: config.namespace.clone(),
        server_rss_start_mib: monitor.as_ref().and_then(|m| m.now()).map(|m| mib(m.rss_kib)),
        ..Report::default()
    };

    for scenario in config.scenario.expand() {
        eprintln!("kube-load: {scenario}: starting");
        if let Some(m) = &monitor {
            m.take_peak();
        }
        let peak = || monitor.as_ref().map(|m| mib(m.take_peak()));
        let result = match scenario {
            Scenario::CreateConfigmaps => crud::create_config_maps(&ctx).await.map(|r| vec![r]),
            Scenario::Get => crud::get(&ctx).await.map(|r| vec![r]),
            Scenario::Update => crud::update(&ctx).await.map(|r| vec![r]),
            Scenario::CreatePods => crud::create_pods(&ctx).await.map(|r| vec![r]),
            Scenario::List => list::list(&ctx).await,
            Scenario::Watch => match watch::watch(&ctx).await {
                Ok(mut w) => {
                    w.server_rss_peak_mib = peak();
                    report.watches.push(w);
                    Ok(Vec::new())
                }
                Err(e) => Err(e),
            },
            Scenario::All => Ok(Vec::new()),
        };
        match result {
            Ok(rows) => {
                let peak = peak();
                for mut row in rows {
                    row.server_rss_peak_mib = peak;
                    eprintln!(
                        "kube-load: {scenario}: {}: {:.0} ops/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
                        row.operation, row.ops_per_sec, row.latency.p50_ms, row.latency.p99_ms, row.errors
                    );
                    report.rows.push(row);
                }
            }
            Err(e) => {
                eprintln!("kube-load: {scenario}: failed: {e:#}");
                report.failures.push(format!("{scenario}: {e:#}"));
            }
        }
    }

    if let Some(now) = monitor.as_ref().and_then(|m| m.now()) {
        report.server_rss_end_mib = Some(mib(now.rss_kib));
        report.server_hwm_mib = Some(mib(now.hwm_kib));
    }
    if let Some(path) = &config.json {
        report.write(path)?;
        eprintln!("kube-load: wrote {}", path.display());
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_dns_labels() {
        let id = run_id();
        assert_eq!(id.len(), 6);
        assert!(id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()), "{id}");
    }
}
