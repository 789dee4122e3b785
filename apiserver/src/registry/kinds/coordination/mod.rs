//! Strategies of the `coordination.k8s.io` API group's kinds (Lease;
//! LeaseCandidate is not served at v1).

pub mod lease;

use std::sync::Arc;

use crate::registry::strategy::Strategy;

/// The strategy of `resource` when it has its own.
pub fn strategy_for(resource: &str) -> Option<Arc<dyn Strategy>> {
    match resource {
        "leases" => Some(Arc::new(lease::LeaseStrategy)),
        _ => None,
    }
}
