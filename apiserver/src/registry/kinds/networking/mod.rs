//! Strategies of the `networking.k8s.io` API group's kinds, and the value
//! formats and JSON helpers the other groups' strategies here share.

pub mod formats;
pub mod ingress;
pub mod ingress_class;
pub mod ip_address;
pub mod network_policy;
pub mod service_cidr;
pub mod values;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::registry::strategy::Strategy;

/// The strategy of `resource` when it has its own.
pub fn strategy_for(resource: &str) -> Option<Arc<dyn Strategy>> {
    match resource {
        "ingresses" => Some(Arc::new(ingress::IngressStrategy)),
        "ingressclasses" => Some(Arc::new(ingress_class::IngressClassStrategy)),
        "networkpolicies" => Some(Arc::new(network_policy::NetworkPolicyStrategy)),
        "ipaddresses" => Some(Arc::new(ip_address::IpAddressStrategy)),
        "servicecidrs" => Some(Arc::new(service_cidr::ServiceCidrStrategy)),
        _ => None,
    }
}
