//! The registry: one generic store per resource over the storage
//! interface, with per-kind strategies.
//!
//! [`store::GenericStore`] does create/get/update/delete, [`list`] and
//! [`watch`] add LIST and WATCH, [`strategy`] is the per-kind seam, and
//! [`kinds`] holds the per-kind facts and strategies. [`Registry`] maps
//! every served resource to its store.

pub mod alloc;
pub mod cache;
mod cached_read;
pub mod guaranteed_update;
pub mod kinds;
pub mod list;
pub mod object;
pub mod selection;
pub mod store;
pub mod stored_form;
pub mod strategy;
pub mod watch;

use std::collections::HashMap;
use std::sync::Arc;

use rkube_storage::Store;

use crate::resources::{ResourceInfo, ResourceTable};
use store::GenericStore;

/// A (group, plural name) pair.
type GroupResource = (&'static str, &'static str);

/// Resources kept in another resource's storage, as upstream does: an
/// events.k8s.io Event is a core Event (`convert::events` converts). The
/// shared resource gets a store of its own over the owner's keys and watch
/// cache, so that its writes are validated as its API requires.
const SHARED_STORES: &[(GroupResource, GroupResource)] = &[(("events.k8s.io", "events"), ("", "events"))];

/// Every resource's store, by group and plural name. Versions of one
/// resource share a store; the resources of [`SHARED_STORES`] share the
/// owner's storage and watch cache.
pub struct Registry {
    /// By group, then plural name: looked up with borrowed names on every
    /// request.
    stores: HashMap<String, HashMap<String, Arc<GenericStore>>>,
    pub resources: &'static ResourceTable,
    /// The watch cache serving every store's lists and watches.
    pub cache: Arc<cache::Cache>,
    cache_task: tokio::task::JoinHandle<()>,
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.cache_task.abort();
    }
}

impl Registry {
    /// Stores for every built-in resource that keeps objects, and the watch
    /// cache in front of them (filled in the background; lists and watches
    /// go to storage until it is ready). Must run inside a Tokio runtime.
    pub fn new(storage: Arc<dyn Store>, resources: &'static ResourceTable) -> Self {
        // Every write through the registry is recorded, so reads on the
        // server's own behalf can wait for the cache to have them.
        let acknowledged = cache::AcknowledgedRevision::default();
        let storage = acknowledged.track(storage);
        let mut stores = HashMap::new();
        for info in resources.all() {
            let key = (info.group.clone(), info.resource.clone());
            let shared = SHARED_STORES
                .iter()
                .any(|((g, r), _)| info.group == *g && info.resource == *r);
            if stores.contains_key(&key) || !kinds::is_stored(info) || shared {
                continue;
            }
            let strategy = kinds::strategy_for(info);
            stores.insert(
                key,
                Arc::new(GenericStore::new(info.clone(), storage.clone(), strategy)),
            );
        }
        let entries = stores
            .values()
            .map(|s| (s.storage_prefix().to_string(), s.info.clone()))
            .collect();
        let cache = cache::Cache::with_acknowledged(storage.clone(), entries, acknowledged);
        for store in stores.values() {
            if let Some(rc) = cache.resource(store.storage_prefix()) {
                store.set_cache(cache.clone(), rc);
            }
        }
        let cache_task = cache.start();
        // A shared resource writes through its own store (its own
        // strategy: the request version's validation) over the owner's
        // keys and watch cache.
        for ((group, resource), (owner_group, owner)) in SHARED_STORES {
            let Some(owner) = stores.get(&(owner_group.to_string(), owner.to_string())).cloned() else {
                continue;
            };
            let strategy = crate::convert::shared_store_strategy(group, resource, &owner.info);
            let store = Arc::new(GenericStore::new(owner.info.clone(), storage.clone(), strategy));
            if let Some(rc) = cache.resource(store.storage_prefix()) {
                store.set_cache(cache.clone(), rc);
            }
            stores.insert((group.to_string(), resource.to_string()), store);
        }
        let mut by_group: HashMap<String, HashMap<String, Arc<GenericStore>>> = HashMap::new();
        for ((group, resource), store) in stores {
            by_group.entry(group).or_default().insert(resource, store);
        }
        Registry {
            stores: by_group,
            resources,
            cache,
            cache_task,
        }
    }

    /// The store of a resource.
    pub fn store(&self, group: &str, resource: &str) -> Option<&Arc<GenericStore>> {
        self.stores.get(group)?.get(resource)
    }

    /// The store serving a resource's info.
    pub fn store_for(&self, info: &ResourceInfo) -> Option<&Arc<GenericStore>> {
        self.store(&info.group, &info.resource)
    }
}
