//! Object lookups for authenticators: the objects a token names (service
//! accounts, pods, secrets, nodes), read from the watch cache, with a read
//! from storage when the cache does not have the object (yet), so a token
//! issued for a just-created object works and a deleted one is seen as
//! gone.

use std::sync::Arc;

use crate::registry::Registry;
use crate::registry::object::Object;

/// Reads objects for authenticators.
#[derive(Clone)]
pub struct ObjectGetter {
    registry: Arc<Registry>,
}

impl std::fmt::Debug for ObjectGetter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectGetter").finish_non_exhaustive()
    }
}

impl ObjectGetter {
    pub fn new(registry: Arc<Registry>) -> Self {
        ObjectGetter { registry }
    }

    /// The core/v1 object `resource` named `name` in `namespace` (`""` for
    /// cluster-scoped ones), or `None` when it does not exist.
    pub async fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<Object> {
        let store = self.registry.store("", resource)?;
        let key = store.key(namespace, name);
        if let Some((root, cache)) = store.cache()
            && root.is_ready()
            && let Some(cached) = cache.get(&key)
        {
            return Some(cached.decode(&store.info));
        }
        store.get(namespace, name).await.ok()
    }
}
