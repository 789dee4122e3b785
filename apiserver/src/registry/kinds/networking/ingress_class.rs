//! IngressClass (`networking.k8s.io/v1`): the controller (required,
//! domain-prefixed, immutable) and the parameters reference, whose scope
//! defaults to Cluster.

use serde_json::{Value, json};

use super::formats::is_domain_prefixed_path;
use super::values::{get, immutable, object_mut, opt_str, set_default, str_at, too_long};
use crate::registry::kinds::default_traits;
use crate::registry::object::Object;
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::names::{is_dns1123_label, is_dns1123_subdomain, is_path_segment_name};
use crate::validation::{FieldError, FieldErrors, child};

const MAX_CONTROLLER_LEN: usize = 250;

#[derive(Debug, Default)]
pub struct IngressClassStrategy;

fn apply_defaults(obj: &mut Object) {
    if let Some(Value::Object(spec)) = obj.get_mut("spec")
        && spec.get("parameters").is_some_and(Value::is_object)
    {
        set_default(object_mut(spec, "parameters"), "scope", json!("Cluster"));
    }
}

impl Strategy for IngressClassStrategy {
    fn traits(&self) -> KindTraits {
        default_traits("networking.k8s.io", "ingressclasses")
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        apply_defaults(obj);
    }

    fn prepare_for_update(&self, new: &mut Object, _old: &Object) {
        apply_defaults(new);
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_spec(obj.get("spec"))
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let mut errs = FieldErrors::new();
        let controller = str_at(new.get("spec"), "controller");
        if controller != str_at(old.get("spec"), "controller") {
            errs.push(immutable("spec.controller", controller));
        }
        errs.extend(validate_spec(new.get("spec")));
        errs
    }
}

fn validate_spec(spec: Option<&Value>) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let controller = str_at(spec, "controller");
    if controller.is_empty() {
        errs.push(FieldError::required("spec.controller", ""));
    } else {
        if controller.len() > MAX_CONTROLLER_LEN {
            errs.push(too_long("spec.controller", MAX_CONTROLLER_LEN));
        }
        errs.extend(is_domain_prefixed_path("spec.controller", controller));
    }
    if let Some(params) = get(spec, "parameters") {
        errs.extend(validate_parameters(params, "spec.parameters"));
    }
    errs
}

fn validate_parameters(params: &Value, path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let p = Some(params);
    if let Some(group) = opt_str(p, "apiGroup") {
        for m in is_dns1123_subdomain(group) {
            errs.push(FieldError::invalid(child(path, "apiGroup"), group, m));
        }
    }
    for field in ["kind", "name"] {
        let v = str_at(p, field);
        if v.is_empty() {
            errs.push(FieldError::required(child(path, field), ""));
        } else {
            for m in is_path_segment_name(v) {
                errs.push(FieldError::invalid(child(path, field), v, m));
            }
        }
    }
    let Some(scope) = opt_str(p, "scope") else {
        errs.push(FieldError::required(child(path, "scope"), ""));
        return errs;
    };
    let namespace = opt_str(p, "namespace");
    match scope {
        "Namespace" => match namespace {
            None => errs.push(FieldError::required(
                child(path, "namespace"),
                "`parameters.scope` is set to 'Namespace'",
            )),
            Some(ns) => {
                for m in is_dns1123_label(ns) {
                    errs.push(FieldError::invalid(child(path, "namespace"), ns, m));
                }
            }
        },
        "Cluster" => {
            if namespace.is_some() {
                errs.push(FieldError::forbidden(
                    child(path, "namespace"),
                    "`parameters.scope` is set to 'Cluster'",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            child(path, "scope"),
            other,
            &["Cluster", "Namespace"],
        )),
    }
    errs
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::registry::strategy::testing::create_messages;

    fn obj(spec: Value) -> Object {
        match json!({"metadata": {"name": "c"}, "spec": spec}) {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn check(spec: Value, expected: &[&str]) {
        assert_eq!(
            create_messages(&IngressClassStrategy, Value::Object(obj(spec))),
            expected
        );
    }

    #[test]
    fn controller_and_parameters() {
        check(json!({"controller": "example.com/ingress"}), &[]);
        check(json!({}), &["spec.controller: Required value"]);
        check(
            json!({"controller": format!("example.com/{}", "a".repeat(250))}),
            &["spec.controller: Too long: must have at most 250 bytes"],
        );
        check(
            json!({"controller": "example.com/i", "parameters": {"kind": "K", "name": "n"}}),
            &[],
        );
        check(
            json!({"controller": "example.com/i", "parameters": {"kind": "K", "name": "n", "scope": "Namespace"}}),
            &["spec.parameters.namespace: Required value: `parameters.scope` is set to 'Namespace'"],
        );
        check(
            json!({"controller": "example.com/i", "parameters": {"kind": "K", "name": "n", "scope": "Cluster", "namespace": "x"}}),
            &["spec.parameters.namespace: Forbidden: `parameters.scope` is set to 'Cluster'"],
        );
        check(
            json!({"controller": "example.com/i", "parameters": {"kind": "K", "name": "n", "scope": "World"}}),
            &["spec.parameters.scope: Unsupported value: \"World\": supported values: \"Cluster\", \"Namespace\""],
        );
    }

    #[test]
    fn defaults_scope_and_controller_is_immutable() {
        let mut o = obj(json!({"controller": "example.com/i", "parameters": {"kind": "K", "name": "n"}}));
        IngressClassStrategy.prepare_for_create(&mut o);
        assert_eq!(o["spec"]["parameters"]["scope"], "Cluster");
        let new = obj(json!({"controller": "example.com/j"}));
        assert_eq!(
            IngressClassStrategy.validate_update(&new, &o).summary(),
            "spec.controller: Invalid value: \"example.com/j\": field is immutable"
        );
    }
}
