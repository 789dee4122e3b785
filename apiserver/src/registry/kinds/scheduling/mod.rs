//! Strategies of the `scheduling.k8s.io` API group's kinds.

pub mod priority_class;

use std::sync::Arc;

use crate::registry::strategy::Strategy;

/// The strategy of `resource` when it has its own.
pub fn strategy_for(resource: &str) -> Option<Arc<dyn Strategy>> {
    match resource {
        "priorityclasses" => Some(Arc::new(priority_class::PriorityClassStrategy)),
        _ => None,
    }
}
