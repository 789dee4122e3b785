//! A rate-limited work queue, client-go's `workqueue` model.
//!
//! A key is queued at most once at a time (adding a queued key is a no-op),
//! and is never handed to two workers at once: a key added while a worker
//! processes it is marked dirty and queued again when the worker calls
//! [`WorkQueue::done`]. Failed keys come back after a per-key exponential
//! back-off ([`ItemExponentialBackoff`]) until [`WorkQueue::forget`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

/// Per-key exponential back-off: `base * 2^failures`, capped at `max`
/// (client-go's `ItemExponentialFailureRateLimiter`, 5 ms to 1000 s).
#[derive(Debug, Clone)]
pub struct ItemExponentialBackoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for ItemExponentialBackoff {
    fn default() -> Self {
        ItemExponentialBackoff {
            base: Duration::from_millis(5),
            max: Duration::from_secs(1000),
        }
    }
}

impl ItemExponentialBackoff {
    /// The delay before retrying a key that failed `failures` times before.
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 2u128.checked_pow(failures).unwrap_or(u128::MAX);
        let nanos = self.base.as_nanos().saturating_mul(factor);
        if nanos >= self.max.as_nanos() {
            self.max
        } else {
            Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
        }
    }
}

struct State<K> {
    queue: VecDeque<K>,
    dirty: HashSet<K>,
    processing: HashSet<K>,
    failures: HashMap<K, u32>,
    shutting_down: bool,
}

struct Inner<K> {
    state: Mutex<State<K>>,
    notify: Notify,
    backoff: ItemExponentialBackoff,
    depth: Box<dyn Fn(usize) + Send + Sync>,
    /// Told of every key newly added (for `workqueue_adds_total`).
    added: Box<dyn Fn() + Send + Sync>,
    /// The `name` label of the queue's metrics ("" if unnamed).
    name: String,
}

/// A deduplicating, rate-limited queue of keys; cheap to clone.
pub struct WorkQueue<K> {
    inner: Arc<Inner<K>>,
}

impl<K> Clone for WorkQueue<K> {
    fn clone(&self) -> Self {
        WorkQueue {
            inner: self.inner.clone(),
        }
    }
}

impl<K: Clone + Eq + Hash + Send + 'static> WorkQueue<K> {
    /// A queue with the given back-off; `depth` is told the queue length
    /// after every change (for the `workqueue_depth` metric).
    pub fn new(backoff: ItemExponentialBackoff, depth: impl Fn(usize) + Send + Sync + 'static) -> Self {
        Self::named("", backoff, depth, || {})
    }

    /// Like [`WorkQueue::new`], with the name its metrics carry (client-go's
    /// `TypedRateLimitingQueueConfig.Name`) and `added`, told of every key
    /// newly added (one not already waiting), as client-go counts adds.
    pub fn named(
        name: &str,
        backoff: ItemExponentialBackoff,
        depth: impl Fn(usize) + Send + Sync + 'static,
        added: impl Fn() + Send + Sync + 'static,
    ) -> Self {
        WorkQueue {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    dirty: HashSet::new(),
                    processing: HashSet::new(),
                    failures: HashMap::new(),
                    shutting_down: false,
                }),
                notify: Notify::new(),
                backoff,
                depth: Box::new(depth),
                added: Box::new(added),
                name: name.to_string(),
            }),
        }
    }

    /// The queue's metrics name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    fn lock(&self) -> MutexGuard<'_, State<K>> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `key` unless it is already queued; a key being processed is
    /// queued again when its worker is done.
    pub fn add(&self, key: K) {
        let mut s = self.lock();
        if s.shutting_down || s.dirty.contains(&key) {
            return;
        }
        s.dirty.insert(key.clone());
        (self.inner.added)();
        if s.processing.contains(&key) {
            return;
        }
        s.queue.push_back(key);
        (self.inner.depth)(s.queue.len());
        drop(s);
        self.inner.notify.notify_one();
    }

    /// Queues `key` after `delay`.
    pub fn add_after(&self, key: K, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        let queue = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            queue.add(key);
        });
    }

    /// Queues `key` after its back-off, and counts one more failure.
    pub fn add_rate_limited(&self, key: K) {
        let delay = {
            let mut s = self.lock();
            let n = s.failures.entry(key.clone()).or_insert(0);
            let delay = self.inner.backoff.delay(*n);
            *n = n.saturating_add(1);
            delay
        };
        self.add_after(key, delay);
    }

    /// Forgets `key`'s failures (after a successful sync).
    pub fn forget(&self, key: &K) {
        self.lock().failures.remove(key);
    }

    /// How many times `key` failed since it was last forgotten.
    pub fn num_requeues(&self, key: &K) -> u32 {
        self.lock().failures.get(key).copied().unwrap_or(0)
    }

    /// The next key to process, or `None` once the queue shuts down.
    /// Every key returned must be given back with [`WorkQueue::done`].
    pub async fn get(&self) -> Option<K> {
        loop {
            let notified = self.inner.notify.notified();
            {
                let mut s = self.lock();
                if let Some(key) = s.queue.pop_front() {
                    s.dirty.remove(&key);
                    s.processing.insert(key.clone());
                    (self.inner.depth)(s.queue.len());
                    if !s.queue.is_empty() {
                        self.inner.notify.notify_one();
                    }
                    return Some(key);
                }
                if s.shutting_down {
                    self.inner.notify.notify_one();
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Marks `key` processed; queues it again if it was added meanwhile.
    pub fn done(&self, key: &K) {
        let mut s = self.lock();
        s.processing.remove(key);
        if s.dirty.contains(key) {
            s.queue.push_back(key.clone());
            (self.inner.depth)(s.queue.len());
            drop(s);
            self.inner.notify.notify_one();
        }
    }

    /// Number of queued keys (not counting those being processed).
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    /// Whether no key is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops handing out keys; waiting workers get `None`.
    pub fn shut_down(&self) {
        self.lock().shutting_down = true;
        self.inner.notify.notify_waiters();
        self.inner.notify.notify_one();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn queue() -> WorkQueue<String> {
        WorkQueue::new(ItemExponentialBackoff::default(), |_| {})
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let b = ItemExponentialBackoff::default();
        let check = |n, ms| assert_eq!(b.delay(n), Duration::from_millis(ms), "failures={n}");
        check(0, 5);
        check(1, 10);
        check(2, 20);
        check(10, 5120);
        assert_eq!(b.delay(30), Duration::from_secs(1000));
        assert_eq!(b.delay(200), Duration::from_secs(1000));
    }

    #[tokio::test]
    async fn queued_keys_are_deduplicated() {
        let q = queue();
        q.add("a".into());
        q.add("b".into());
        q.add("a".into());
        assert_eq!(q.len(), 2);
        assert_eq!(q.get().await.as_deref(), Some("a"));
        assert_eq!(q.get().await.as_deref(), Some("b"));
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn a_key_added_while_processing_comes_back_after_done() {
        let q = queue();
        q.add("a".into());
        let key = q.get().await.unwrap();
        q.add("a".into());
        assert_eq!(q.len(), 0, "not handed to a second worker while processing");
        q.done(&key);
        assert_eq!(q.len(), 1);
        assert_eq!(q.get().await.as_deref(), Some("a"));
    }

    #[tokio::test]
    async fn failures_are_counted_until_forgotten() {
        let q = queue();
        let k = "a".to_string();
        q.add_rate_limited(k.clone());
        q.add_rate_limited(k.clone());
        assert_eq!(q.num_requeues(&k), 2);
        q.forget(&k);
        assert_eq!(q.num_requeues(&k), 0);
        let got = tokio::time::timeout(Duration::from_secs(1), q.get()).await.unwrap();
        assert_eq!(got, Some(k));
    }

    #[tokio::test]
    async fn shut_down_releases_waiting_workers() {
        let q = queue();
        let worker = tokio::spawn({
            let q = q.clone();
            async move { q.get().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        q.shut_down();
        assert_eq!(worker.await.unwrap(), None);
    }
}
