//! Results: one row per request measurement, one per watch measurement, and
//! their rendering as markdown (stdout) and JSON (`--json`, readable back by
//! `--merge`).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::config::Scenario;
use super::cpu::CpuUsage;
use super::latency::LatencySummary;

/// One request measurement (create, get, update, list).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub scenario: Scenario,
    /// What one operation is (`POST configmap`, `LIST 10000 pods, limit=500`).
    pub operation: String,
    pub clients: usize,
    /// Attempted operations.
    pub ops: u64,
    pub errors: u64,
    pub elapsed_secs: f64,
    /// Successful operations per second.
    pub ops_per_sec: f64,
    #[serde(flatten)]
    pub latency: LatencySummary,
    /// Cores the server and kube-load used during the measurement.
    #[serde(flatten)]
    pub cpu: CpuUsage,
    /// Peak VmRSS of the server during the measurement.
    pub server_rss_peak_mib: Option<f64>,
    /// Error messages with counts.
    pub error_kinds: Vec<String>,
}

/// One watch fan-out measurement.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WatchRow {
    pub watchers: usize,
    /// Creations per second asked for.
    pub event_rate: f64,
    /// Creations per second achieved.
    pub achieved_rate: f64,
    /// Objects created (successfully) while the watchers watched.
    pub created: u64,
    pub create_errors: u64,
    /// Latency of the creates themselves (part of the delivery latency).
    #[serde(default)]
    pub create_latency: LatencySummary,
    /// Events every watcher should have received (`created` × watchers).
    pub expected: u64,
    /// Distinct objects' events received, summed over watchers.
    pub delivered: u64,
    /// `expected - delivered`.
    pub missing: u64,
    /// Watchers that did not see every object.
    pub incomplete_watchers: usize,
    /// Fewest events one watcher received.
    pub delivered_min: u64,
    /// Events received twice by the same watcher.
    pub duplicates: u64,
    /// From creation (client clock, before the POST) to receipt.
    #[serde(flatten)]
    pub latency: LatencySummary,
    /// Watches started again because the stream ended.
    pub stream_ends: u64,
    /// Watches started again because of 410 Expired (events skipped).
    pub expired: u64,
    /// Watches that failed to start (each retried).
    pub watch_errors: u64,
    /// Time to establish every watch.
    pub setup_secs: f64,
    /// From the last creation until every watcher had everything (or the
    /// drain deadline).
    pub drain_secs: f64,
    /// Cores the server and kube-load used from the first create to the
    /// end of the drain.
    #[serde(flatten)]
    pub cpu: CpuUsage,
    pub server_rss_peak_mib: Option<f64>,
    pub error_kinds: Vec<String>,
    /// Delivery by the second of the schedule in which objects were
    /// created: where in the run a tail comes from.
    #[serde(default)]
    pub timeline: Vec<WatchSecond>,
}

/// Deliveries of the objects created in one second of the schedule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WatchSecond {
    /// Seconds since the first create.
    pub second: u64,
    /// Deliveries (objects times watchers).
    pub delivered: u64,
    /// Deliveries that took over 100 ms.
    pub over_100ms: u64,
    /// The slowest delivery.
    pub max_ms: f64,
    /// The slowest create.
    pub create_max_ms: f64,
}

/// Everything one `kube-load` run measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    pub label: Option<String>,
    pub server: String,
    pub server_version: Option<String>,
    pub namespace: String,
    /// The server's VmRSS when the run started and ended, and its VmHWM at
    /// the end (with `--server-pid`).
    pub server_rss_start_mib: Option<f64>,
    pub server_rss_end_mib: Option<f64>,
    pub server_hwm_mib: Option<f64>,
    pub rows: Vec<Row>,
    pub watches: Vec<WatchRow>,
    /// Scenarios that could not run (setup failed), with why.
    pub failures: Vec<String>,
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
}

/// Milliseconds with precision that suits their size.
fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

impl Report {
    /// Whether nothing failed: no errors, no missing events, no failed setup.
    pub fn is_clean(&self) -> bool {
        self.failures.is_empty()
            && self.rows.iter().all(|r| r.errors == 0)
            && self.watches.iter().all(|w| w.missing == 0 && w.create_errors == 0)
    }

    /// Reads a report written with `--json`.
    pub fn read(path: &Path) -> anyhow::Result<Report> {
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Writes the report as JSON.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(self).context("serializing the report")?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))
    }

    /// This report alone as markdown, with its server table.
    pub fn markdown(&self) -> String {
        markdown(std::slice::from_ref(self), true)
    }
}

/// One set of markdown tables for several reports (a `run` column tells
/// them apart); `servers` adds a first table with each report's server and
/// its memory at the start and end.
pub fn markdown(reports: &[Report], servers: bool) -> String {
    let mut out = String::new();
    let run = |r: &Report| r.label.clone().unwrap_or_else(|| "-".to_string());
    if servers {
        out.push_str("| run | server | version | server RSS start MiB | end MiB | peak (VmHWM) MiB |\n");
        out.push_str("|---|---|---|---:|---:|---:|\n");
    }
    for r in reports.iter().filter(|_| servers) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            run(r),
            r.server,
            r.server_version.as_deref().unwrap_or("-"),
            opt(r.server_rss_start_mib, 1),
            opt(r.server_rss_end_mib, 1),
            opt(r.server_hwm_mib, 1),
        );
    }

    if reports.iter().any(|r| !r.rows.is_empty()) {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(
            "| run | scenario | operation | clients | ops | errors | ops/s | p50 ms | p99 ms | max ms | server CPU cores | kube-load CPU cores | server RSS peak MiB |\n",
        );
        out.push_str("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for r in reports {
            for row in &r.rows {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} |",
                    run(r),
                    row.scenario,
                    row.operation,
                    row.clients,
                    row.ops,
                    row.errors,
                    row.ops_per_sec,
                    ms(row.latency.p50_ms),
                    ms(row.latency.p99_ms),
                    ms(row.latency.max_ms),
                    opt(row.cpu.server_cores, 2),
                    opt(row.cpu.load_cores, 2),
                    opt(row.server_rss_peak_mib, 1),
                );
            }
        }
    }

    if reports.iter().any(|r| !r.watches.is_empty()) {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(
            "| run | watchers | created/s (asked) | created | create p50 / p99 ms | events expected | delivered | missing | delivery p50 ms | p99 ms | max ms | re-watches (410 / ended) | setup s | drain s | server CPU cores | kube-load CPU cores | server RSS peak MiB |\n",
        );
        out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for r in reports {
            for w in &r.watches {
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.0} ({:.0}) | {} | {} / {} | {} | {} | {} | {} | {} | {} | {} / {} | {:.1} | {:.1} | {} | {} | {} |",
                    run(r),
                    w.watchers,
                    w.achieved_rate,
                    w.event_rate,
                    w.created,
                    ms(w.create_latency.p50_ms),
                    ms(w.create_latency.p99_ms),
                    w.expected,
                    w.delivered,
                    w.missing,
                    ms(w.latency.p50_ms),
                    ms(w.latency.p99_ms),
                    ms(w.latency.max_ms),
                    w.expired,
                    w.stream_ends,
                    w.setup_secs,
                    w.drain_secs,
                    opt(w.cpu.server_cores, 2),
                    opt(w.cpu.load_cores, 2),
                    opt(w.server_rss_peak_mib, 1),
                );
            }
        }
    }

    let problems: Vec<String> = reports
        .iter()
        .flat_map(|r| {
            let label = run(r);
            let rows = r.rows.iter().filter(|row| !row.error_kinds.is_empty()).map({
                let label = label.clone();
                move |row| {
                    format!(
                        "{label} {} {}: {}",
                        row.scenario,
                        row.operation,
                        row.error_kinds.join("; ")
                    )
                }
            });
            let watches = r.watches.iter().filter(|w| !w.error_kinds.is_empty()).map({
                let label = label.clone();
                move |w| format!("{label} watch: {}", w.error_kinds.join("; "))
            });
            let failures = r.failures.iter().map(move |f| format!("{label}: {f}"));
            rows.chain(watches).chain(failures).collect::<Vec<_>>()
        })
        .collect();
    if !problems.is_empty() {
        out.push_str("\nErrors:\n");
        for p in problems {
            let _ = writeln!(out, "- {p}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn sample() -> Report {
        Report {
            label: Some("embedded".into()),
            server: "https://127.0.0.1:6443/".into(),
            server_version: Some("v1.36.0-rkube".into()),
            namespace: "kube-load".into(),
            server_rss_start_mib: Some(20.0),
            server_rss_end_mib: Some(40.5),
            server_hwm_mib: Some(50.25),
            rows: vec![Row {
                scenario: Scenario::Get,
                operation: "GET configmap".into(),
                clients: 64,
                ops: 1000,
                errors: 0,
                elapsed_secs: 1.0,
                ops_per_sec: 1000.0,
                latency: LatencySummary {
                    p50_ms: 1.234,
                    p99_ms: 12.5,
                    max_ms: 150.0,
                    mean_ms: 2.0,
                },
                cpu: CpuUsage {
                    server_cores: Some(1.25),
                    load_cores: None,
                },
                server_rss_peak_mib: Some(41.0),
                error_kinds: vec![],
            }],
            watches: vec![WatchRow {
                watchers: 10,
                event_rate: 100.0,
                achieved_rate: 99.6,
                created: 100,
                expected: 1000,
                delivered: 1000,
                ..WatchRow::default()
            }],
            failures: vec![],
        }
    }

    #[test]
    fn renders_markdown() {
        let md = sample().markdown();
        assert!(
            md.contains(
                "| embedded | get | GET configmap | 64 | 1000 | 0 | 1000 | 1.23 | 12.5 | 150 | 1.25 | - | 41.0 |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| embedded | 10 | 100 (100) | 100 | 0.00 / 0.00 | 1000 | 1000 | 0 |"),
            "{md}"
        );
        assert!(!md.contains("Errors:"), "{md}");
        assert!(sample().is_clean());
    }

    #[test]
    fn json_round_trip_and_merge() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        sample().write(&path).unwrap();
        let back = Report::read(&path).unwrap();
        assert_eq!(back.rows[0].latency, sample().rows[0].latency);
        let mut other = sample();
        other.label = Some("etcd".into());
        other.failures.push("list: preload failed".into());
        let md = markdown(&[back, other.clone()], false);
        assert!(md.starts_with("| run | scenario |"), "{md}");
        assert!(
            md.contains("| embedded | get |") && md.contains("| etcd | get |"),
            "{md}"
        );
        assert!(md.contains("- etcd: list: preload failed"), "{md}");
        assert!(!other.is_clean());
    }
}
