//! Per-kind facts and strategies of the built-in kinds.

pub mod admissionregistration;
pub mod alpha_fields;
pub mod apiextensions;
pub mod apiregistration;
pub mod apps;
pub mod autoscaling;
pub mod batch;
pub mod certificates;
pub mod coordination;
pub mod core;
pub mod discovery;
pub mod events;
pub mod flowcontrol;
pub mod namespace;
pub mod networking;
pub mod node;
pub mod pod;
pub mod policy;
pub mod rbac;
pub mod replication_controller;
pub mod resource;
pub mod scheduling;
pub mod storage;

use std::sync::Arc;

use crate::resources::ResourceInfo;
use crate::validation::object_meta::NameRule;

use super::strategy::{GenericStrategy, KindTraits, Strategy};

/// Whether a resource keeps objects in storage (review and token kinds are
/// virtual: they are computed per request).
pub fn is_stored(info: &ResourceInfo) -> bool {
    (info.has_verb("get") || info.has_verb("list")) && info.resource != "componentstatuses"
}

/// Kinds whose `metadata.generation` tracks spec changes upstream.
fn tracks_generation(group: &str, resource: &str) -> bool {
    matches!(
        (group, resource),
        ("apps", _)
            | ("batch", _)
            | ("autoscaling", "horizontalpodautoscalers")
            | ("policy", "poddisruptionbudgets")
            | ("networking.k8s.io", "ingresses" | "networkpolicies")
            | ("", "replicationcontrollers" | "pods")
            | (
                "admissionregistration.k8s.io",
                "validatingadmissionpolicies" | "mutatingadmissionpolicies"
            )
            | ("flowcontrol.apiserver.k8s.io", _)
            | ("apiextensions.k8s.io", "customresourcedefinitions")
            | ("resource.k8s.io", "resourceclaims")
    )
}

/// How a resource's names are validated upstream.
fn name_rule(group: &str, resource: &str) -> NameRule {
    match (group, resource) {
        ("", "namespaces") => NameRule::Dns1123Label,
        ("", "services") => NameRule::Dns1035Label,
        ("rbac.authorization.k8s.io", _) => NameRule::PathSegment,
        _ => NameRule::Dns1123Subdomain,
    }
}

/// The data-only traits of a resource (name rule, generation tracking):
/// strategies of their own start from these.
pub fn default_traits(group: &str, resource: &str) -> KindTraits {
    KindTraits {
        name_rule: name_rule(group, resource),
        tracks_generation: tracks_generation(group, resource),
    }
}

/// The strategy of a resource.
pub fn strategy_for(info: &ResourceInfo) -> Arc<dyn Strategy> {
    match (info.group.as_str(), info.resource.as_str()) {
        ("", "namespaces") => return Arc::new(namespace::NamespaceStrategy),
        ("", "pods") => return Arc::new(pod::PodStrategy),
        ("", "replicationcontrollers") => return Arc::new(replication_controller::ReplicationControllerStrategy),
        _ => {}
    }
    let own = match info.group.as_str() {
        "" => core::strategy_for(&info.resource),
        "apps" => apps::strategy_for(&info.resource),
        "batch" => batch::strategy_for(&info.resource),
        "autoscaling" => autoscaling::strategy_for(&info.resource),
        "policy" => policy::strategy_for(&info.resource),
        "events.k8s.io" => events::strategy_for(&info.resource),
        "networking.k8s.io" => networking::strategy_for(&info.resource),
        "discovery.k8s.io" => discovery::strategy_for(&info.resource),
        "rbac.authorization.k8s.io" => rbac::strategy_for(&info.resource),
        "coordination.k8s.io" => coordination::strategy_for(&info.resource),
        "storage.k8s.io" => storage::strategy_for(&info.resource),
        "scheduling.k8s.io" => scheduling::strategy_for(&info.resource),
        "node.k8s.io" => node::strategy_for(&info.resource),
        "certificates.k8s.io" => certificates::strategy_for(&info.resource),
        "admissionregistration.k8s.io" => admissionregistration::strategy_for(&info.resource),
        "flowcontrol.apiserver.k8s.io" => flowcontrol::strategy_for(&info.resource),
        "apiextensions.k8s.io" => apiextensions::strategy_for(&info.resource),
        "apiregistration.k8s.io" => apiregistration::strategy_for(&info.resource),
        "resource.k8s.io" => resource::strategy_for(&info.resource),
        _ => None,
    };
    if let Some(s) = own {
        return s;
    }
    Arc::new(GenericStrategy(default_traits(&info.group, &info.resource)))
}
