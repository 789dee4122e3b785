//! ResourceClaims and ResourceClaimTemplates: every device request has a
//! unique DNS-label name and exactly one of `exactly` or `firstAvailable`,
//! each naming a device class with a valid allocation mode (defaulted to
//! ExactCount of 1). A claim's spec never changes, nor a template's.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use crate::registry::kinds::default_traits;
use crate::registry::kinds::networking::values::set_default;
use crate::registry::object::Object;
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::names::{is_dns1123_label, is_dns1123_subdomain};
use crate::validation::{FieldError, FieldErrors, child, index};

/// `SetDefaults_ExactDeviceRequest` / `DeviceSubRequest`.
fn default_exact(m: &mut Map<String, Value>) {
    set_default(m, "allocationMode", json!("ExactCount"));
    if m.get("allocationMode").and_then(Value::as_str) == Some("ExactCount")
        && m.get("count").is_none_or(|c| c.is_null() || c == 0)
    {
        m.insert("count".into(), json!(1));
    }
}

/// Defaults of a claim spec's device requests.
fn default_claim_spec(spec: Option<&mut Value>) {
    let Some(Value::Array(requests)) = spec
        .and_then(|s| s.get_mut("devices"))
        .and_then(|d| d.get_mut("requests"))
    else {
        return;
    };
    for r in requests.iter_mut().filter_map(Value::as_object_mut) {
        if let Some(Value::Object(exact)) = r.get_mut("exactly") {
            default_exact(exact);
        }
        if let Some(Value::Array(subs)) = r.get_mut("firstAvailable") {
            for s in subs.iter_mut().filter_map(Value::as_object_mut) {
                default_exact(s);
            }
        }
    }
}

fn validate_name(v: &Value, path: &str, errs: &mut FieldErrors) -> String {
    let name = v.get("name").and_then(Value::as_str).unwrap_or("");
    let p = child(path, "name");
    if name.is_empty() {
        errs.push(FieldError::required(p, ""));
    } else {
        for m in is_dns1123_label(name) {
            errs.push(FieldError::invalid(&p, name, m));
        }
    }
    name.to_string()
}

/// The device class name and allocation mode of an exact request or a
/// sub-request.
fn validate_exact(v: &Value, path: &str, errs: &mut FieldErrors) {
    let class = v.get("deviceClassName").and_then(Value::as_str).unwrap_or("");
    let p = child(path, "deviceClassName");
    if class.is_empty() {
        errs.push(FieldError::required(p, ""));
    } else {
        for m in is_dns1123_subdomain(class) {
            errs.push(FieldError::invalid(&p, class, m));
        }
    }
    let count = v.get("count").and_then(Value::as_i64).unwrap_or(0);
    match v.get("allocationMode").and_then(Value::as_str).unwrap_or("") {
        "All" if count != 0 => errs.push(FieldError::invalid(
            child(path, "count"),
            count,
            "must not be specified when allocationMode is 'All'",
        )),
        "ExactCount" if count <= 0 => {
            errs.push(FieldError::invalid(
                child(path, "count"),
                count,
                "must be greater than zero",
            ));
        }
        "All" | "ExactCount" => {}
        other => errs.push(FieldError::not_supported(
            child(path, "allocationMode"),
            other,
            &["All", "ExactCount"],
        )),
    }
}

/// `validateResourceClaimSpec`'s device requests.
pub fn validate_claim_spec(spec: Option<&Value>, path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let requests_path = format!("{path}.devices.requests");
    let requests = spec
        .and_then(|s| s.get("devices"))
        .and_then(|d| d.get("requests"))
        .and_then(Value::as_array);
    let mut names = HashSet::new();
    for (i, r) in requests.into_iter().flatten().enumerate() {
        let p = index(&requests_path, i);
        let name = validate_name(r, &p, &mut errs);
        if !name.is_empty() && !names.insert(name.clone()) {
            errs.push(FieldError::duplicate(child(&p, "name"), name));
        }
        let exact = r.get("exactly").filter(|v| !v.is_null());
        let first = r
            .get("firstAvailable")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty());
        match (exact, first) {
            (Some(e), None) => validate_exact(e, &child(&p, "exactly"), &mut errs),
            (None, Some(subs)) => {
                let mut sub_names = HashSet::new();
                for (j, s) in subs.iter().enumerate() {
                    let sp = index(&child(&p, "firstAvailable"), j);
                    let sub = validate_name(s, &sp, &mut errs);
                    if !sub.is_empty() && !sub_names.insert(sub.clone()) {
                        errs.push(FieldError::duplicate(child(&sp, "name"), sub));
                    }
                    validate_exact(s, &sp, &mut errs);
                }
            }
            (None, None) => errs.push(FieldError::required(
                &p,
                "exactly one of `exactly` or `firstAvailable` is required",
            )),
            (Some(_), Some(_)) => errs.push(FieldError::invalid(
                &p,
                Value::Null,
                "exactly one of `exactly` or `firstAvailable` is required, but multiple fields are set",
            )),
        }
    }
    errs
}

fn immutable_spec(new: Option<&Value>, old: Option<&Value>, path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    if new != old {
        errs.push(FieldError::invalid(
            path,
            new.cloned().unwrap_or(Value::Null),
            "field is immutable",
        ));
    }
    errs
}

#[derive(Debug, Default)]
pub struct ResourceClaimStrategy;

impl Strategy for ResourceClaimStrategy {
    fn traits(&self) -> KindTraits {
        default_traits("resource.k8s.io", "resourceclaims")
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        default_claim_spec(obj.get_mut("spec"));
    }

    fn prepare_for_update(&self, new: &mut Object, _old: &Object) {
        default_claim_spec(new.get_mut("spec"));
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_claim_spec(obj.get("spec"), "spec")
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let mut errs = immutable_spec(new.get("spec"), old.get("spec"), "spec");
        if errs.is_empty() {
            errs.extend(validate_claim_spec(new.get("spec"), "spec"));
        }
        errs
    }
}

#[derive(Debug, Default)]
pub struct ResourceClaimTemplateStrategy;

impl Strategy for ResourceClaimTemplateStrategy {
    fn traits(&self) -> KindTraits {
        default_traits("resource.k8s.io", "resourceclaimtemplates")
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        default_claim_spec(obj.get_mut("spec").and_then(|s| s.get_mut("spec")));
    }

    fn prepare_for_update(&self, new: &mut Object, _old: &Object) {
        default_claim_spec(new.get_mut("spec").and_then(|s| s.get_mut("spec")));
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_claim_spec(obj.get("spec").and_then(|s| s.get("spec")), "spec.spec")
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let mut errs = immutable_spec(new.get("spec"), old.get("spec"), "spec");
        errs.extend(self.validate(new));
        errs
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn messages(spec: Value) -> Vec<String> {
        let mut obj = json!({"metadata": {"name": "c"}, "spec": spec})
            .as_object()
            .cloned()
            .unwrap();
        ResourceClaimStrategy.prepare_for_create(&mut obj);
        ResourceClaimStrategy
            .validate(&obj)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn claims() {
        let mut obj = json!({"spec": {"devices": {"requests": [{"name": "gpu", "exactly": {"deviceClassName": "gpu.example.com"}}]}}})
            .as_object()
            .cloned()
            .unwrap();
        ResourceClaimStrategy.prepare_for_create(&mut obj);
        assert_eq!(
            obj["spec"]["devices"]["requests"][0]["exactly"],
            json!({"deviceClassName": "gpu.example.com", "allocationMode": "ExactCount", "count": 1})
        );
        assert!(ResourceClaimStrategy.validate(&obj).is_empty());
        assert_eq!(
            messages(json!({"devices": {"requests": [
                {"name": "gpu"},
                {"name": "gpu", "exactly": {"allocationMode": "All", "count": 2}},
                {"name": "Bad", "firstAvailable": [{"name": "a", "deviceClassName": "c", "allocationMode": "Some"}]}]}})),
            [
                "spec.devices.requests[0]: Required value: exactly one of `exactly` or `firstAvailable` is required",
                "spec.devices.requests[1].name: Duplicate value: \"gpu\"",
                "spec.devices.requests[1].exactly.deviceClassName: Required value",
                "spec.devices.requests[1].exactly.count: Invalid value: 2: must not be specified when allocationMode is 'All'",
                "spec.devices.requests[2].name: Invalid value: \"Bad\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
                "spec.devices.requests[2].firstAvailable[0].allocationMode: Unsupported value: \"Some\": supported values: \"All\", \"ExactCount\"",
            ]
        );
    }
}
