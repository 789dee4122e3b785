//! Reads on the server's own behalf: admission plugins look up webhook
//! configurations, policies, quotas and namespaces on every write. Upstream
//! reads them from informers; here they come from the watch cache once it
//! has every write to that resource this server acknowledged (see
//! [`super::cache::AcknowledgedRevision`]), so they cost no storage round
//! trip and never wait for writes made after the request began. Before the
//! cache is filled they go to storage.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::status::ApiError;

use super::list::{ListItem, ListOptions, ListOutcome};
use super::object::Object;
use super::store::GenericStore;

impl GenericStore {
    /// The objects in `namespace` ("" = all), as [`GenericStore::list`]
    /// with an unset resourceVersion, but from the cache as described above.
    pub async fn list_cached(&self, namespace: &str) -> Result<ListOutcome, ApiError> {
        let Some((root, _)) = self.cache() else {
            return self.list(namespace, &ListOptions::default()).await;
        };
        root.sync_to_acknowledged(self.storage_prefix()).await?;
        let any = ListOptions {
            resource_version: Some("0".into()),
            ..ListOptions::default()
        };
        self.list(namespace, &any).await
    }

    /// One object, from the cache as described above; from storage when
    /// the cache does not have it (written through another API server and
    /// not yet seen) or is not filled yet.
    pub async fn get_cached(&self, namespace: &str, name: &str) -> Result<Object, ApiError> {
        if let Some((root, cache)) = self.cache() {
            root.sync_to_acknowledged(self.storage_prefix()).await?;
            if let Some(cached) = cache.get(&self.key(namespace, name)) {
                return Ok(cached.decode(&self.info));
            }
        }
        self.get(namespace, name).await
    }

    /// [`GenericStore::get_cached`] read into `T`, a view of the fields the
    /// caller needs: a cached object is deserialized from its body directly,
    /// without building the whole map, once per revision of the object
    /// (admission reads the request's namespace on every write).
    pub async fn get_cached_as<T: DeserializeOwned + Send + Sync + 'static>(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Arc<T>, ApiError> {
        if let Some((root, cache)) = self.cache() {
            root.sync_to_acknowledged(self.storage_prefix()).await?;
            if let Some(cached) = cache.get(&self.key(namespace, name)) {
                return cached.view::<T>().map_err(ApiError::internal);
            }
        }
        let obj = self.get(namespace, name).await?;
        let view = serde_json::from_value(serde_json::Value::Object(obj)).map_err(ApiError::internal)?;
        Ok(Arc::new(view))
    }

    /// What `derive` makes of the objects in `namespace` ("" = all) as
    /// [`GenericStore::list_cached`] lists them, shared by every caller
    /// with the same `purpose` until an object of this resource changes:
    /// admission's per-write reads (LimitRanges, webhook configurations,
    /// policies, priority classes, quotas) derive their inputs from lists
    /// that rarely change, once.
    pub async fn list_cached_derived<T: Send + Sync + 'static>(
        &self,
        purpose: &'static str,
        namespace: &str,
        derive: impl FnOnce(Vec<ListItem>) -> T,
    ) -> Result<Arc<T>, ApiError> {
        let Some((root, cache)) = self.cache() else {
            let listed = self.list(namespace, &ListOptions::default()).await?;
            return Ok(Arc::new(derive(listed.items)));
        };
        root.sync_to_acknowledged(self.storage_prefix()).await?;
        // Read before listing: the list has every change up to it, so the
        // value is never older than what it is kept for.
        let revision = cache.revision();
        if let Some(kept) = cache.derived::<T>(purpose, namespace, revision) {
            return Ok(kept);
        }
        let any = ListOptions {
            resource_version: Some("0".into()),
            ..ListOptions::default()
        };
        let listed = self.list(namespace, &any).await?;
        let value = Arc::new(derive(listed.items));
        cache.keep_derived(purpose, namespace, revision, value.clone());
        Ok(value)
    }

    /// [`GenericStore::list_cached_derived`] of the objects as maps.
    pub async fn list_cached_objects(
        &self,
        purpose: &'static str,
        namespace: &str,
    ) -> Result<Arc<Vec<Object>>, ApiError> {
        let info = self.info.clone();
        self.list_cached_derived(purpose, namespace, |items| {
            items.into_iter().map(|i| i.into_object(&info)).collect()
        })
        .await
    }

    /// [`GenericStore::list_cached_derived`] read into views `T` (see
    /// [`GenericStore::get_cached_as`]); items that do not fit `T` are left out.
    pub async fn list_cached_as<T: DeserializeOwned + Send + Sync + 'static>(
        &self,
        namespace: &str,
    ) -> Result<Arc<Vec<T>>, ApiError> {
        self.list_cached_derived(std::any::type_name::<T>(), namespace, |items| {
            items
                .into_iter()
                .filter_map(|item| match item {
                    ListItem::Cached(c) => serde_json::from_slice(&c.body).ok(),
                    ListItem::Decoded(o) => serde_json::from_value(serde_json::Value::Object(o)).ok(),
                })
                .collect()
        })
        .await
    }
}
