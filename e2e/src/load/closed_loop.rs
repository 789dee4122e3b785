//! N clients in a closed loop: each sends its next request when the
//! previous one is answered, until the budget (a count shared by all, or a
//! duration) is spent. Progress goes to stderr every few seconds.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::client::OpError;
use super::config::Budget;
use super::cpu::{CpuClock, CpuUsage};
use super::latency::Recorder;

/// How often progress is printed.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);

/// What a closed-loop run measured.
#[derive(Debug)]
pub struct Measured {
    pub recorder: Recorder,
    /// From the first request to the last answer.
    pub elapsed: Duration,
    /// Cores the server and kube-load used meanwhile.
    pub cpu: CpuUsage,
}

impl Measured {
    /// Attempted operations (successes and failures).
    pub fn ops(&self) -> u64 {
        self.recorder.ok + self.recorder.errors
    }

    /// Successful operations per second.
    pub fn ops_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.recorder.ok as f64 / secs
        } else {
            0.0
        }
    }
}

/// Runs `clients` workers; `op(worker, seq)` is one operation, `seq`
/// numbering operations across all workers from 0. Every operation must
/// bound its own time (see [`super::client::send`]). CPU use of
/// `server_pid` (and of this process) is measured meanwhile.
pub async fn run<F, Fut>(name: &str, clients: usize, budget: Budget, server_pid: Option<u32>, op: F) -> Measured
where
    F: Fn(usize, u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), OpError>> + Send + 'static,
{
    let next = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let cpu = CpuClock::start(server_pid);
    let start = Instant::now();
    let (limit, deadline) = match budget {
        Budget::Count(n) => (n, None),
        Budget::Duration(d) => (u64::MAX, Some(start + d)),
    };
    let mut tasks = JoinSet::new();
    for worker in 0..clients {
        let (op, next, ok, failed) = (op.clone(), next.clone(), ok.clone(), failed.clone());
        tasks.spawn(async move {
            let mut rec = Recorder::new();
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= limit {
                    break;
                }
                let t = Instant::now();
                let res = op(worker, seq).await;
                rec.record(&res, t.elapsed());
                if res.is_ok() { &ok } else { &failed }.fetch_add(1, Ordering::Relaxed);
            }
            rec
        });
    }

    let mut recorder = Recorder::new();
    let mut ticker = tokio::time::interval(PROGRESS_INTERVAL);
    ticker.tick().await;
    loop {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                Some(Ok(rec)) => recorder.merge(&rec),
                Some(Err(e)) => recorder.failure(&OpError(format!("client task failed: {e}"))),
                None => break,
            },
            _ = ticker.tick() => eprintln!(
                "kube-load: {name}: {} ok, {} errors after {:.0} s",
                ok.load(Ordering::Relaxed),
                failed.load(Ordering::Relaxed),
                start.elapsed().as_secs_f64()
            ),
        }
    }
    Measured {
        recorder,
        elapsed: start.elapsed(),
        cpu: cpu.stop(),
    }
}

/// Creates objects `0..n` with `clients` workers (`op(i)` must tolerate
/// AlreadyExists); fails if any creation failed.
pub async fn preload<F, Fut>(name: &str, n: usize, clients: usize, op: F) -> anyhow::Result<()>
where
    F: Fn(u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), OpError>> + Send + 'static,
{
    if n == 0 {
        return Ok(());
    }
    let start = Instant::now();
    let m = run(name, clients, Budget::Count(n as u64), None, move |_, i| op(i)).await;
    if m.recorder.errors > 0 {
        anyhow::bail!(
            "{name}: {} of {n} creations failed: {}",
            m.recorder.errors,
            m.recorder.error_kinds().join("; ")
        );
    }
    eprintln!(
        "kube-load: {name}: {n} objects in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Mutex;

    use super::*;

    #[tokio::test]
    async fn count_is_shared_and_exact() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let m = run("test", 4, Budget::Count(10), None, move |_, i| {
            let s = s.clone();
            async move {
                s.lock().unwrap().push(i);
                if i == 3 { Err(OpError("boom".into())) } else { Ok(()) }
            }
        })
        .await;
        let mut seen = seen.lock().unwrap().clone();
        seen.sort();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        assert_eq!((m.recorder.ok, m.recorder.errors, m.ops()), (9, 1, 10));
    }

    #[tokio::test]
    async fn duration_stops() {
        let m = run(
            "test",
            2,
            Budget::Duration(Duration::from_millis(100)),
            None,
            |_, _| async {
                tokio::time::sleep(Duration::from_millis(10)).await;
                Ok(())
            },
        )
        .await;
        assert!(m.elapsed < Duration::from_secs(2), "{:?}", m.elapsed);
        assert!(m.recorder.ok >= 4, "{}", m.recorder.ok);
    }

    #[tokio::test]
    async fn preload_reports_failures() {
        assert!(preload("test", 3, 2, |_| async { Ok(()) }).await.is_ok());
        let err = preload("test", 3, 2, |i| async move {
            if i == 1 { Err(OpError("nope".into())) } else { Ok(()) }
        })
        .await
        .unwrap_err();
        assert!(err.to_string().contains("1 of 3"), "{err}");
    }
}
