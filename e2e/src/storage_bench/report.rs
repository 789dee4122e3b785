//! The results: one row per measurement, the embedded/etcd ratios, and
//! their rendering as markdown (stdout) and JSON (`--json`).

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::storage_bench::config::{BackendKind, BenchConfig};
use crate::storage_bench::load::LoadResult;
use crate::storage_bench::machine::MachineFacts;
use crate::storage_bench::watch::WatchResult;

/// The issue's target: embedded write throughput over etcd's at
/// [`TARGET_MIN_CLIENTS`]+ concurrent writers.
pub const TARGET_RATIO: f64 = 3.0;
/// Concurrency from which [`TARGET_RATIO`] applies.
pub const TARGET_MIN_CLIENTS: usize = 16;

/// What a load row measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// `create` of a new key.
    Write,
    /// `get` of an existing key at the latest revision.
    Read,
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Op::Write => "write",
            Op::Read => "read",
        })
    }
}

/// One write or read measurement.
#[derive(Debug, Clone, Serialize)]
pub struct LoadRow {
    pub backend: BackendKind,
    pub op: Op,
    pub clients: usize,
    pub value_size: usize,
    pub ops: u64,
    pub elapsed_secs: f64,
    pub ops_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl LoadRow {
    pub fn new(backend: BackendKind, op: Op, clients: usize, value_size: usize, r: &LoadResult) -> LoadRow {
        LoadRow {
            backend,
            op,
            clients,
            value_size,
            ops: r.ops,
            elapsed_secs: r.elapsed.as_secs_f64(),
            ops_per_sec: r.ops_per_sec(),
            p50_ms: quantile_ms(&r.latency, 0.50),
            p99_ms: quantile_ms(&r.latency, 0.99),
            max_ms: r.latency.max() as f64 / 1000.0,
            errors: r.errors,
            first_error: r.first_error.clone(),
        }
    }

    /// The stderr line printed when the measurement finishes.
    pub fn progress_line(&self) -> String {
        let mut line = format!(
            "{} {} clients={} value={}: {:.0} ops/s, p50 {} ms, p99 {} ms ({} ops in {:.1} s)",
            self.backend,
            self.op,
            self.clients,
            size_label(self.value_size),
            self.ops_per_sec,
            fmt_ms(self.p50_ms),
            fmt_ms(self.p99_ms),
            self.ops,
            self.elapsed_secs
        );
        if self.errors > 0 {
            let _ = write!(
                line,
                "; {} ERRORS, first: {}",
                self.errors,
                self.first_error.as_deref().unwrap_or("?")
            );
        }
        line
    }
}

/// The watch fan-out measurement of one backend.
#[derive(Debug, Clone, Serialize)]
pub struct WatchRow {
    pub backend: BackendKind,
    pub watchers: usize,
    pub watchers_opened: usize,
    pub events: usize,
    pub written: u64,
    pub setup_secs: f64,
    pub write_secs: f64,
    pub elapsed_secs: f64,
    pub delivered: u64,
    pub events_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub missing: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub unexpected: u64,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl WatchRow {
    pub fn new(backend: BackendKind, r: &WatchResult) -> WatchRow {
        WatchRow {
            backend,
            watchers: r.watchers,
            watchers_opened: r.watchers_opened,
            events: r.events,
            written: r.written,
            setup_secs: r.setup.as_secs_f64(),
            write_secs: r.write_elapsed.as_secs_f64(),
            elapsed_secs: r.elapsed.as_secs_f64(),
            delivered: r.delivered,
            events_per_sec: r.events_per_sec(),
            p50_ms: quantile_ms(&r.latency, 0.50),
            p99_ms: quantile_ms(&r.latency, 0.99),
            max_ms: r.latency.max() as f64 / 1000.0,
            missing: r.missing,
            duplicates: r.duplicates,
            out_of_order: r.out_of_order,
            unexpected: r.unexpected,
            errors: r.errors,
            first_error: r.first_error.clone(),
        }
    }

    /// Whether every watcher saw every event exactly once, in order.
    pub fn is_clean(&self) -> bool {
        self.missing == 0 && self.duplicates == 0 && self.out_of_order == 0 && self.unexpected == 0 && self.errors == 0
    }

    /// The stderr line printed when the measurement finishes.
    pub fn progress_line(&self) -> String {
        let mut line = format!(
            "{} watch fan-out {} watchers x {} events: {:.0} events/s delivered, p50 {} ms, p99 {} ms \
             (setup {:.1} s, writes {:.1} s, last delivery {:.1} s)",
            self.backend,
            self.watchers,
            self.events,
            self.events_per_sec,
            fmt_ms(self.p50_ms),
            fmt_ms(self.p99_ms),
            self.setup_secs,
            self.write_secs,
            self.elapsed_secs
        );
        if !self.is_clean() {
            let _ = write!(
                line,
                "; INCOMPLETE: {} missing, {} duplicate, {} out of order, {} unexpected, {} errors{}",
                self.missing,
                self.duplicates,
                self.out_of_order,
                self.unexpected,
                self.errors,
                self.first_error
                    .as_deref()
                    .map(|e| format!(", first: {e}"))
                    .unwrap_or_default()
            );
        }
        line
    }
}

/// Embedded throughput over etcd's for one (op, clients, value size).
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub op: Op,
    pub clients: usize,
    pub value_size: usize,
    pub embedded_ops_per_sec: f64,
    pub etcd_ops_per_sec: f64,
    pub ratio: f64,
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub config: BenchConfig,
    pub machine: MachineFacts,
    pub load: Vec<LoadRow>,
    pub watch: Vec<WatchRow>,
    /// Embedded/etcd ratios, when both were measured.
    pub ratios: Vec<Ratio>,
    /// Measurements that could not run at all (a backend that would not
    /// open, a preload that failed).
    pub failures: Vec<String>,
}

impl Report {
    pub fn new(config: BenchConfig, machine: MachineFacts) -> Report {
        Report {
            config,
            machine,
            load: Vec::new(),
            watch: Vec::new(),
            ratios: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// Fills in [`Report::ratios`] from the load rows.
    pub fn compute_ratios(&mut self) {
        self.ratios = self
            .load
            .iter()
            .filter(|row| row.backend == BackendKind::Embedded)
            .filter_map(|e| {
                let etcd = self.load.iter().find(|r| {
                    r.backend == BackendKind::Etcd
                        && r.op == e.op
                        && r.clients == e.clients
                        && r.value_size == e.value_size
                })?;
                Some(Ratio {
                    op: e.op,
                    clients: e.clients,
                    value_size: e.value_size,
                    embedded_ops_per_sec: e.ops_per_sec,
                    etcd_ops_per_sec: etcd.ops_per_sec,
                    ratio: if etcd.ops_per_sec > 0.0 {
                        e.ops_per_sec / etcd.ops_per_sec
                    } else {
                        f64::INFINITY
                    },
                })
            })
            .collect();
    }

    /// Whether every measurement ran without a failed operation and every
    /// watcher got every event.
    pub fn is_clean(&self) -> bool {
        self.failures.is_empty() && self.load.iter().all(|r| r.errors == 0) && self.watch.iter().all(WatchRow::is_clean)
    }

    /// The write ratios the target applies to, and whether each meets it.
    /// `None` when there is nothing to judge.
    pub fn target_met(&self) -> Option<bool> {
        let judged: Vec<_> = self
            .ratios
            .iter()
            .filter(|r| r.op == Op::Write && r.clients >= TARGET_MIN_CLIENTS)
            .collect();
        (!judged.is_empty()).then(|| judged.iter().all(|r| r.ratio >= TARGET_RATIO))
    }

    /// The report as markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        self.write_markdown(&mut out);
        out
    }

    fn write_markdown(&self, out: &mut String) {
        let m = &self.machine;
        let c = &self.config;
        let _ = writeln!(out, "## Storage benchmark\n");
        let _ = writeln!(out, "- date: {}", m.date);
        let _ = writeln!(
            out,
            "- machine: {}, {} CPUs, {} RAM, kernel {}, {}",
            m.cpu, m.nproc, m.memory, m.kernel, m.os
        );
        let _ = writeln!(out, "- load average at start (1/5/15 min): {}", m.load_average);
        let _ = writeln!(out, "- rkube commit: {}", m.rkube_commit);
        let _ = writeln!(out, "- etcd: {}", m.etcd_version);
        let _ = writeln!(out, "- data: {} ({})", m.data_dir, m.data_filesystem);
        let _ = writeln!(
            out,
            "- settings: backends {}; clients {}; values {}; {} s per measurement; watch fan-out {} watchers x {} events",
            join(&c.backends),
            join(&c.clients),
            c.value_sizes
                .iter()
                .map(|&s| size_label(s))
                .collect::<Vec<_>>()
                .join(", "),
            c.duration_secs,
            c.watchers,
            c.watch_events
        );

        let _ = writeln!(out, "\n### Writes and reads\n");
        let _ = writeln!(
            out,
            "| backend | op | clients | value | ops/s | p50 ms | p99 ms | errors |"
        );
        let _ = writeln!(out, "|---|---|--:|--:|--:|--:|--:|--:|");
        let mut rows: Vec<&LoadRow> = self.load.iter().collect();
        rows.sort_by_key(|r| (r.op == Op::Read, r.value_size, r.clients, r.backend as u8));
        for r in rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.0} | {} | {} | {} |",
                r.backend,
                r.op,
                r.clients,
                size_label(r.value_size),
                r.ops_per_sec,
                fmt_ms(r.p50_ms),
                fmt_ms(r.p99_ms),
                r.errors
            );
        }

        if !self.ratios.is_empty() {
            let _ = writeln!(out, "\n### Embedded / etcd\n");
            let _ = writeln!(out, "| op | clients | value | embedded ops/s | etcd ops/s | ratio |");
            let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|");
            for r in &self.ratios {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {:.0} | {:.0} | {:.2}x |",
                    r.op,
                    r.clients,
                    size_label(r.value_size),
                    r.embedded_ops_per_sec,
                    r.etcd_ops_per_sec,
                    r.ratio
                );
            }
            let _ = writeln!(out);
            let mut clients: Vec<usize> = self.ratios.iter().map(|r| r.clients).collect();
            clients.sort_unstable();
            clients.dedup();
            for n in clients {
                let parts: Vec<String> = self
                    .ratios
                    .iter()
                    .filter(|r| r.op == Op::Write && r.clients == n)
                    .map(|r| format!("{} {:.2}x", size_label(r.value_size), r.ratio))
                    .collect();
                if !parts.is_empty() {
                    let _ = writeln!(out, "- ratio embedded/etcd, writes, {n} clients: {}", parts.join(", "));
                }
            }
            if let Some(met) = self.target_met() {
                let _ = writeln!(
                    out,
                    "- target (embedded >= {TARGET_RATIO}x etcd writes/s at {TARGET_MIN_CLIENTS}+ writers): {}",
                    if met { "met" } else { "NOT met" }
                );
            }
        }

        if !self.watch.is_empty() {
            let _ = writeln!(out, "\n### Watch fan-out\n");
            let _ = writeln!(
                out,
                "| backend | watchers | events | delivered events/s | p50 ms | p99 ms | missing | duplicates | out of order | setup s |"
            );
            let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
            for w in &self.watch {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {:.1} |",
                    w.backend,
                    w.watchers_opened,
                    w.written,
                    w.events_per_sec,
                    fmt_ms(w.p50_ms),
                    fmt_ms(w.p99_ms),
                    w.missing,
                    w.duplicates,
                    w.out_of_order,
                    w.setup_secs
                );
            }
        }

        let problems = self.problems();
        if !problems.is_empty() {
            let _ = writeln!(out, "\n### Failures\n");
            for p in problems {
                let _ = writeln!(out, "- {p}");
            }
        }
    }

    /// Every failure, one line each.
    pub fn problems(&self) -> Vec<String> {
        let mut out = self.failures.clone();
        for r in self.load.iter().filter(|r| r.errors > 0) {
            out.push(format!(
                "{} {} clients={} value={}: {} failed operations, first: {}",
                r.backend,
                r.op,
                r.clients,
                size_label(r.value_size),
                r.errors,
                r.first_error.as_deref().unwrap_or("?")
            ));
        }
        for w in self.watch.iter().filter(|w| !w.is_clean()) {
            out.push(w.progress_line());
        }
        out
    }
}

/// The `q` quantile of a microsecond histogram, in milliseconds.
fn quantile_ms(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        return 0.0;
    }
    h.value_at_quantile(q) as f64 / 1000.0
}

/// Milliseconds with enough digits to tell sub-millisecond latencies apart.
fn fmt_ms(ms: f64) -> String {
    if ms < 1.0 {
        format!("{ms:.3}")
    } else {
        format!("{ms:.2}")
    }
}

/// `256 B`, `4 KiB`.
fn size_label(bytes: usize) -> String {
    if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} B")
    }
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser;

    use super::*;
    use crate::storage_bench::load::new_histogram;

    fn row(backend: BackendKind, op: Op, clients: usize, ops: u64) -> LoadRow {
        let mut latency = new_histogram();
        latency.saturating_record(1500);
        let result = LoadResult {
            ops,
            errors: 0,
            first_error: None,
            elapsed: Duration::from_secs(1),
            latency,
        };
        LoadRow::new(backend, op, clients, 256, &result)
    }

    fn report(rows: Vec<LoadRow>) -> Report {
        let config = BenchConfig::try_parse_from(["bench-storage"]).expect("defaults parse");
        let machine = MachineFacts {
            date: "d".into(),
            cpu: "c".into(),
            nproc: 2,
            memory: "m".into(),
            load_average: "0.00 0.00 0.00".into(),
            kernel: "k".into(),
            os: "o".into(),
            rkube_commit: "r".into(),
            etcd_version: "e".into(),
            data_dir: "/tmp/x".into(),
            data_filesystem: "ext4 on /dev/vda".into(),
        };
        let mut r = Report::new(config, machine);
        r.load = rows;
        r.compute_ratios();
        r
    }

    #[test]
    fn ratios_pair_embedded_with_etcd() {
        let r = report(vec![
            row(BackendKind::Embedded, Op::Write, 16, 9000),
            row(BackendKind::Etcd, Op::Write, 16, 3000),
            row(BackendKind::Embedded, Op::Write, 1, 100),
            row(BackendKind::Etcd, Op::Write, 1, 200),
        ]);
        assert_eq!(r.ratios.len(), 2);
        assert!((r.ratios[0].ratio - 3.0).abs() < 1e-9);
        assert_eq!(r.target_met(), Some(true));
        let md = r.markdown();
        assert!(
            md.contains("| embedded | write | 16 | 256 B | 9000 | 1.50 | 1.50 | 0 |"),
            "{md}"
        );
        assert!(
            md.contains("- ratio embedded/etcd, writes, 1 clients: 256 B 0.50x"),
            "{md}"
        );
        assert!(md.contains("): met"), "{md}");
    }

    #[test]
    fn a_miss_is_said_plainly() {
        let r = report(vec![
            row(BackendKind::Embedded, Op::Write, 256, 5000),
            row(BackendKind::Etcd, Op::Write, 256, 2000),
        ]);
        assert_eq!(r.target_met(), Some(false));
        assert!(r.markdown().contains("NOT met"));
    }

    #[test]
    fn errors_make_the_run_unclean() {
        let mut bad = row(BackendKind::Memory, Op::Read, 1, 10);
        bad.errors = 2;
        bad.first_error = Some("get /k: not found".into());
        let r = report(vec![bad]);
        assert!(!r.is_clean());
        assert_eq!(r.target_met(), None);
        assert!(r.markdown().contains("### Failures"));
    }

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(size_label(256), "256 B");
        assert_eq!(size_label(4096), "4 KiB");
        assert_eq!(fmt_ms(0.1234), "0.123");
        assert_eq!(fmt_ms(12.345), "12.35");
    }
}
