//! The storage benchmark behind `hack/bench-storage.sh`: the embedded backend
//! and a real etcd, side by side in one run on the same machine.
//!
//! Every backend is opened first; then each measurement runs on every
//! backend in turn (interleaved, so that background load on a shared machine
//! falls on all of them alike):
//!
//! 1. **writes**: N closed-loop clients each `create` new distinct keys
//!    (`/bench/w/<measurement>/<client>/<i>`) for `--duration-secs`;
//! 2. **reads**: 10,000 keys are preloaded per value size, then N clients
//!    `get` random ones (latest revision) for `--duration-secs`;
//! 3. **watch fan-out**: W watchers on `/bench/watch/` while 16 writers
//!    create E keys; every watcher must see every event exactly once.
//!
//! Every operation's latency goes into an HDR histogram (microseconds); a
//! failed operation is counted, never hidden, and makes the run exit non-zero.
//!
//! Code map: [`config`] (flags), [`backend`] (opening each backend through
//! [`rkube_storage::StorageConfig`]), [`load`] (writes and reads), [`watch`]
//! (fan-out), [`machine`] (facts for the report header), [`report`] (results,
//! markdown and JSON).
//!
//! Bounds: every measurement has a deadline (its duration plus a grace
//! period, or `--watch-timeout-secs`), after which its tasks are aborted and
//! the measurement is reported as failed, so a run always stops by itself.

pub mod backend;
pub mod config;
pub mod load;
pub mod machine;
pub mod report;
pub mod watch;

use std::time::Duration;

use anyhow::Context;

pub use config::{BackendKind, BenchConfig};
pub use report::Report;

use crate::storage_bench::backend::OpenBackend;
use crate::storage_bench::report::{LoadRow, Op};

/// Keys preloaded per value size before the read measurements.
pub const READ_KEYS: usize = 10_000;
/// Concurrent writers used to preload keys and to drive the watch fan-out.
pub const HELPER_WRITERS: usize = 16;

/// Runs every measurement of `config` and returns the report (it is also
/// written to `--json` when asked). Progress goes to stderr, one line per
/// measurement.
pub async fn run(config: BenchConfig) -> anyhow::Result<Report> {
    config.validate()?;
    let scratch = config.scratch_dir().context("creating the benchmark data directory")?;
    let machine = machine::MachineFacts::collect(scratch.path()).await;
    eprintln!(
        "bench-storage: backends {:?}, clients {:?}, value sizes {:?}, {} s per measurement, data in {} ({})",
        config.backends.iter().map(ToString::to_string).collect::<Vec<_>>(),
        config.clients,
        config.value_sizes,
        config.duration_secs,
        scratch.path().display(),
        machine.data_filesystem,
    );

    let mut report = Report::new(config.clone(), machine);
    let mut backends = Vec::with_capacity(config.backends.len());
    for &kind in &config.backends {
        match OpenBackend::open(kind, scratch.path()).await {
            Ok(backend) => {
                eprintln!("bench-storage: {kind}: opened ({})", backend.description);
                backends.push((kind, backend));
            }
            Err(e) => {
                let message = format!("{kind}: could not open: {e:#}");
                eprintln!("bench-storage: {message}");
                report.failures.push(message);
            }
        }
    }
    measure_all(&config, &backends, &mut report).await;
    for (_, backend) in backends {
        backend.close().await;
    }

    report.compute_ratios();
    if let Some(path) = &config.json {
        let json = serde_json::to_vec_pretty(&report).context("serializing the report")?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("bench-storage: wrote {}", path.display());
    }
    Ok(report)
}

/// Every measurement, interleaved: each (op, clients, value size) is
/// measured on every backend in turn before the next one, so background load
/// on a shared machine hits the backends alike instead of skewing whichever
/// ran while it lasted. Failures are recorded in `report`.
async fn measure_all(config: &BenchConfig, backends: &[(BackendKind, OpenBackend)], report: &mut Report) {
    let duration = Duration::from_secs(config.duration_secs);

    for &size in &config.value_sizes {
        for &clients in &config.clients {
            for (kind, backend) in backends {
                let result = load::measure_writes(&backend.store, clients, size, duration).await;
                push_row(report, *kind, Op::Write, clients, size, result);
            }
        }
    }

    for &size in &config.value_sizes {
        let mut preloaded = Vec::with_capacity(backends.len());
        for (kind, backend) in backends {
            match load::preload(&backend.store, size, READ_KEYS, HELPER_WRITERS).await {
                Ok(keys) => preloaded.push((*kind, backend, keys)),
                Err(e) => {
                    let message = format!("{kind}: preloading {READ_KEYS} keys of {size} B failed: {e:#}");
                    eprintln!("bench-storage: {message}");
                    report.failures.push(message);
                }
            }
        }
        for &clients in &config.clients {
            for (kind, backend, keys) in &preloaded {
                let result = load::measure_reads(&backend.store, keys, clients, size, duration).await;
                push_row(report, *kind, Op::Read, clients, size, result);
            }
        }
    }

    if config.watchers > 0 && config.watch_events > 0 {
        for (kind, backend) in backends {
            let result = watch::measure_fan_out(
                &backend.store,
                config.watchers,
                config.watch_events,
                HELPER_WRITERS,
                Duration::from_secs(config.watch_timeout_secs),
            )
            .await;
            let row = report::WatchRow::new(*kind, &result);
            eprintln!("bench-storage: {}", row.progress_line());
            report.watch.push(row);
        }
    }
}

fn push_row(report: &mut Report, kind: BackendKind, op: Op, clients: usize, size: usize, result: load::LoadResult) {
    let row = LoadRow::new(kind, op, clients, size, &result);
    eprintln!("bench-storage: {}", row.progress_line());
    report.load.push(row);
}
