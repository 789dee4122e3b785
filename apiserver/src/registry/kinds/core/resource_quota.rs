//! ResourceQuota (`ValidateResourceQuota` and its update): hard limits name
//! quota resources with valid non-negative quantities, scopes are known,
//! fit the limited resources and do not conflict, and a scope selector's
//! requirements use operators the scope allows. Scopes never change.

use std::collections::BTreeSet;

use serde_json::Value;

use super::resource_names::{is_standard_quota, validate_quota_quantity, validate_quota_resource_name};
use crate::registry::kinds::networking::values::{go_slice, invalid_raw};
use crate::registry::object::Object;
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::{FieldError, FieldErrors, key};

/// `standardResourceQuotaScopes`.
const SCOPES: &[&str] = &[
    "Terminating",
    "NotTerminating",
    "BestEffort",
    "NotBestEffort",
    "PriorityClass",
    "CrossNamespacePodAffinity",
    "VolumeAttributesClass",
];

/// Scopes that must come in pairs at most once (`invalidScopePairs`).
const CONFLICTS: &[(&str, &str)] = &[("BestEffort", "NotBestEffort"), ("Terminating", "NotTerminating")];

#[derive(Debug)]
pub struct ResourceQuotaStrategy(pub KindTraits);

/// `IsResourceQuotaScopeValidForResource`.
fn scope_fits(scope: &str, resource: &str) -> bool {
    let pod_count = resource == "pods";
    let pod_compute = matches!(
        resource,
        "cpu" | "memory" | "limits.cpu" | "limits.memory" | "requests.cpu" | "requests.memory"
    );
    match scope {
        "Terminating" | "NotTerminating" | "NotBestEffort" | "PriorityClass" | "CrossNamespacePodAffinity" => {
            pod_count || pod_compute
        }
        "BestEffort" => pod_count,
        "VolumeAttributesClass" => matches!(resource, "persistentvolumeclaims" | "requests.storage"),
        _ => true,
    }
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().map(|s| s.as_str().unwrap_or("")).collect())
        .unwrap_or_default()
}

/// The `spec.scopes` slice as Go prints it.
fn go_scopes(spec: Option<&Value>) -> String {
    match spec.and_then(|s| s.get("scopes")).filter(|v| !v.is_null()) {
        None => go_slice("core.ResourceQuotaScope", None),
        Some(v) => go_slice("core.ResourceQuotaScope", Some(&strings(Some(v)))),
    }
}

/// The `spec.scopeSelector` as Go prints it.
fn go_scope_selector(sel: &Value) -> String {
    let reqs: Vec<String> = sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .map(|r| {
            let s = |k: &str| serde_json::to_string(r.get(k).and_then(Value::as_str).unwrap_or("")).unwrap_or_default();
            let values = match r.get("values").filter(|v| !v.is_null()) {
                None => go_slice("string", None),
                Some(v) => go_slice("string", Some(&strings(Some(v)))),
            };
            format!(
                "core.ScopedResourceSelectorRequirement{{ScopeName:{}, Operator:{}, Values:{values}}}",
                s("scopeName"),
                s("operator")
            )
        })
        .collect();
    let list = if sel.get("matchExpressions").is_none_or(Value::is_null) {
        "[]core.ScopedResourceSelectorRequirement(nil)".to_string()
    } else {
        format!("[]core.ScopedResourceSelectorRequirement{{{}}}", reqs.join(", "))
    };
    format!("core.ScopeSelector{{MatchExpressions:{list}}}")
}

fn hard_names(spec: Option<&Value>) -> Vec<&str> {
    spec.and_then(|s| s.get("hard"))
        .and_then(Value::as_object)
        .map(|h| h.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

fn validate_scopes(spec: Option<&Value>, errs: &mut FieldErrors) {
    let scopes = strings(spec.and_then(|s| s.get("scopes")));
    if scopes.is_empty() {
        return;
    }
    let shown = go_scopes(spec);
    let hard = hard_names(spec);
    for scope in &scopes {
        if !SCOPES.contains(scope) {
            errs.push(invalid_raw("spec.scopes", &shown, "unsupported scope"));
        }
        for k in &hard {
            if is_standard_quota(k) && !scope_fits(scope, k) {
                errs.push(invalid_raw(
                    "spec.scopes",
                    &shown,
                    "unsupported scope applied to resource",
                ));
            }
        }
    }
    for (a, b) in CONFLICTS {
        if scopes.contains(a) && scopes.contains(b) {
            errs.push(invalid_raw("spec.scopes", &shown, "conflicting scopes"));
        }
    }
}

fn validate_scope_selector(spec: Option<&Value>, errs: &mut FieldErrors) {
    let Some(sel) = spec.and_then(|s| s.get("scopeSelector")).filter(|v| !v.is_null()) else {
        return;
    };
    let path = "spec.scopeSelector.matchExpressions";
    let hard = hard_names(spec);
    let mut names = BTreeSet::new();
    for req in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let scope = req.get("scopeName").and_then(Value::as_str).unwrap_or("");
        let op = req.get("operator").and_then(Value::as_str).unwrap_or("");
        let values = strings(req.get("values"));
        if !SCOPES.contains(&scope) {
            errs.push(FieldError::invalid(
                format!("{path}.scopeName"),
                scope,
                "unsupported scope",
            ));
        }
        for k in &hard {
            if is_standard_quota(k) && !scope_fits(scope, k) {
                errs.push(invalid_raw(
                    path,
                    &go_scope_selector(sel),
                    "unsupported scope applied to resource",
                ));
            }
        }
        if matches!(
            scope,
            "BestEffort" | "NotBestEffort" | "Terminating" | "NotTerminating" | "CrossNamespacePodAffinity"
        ) && op != "Exists"
        {
            errs.push(FieldError::invalid(
                format!("{path}.operator"),
                op,
                "must be 'Exist' when scope is any of ResourceQuotaScopeTerminating, ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity",
            ));
        }
        match op {
            "In" | "NotIn" if values.is_empty() => errs.push(FieldError::required(
                format!("{path}.values"),
                "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector",
            )),
            "In" | "NotIn" => {}
            "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(invalid_raw(
                format!("{path}.values"),
                &go_slice("string", Some(&values)),
                "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector",
            )),
            "Exists" | "DoesNotExist" => {}
            _ => errs.push(FieldError::invalid(
                format!("{path}.operator"),
                op,
                "not a valid selector operator",
            )),
        }
        names.insert(scope);
    }
    for (a, b) in CONFLICTS {
        if names.contains(a) && names.contains(b) {
            errs.push(invalid_raw(path, &go_scopes(spec), "conflicting scopes"));
        }
    }
}

fn validate_list(obj: &Object, field: &str, path: &str, errs: &mut FieldErrors) {
    for part in ["hard", "used"] {
        if field == "spec" && part == "used" {
            continue;
        }
        let Some(map) = obj.get(field).and_then(|s| s.get(part)).and_then(Value::as_object) else {
            continue;
        };
        for (name, q) in map {
            let p = key(&format!("{path}.{part}"), name);
            errs.extend(validate_quota_resource_name(name, &p));
            errs.extend(validate_quota_quantity(name, q, &p));
        }
    }
}

/// `ValidateResourceQuotaSpec` and `ValidateResourceQuotaStatus`.
pub fn validate_resource_quota(obj: &Object) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let spec = obj.get("spec");
    validate_list(obj, "spec", "spec", &mut errs);
    validate_scopes(spec, &mut errs);
    validate_scope_selector(spec, &mut errs);
    validate_list(obj, "status", "status", &mut errs);
    errs
}

impl Strategy for ResourceQuotaStrategy {
    fn traits(&self) -> KindTraits {
        self.0
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_resource_quota(obj)
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let mut errs = validate_resource_quota(new);
        let scopes = |o: &Object| -> BTreeSet<String> {
            strings(o.get("spec").and_then(|s| s.get("scopes")))
                .into_iter()
                .map(String::from)
                .collect()
        };
        if scopes(new) != scopes(old) {
            errs.push(invalid_raw(
                "spec.scopes",
                &go_scopes(new.get("spec")),
                "field is immutable",
            ));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn messages(spec: Value) -> Vec<String> {
        let obj = json!({"metadata": {"name": "q"}, "spec": spec})
            .as_object()
            .cloned()
            .unwrap();
        validate_resource_quota(&obj).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn hard_limits() {
        assert!(
            messages(json!({"hard": {"pods": "10", "requests.cpu": "2", "count/deployments.apps": "3"}})).is_empty()
        );
        assert_eq!(
            messages(json!({"hard": {"pods": "1.5", "memory": "-1Gi", "bogus": "1"}})),
            [
                "spec.hard[bogus]: Invalid value: \"bogus\": must be a standard resource type or fully qualified",
                "spec.hard[bogus]: Invalid value: \"bogus\": must be a standard resource for quota",
                "spec.hard[memory]: Invalid value: \"-1Gi\": must be greater than or equal to 0",
                "spec.hard[pods]: Invalid value: \"1.5\": must be an integer",
            ]
        );
    }

    #[test]
    fn scopes() {
        assert!(messages(json!({"hard": {"pods": "1"}, "scopes": ["BestEffort"]})).is_empty());
        assert_eq!(
            messages(json!({"hard": {"requests.cpu": "1"}, "scopes": ["BestEffort", "NotBestEffort", "Odd"]})),
            [
                "spec.scopes: Invalid value: []core.ResourceQuotaScope{\"BestEffort\", \"NotBestEffort\", \"Odd\"}: unsupported scope applied to resource",
                "spec.scopes: Invalid value: []core.ResourceQuotaScope{\"BestEffort\", \"NotBestEffort\", \"Odd\"}: unsupported scope",
                "spec.scopes: Invalid value: []core.ResourceQuotaScope{\"BestEffort\", \"NotBestEffort\", \"Odd\"}: conflicting scopes",
            ]
        );
    }

    #[test]
    fn scope_selectors() {
        assert!(
            messages(json!({"hard": {"pods": "1"}, "scopeSelector": {"matchExpressions": [
                {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}}))
            .is_empty()
        );
        assert_eq!(
            messages(json!({"scopeSelector": {"matchExpressions": [
                {"scopeName": "BestEffort", "operator": "In"},
                {"scopeName": "PriorityClass", "operator": "Exists", "values": ["x"]}]}})),
            [
                "spec.scopeSelector.matchExpressions.operator: Invalid value: \"In\": must be 'Exist' when scope is any of ResourceQuotaScopeTerminating, ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity",
                "spec.scopeSelector.matchExpressions.values: Required value: must be at least one value when `operator` is 'In' or 'NotIn' for scope selector",
                "spec.scopeSelector.matchExpressions.values: Invalid value: []string{\"x\"}: must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector",
            ]
        );
        assert_eq!(
            messages(
                json!({"hard": {"requests.storage": "1Gi"}, "scopeSelector": {"matchExpressions": [
                {"scopeName": "BestEffort", "operator": "Exists"}]}})
            ),
            [
                "spec.scopeSelector.matchExpressions: Invalid value: core.ScopeSelector{MatchExpressions:[]core.ScopedResourceSelectorRequirement{core.ScopedResourceSelectorRequirement{ScopeName:\"BestEffort\", Operator:\"Exists\", Values:[]string(nil)}}}: unsupported scope applied to resource"
            ]
        );
    }

    #[test]
    fn scopes_are_immutable() {
        let s = ResourceQuotaStrategy(KindTraits::default());
        let old = json!({"spec": {"scopes": ["BestEffort"]}})
            .as_object()
            .cloned()
            .unwrap();
        let new = json!({"spec": {"scopes": ["NotBestEffort"]}})
            .as_object()
            .cloned()
            .unwrap();
        assert_eq!(
            s.validate_update(&new, &old).summary(),
            "spec.scopes: Invalid value: []core.ResourceQuotaScope{\"NotBestEffort\"}: field is immutable"
        );
    }
}
