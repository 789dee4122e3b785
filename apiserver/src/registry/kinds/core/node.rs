//! Nodes (cluster-scoped): `podCIDR`/`podCIDRs` kept in step, taints
//! validated, and `podCIDRs` and `providerID` immutable once set
//! (`ValidateNode`, `ValidateNodeUpdate`).

use std::collections::HashSet;

use serde_json::{Value, json};

use super::checks::{arr_of, quantity_value, spec_mut, str_of, validate_cidr, verbatim};
use crate::registry::object::Object;
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::names::{is_qualified_name, is_valid_label_value};
use crate::validation::{ErrorType, FieldError, FieldErrors};

/// The Node strategy.
#[derive(Debug)]
pub struct NodeStrategy(pub KindTraits);

/// The v1 conversion's `podCIDR` <-> `podCIDRs` sync, and allocatable
/// defaulting to capacity.
fn prepare(node: &mut Object) {
    if let Some(spec) = spec_mut(node) {
        let single = spec.get("podCIDR").and_then(Value::as_str).unwrap_or("").to_string();
        let many = spec
            .get("podCIDRs")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if many.is_empty() && !single.is_empty() {
            spec.insert("podCIDRs".into(), json!([single]));
        } else if let Some(first) = many.first() {
            spec.insert("podCIDR".into(), first.clone());
        }
    }
    if let Some(Value::Object(status)) = node.get_mut("status")
        && status.get("allocatable").is_none_or(Value::is_null)
        && let Some(cap) = status.get("capacity").cloned()
    {
        status.insert("allocatable".into(), cap);
    }
}

fn go_taint(t: &Value) -> String {
    let s = |f: &str| serde_json::to_string(str_of(Some(t), f)).unwrap_or_default();
    format!(
        "core.Taint{{Key:{}, Value:{}, Effect:{}, TimeAdded:(*v1.Time)(nil)}}",
        s("key"),
        s("value"),
        s("effect")
    )
}

/// `validateNodeTaints` (upstream reports them under `metadata.taints`).
fn validate_taints(taints: &[Value]) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let mut seen = HashSet::new();
    for (i, t) in taints.iter().enumerate() {
        let path = format!("metadata.taints[{i}]");
        let tv = Some(t);
        let k = str_of(tv, "key");
        for m in is_qualified_name(k) {
            errs.push(FieldError::invalid(format!("{path}.key"), k, m));
        }
        let v = str_of(tv, "value");
        let msgs = is_valid_label_value(v);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(format!("{path}.value"), v, msgs.join(";")));
        }
        let effect = str_of(tv, "effect");
        if effect.is_empty() {
            errs.push(FieldError::required(format!("{path}.effect"), ""));
        } else if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
            errs.push(FieldError::not_supported(
                format!("{path}.effect"),
                effect,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
        if !seen.insert((k.to_string(), effect.to_string())) {
            errs.push(verbatim(
                ErrorType::Duplicate,
                path,
                &go_taint(t),
                "taints must be unique by key and effect pair",
            ));
        }
    }
    errs
}

fn validate_resources(node: &Object) -> FieldErrors {
    let mut errs = FieldErrors::new();
    for list in ["capacity", "allocatable"] {
        if let Some(m) = node.get("status").and_then(|s| s.get(list)).and_then(Value::as_object) {
            for (k, q) in m {
                if quantity_value(q).is_some_and(|v| v < 0.0) {
                    errs.push(FieldError::invalid(
                        format!("status.{list}.{k}"),
                        q.clone(),
                        "must be greater than or equal to 0",
                    ));
                }
            }
        }
    }
    errs
}

/// `ValidateNode`.
pub fn validate_node(node: &Object) -> FieldErrors {
    let spec = node.get("spec");
    let mut errs = validate_taints(arr_of(spec, "taints"));
    errs.extend(validate_resources(node));
    let cidrs: Vec<&str> = arr_of(spec, "podCIDRs")
        .iter()
        .map(|v| v.as_str().unwrap_or(""))
        .collect();
    for (i, c) in cidrs.iter().enumerate() {
        errs.extend(validate_cidr(c, &format!("spec.podCIDRs[{i}]")));
    }
    if cidrs.len() > 1 {
        let v6 = cidrs.iter().filter(|c| c.contains(':')).count();
        if v6 != 1 || cidrs.len() > 2 {
            errs.push(FieldError::invalid(
                "spec.podCIDRs",
                Value::from(cidrs.clone()),
                "may specify no more than one CIDR for each IP family",
            ));
        }
        let mut seen = HashSet::new();
        for (i, c) in cidrs.iter().enumerate() {
            if !seen.insert(*c) {
                errs.push(FieldError::duplicate(format!("spec.podCIDRs[{i}]"), *c));
            }
        }
    }
    errs
}

/// `ValidateNodeUpdate`.
pub fn validate_node_update(new: &Object, old: &Object) -> FieldErrors {
    let mut errs = FieldErrors::new();
    errs.extend(validate_resources(new));
    let (ns, os) = (new.get("spec"), old.get("spec"));
    let (new_cidrs, old_cidrs) = (arr_of(ns, "podCIDRs"), arr_of(os, "podCIDRs"));
    let cidr_msg = "node updates may not change podCIDR except from \"\" to valid";
    if !old_cidrs.is_empty() {
        if old_cidrs.len() != new_cidrs.len() {
            errs.push(FieldError::forbidden("spec.podCIDRs", cidr_msg));
        } else {
            for (o, n) in old_cidrs.iter().zip(new_cidrs) {
                if o != n {
                    errs.push(FieldError::forbidden("spec.podCIDRs", cidr_msg));
                }
            }
        }
    }
    let old_provider = str_of(os, "providerID");
    if !old_provider.is_empty() && old_provider != str_of(ns, "providerID") {
        errs.push(FieldError::forbidden(
            "spec.providerID",
            "node updates may not change providerID except from \"\" to valid",
        ));
    }
    errs.extend(validate_taints(arr_of(ns, "taints")));
    if str_of(ns, "externalID") != str_of(os, "externalID") {
        errs.push(FieldError::forbidden("spec.externalID", "may not be updated"));
    }
    errs
}

impl Strategy for NodeStrategy {
    fn traits(&self) -> KindTraits {
        self.0
    }

    /// A kubelet registers its node with status.
    fn resets_status_on_create(&self) -> bool {
        false
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        prepare(obj);
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_node(obj)
    }

    fn prepare_for_update(&self, new: &mut Object, _old: &Object) {
        prepare(new);
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        validate_node_update(new, old)
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
    fn taints_and_immutable_fields() {
        let n = obj(json!({"spec": {"taints": [
            {"key": "a", "effect": "NoSchedule"},
            {"key": "a", "effect": "NoSchedule"},
            {"key": "b", "effect": "Sometimes"},
        ]}}));
        assert_eq!(
            validate_node(&n).summary(),
            "[metadata.taints[1]: Duplicate value: core.Taint{Key:\"a\", Value:\"\", Effect:\"NoSchedule\", TimeAdded:(*v1.Time)(nil)}: taints must be unique by key and effect pair, metadata.taints[2].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"]"
        );
        let s = NodeStrategy(KindTraits::default());
        let mut old = obj(json!({"spec": {"podCIDR": "10.244.0.0/24", "providerID": "p1"}}));
        s.prepare_for_create(&mut old);
        assert_eq!(old["spec"]["podCIDRs"], json!(["10.244.0.0/24"]));
        let mut new = obj(json!({"spec": {"podCIDRs": ["10.244.1.0/24"], "providerID": "p2"}}));
        s.prepare_for_update(&mut new, &old);
        assert_eq!(
            s.validate_update(&new, &old).summary(),
            "[spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid, spec.providerID: Forbidden: node updates may not change providerID except from \"\" to valid]"
        );
    }
}
