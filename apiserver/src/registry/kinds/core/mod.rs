//! Strategies of the core (legacy, `v1`) API group's kinds, and of the
//! `networking.k8s.io` kinds that record Service IP allocation.

pub mod checks;
pub mod config;
pub mod node;
pub mod service;
pub mod volumes;

use std::sync::Arc;

use super::default_traits;
use crate::registry::strategy::Strategy;

/// The strategy of `resource` when it has its own.
pub fn strategy_for(resource: &str) -> Option<Arc<dyn Strategy>> {
    let traits = default_traits("", resource);
    let s: Arc<dyn Strategy> = match resource {
        "services" => Arc::new(service::ServiceStrategy::default()),
        "configmaps" => Arc::new(config::ConfigMapStrategy(traits)),
        "secrets" => Arc::new(config::SecretStrategy(traits)),
        "nodes" => Arc::new(node::NodeStrategy(traits)),
        "persistentvolumeclaims" => Arc::new(volumes::ClaimStrategy(traits)),
        "persistentvolumes" => Arc::new(volumes::VolumeStrategy(traits)),
        "events" => Arc::new(super::events::EventStrategy {
            api: super::events::EventApi::Core,
            traits,
        }),
        _ => return None,
    };
    Some(s)
}

#[cfg(test)]
mod tests;
