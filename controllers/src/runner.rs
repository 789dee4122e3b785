//! The worker loop every controller runs over its queue: take a key,
//! reconcile it, then forget it, re-queue it after a delay, or re-queue it
//! with back-off on error (client-go's `processNextWorkItem`).

use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
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

/// A queue whose `workqueue_*` metrics carry the label `name` (upstream's
/// queue name, e.g. `replicaset`, so dashboards made for
/// kube-controller-manager work unchanged).
pub fn new_queue(name: &str, metrics: &Arc<Metrics>) -> WorkQueue<String> {
    let depth = metrics
        .queue_depth
        .get_or_create(&NameLabel { name: name.to_string() })
        .clone();
    let adds = metrics
        .queue_adds
        .get_or_create(&NameLabel { name: name.to_string() })
        .clone();
    WorkQueue::named(
        name,
        ItemExponentialBackoff::default(),
        move |len| {
            depth.set(i64::try_from(len).unwrap_or(i64::MAX));
        },
        move || {
            adds.inc();
        },
    )
}

/// Runs `workers` workers on `queue` until it shuts down, each reconciling
/// a key with `sync` on the shared `controller`
/// (`|c, key| c.sync(key).boxed()`).
pub async fn run_controller_workers<C, F>(
    name: &'static str,
    queue: WorkQueue<String>,
    workers: usize,
    metrics: &Arc<Metrics>,
    controller: Arc<C>,
    sync: F,
) where
    C: Send + Sync + 'static,
    F: for<'a> Fn(&'a C, &'a str) -> BoxFuture<'a, Result<Action, Error>> + Clone + Send + Sync + 'static,
{
    run_workers(name, queue, workers, metrics.clone(), move |key| {
        let controller = controller.clone();
        let sync = sync.clone();
        async move { sync(&controller, &key).await }
    })
    .await;
}

/// Runs `workers` workers on `queue` until it shuts down. Work durations
/// and retries are counted under the queue's name, failed syncs under
/// `controller`'s.
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
                metrics.observe_work(queue.name(), controller, start.elapsed(), result.is_err());
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures::FutureExt;

    use super::*;

    struct Recorder {
        seen: Mutex<Vec<String>>,
    }

    impl Recorder {
        async fn sync(&self, key: &str) -> Result<Action, Error> {
            self.seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(key.to_string());
            Ok(Action::Done)
        }
    }

    #[tokio::test]
    async fn controller_workers_sync_every_key_until_shut_down() {
        let metrics = Arc::new(Metrics::new());
        let queue = new_queue("test", &metrics);
        queue.add("ns/a".to_string());
        queue.add("ns/b".to_string());
        queue.shut_down();
        let c = Arc::new(Recorder { seen: Mutex::default() });
        run_controller_workers("test", queue, 1, &metrics, c.clone(), |c, key| c.sync(key).boxed()).await;
        let seen = c.seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert_eq!(seen, ["ns/a", "ns/b"]);
    }
}
