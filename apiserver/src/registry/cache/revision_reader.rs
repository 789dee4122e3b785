//! The storage's current revision for consistent reads, with concurrent
//! callers sharing one storage read.
//!
//! Every consistent read from the cache (a LIST or WATCH without a
//! resourceVersion, and the admission plugins' lists on each write) first
//! asks storage for its current revision. On etcd that is a linearizable
//! range: a gRPC call and a raft read index each, thousands per second
//! under write load (four per ConfigMap create with the default admission
//! chain), which took about a third of a core from etcd on a 2-core machine.
//!
//! Callers queue; one task takes everyone queued, makes one storage read,
//! and answers them all with its result. A read that starts after a
//! caller arrived sees every write acknowledged before the caller arrived,
//! so each caller still gets a linearizable revision; callers arriving
//! while a read is in flight wait for the next one.

use std::sync::{Arc, OnceLock};

use rkube_storage::{Revision, StorageError, Store};
use tokio::sync::{mpsc, oneshot};

type Answer = oneshot::Sender<Result<Revision, StorageError>>;

/// Reads the storage's current revision, one read per batch of callers.
pub struct RevisionReader {
    storage: Arc<dyn Store>,
    /// The queue of the reading task, started on first use (so on the
    /// runtime of the first caller).
    queue: OnceLock<mpsc::UnboundedSender<Answer>>,
}

impl RevisionReader {
    pub fn new(storage: Arc<dyn Store>) -> RevisionReader {
        RevisionReader {
            storage,
            queue: OnceLock::new(),
        }
    }

    /// The storage's current revision, read after this call began.
    pub async fn current(&self) -> Result<Revision, StorageError> {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(read_for_batches(self.storage.clone(), rx));
            tx
        });
        let (tx, rx) = oneshot::channel();
        if queue.send(tx).is_ok()
            && let Ok(result) = rx.await
        {
            return result;
        }
        // The task is gone (its runtime shut down): read directly.
        self.storage.current_revision().await
    }
}

/// Answers every caller queued before each read started with that read.
async fn read_for_batches(storage: Arc<dyn Store>, mut queue: mpsc::UnboundedReceiver<Answer>) {
    let mut batch = Vec::new();
    while queue.recv_many(&mut batch, usize::MAX).await > 0 {
        let result = storage.current_revision().await;
        for answer in batch.drain(..) {
            let _ = answer.send(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use bytes::Bytes;
    use rkube_storage::memory::MemoryStore;
    use rkube_storage::{KeyValue, ListOptions, ListResult, WatchStream};
    use tokio::sync::Notify;

    use super::*;

    /// A store whose `current_revision` counts calls and, when `gate` is
    /// set, waits for it before reading.
    struct Counting {
        inner: MemoryStore,
        reads: AtomicUsize,
        gate: Option<Arc<Notify>>,
    }

    #[async_trait]
    impl Store for Counting {
        fn backend_name(&self) -> &'static str {
            "counting"
        }
        async fn get(&self, key: &str, revision: Option<Revision>) -> rkube_storage::Result<Option<KeyValue>> {
            self.inner.get(key, revision).await
        }
        async fn list(&self, prefix: &str, options: ListOptions) -> rkube_storage::Result<ListResult> {
            self.inner.list(prefix, options).await
        }
        async fn count(&self, prefix: &str) -> rkube_storage::Result<i64> {
            self.inner.count(prefix).await
        }
        async fn create(&self, key: &str, value: Bytes) -> rkube_storage::Result<Revision> {
            self.inner.create(key, value).await
        }
        async fn update(&self, key: &str, value: Bytes, expected: Revision) -> rkube_storage::Result<Revision> {
            self.inner.update(key, value, expected).await
        }
        async fn delete(&self, key: &str, expected: Option<Revision>) -> rkube_storage::Result<(Revision, KeyValue)> {
            self.inner.delete(key, expected).await
        }
        async fn watch(&self, prefix: &str, after: Option<Revision>) -> rkube_storage::Result<WatchStream> {
            self.inner.watch(prefix, after).await
        }
        async fn current_revision(&self) -> rkube_storage::Result<Revision> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            if let Some(gate) = &self.gate {
                gate.notified().await;
            }
            self.inner.current_revision().await
        }
        async fn compact(&self, revision: Revision) -> rkube_storage::Result<()> {
            self.inner.compact(revision).await
        }
    }

    fn store(gate: Option<Arc<Notify>>) -> Arc<Counting> {
        Arc::new(Counting {
            inner: MemoryStore::new(),
            reads: AtomicUsize::new(0),
            gate,
        })
    }

    #[tokio::test]
    async fn each_caller_sees_the_writes_acknowledged_before_it_asked() {
        let storage = store(None);
        let reader = RevisionReader::new(storage.clone());
        for i in 0..5 {
            let rev = storage
                .create(&format!("/core/configmaps/ns/{i}"), Bytes::from("{}"))
                .await
                .unwrap();
            assert_eq!(reader.current().await.unwrap(), rev);
        }
    }

    #[tokio::test]
    async fn callers_waiting_together_share_one_read_and_later_ones_get_a_new_one() {
        let gate = Arc::new(Notify::new());
        let storage = store(Some(gate.clone()));
        let reader = Arc::new(RevisionReader::new(storage.clone()));
        // The first caller's read is held in flight.
        let first = tokio::spawn({
            let reader = reader.clone();
            async move { reader.current().await }
        });
        while storage.reads.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        // A write acknowledged now, then ten callers: the read in flight
        // may not answer them, since it may have missed the write.
        let rev = storage
            .create("/core/configmaps/ns/a", Bytes::from("{}"))
            .await
            .unwrap();
        let later: Vec<_> = (0..10)
            .map(|_| {
                let reader = reader.clone();
                tokio::spawn(async move { reader.current().await })
            })
            .collect();
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        gate.notify_one();
        first.await.unwrap().unwrap();
        while storage.reads.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        gate.notify_one();
        for task in later {
            assert_eq!(task.await.unwrap().unwrap(), rev);
        }
        assert_eq!(
            storage.reads.load(Ordering::SeqCst),
            2,
            "one read for the first, one for the ten"
        );
    }
}
