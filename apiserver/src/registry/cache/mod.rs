//! The watch cache: every stored object of every resource kept in memory
//! from one storage watch, so LIST and WATCH are served without touching
//! storage (upstream's cacher, our own design).
//!
//! One task lists the whole key space at one revision, fills each
//! resource's [`ResourceCache`], then follows a single storage watch and
//! applies each event to its resource. Because one watch sees every write,
//! the cache's global revision advances with every write, and a consistent
//! read only has to wait until the cache has reached the storage's current
//! revision. If the storage watch fails, the cache is rebuilt and live
//! watchers are told to start over.

mod acknowledged;
pub mod resource;
mod revision_reader;
mod stored_json;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use rkube_storage::{ListOptions, Revision, Store};
use tokio::sync::watch;

use crate::resources::ResourceInfo;
use crate::status::ApiError;

pub use acknowledged::AcknowledgedRevision;
pub use resource::{CacheEvent, CacheSignal, CachedObject, ResourceCache, Snapshot};
use revision_reader::RevisionReader;

/// Storage items read per page while filling the cache.
const FILL_PAGE: usize = 10_000;
/// How long a consistent read waits for the cache to catch up.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(3);

/// The watch cache of all resources.
pub struct Cache {
    storage: Arc<dyn Store>,
    /// The storage's current revision for consistent reads.
    storage_revision: RevisionReader,
    /// The highest revision this server acknowledged a write at.
    acknowledged: AcknowledgedRevision,
    resources: HashMap<String, Arc<ResourceCache>>,
    revision: watch::Sender<Revision>,
    ready: watch::Sender<bool>,
}

/// The resource prefix (`/core/pods/`) of a storage key.
fn prefix_of(key: &str) -> Option<&str> {
    let mut slashes = key.match_indices('/').map(|(i, _)| i);
    let (_, _, third) = (slashes.next()?, slashes.next()?, slashes.next()?);
    Some(&key[..=third])
}

impl Cache {
    /// A cache for resources keyed by storage prefix.
    pub fn new(storage: Arc<dyn Store>, resources: Vec<(String, Arc<ResourceInfo>)>) -> Arc<Cache> {
        Cache::with_acknowledged(storage, resources, AcknowledgedRevision::default())
    }

    /// A cache whose [`Cache::sync_to_acknowledged`] waits for the writes
    /// `acknowledged` records (see [`AcknowledgedRevision::track`]).
    pub fn with_acknowledged(
        storage: Arc<dyn Store>,
        resources: Vec<(String, Arc<ResourceInfo>)>,
        acknowledged: AcknowledgedRevision,
    ) -> Arc<Cache> {
        let resources = resources
            .into_iter()
            .map(|(p, info)| (p, Arc::new(ResourceCache::new(info))))
            .collect();
        Arc::new(Cache {
            storage_revision: RevisionReader::new(storage.clone()),
            acknowledged,
            storage,
            resources,
            revision: watch::channel(0).0,
            ready: watch::channel(false).0,
        })
    }

    /// The cache of the resource stored under `prefix`.
    pub fn resource(&self, prefix: &str) -> Option<Arc<ResourceCache>> {
        self.resources.get(prefix).cloned()
    }

    /// The revision the cache has reached.
    pub fn revision(&self) -> Revision {
        *self.revision.borrow()
    }

    /// Whether the first fill has finished.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Waits until the first fill has finished.
    pub async fn wait_ready(&self) {
        let mut rx = self.ready.subscribe();
        let _ = rx.wait_for(|r| *r).await;
    }

    /// Waits until the cache has applied every write up to `revision`.
    pub async fn wait_for(&self, revision: Revision) -> Result<(), ApiError> {
        // Nearly always there already: no subscription, no timer.
        if *self.revision.borrow() >= revision {
            return Ok(());
        }
        let mut rx = self.revision.subscribe();
        match tokio::time::timeout(CATCH_UP_TIMEOUT, rx.wait_for(|r| *r >= revision)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(ApiError::timeout(format!(
                "Too large resource version: {revision}, current: {}",
                self.revision()
            ))),
        }
    }

    /// A consistent read point: waits for the storage's current revision.
    pub async fn sync_to_storage(&self) -> Result<Revision, ApiError> {
        let current = self
            .storage_revision
            .current()
            .await
            .map_err(|e| ApiError::service_unavailable(e.to_string()))?;
        self.wait_for(current).await?;
        Ok(current)
    }

    /// A read point for reads on the server's own behalf: waits until the
    /// cache has every write to the resource stored under `prefix` this
    /// server acknowledged, without asking storage (see
    /// [`AcknowledgedRevision`]).
    pub async fn sync_to_acknowledged(&self, prefix: &str) -> Result<Revision, ApiError> {
        let revision = self.acknowledged.get(prefix);
        self.wait_for(revision).await?;
        Ok(revision)
    }

    /// Runs the fill-and-follow loop until the task is aborted.
    pub fn start(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                match this.run_once().await {
                    Ok(()) => backoff = Duration::from_millis(100),
                    Err(e) => {
                        tracing::warn!(error = %e, "watch cache lost its storage watch; rebuilding");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
        })
    }

    /// Fills the cache and follows the storage watch until it fails.
    async fn run_once(&self) -> Result<(), rkube_storage::StorageError> {
        let started = std::time::Instant::now();
        // Each page is encoded as it arrives, so the raw values of the whole
        // key space are never held at once.
        let mut by_prefix: HashMap<&str, BTreeMap<String, Arc<CachedObject>>> = HashMap::new();
        let mut start = None;
        let mut revision = None;
        let mut total = 0usize;
        loop {
            let page = self
                .storage
                .list(
                    "/",
                    ListOptions {
                        revision,
                        limit: FILL_PAGE,
                        start: start.clone(),
                    },
                )
                .await?;
            revision = Some(page.revision);
            start = page.next_start();
            total += page.items.len();
            for kv in page.items {
                if let Some(p) = prefix_of(&kv.key)
                    && let Some((prefix, cache)) = self.resources.get_key_value(p)
                    && let Some(obj) = cache.encode(&kv)
                {
                    by_prefix.entry(prefix.as_str()).or_default().insert(kv.key, obj);
                }
            }
            if start.is_none() {
                break;
            }
        }
        let revision = revision.unwrap_or(0);
        for (prefix, cache) in &self.resources {
            cache.reset_objects(by_prefix.remove(prefix.as_str()).unwrap_or_default(), revision);
        }
        drop(by_prefix);
        release_free_memory();
        let mut events = self.storage.watch("/", Some(revision)).await?;
        self.revision.send_replace(revision);
        self.ready.send_replace(true);
        tracing::info!(
            objects = total,
            revision,
            fill_ms = started.elapsed().as_millis() as u64,
            "watch cache filled"
        );
        while let Some(item) = events.next().await {
            let ev = item?;
            if let Some(p) = prefix_of(&ev.kv.key)
                && let Some(cache) = self.resources.get(p)
            {
                cache.apply(&ev);
            }
            self.revision.send_replace(ev.revision());
        }
        Err(rkube_storage::StorageError::Unavailable("storage watch ended".into()))
    }
}

/// Hands memory freed by the fill (decoded pages, temporaries) back to the
/// system, so the resident size after a start is what the cache holds.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn release_free_memory() {
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it
    // takes no pointers and is safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(prefix_of("/core/pods/ns/p"), Some("/core/pods/"));
        assert_eq!(prefix_of("/apps/deployments/d"), Some("/apps/deployments/"));
        assert_eq!(prefix_of("/x"), None);
    }
}
