//! Periodic per-node calls spread evenly over their period, as a fleet of
//! kubelets with their own timers sends them, instead of all nodes at the
//! same instant: at 1,000 nodes and a 10 s lease period that is one renewal
//! every 10 ms, not a burst of 1,000 every 10 s that queues in front of the
//! pod traffic of the apiserver.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::warn;

use super::State;

/// The pause between two nodes' calls so that each of `nodes` gets one
/// call per `period` (never zero: a tokio interval needs a period).
pub fn step(period: Duration, nodes: usize) -> Duration {
    let n = u32::try_from(nodes.max(1)).unwrap_or(u32::MAX);
    (period / n).max(Duration::from_micros(1))
}

/// Calls `call` for each of `names` in turn, one every
/// [`step`]`(period, names.len())`, round after round, forever; nodes that
/// are down ([`State::is_down`]) are skipped at their turn. At most
/// `state.config.concurrency` calls are in flight (the next turn waits for
/// one to end). Failed calls are counted and logged once per round as
/// `what`.
pub async fn spread_forever<F, Fut, T, E>(state: Arc<State>, names: Vec<String>, period: Duration, what: &str, call: F)
where
    F: Fn(String) -> Fut + Send,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    if names.is_empty() {
        return std::future::pending().await;
    }
    let step = step(period, names.len());
    let mut tick = tokio::time::interval_at(Instant::now() + step, step);
    // A starved process sends late, not in a burst to catch up.
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let permits = Arc::new(Semaphore::new(state.config.concurrency.max(1)));
    let mut tasks: JoinSet<bool> = JoinSet::new();
    let mut failures = 0usize;
    for (i, name) in names.iter().enumerate().cycle() {
        tick.tick().await;
        while let Some(ok) = tasks.try_join_next() {
            failures += usize::from(!matches!(ok, Ok(true)));
        }
        if i == 0 && failures > 0 {
            warn!(failures, "{what}: some calls of the last round failed");
            failures = 0;
        }
        if state.is_down(name) {
            continue;
        }
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let fut = call(name.clone());
        tasks.spawn(async move {
            let _permit = permit;
            fut.await.is_ok()
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::simnodes::{SimConfig, ipam};
    use std::collections::HashMap;
    use std::sync::Mutex;

    fn state(names: &[&str]) -> Arc<State> {
        Arc::new(State {
            config: SimConfig {
                concurrency: 2,
                ..SimConfig::default()
            },
            nodes: HashMap::new(),
            ipam: Mutex::new(ipam::Ipam::default()),
            down: Mutex::new(names.iter().map(|n| n.to_string()).collect()),
            stopped_by_label: Mutex::default(),
        })
    }

    #[test]
    fn steps_add_up_to_the_period_and_are_never_zero() {
        let period = Duration::from_secs(10);
        assert_eq!(step(period, 1000), Duration::from_millis(10));
        assert_eq!(step(period, 1), period);
        assert_eq!(step(period, 0), period);
        assert_eq!(step(period, 3) * 3, Duration::from_nanos(9_999_999_999));
        assert_eq!(step(Duration::from_nanos(10), 1000), Duration::from_micros(1));
    }

    #[tokio::test]
    async fn calls_each_node_in_turn_and_skips_nodes_that_are_down() {
        let state = state(&["b"]);
        let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let task = tokio::spawn(spread_forever(
            state.clone(),
            names,
            Duration::from_millis(3),
            "test",
            move |name| {
                let tx = tx.clone();
                async move { tx.send(name).map_err(|_| ()) }
            },
        ));
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(rx.recv().await.unwrap());
        }
        assert_eq!(seen, ["a", "c", "a", "c"]);
        state.down.lock().unwrap().clear();
        // Once up again, b has its turn again, after a and before c (calls
        // queued before it came up come first).
        let mut next = Vec::new();
        while !next.iter().any(|n| n == "b") {
            assert!(next.len() < 1000, "b is never called again");
            next.push(rx.recv().await.unwrap());
        }
        for _ in 0..3 {
            next.push(rx.recv().await.unwrap());
        }
        assert_eq!(next[next.len() - 4..], ["b", "c", "a", "b"]);
        task.abort();
    }
}
