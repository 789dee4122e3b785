//! `admissionregistration.k8s.io`: Validating and Mutating webhook
//! configurations, ValidatingAdmissionPolicies and their bindings (`pkg/apis/admissionregistration/v1/defaults.go`,
//! `pkg/apis/admissionregistration/validation`).

pub mod client_config;
pub mod policies;
pub mod rules;
pub mod webhooks;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::registry::strategy::Strategy;

/// The strategy of `resource` when it has its own.
pub fn strategy_for(resource: &str) -> Option<Arc<dyn Strategy>> {
    match resource {
        "validatingwebhookconfigurations" => Some(Arc::new(webhooks::WebhookConfigurationStrategy { mutating: false })),
        "mutatingwebhookconfigurations" => Some(Arc::new(webhooks::WebhookConfigurationStrategy { mutating: true })),
        "validatingadmissionpolicies" => Some(Arc::new(policies::PolicyStrategy { binding: false })),
        "validatingadmissionpolicybindings" => Some(Arc::new(policies::PolicyStrategy { binding: true })),
        _ => None,
    }
}
