//! The background compactor: keeps a window of history, like
//! kube-apiserver's `--etcd-compaction-interval` (default 5 minutes).
//!
//! Every interval it compacts to the revision it saw one interval earlier, so
//! at least one interval of history is always kept for watches and paginated
//! lists.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::store::{Revision, Store};

/// Starts the compactor. `interval` of zero disables it (returns `None`).
pub fn spawn(store: Arc<dyn Store>, interval: Duration) -> Option<JoinHandle<()>> {
    if interval.is_zero() {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await; // the first tick fires at once
        let mut seen: Option<Revision> = None;
        loop {
            ticker.tick().await;
            if let Some(rev) = seen {
                match store.compact(rev).await {
                    Ok(()) => tracing::info!(
                        backend = store.backend_name(),
                        revision = rev,
                        "compacted storage history"
                    ),
                    Err(e) => {
                        tracing::warn!(backend = store.backend_name(), revision = rev, error = %e, "compaction failed")
                    }
                }
            }
            match store.current_revision().await {
                Ok(rev) => seen = Some(rev),
                Err(e) => tracing::warn!(error = %e, "compactor could not read the current revision"),
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StorageError;
    use crate::memory::MemoryStore;

    #[tokio::test(start_paused = true)]
    async fn keeps_one_interval_of_history() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let interval = Duration::from_secs(300);
        let task = spawn(store.clone(), interval).expect("enabled");
        let first = store.create("/c/a", bytes::Bytes::from_static(b"1")).await.unwrap();
        // First tick: the compactor notes the current revision, compacts nothing.
        tokio::time::sleep(interval + Duration::from_secs(1)).await;
        assert!(
            store.get("/c/a", Some(first)).await.is_ok(),
            "history younger than one interval is kept"
        );
        let second = store
            .update("/c/a", bytes::Bytes::from_static(b"2"), first)
            .await
            .unwrap();
        // Second tick: compacts to the revision seen one interval earlier.
        tokio::time::sleep(interval).await;
        tokio::task::yield_now().await;
        assert!(store.get("/c/a", Some(second)).await.is_ok());
        assert!(matches!(
            store.get("/c/a", Some(first - 1)).await,
            Err(StorageError::Compacted { .. })
        ));
        task.abort();
        assert!(spawn(store, Duration::ZERO).is_none(), "zero disables the compactor");
    }
}
