//! `node.k8s.io`: RuntimeClass (`pkg/apis/node/validation`): the handler
//! is a DNS label and never changes; the pod overhead is a valid resource
//! list; the scheduling node selector holds valid labels.

use std::sync::Arc;

use serde_json::{Value, json};

use super::default_traits;
use crate::registry::object::Object;
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::label_selector::validate_labels;
use crate::validation::names::is_dns1123_label;
use crate::validation::pod_spec::containers::validate_resources;
use crate::validation::{FieldError, FieldErrors};

/// The strategy of `resource` when it has its own.
pub fn strategy_for(resource: &str) -> Option<Arc<dyn Strategy>> {
    match resource {
        "runtimeclasses" => Some(Arc::new(RuntimeClassStrategy)),
        _ => None,
    }
}

#[derive(Debug, Default)]
pub struct RuntimeClassStrategy;

fn handler(obj: &Object) -> &str {
    obj.get("handler").and_then(Value::as_str).unwrap_or("")
}

/// `ValidateRuntimeClass` without metadata.
pub fn validate_runtime_class(obj: &Object) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let h = handler(obj);
    for m in is_dns1123_label(h) {
        errs.push(FieldError::invalid("handler", h, m));
    }
    if let Some(fixed) = obj
        .get("overhead")
        .and_then(|o| o.get("podFixed"))
        .filter(|v| !v.is_null())
    {
        validate_resources(Some(&json!({"limits": fixed})), "overhead", &mut errs);
    }
    if let Some(scheduling) = obj.get("scheduling").filter(|v| !v.is_null()) {
        errs.extend(validate_labels(
            scheduling.get("nodeSelector"),
            "scheduling.nodeSelector",
        ));
    }
    errs
}

impl Strategy for RuntimeClassStrategy {
    fn traits(&self) -> KindTraits {
        default_traits("node.k8s.io", "runtimeclasses")
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_runtime_class(obj)
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        // Upstream checks only the handler on update.
        let mut errs = FieldErrors::new();
        if handler(new) != handler(old) {
            errs.push(FieldError::invalid("handler", handler(new), "field is immutable"));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn obj(v: Value) -> Object {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn handler_rules() {
        assert!(validate_runtime_class(&obj(json!({"handler": "runc"}))).is_empty());
        assert_eq!(
            validate_runtime_class(&obj(json!({"handler": "Run_C"}))).summary(),
            "handler: Invalid value: \"Run_C\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        );
        assert_eq!(
            validate_runtime_class(&obj(
                json!({"handler": "runc", "overhead": {"podFixed": {"cpu": "-1"}}})
            ))
            .iter()
            .map(|e| e.field.as_str())
            .collect::<Vec<_>>(),
            ["overhead.limits[cpu]"]
        );
        let s = RuntimeClassStrategy;
        assert_eq!(
            s.validate_update(&obj(json!({"handler": "b"})), &obj(json!({"handler": "a"})))
                .summary(),
            "handler: Invalid value: \"b\": field is immutable"
        );
    }
}
