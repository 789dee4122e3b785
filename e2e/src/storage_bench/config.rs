//! The benchmark's flags.

use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::Serialize;

/// A backend the benchmark can measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// rkube's embedded backend (write-ahead log + redb) in a temp directory.
    Embedded,
    /// A real 1-member etcd (`/usr/bin/etcd`) on loopback, fsync on.
    Etcd,
    /// The in-memory backend (a ceiling for the harness itself, not durable).
    Memory,
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackendKind::Embedded => "embedded",
            BackendKind::Etcd => "etcd",
            BackendKind::Memory => "memory",
        })
    }
}

/// What to measure (`bench-storage --help`).
#[derive(Debug, Clone, Serialize, clap::Parser)]
#[command(
    name = "bench-storage",
    about = "Measures rkube's storage backends and a real etcd side by side: \
             writes/s and reads/s with p50/p99 latency, and watch fan-out."
)]
pub struct BenchConfig {
    /// Backends to measure, in this order.
    #[arg(long, value_delimiter = ',', default_value = "embedded,etcd")]
    pub backends: Vec<BackendKind>,

    /// Numbers of concurrent clients for the write and read measurements.
    #[arg(long, value_delimiter = ',', default_value = "1,16,256")]
    pub clients: Vec<usize>,

    /// Value sizes in bytes.
    #[arg(long, value_delimiter = ',', default_value = "256,4096")]
    pub value_sizes: Vec<usize>,

    /// Length of each write or read measurement, in seconds.
    #[arg(long, default_value_t = 3)]
    pub duration_secs: u64,

    /// Watchers on one prefix for the fan-out measurement (0: skip it).
    #[arg(long, default_value_t = 1000)]
    pub watchers: usize,

    /// Keys created while the watchers watch (each watcher must see all).
    #[arg(long, default_value_t = 2000)]
    pub watch_events: usize,

    /// How long watchers may take to receive every event after the last
    /// write, in seconds, before the missing ones are reported.
    #[arg(long, default_value_t = 60)]
    pub watch_timeout_secs: u64,

    /// Where the embedded backend keeps its data: a fresh directory is made
    /// inside it and removed at the end (default: the system temp dir).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,

    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

impl BenchConfig {
    /// Rejects values that would make a measurement meaningless.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.backends.is_empty() {
            bail!("--backends must name at least one backend");
        }
        if self.clients.is_empty() || self.clients.contains(&0) {
            bail!("--clients must be a list of positive numbers");
        }
        if self.value_sizes.iter().any(|&s| s < watch_min_value_size()) {
            bail!("--value-sizes must each be at least {} bytes", watch_min_value_size());
        }
        if self.duration_secs == 0 {
            bail!("--duration-secs must be positive");
        }
        Ok(())
    }

    /// A fresh scratch directory inside `--data-dir` (or the temp dir),
    /// removed when dropped.
    pub fn scratch_dir(&self) -> anyhow::Result<tempfile::TempDir> {
        let parent = self.data_dir.clone().unwrap_or_else(std::env::temp_dir);
        std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
        tempfile::Builder::new()
            .prefix("bench-storage-")
            .tempdir_in(&parent)
            .with_context(|| format!("creating a directory in {}", parent.display()))
    }
}

/// The smallest value the benchmark writes: the watch measurement stores a
/// timestamp and an index in the first 16 bytes.
fn watch_min_value_size() -> usize {
    crate::storage_bench::watch::HEADER_LEN
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn defaults_match_the_issue() {
        let c = BenchConfig::try_parse_from(["bench-storage"]).expect("defaults parse");
        assert_eq!(c.backends, vec![BackendKind::Embedded, BackendKind::Etcd]);
        assert_eq!(c.clients, vec![1, 16, 256]);
        assert_eq!(c.value_sizes, vec![256, 4096]);
        assert_eq!(c.duration_secs, 3);
        assert_eq!(c.watchers, 1000);
        assert_eq!(c.watch_events, 2000);
        c.validate().expect("defaults are valid");
    }

    #[test]
    fn lists_are_comma_separated() {
        let c = BenchConfig::try_parse_from(["bench-storage", "--backends", "memory", "--clients", "2,4"])
            .expect("flags parse");
        assert_eq!(c.backends, vec![BackendKind::Memory]);
        assert_eq!(c.clients, vec![2, 4]);
    }

    #[test]
    fn rejects_nonsense() {
        for args in [
            &["bench-storage", "--clients", "0"][..],
            &["bench-storage", "--value-sizes", "8"][..],
            &["bench-storage", "--duration-secs", "0"][..],
        ] {
            let c = BenchConfig::try_parse_from(args).expect("flags parse");
            assert!(c.validate().is_err(), "{args:?} should be rejected");
        }
        assert!(BenchConfig::try_parse_from(["bench-storage", "--backends", "sqlite"]).is_err());
    }
}
