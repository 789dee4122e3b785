//! Per-kind facts and strategies of the built-in kinds.

pub mod namespace;
pub mod pod;

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

/// The strategy of a resource.
pub fn strategy_for(info: &ResourceInfo) -> Arc<dyn Strategy> {
    match (info.group.as_str(), info.resource.as_str()) {
        ("", "namespaces") => return Arc::new(namespace::NamespaceStrategy),
        ("", "pods") => return Arc::new(pod::PodStrategy),
        _ => {}
    }
    let traits = KindTraits {
        name_rule: name_rule(&info.group, &info.resource),
        tracks_generation: tracks_generation(&info.group, &info.resource),
    };
    Arc::new(GenericStrategy(traits))
}
