//! Strategies of the `discovery.k8s.io` API group's kinds.

pub mod endpoint_slice;

use std::sync::Arc;

use crate::registry::strategy::Strategy;

/// The strategy of `resource` when it has its own.
pub fn strategy_for(resource: &str) -> Option<Arc<dyn Strategy>> {
    match resource {
        "endpointslices" => Some(Arc::new(endpoint_slice::EndpointSliceStrategy)),
        _ => None,
    }
}
