//! Storage latency for `/metrics`: a [`Store`] that times every call of the
//! store it wraps, as kube-apiserver's `etcd_request_duration_seconds`
//! (labels `operation` and `type`, the resource the key belongs to).

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use rkube_storage::{KeyValue, ListOptions, ListResult, Result, Revision, Store, WatchStream};

/// Labels of storage latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StorageLabels {
    /// `get`, `list`, `count`, `create`, `update`, `delete`, `watch`,
    /// `getRevision`, `compact`.
    pub operation: &'static str,
    /// The resource (`configmaps`, `deployments.apps`), or `""`.
    #[prometheus(flatten)]
    pub resource: ResourceType,
}

/// The `type` label (a keyword in Rust, hence the wrapper).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceType {
    pub r#type: String,
}

/// Storage latency buckets: storage calls are far faster than requests.
pub fn storage_buckets() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0,
    ])
}

/// The resource a storage key or prefix belongs to: `/core/pods/ns/p` is
/// `pods`, `/apps/deployments/` is `deployments.apps`.
pub fn resource_of(key: &str) -> String {
    let mut parts = key.trim_start_matches('/').splitn(3, '/');
    match (parts.next(), parts.next()) {
        (Some("core"), Some(resource)) => resource.to_string(),
        (Some(group), Some(resource)) if !group.is_empty() && !resource.is_empty() => format!("{resource}.{group}"),
        _ => String::new(),
    }
}

/// Times each call of the wrapped store.
pub struct InstrumentedStore {
    inner: Arc<dyn Store>,
    duration: Family<StorageLabels, Histogram>,
}

impl InstrumentedStore {
    pub fn new(inner: Arc<dyn Store>, duration: Family<StorageLabels, Histogram>) -> Self {
        InstrumentedStore { inner, duration }
    }

    /// Awaits `call`, recording how long it took as `operation` on `key`.
    async fn timed<T>(&self, operation: &'static str, key: &str, call: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let result = call.await;
        self.observe(operation, key, started);
        result
    }

    fn observe(&self, operation: &'static str, key: &str, started: Instant) {
        self.duration
            .get_or_create(&StorageLabels {
                operation,
                resource: ResourceType {
                    r#type: resource_of(key),
                },
            })
            .observe(started.elapsed().as_secs_f64());
    }
}

#[async_trait]
impl Store for InstrumentedStore {
    fn backend_name(&self) -> &'static str {
        self.inner.backend_name()
    }

    async fn get(&self, key: &str, revision: Option<Revision>) -> Result<Option<KeyValue>> {
        self.timed("get", key, self.inner.get(key, revision)).await
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResult> {
        self.timed("list", prefix, self.inner.list(prefix, options)).await
    }

    async fn count(&self, prefix: &str) -> Result<i64> {
        self.timed("count", prefix, self.inner.count(prefix)).await
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<Revision> {
        self.timed("create", key, self.inner.create(key, value)).await
    }

    async fn update(&self, key: &str, value: Bytes, expected_mod_revision: Revision) -> Result<Revision> {
        self.timed("update", key, self.inner.update(key, value, expected_mod_revision))
            .await
    }

    async fn delete(&self, key: &str, expected_mod_revision: Option<Revision>) -> Result<(Revision, KeyValue)> {
        self.timed("delete", key, self.inner.delete(key, expected_mod_revision))
            .await
    }

    async fn watch(&self, prefix: &str, after: Option<Revision>) -> Result<WatchStream> {
        // Only starting the watch is timed; it then runs for long.
        self.timed("watch", prefix, self.inner.watch(prefix, after)).await
    }

    async fn current_revision(&self) -> Result<Revision> {
        self.timed("getRevision", "", self.inner.current_revision()).await
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.timed("compact", "", self.inner.compact(revision)).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use rkube_storage::memory::MemoryStore;

    #[test]
    fn resources_of_keys() {
        assert_eq!(resource_of("/core/pods/ns/p"), "pods");
        assert_eq!(resource_of("/core/namespaces/x"), "namespaces");
        assert_eq!(resource_of("/apps/deployments/"), "deployments.apps");
        assert_eq!(resource_of("/"), "");
        assert_eq!(resource_of(""), "");
    }

    #[tokio::test]
    async fn calls_are_timed_and_results_pass_through() {
        let family = Family::<StorageLabels, Histogram>::new_with_constructor(storage_buckets as fn() -> Histogram);
        let store = InstrumentedStore::new(Arc::new(MemoryStore::new()), family.clone());
        let rev = store
            .create("/core/configmaps/ns/a", Bytes::from_static(b"{}"))
            .await
            .unwrap();
        assert!(store.create("/core/configmaps/ns/a", Bytes::new()).await.is_err());
        let kv = store.get("/core/configmaps/ns/a", None).await.unwrap().unwrap();
        assert_eq!(kv.mod_revision, rev);
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("etcd_request_duration_seconds", "test", family);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(r#"etcd_request_duration_seconds_count{operation="create",type="configmaps"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"etcd_request_duration_seconds_count{operation="get",type="configmaps"} 1"#),
            "{text}"
        );
    }
}
