//! The highest revision of a write this server has acknowledged, per
//! resource, kept by a [`Store`] wrapper every registry write goes through.
//!
//! Reads made on the server's own behalf (admission plugins looking up
//! webhook configurations, policies, quotas, the namespace) are served
//! from the watch cache the way upstream serves them from informers, but
//! after waiting until the cache has the resource's revision: a write this
//! server acknowledged before (a quota or webhook just created through it)
//! is always seen, and no storage round trip is made. Per resource, so
//! that looking up webhook configurations does not wait for the cache to
//! catch up with the ConfigMaps being created meanwhile. Writes made through
//! other API servers are seen when the cache gets them, as with upstream's
//! informers. Client LISTs and WATCHes keep reading at the storage's
//! current revision ([`super::Cache::sync_to_storage`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use rkube_storage::{KeyValue, ListOptions, ListResult, Result, Revision, StorageError, Store, WatchStream};

/// The highest acknowledged write revision of each resource (by storage
/// prefix, `/core/configmaps/`), shared by the wrapper that records it and
/// the cache that waits for it.
#[derive(Debug, Clone, Default)]
pub struct AcknowledgedRevision(Arc<Mutex<HashMap<String, Revision>>>);

impl AcknowledgedRevision {
    /// The highest revision recorded for keys under `prefix` (a resource's
    /// storage prefix); 0 if none.
    pub fn get(&self, prefix: &str) -> Revision {
        self.revisions().get(prefix).copied().unwrap_or(0)
    }

    fn revisions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Revision>> {
        // Every update leaves a consistent map, so poison is harmless.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, key: &str, revision: Revision) {
        let Some(prefix) = super::prefix_of(key) else { return };
        let mut revisions = self.revisions();
        match revisions.get_mut(prefix) {
            Some(r) => *r = (*r).max(revision),
            None => {
                revisions.insert(prefix.to_string(), revision);
            }
        }
    }

    /// `storage`, recording the revision of each write it acknowledges, and
    /// of the current value a refused write reports (a conflict the caller
    /// may act on).
    pub fn track(&self, storage: Arc<dyn Store>) -> Arc<dyn Store> {
        Arc::new(Tracked {
            inner: storage,
            acknowledged: self.clone(),
        })
    }

    fn after<T>(&self, key: &str, result: Result<T>, revision: impl Fn(&T) -> Revision) -> Result<T> {
        match &result {
            Ok(v) => self.record(key, revision(v)),
            Err(StorageError::Conflict {
                current: Some(current), ..
            }) => self.record(key, current.mod_revision),
            Err(_) => {}
        }
        result
    }
}

struct Tracked {
    inner: Arc<dyn Store>,
    acknowledged: AcknowledgedRevision,
}

#[async_trait]
impl Store for Tracked {
    fn backend_name(&self) -> &'static str {
        self.inner.backend_name()
    }

    async fn get(&self, key: &str, revision: Option<Revision>) -> Result<Option<KeyValue>> {
        self.inner.get(key, revision).await
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResult> {
        self.inner.list(prefix, options).await
    }

    async fn count(&self, prefix: &str) -> Result<i64> {
        self.inner.count(prefix).await
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<Revision> {
        let result = self.inner.create(key, value).await;
        self.acknowledged.after(key, result, |r| *r)
    }

    async fn update(&self, key: &str, value: Bytes, expected_mod_revision: Revision) -> Result<Revision> {
        let result = self.inner.update(key, value, expected_mod_revision).await;
        self.acknowledged.after(key, result, |r| *r)
    }

    async fn delete(&self, key: &str, expected_mod_revision: Option<Revision>) -> Result<(Revision, KeyValue)> {
        let result = self.inner.delete(key, expected_mod_revision).await;
        self.acknowledged.after(key, result, |(r, _)| *r)
    }

    async fn watch(&self, prefix: &str, after: Option<Revision>) -> Result<WatchStream> {
        self.inner.watch(prefix, after).await
    }

    async fn current_revision(&self) -> Result<Revision> {
        self.inner.current_revision().await
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.inner.compact(revision).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use rkube_storage::memory::MemoryStore;

    use super::*;

    const CM: &str = "/core/configmaps/";

    #[tokio::test]
    async fn records_the_revision_of_each_acknowledged_write() {
        let acknowledged = AcknowledgedRevision::default();
        let store = acknowledged.track(Arc::new(MemoryStore::new()));
        assert_eq!(acknowledged.get(CM), 0);
        let created = store.create("/core/configmaps/ns/a", Bytes::from("1")).await.unwrap();
        assert_eq!(acknowledged.get(CM), created);
        let updated = store
            .update("/core/configmaps/ns/a", Bytes::from("2"), created)
            .await
            .unwrap();
        assert_eq!(acknowledged.get(CM), updated);
        // A refused write acknowledges nothing new, but a conflict reports
        // the current value, which the caller may go on to rely on.
        assert!(store.create("/core/configmaps/ns/a", Bytes::from("3")).await.is_err());
        assert!(
            store
                .update("/core/configmaps/ns/a", Bytes::from("3"), created)
                .await
                .is_err()
        );
        assert_eq!(acknowledged.get(CM), updated);
        let (deleted, _) = store.delete("/core/configmaps/ns/a", None).await.unwrap();
        assert_eq!(acknowledged.get(CM), deleted);
        // Reads record nothing.
        store.get("/core/configmaps/ns/a", None).await.unwrap();
        assert_eq!(acknowledged.get(CM), deleted);
        // Each resource has its own.
        let secret = store.create("/core/secrets/ns/s", Bytes::from("1")).await.unwrap();
        assert_eq!(acknowledged.get("/core/secrets/"), secret);
        assert_eq!(acknowledged.get(CM), deleted);
        assert_eq!(acknowledged.get("/apps/deployments/"), 0);
    }
}
