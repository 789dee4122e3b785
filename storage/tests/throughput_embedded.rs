//! A quick durable-write throughput check of the embedded backend (ignored
//! by default; the real benchmark tool lives elsewhere). Run with:
//!
//! ```text
//! cargo test --release -p rkube-storage --test throughput_embedded -- --ignored --nocapture
//! ```
//!
//! `RKUBE_WRITERS` (default 16), `RKUBE_SECONDS` (default 5) and
//! `RKUBE_VALUE_BYTES` (default 1024) and `RKUBE_LINGER_MICROS` (the
//! store's batch linger) and `RKUBE_CHECKPOINT_MILLIS` (its checkpoint
//! interval) tune it; `RKUBE_BENCH_DIR` puts the database
//! somewhere other than the temp dir; `RKUBE_RATE` paces the writers to
//! that many writes/s in all (default 0: as fast as they can), e.g. the
//! rate an apiserver writes at.
//!
//! Besides writes/s it prints the CPU time per write of each kind of thread
//! (by name: the store's writer and checkpointer, the runtime's workers
//! that run the clients) and of the whole process, the last one including
//! the final checkpoint at close.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rkube_storage::Store;
use rkube_storage::embedded::{EmbeddedOptions, EmbeddedStore};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Bytes this process has caused to be written to storage (Linux only).
fn bytes_written() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|line| line.strip_prefix("write_bytes: "))
        .and_then(|v| v.trim().parse().ok())
}

/// User plus system CPU time in seconds from the fields of a
/// `/proc/.../stat` line.
fn stat_cpu(stat: &str) -> Option<(String, f64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_string();
    let fields: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    // Fields 14 and 15 of proc(5); the first after the name is field 3.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // In USER_HZ, 100 on every Linux architecture rkube builds for.
    Some((name, (utime + stime) / 100.0))
}

/// CPU seconds used by this process's live threads, summed by thread name.
fn cpu_by_thread_name() -> BTreeMap<String, f64> {
    let mut by_name = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return by_name;
    };
    for task in tasks.flatten() {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        if let Some((name, cpu)) = stat_cpu(&stat) {
            *by_name.entry(name).or_insert(0.0) += cpu;
        }
    }
    by_name
}

/// CPU seconds used by this process so far, exited threads included.
fn process_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    stat_cpu(&stat).map_or(0.0, |(_, cpu)| cpu)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "measurement, run by hand"]
async fn durable_writes_per_second() -> anyhow::Result<()> {
    let writers = env("RKUBE_WRITERS", 16);
    let seconds = env("RKUBE_SECONDS", 5);
    let value_bytes = usize::try_from(env("RKUBE_VALUE_BYTES", 1024))?;
    let rate = env("RKUBE_RATE", 0);
    let dir = match std::env::var_os("RKUBE_BENCH_DIR") {
        Some(base) => tempfile::tempdir_in(base)?,
        None => tempfile::tempdir()?,
    };
    let mut options = EmbeddedOptions::new(dir.path());
    if let Ok(linger) = std::env::var("RKUBE_LINGER_MICROS") {
        options.batch_linger = Duration::from_micros(linger.parse()?);
    }
    if let Ok(ms) = std::env::var("RKUBE_CHECKPOINT_MILLIS") {
        options.checkpoint_interval = Duration::from_millis(ms.parse()?);
    }
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(options).await?);
    let value = Bytes::from(vec![b'x'; value_bytes]);
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let written_before = bytes_written();
    let threads_before = cpu_by_thread_name();
    let process_before = process_cpu();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (store, value, done) = (store.clone(), value.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            // Creates of fresh keys, then updates of them, round robin.
            let mut revs = Vec::new();
            let mut i = 0usize;
            while Instant::now() < deadline {
                if rate > 0 {
                    let nth = i as f64 * writers as f64 + w as f64;
                    let due = started + Duration::from_secs_f64(nth / rate as f64);
                    tokio::time::sleep_until(due.into()).await;
                }
                if revs.len() < 1000 {
                    let rev = store.create(&format!("/bench/{w}/{i}"), value.clone()).await?;
                    revs.push(rev);
                } else {
                    let slot = i % revs.len();
                    let key = format!("/bench/{w}/{slot}");
                    revs[slot] = store.update(&key, value.clone(), revs[slot]).await?;
                }
                i += 1;
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    let threads_after = cpu_by_thread_name();
    drop(store);
    let process = process_cpu() - process_before;
    println!(
        "embedded: {n} durable writes by {writers} writers of {value_bytes} B values in {elapsed:.2} s = {:.0} writes/s",
        n as f64 / elapsed
    );
    if let (Some(before), Some(after)) = (written_before, bytes_written()) {
        println!(
            "embedded: {} bytes per write by the kernel's per-process write_bytes (with the \
             preallocated log this far exceeds what the device writes: compare /proc/diskstats)",
            (after - before) / n.max(1)
        );
    }
    let per_write = |seconds: f64| seconds * 1e6 / n.max(1) as f64;
    println!(
        "embedded: CPU per write {:.1} us (process, with the checkpoint at close), load average {}",
        per_write(process),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
    for (name, after) in &threads_after {
        let used = after - threads_before.get(name).copied().unwrap_or(0.0);
        if used > 0.0 {
            println!(
                "embedded: CPU per write {:.1} us in threads named {name:?}",
                per_write(used)
            );
        }
    }
    Ok(())
}
