//! Strategies of the core (legacy, `v1`) API group's kinds.

pub mod checks;
pub mod component_status;
pub mod config;
pub mod endpoints;
pub mod limit_range;
pub mod node;
pub mod pod_template;
pub mod resource_names;
pub mod resource_quota;
pub mod service;
pub mod service_account;
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
        "endpoints" => Arc::new(endpoints::EndpointsStrategy(traits)),
        "limitranges" => Arc::new(limit_range::LimitRangeStrategy(traits)),
        "resourcequotas" => Arc::new(resource_quota::ResourceQuotaStrategy(traits)),
        "serviceaccounts" => Arc::new(service_account::ServiceAccountStrategy(traits)),
        "podtemplates" => Arc::new(pod_template::PodTemplateStrategy(traits)),
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
mod http_tests;
#[cfg(test)]
mod tests;
