//! The worker loop every controller runs over its queue: take a key,
//! reconcile it, then forget it, re-queue it after a delay, or re-queue it
//! with back-off on error (client-go's `processNextWorkItem`).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::metrics::{Metrics, NameLabel};
use crate::queue::{ItemExponentialBackoff, WorkQueue};

/// What to do with a key after a successful reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing more until the next change.
    Done,
    /// Reconcile again after this delay (e.g. minReadySeconds elapsing).
    RequeueAfter(Duration),
}

/// A queue whose depth and adds are exported for `controller`.
pub fn new_queue(controller: &str, metrics: &Arc<Metrics>) -> WorkQueue<String> {
    let depth = metrics
        .queue_depth
        .get_or_create(&NameLabel {
            name: controller.to_string(),
        })
        .clone();
    let adds = metrics
        .queue_adds
        .get_or_create(&NameLabel {
            name: controller.to_string(),
        })
        .clone();
    WorkQueue::new(ItemExponentialBackoff::default(), move |len| {
        depth.set(i64::try_from(len).unwrap_or(i64::MAX));
        adds.inc();
    })
}

/// Runs `workers` workers on `queue` until it shuts down.
pub async fn run_workers<F, Fut>(
    controller: &'static str,
    queue: WorkQueue<String>,
    workers: usize,
    metrics: Arc<Metrics>,
    sync: F,
) where
    F: Fn(String) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1) {
        let queue = queue.clone();
        let metrics = metrics.clone();
        let sync = sync.clone();
        set.spawn(async move {
            while let Some(key) = queue.get().await {
                let start = Instant::now();
                let result = sync(key.clone()).await;
                metrics.observe_sync(controller, start.elapsed(), result.is_err());
                match result {
                    Ok(Action::Done) => queue.forget(&key),
                    Ok(Action::RequeueAfter(d)) => {
                        queue.forget(&key);
                        queue.add_after(key.clone(), d);
                    }
                    Err(e) => {
                        tracing::warn!(controller, key = %key, retries = queue.num_requeues(&key), error = %e, "sync failed; requeued");
                        queue.add_rate_limited(key.clone());
                    }
                }
                queue.done(&key);
            }
        });
    }
    while set.join_next().await.is_some() {}
}
