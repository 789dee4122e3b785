//! `apiregistration.k8s.io`: APIService (`pkg/apis/apiregistration/validation`,
//! `v1/defaults.go`): the name is `<version>.<group>`, priorities are in
//! range, and the service is complete when there is one (a local
//! APIService has no caBundle and does not skip TLS verification).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::default_traits;
use crate::registry::kinds::networking::values::set_default;
use crate::registry::object::{self, Object};
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::names::{is_dns1035_label, is_dns1123_subdomain, is_path_segment_name};
use crate::validation::object_meta::NameRule;
use crate::validation::{FieldError, FieldErrors};

/// The strategy of `resource` when it has its own.
pub fn strategy_for(resource: &str) -> Option<Arc<dyn Strategy>> {
    match resource {
        "apiservices" => Some(Arc::new(ApiServiceStrategy)),
        _ => None,
    }
}

#[derive(Debug, Default)]
pub struct ApiServiceStrategy;

/// `SetDefaults_ServiceReference`: port 443.
fn apply_defaults(obj: &mut Object) {
    if let Some(Value::Object(svc)) = obj.get_mut("spec").and_then(|s| s.get_mut("service")) {
        set_default(svc, "port", json!(443));
    }
}

/// `ValidateAPIService` without the generic metadata checks.
pub fn validate_api_service(obj: &Object) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let spec = obj.get("spec");
    let s = |k: &str| spec.and_then(|s| s.get(k)).and_then(Value::as_str).unwrap_or("");
    let (group, version) = (s("group"), s("version"));
    let name = object::name(obj);
    let required = format!("{version}.{group}");
    if !name.is_empty() && is_path_segment_name(name).is_empty() && name != required {
        errs.push(FieldError::invalid(
            "metadata.name",
            name,
            format!("must be `spec.version+\".\"+spec.group`: \"{required}\""),
        ));
    }
    if group.is_empty() && version != "v1" {
        errs.push(FieldError::required(
            "spec.group",
            "only v1 may have an empty group and it better be legacy kube",
        ));
    }
    if !group.is_empty() {
        for m in is_dns1123_subdomain(group) {
            errs.push(FieldError::invalid("spec.group", group, m));
        }
    }
    for m in is_dns1035_label(version) {
        errs.push(FieldError::invalid("spec.version", version, m));
    }
    let int = |k: &str| spec.and_then(|s| s.get(k)).and_then(Value::as_i64).unwrap_or(0);
    let group_min = int("groupPriorityMinimum");
    if group_min <= 0 || group_min > 20000 {
        errs.push(FieldError::invalid(
            "spec.groupPriorityMinimum",
            group_min,
            "must be positive and less than 20000",
        ));
    }
    let version_priority = int("versionPriority");
    if version_priority <= 0 || version_priority > 1000 {
        errs.push(FieldError::invalid(
            "spec.versionPriority",
            version_priority,
            "must be positive and less than 1000",
        ));
    }
    let ca_len = STANDARD.decode(s("caBundle")).map_or(0, |b| b.len());
    let insecure = spec
        .and_then(|s| s.get("insecureSkipTLSVerify"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let Some(svc) = spec.and_then(|s| s.get("service")).filter(|v| !v.is_null()) else {
        if ca_len != 0 {
            errs.push(FieldError::invalid(
                "spec.caBundle",
                format!("{ca_len} bytes"),
                "local APIServices may not have a caBundle",
            ));
        }
        if insecure {
            errs.push(FieldError::invalid(
                "spec.insecureSkipTLSVerify",
                true,
                "local APIServices may not have insecureSkipTLSVerify",
            ));
        }
        return errs;
    };
    for f in ["namespace", "name"] {
        if svc.get(f).and_then(Value::as_str).unwrap_or("").is_empty() {
            errs.push(FieldError::required(format!("spec.service.{f}"), ""));
        }
    }
    let port = svc.get("port").and_then(Value::as_i64).unwrap_or(0);
    if !(1..=65535).contains(&port) {
        errs.push(FieldError::invalid(
            "spec.service.port",
            port,
            "port is not valid: must be between 1 and 65535, inclusive",
        ));
    }
    if insecure && ca_len > 0 {
        errs.push(FieldError::invalid(
            "spec.insecureSkipTLSVerify",
            true,
            "may not be true if caBundle is present",
        ));
    }
    errs
}

impl Strategy for ApiServiceStrategy {
    fn traits(&self) -> KindTraits {
        // The name is checked against the spec below; the generic check
        // only needs it to be a path segment, like upstream's first test.
        KindTraits {
            name_rule: NameRule::PathSegment,
            ..default_traits("apiregistration.k8s.io", "apiservices")
        }
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        apply_defaults(obj);
    }

    fn prepare_for_update(&self, new: &mut Object, _old: &Object) {
        apply_defaults(new);
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_api_service(obj)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::registry::strategy::testing::create_messages;

    fn messages(name: &str, spec: Value) -> Vec<String> {
        create_messages(&ApiServiceStrategy, json!({"metadata": {"name": name}, "spec": spec}))
    }

    #[test]
    fn api_services() {
        let remote = json!({"group": "metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100,
                            "versionPriority": 100, "service": {"name": "metrics-server", "namespace": "kube-system"}});
        assert!(messages("v1beta1.metrics.k8s.io", remote.clone()).is_empty());
        assert_eq!(
            messages("metrics", remote),
            [
                "metadata.name: Invalid value: \"metrics\": must be `spec.version+\".\"+spec.group`: \"v1beta1.metrics.k8s.io\""
            ]
        );
        assert_eq!(
            messages(
                "v2.",
                json!({"version": "v2", "versionPriority": 0, "caBundle": "AAEC", "insecureSkipTLSVerify": true})
            ),
            [
                "spec.group: Required value: only v1 may have an empty group and it better be legacy kube",
                "spec.groupPriorityMinimum: Invalid value: 0: must be positive and less than 20000",
                "spec.versionPriority: Invalid value: 0: must be positive and less than 1000",
                "spec.caBundle: Invalid value: \"3 bytes\": local APIServices may not have a caBundle",
                "spec.insecureSkipTLSVerify: Invalid value: true: local APIServices may not have insecureSkipTLSVerify",
            ]
        );
        assert_eq!(
            messages(
                "v1.x.io",
                json!({"group": "x.io", "version": "v1", "groupPriorityMinimum": 1, "versionPriority": 1, "service": {"port": 0}})
            ),
            [
                "spec.service.namespace: Required value",
                "spec.service.name: Required value",
                "spec.service.port: Invalid value: 0: port is not valid: must be between 1 and 65535, inclusive",
            ]
        );
    }
}
