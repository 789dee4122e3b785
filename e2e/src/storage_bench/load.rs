//! The write and read measurements: N closed-loop clients, each issuing its
//! next operation as soon as the previous one returned, for a fixed time.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use rkube_storage::Store;
use tokio::task::JoinSet;

/// How long clients may run past the end of a measurement (one slow
/// operation) before they are aborted and the measurement fails.
const GRACE: Duration = Duration::from_secs(30);
/// Deadline for preloading the keys of the read measurement.
const PRELOAD_TIMEOUT: Duration = Duration::from_secs(180);
/// Latencies above this are recorded as this (microseconds).
const MAX_LATENCY_MICROS: u64 = 60_000_000;

/// The outcome of one measurement.
#[derive(Debug)]
pub struct LoadResult {
    /// Operations that succeeded.
    pub ops: u64,
    /// Operations that failed.
    pub errors: u64,
    /// The first failure, for the report.
    pub first_error: Option<String>,
    /// From the start until the last client stopped.
    pub elapsed: Duration,
    /// Latency of the successful operations, in microseconds.
    pub latency: Histogram<u64>,
}

impl LoadResult {
    fn empty() -> LoadResult {
        LoadResult {
            ops: 0,
            errors: 0,
            first_error: None,
            elapsed: Duration::ZERO,
            latency: new_histogram(),
        }
    }

    fn add_error(&mut self, message: String) {
        self.errors += 1;
        self.first_error.get_or_insert(message);
    }

    /// Successful operations per second.
    pub fn ops_per_sec(&self) -> f64 {
        per_second(self.ops, self.elapsed)
    }
}

/// `count / elapsed`, 0 for an empty interval.
pub fn per_second(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

/// A latency histogram in microseconds, 1 µs to 60 s, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts.
    #[allow(clippy::unwrap_used)]
    Histogram::new_with_bounds(1, MAX_LATENCY_MICROS, 3).unwrap()
}

/// A duration in whole microseconds, at least 1 (the histogram's floor).
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// `clients` tasks each create new keys with `value_size`-byte values for
/// `duration`.
pub async fn measure_writes(
    store: &Arc<dyn Store>,
    clients: usize,
    value_size: usize,
    duration: Duration,
) -> LoadResult {
    let value = filler(value_size, 0x5eed);
    let store = store.clone();
    closed_loop(clients, duration, move |client, i| {
        let store = store.clone();
        let value = value.clone();
        async move {
            let key = format!("/bench/w/c{clients}-s{value_size}/{client}/{i}");
            store
                .create(&key, value)
                .await
                .map(drop)
                .map_err(|e| format!("create {key}: {e}"))
        }
    })
    .await
}

/// Creates `count` keys with `value_size`-byte values using `writers`
/// concurrent writers and returns them, for [`measure_reads`].
pub async fn preload(
    store: &Arc<dyn Store>,
    value_size: usize,
    count: usize,
    writers: usize,
) -> anyhow::Result<Arc<Vec<String>>> {
    let keys: Arc<Vec<String>> = Arc::new((0..count).map(|i| format!("/bench/r/s{value_size}/{i:06}")).collect());
    let value = filler(value_size, 0xbeef);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut set = JoinSet::new();
    for _ in 0..writers {
        let (store, keys, value, next) = (store.clone(), keys.clone(), value.clone(), next.clone());
        set.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(key) = keys.get(i) else {
                    return Ok::<(), anyhow::Error>(());
                };
                store
                    .create(key, value.clone())
                    .await
                    .with_context(|| format!("create {key}"))?;
            }
        });
    }
    let all = async {
        while let Some(joined) = set.join_next().await {
            joined.context("preload writer panicked")??;
        }
        Ok::<(), anyhow::Error>(())
    };
    match tokio::time::timeout(PRELOAD_TIMEOUT, all).await {
        Ok(result) => result?,
        Err(_) => bail!("preloading did not finish within {PRELOAD_TIMEOUT:?}"),
    }
    eprintln!(
        "bench-storage: {} preloaded {count} keys of {value_size} B in {:.1} s",
        store.backend_name(),
        started.elapsed().as_secs_f64()
    );
    Ok(keys)
}

/// `clients` tasks each `get` random keys of `keys` (latest revision) for
/// `duration`. A missing key or a value of the wrong size counts as an error.
pub async fn measure_reads(
    store: &Arc<dyn Store>,
    keys: &Arc<Vec<String>>,
    clients: usize,
    value_size: usize,
    duration: Duration,
) -> LoadResult {
    let (store, keys) = (store.clone(), keys.clone());
    closed_loop(clients, duration, move |client, i| {
        let (store, keys) = (store.clone(), keys.clone());
        async move {
            let pick = splitmix64(((client as u64) << 40) ^ i) % keys.len().max(1) as u64;
            let Some(key) = keys.get(pick as usize) else {
                return Err("no keys to read".to_string());
            };
            match store.get(key, None).await {
                Ok(Some(kv)) if kv.value.len() == value_size => Ok(()),
                Ok(Some(kv)) => Err(format!("get {key}: {} bytes, expected {value_size}", kv.value.len())),
                Ok(None) => Err(format!("get {key}: not found")),
                Err(e) => Err(format!("get {key}: {e}")),
            }
        }
    })
    .await
}

/// One client's tally.
struct ClientTally {
    ops: u64,
    errors: u64,
    first_error: Option<String>,
    latency: Histogram<u64>,
}

/// Runs `clients` closed-loop tasks calling `op(client, i)` with `i` = 0, 1,
/// ... until `duration` has passed, and merges their tallies.
async fn closed_loop<F, Fut>(clients: usize, duration: Duration, op: F) -> LoadResult
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let end = start + duration;
    let mut set = JoinSet::new();
    for client in 0..clients {
        let op = op.clone();
        set.spawn(async move {
            let mut tally = ClientTally {
                ops: 0,
                errors: 0,
                first_error: None,
                latency: new_histogram(),
            };
            let mut i = 0u64;
            while Instant::now() < end {
                let t = Instant::now();
                match op(client, i).await {
                    Ok(()) => {
                        tally.latency.saturating_record(micros(t.elapsed()));
                        tally.ops += 1;
                    }
                    Err(e) => {
                        tally.errors += 1;
                        tally.first_error.get_or_insert(e);
                    }
                }
                i += 1;
            }
            tally
        });
    }

    let mut result = LoadResult::empty();
    let hard_deadline = tokio::time::Instant::from_std(end + GRACE);
    loop {
        match tokio::time::timeout_at(hard_deadline, set.join_next()).await {
            Ok(None) => break,
            Ok(Some(Ok(tally))) => {
                result.ops += tally.ops;
                result.errors += tally.errors;
                if let Some(e) = tally.first_error {
                    result.first_error.get_or_insert(e);
                }
                // Both histograms have the same bounds, so adding cannot fail.
                let _ = result.latency.add(&tally.latency);
            }
            Ok(Some(Err(e))) => result.add_error(format!("client task failed: {e}")),
            Err(_) => {
                let stuck = set.len();
                set.abort_all();
                result.errors += stuck as u64;
                result.first_error = Some(format!(
                    "{stuck} clients still waiting {GRACE:?} after the end; aborted{}",
                    result
                        .first_error
                        .as_deref()
                        .map(|e| format!(" (earlier: {e})"))
                        .unwrap_or_default()
                ));
                break;
            }
        }
    }
    result.elapsed = start.elapsed();
    result
}

/// A `size`-byte value of pseudo-random bytes (so no layer can compress it).
pub fn filler(size: usize, seed: u64) -> Bytes {
    let mut out = Vec::with_capacity(size + 8);
    let mut state = seed;
    while out.len() < size {
        state = splitmix64(state);
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(size);
    Bytes::from(out)
}

/// SplitMix64: a tiny, well-mixed hash for picking keys and making filler.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use rkube_storage::memory::MemoryStore;

    use super::*;

    fn memory() -> Arc<dyn Store> {
        Arc::new(MemoryStore::new())
    }

    #[test]
    fn filler_has_the_asked_size() {
        for size in [0, 1, 7, 8, 256, 4096] {
            assert_eq!(filler(size, 1).len(), size);
        }
        assert_ne!(filler(64, 1), filler(64, 2));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_create_distinct_keys() {
        let store = memory();
        let r = measure_writes(&store, 4, 256, Duration::from_millis(200)).await;
        assert_eq!(r.errors, 0, "{:?}", r.first_error);
        assert!(r.ops > 0);
        assert_eq!(r.latency.len(), r.ops);
        assert_eq!(store.count("/bench/w/").await.expect("count"), r.ops as i64);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_find_every_preloaded_key() {
        let store = memory();
        let keys = preload(&store, 512, 100, 4).await.expect("preload");
        assert_eq!(store.count("/bench/r/").await.expect("count"), 100);
        let r = measure_reads(&store, &keys, 3, 512, Duration::from_millis(200)).await;
        assert_eq!(r.errors, 0, "{:?}", r.first_error);
        assert!(r.ops > 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_of_the_wrong_size_are_errors() {
        let store = memory();
        let keys = preload(&store, 256, 10, 2).await.expect("preload");
        let r = measure_reads(&store, &keys, 1, 4096, Duration::from_millis(50)).await;
        assert_eq!(r.ops, 0);
        assert!(r.errors > 0);
        assert!(r.first_error.as_deref().is_some_and(|e| e.contains("expected 4096")));
    }
}
