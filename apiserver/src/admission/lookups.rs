//! Reads that several plugins make in one request, made once: the
//! request's namespace (NamespaceLifecycle in the mutating phase,
//! PodSecurity in the validating one) and its LimitRanges (LimitRanger's
//! defaults, then its min/max checks). Upstream's plugins read both from
//! informers, so a request sees one state of them either way; here the
//! first read of the request is kept for the rest of it (across a store's
//! retries too). Failed reads are not kept.

use std::sync::{Arc, OnceLock};

use crate::registry::Registry;
use crate::registry::object::Object;
use crate::status::ApiError;

use super::namespace_view::NamespaceView;

/// One request's shared reads (see the module docs), for the request's
/// namespace only.
#[derive(Debug, Default)]
pub struct Lookups {
    // `OnceLock`, not an async once-cell (whose semaphore showed in the
    // profile): a request's plugins run one after the other, so no read
    // is ever waited for.
    namespace: OnceLock<Option<Arc<NamespaceView>>>,
    limit_ranges: OnceLock<Arc<Vec<Object>>>,
}

impl Lookups {
    /// The namespace `name` as [`NamespaceView::read`] gives it.
    pub async fn namespace(&self, registry: &Registry, name: &str) -> Result<Option<&NamespaceView>, ApiError> {
        if self.namespace.get().is_none() {
            let read = NamespaceView::read(registry, name).await?;
            // Set already only if a concurrent read of this request won: the same namespace.
            let _ = self.namespace.set(read);
        }
        Ok(self.namespace.get().and_then(Option::as_deref))
    }

    /// The LimitRanges of `namespace`.
    pub async fn limit_ranges(&self, registry: &Registry, namespace: &str) -> Result<&[Object], ApiError> {
        if self.limit_ranges.get().is_none() {
            let read = read_limit_ranges(registry, namespace).await?;
            let _ = self.limit_ranges.set(read);
        }
        Ok(self.limit_ranges.get().map_or(&[], |l| l.as_slice()))
    }
}

/// The LimitRanges of `namespace`, from the watch cache like upstream's
/// lister: no storage round trip per write, and decoded once while they
/// do not change.
async fn read_limit_ranges(registry: &Registry, namespace: &str) -> Result<Arc<Vec<Object>>, ApiError> {
    let Some(store) = registry.store("", "limitranges") else {
        return Ok(Arc::default());
    };
    store.list_cached_objects("admission.limit-ranges", namespace).await
}
