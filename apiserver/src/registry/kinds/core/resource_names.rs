//! Resource names and quantities as LimitRange and ResourceQuota check them
//! (`validateResourceName`, `validateContainerResourceName`,
//! `ValidateResourceQuotaResourceName` and the helper sets of
//! `pkg/apis/core/helper`).

use serde_json::Value;

use crate::validation::names::is_qualified_name;
use crate::validation::pod_spec::quantity;
use crate::validation::{FieldError, FieldErrors};

/// `standardResources`.
const STANDARD: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "persistentvolumeclaims",
    "storage",
    "requests.storage",
    "configmaps",
    "services.nodeports",
    "services.loadbalancers",
];

/// `standardQuotaResources`.
const STANDARD_QUOTA: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.storage",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "persistentvolumeclaims",
    "configmaps",
    "services.nodeports",
    "services.loadbalancers",
];

/// `integerResources`: quota resources counted in whole objects.
const INTEGER: &[&str] = &[
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "persistentvolumeclaims",
    "configmaps",
    "services.nodeports",
    "services.loadbalancers",
];

fn is_quota_hugepages(name: &str) -> bool {
    name.starts_with("hugepages-") || name.starts_with("requests.hugepages-")
}

/// `IsStandardQuotaResourceName`.
pub fn is_standard_quota(name: &str) -> bool {
    STANDARD_QUOTA.contains(&name) || is_quota_hugepages(name)
}

/// `IsNativeResource`: no domain, or a `kubernetes.io` one.
pub fn is_native(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// `IsHugePageResourceName`.
pub fn is_hugepages(name: &str) -> bool {
    name.starts_with("hugepages-")
}

/// `IsExtendedResourceName`.
pub fn is_extended(name: &str) -> bool {
    !is_native(name) && !name.starts_with("requests.") && is_qualified_name(&format!("requests.{name}")).is_empty()
}

/// `IsOvercommitAllowed`.
pub fn overcommit_allowed(name: &str) -> bool {
    is_native(name) && !is_hugepages(name)
}

/// `validateResourceName`.
pub fn validate_resource_name(name: &str, path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    for m in is_qualified_name(name) {
        errs.push(FieldError::invalid(path, name, m));
    }
    if errs.is_empty() && !name.contains('/') && !(STANDARD.contains(&name) || is_quota_hugepages(name)) {
        errs.push(FieldError::invalid(
            path,
            name,
            "must be a standard resource type or fully qualified",
        ));
    }
    errs
}

/// `validateContainerResourceName`.
pub fn validate_container_resource_name(name: &str, path: &str) -> FieldErrors {
    let mut errs = validate_resource_name(name, path);
    if !name.contains('/') {
        if !(matches!(name, "cpu" | "memory" | "ephemeral-storage") || is_hugepages(name)) {
            errs.push(FieldError::invalid(
                path,
                name,
                "must be a standard resource for containers",
            ));
        }
    } else if !is_native(name) && !is_extended(name) {
        errs.push(FieldError::invalid(
            path,
            name,
            "doesn't follow extended resource name standard",
        ));
    }
    errs
}

/// `ValidateResourceQuotaResourceName`.
pub fn validate_quota_resource_name(name: &str, path: &str) -> FieldErrors {
    let mut errs = validate_resource_name(name, path);
    if !name.contains('/') && !is_standard_quota(name) {
        errs.push(FieldError::invalid(path, name, "must be a standard resource for quota"));
    }
    errs
}

/// The text of a quantity as sent (a string, or a JSON number).
pub fn quantity_text(v: &Value) -> String {
    v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())
}

/// `validateResourceQuantityValue`: non-negative, and whole for object
/// counts and extended resources.
pub fn validate_quota_quantity(name: &str, q: &Value, path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let text = quantity_text(q);
    if quantity::nano_value(&text).is_some_and(|v| v < 0) {
        errs.push(FieldError::invalid(
            path,
            text.as_str(),
            "must be greater than or equal to 0",
        ));
    }
    if (INTEGER.contains(&name) || is_extended(name)) && !quantity::is_integer(&text) {
        errs.push(FieldError::invalid(path, text.as_str(), "must be an integer"));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names() {
        assert!(validate_resource_name("cpu", "p").is_empty());
        assert!(validate_resource_name("example.com/gpu", "p").is_empty());
        assert_eq!(
            validate_resource_name("bogus", "p").summary(),
            "p: Invalid value: \"bogus\": must be a standard resource type or fully qualified"
        );
        assert_eq!(
            validate_container_resource_name("pods", "p").summary(),
            "p: Invalid value: \"pods\": must be a standard resource for containers"
        );
        assert_eq!(
            validate_quota_resource_name("storage", "p").summary(),
            "p: Invalid value: \"storage\": must be a standard resource for quota"
        );
        assert!(validate_quota_resource_name("count/deployments.apps", "p").is_empty());
        assert_eq!(
            validate_quota_quantity("pods", &json!("1500m"), "p").summary(),
            "p: Invalid value: \"1500m\": must be an integer"
        );
        assert_eq!(
            validate_quota_quantity("cpu", &json!("-1"), "p").summary(),
            "p: Invalid value: \"-1\": must be greater than or equal to 0"
        );
    }
}
