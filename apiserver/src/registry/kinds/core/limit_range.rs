//! LimitRange (`ValidateLimitRange`, `SetDefaults_LimitRangeItem`): limit
//! types, resource names per type, and for each resource
//! min <= defaultRequest <= default <= max and maxLimitRequestRatio >= 1
//! (and no more than max/min).
//!
//! Quantities are shown as sent; upstream prints `resource.Quantity`'s
//! canonical form in details.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::resource_names::{
    overcommit_allowed, quantity_text, validate_container_resource_name, validate_resource_name,
};
use crate::registry::object::Object;
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::names::is_qualified_name;
use crate::validation::pod_spec::quantity::nano_value;
use crate::validation::{FieldError, FieldErrors, child, index, key};

#[derive(Debug)]
pub struct LimitRangeStrategy(pub KindTraits);

/// `SetDefaults_LimitRangeItem`: a Container item's default limit comes
/// from max, and its default request from the default limit, else min.
fn default_limit_range(obj: &mut Object) {
    let Some(Value::Array(limits)) = obj.get_mut("spec").and_then(|s| s.get_mut("limits")) else {
        return;
    };
    for item in limits.iter_mut().filter_map(Value::as_object_mut) {
        if item.get("type").and_then(Value::as_str) != Some("Container") {
            continue;
        }
        let list =
            |item: &Map<String, Value>, k: &str| item.get(k).and_then(Value::as_object).cloned().unwrap_or_default();
        let mut default = list(item, "default");
        for (k, v) in list(item, "max") {
            default.entry(k).or_insert(v);
        }
        let mut request = list(item, "defaultRequest");
        for (k, v) in default.iter().chain(list(item, "min").iter()) {
            request.entry(k.clone()).or_insert_with(|| v.clone());
        }
        if !default.is_empty() {
            item.insert("default".into(), Value::Object(default));
        }
        if !request.is_empty() {
            item.insert("defaultRequest".into(), Value::Object(request));
        }
    }
}

fn validate_type_name(ty: &str, path: &str, errs: &mut FieldErrors) {
    let before = errs.0.len();
    for m in is_qualified_name(ty) {
        errs.push(FieldError::invalid(path, ty, m));
    }
    if errs.0.len() == before && !ty.contains('/') && !matches!(ty, "Pod" | "Container" | "PersistentVolumeClaim") {
        errs.push(FieldError::invalid(
            path,
            ty,
            "must be a standard limit type or fully qualified",
        ));
    }
}

/// One quantity map of an item: name to (text, nano value).
type Quantities = Map<String, Value>;

fn list<'a>(item: &'a Value, k: &str) -> Option<&'a Quantities> {
    item.get(k).and_then(Value::as_object)
}

fn nano(v: &Value) -> Option<i128> {
    nano_value(&quantity_text(v))
}

/// `ValidateLimitRange`'s spec checks.
pub fn validate_limit_range(obj: &Object) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let limits = obj
        .get("spec")
        .and_then(|s| s.get("limits"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut seen_types = BTreeSet::new();
    for (i, item) in limits.iter().enumerate() {
        let path = index("spec.limits", i);
        let ty = item.get("type").and_then(Value::as_str).unwrap_or("");
        validate_type_name(ty, &child(&path, "type"), &mut errs);
        if !seen_types.insert(ty) {
            errs.push(FieldError::duplicate(child(&path, "type"), ty));
        }
        let check_name = |name: &str, p: &str| match ty {
            "Pod" | "Container" => validate_container_resource_name(name, p),
            _ => validate_resource_name(name, p),
        };
        let mut keys = BTreeSet::new();
        for field in ["max", "min"] {
            for name in list(item, field).into_iter().flat_map(Map::keys) {
                errs.extend(check_name(name, &key(&child(&path, field), name)));
                keys.insert(name.clone());
            }
        }
        let (mut default, mut default_request) = (None, None);
        if ty == "Pod" {
            for field in ["default", "defaultRequest"] {
                if list(item, field).is_some_and(|l| !l.is_empty()) {
                    errs.push(FieldError::forbidden(
                        child(&path, field),
                        "may not be specified when `type` is 'Pod'",
                    ));
                }
            }
        } else {
            default = list(item, "default");
            default_request = list(item, "defaultRequest");
            for (field, l) in [("default", default), ("defaultRequest", default_request)] {
                for name in l.into_iter().flat_map(Map::keys) {
                    errs.extend(check_name(name, &key(&child(&path, field), name)));
                    keys.insert(name.clone());
                }
            }
        }
        let (min, max) = (list(item, "min"), list(item, "max"));
        if ty == "PersistentVolumeClaim"
            && !min.is_some_and(|m| m.contains_key("storage"))
            && !max.is_some_and(|m| m.contains_key("storage"))
        {
            errs.push(FieldError::required(
                child(&path, "limits"),
                "either minimum or maximum storage value is required, but neither was provided",
            ));
        }
        let ratios = list(item, "maxLimitRequestRatio");
        for name in ratios.into_iter().flat_map(Map::keys) {
            errs.extend(check_name(name, &key(&child(&path, "maxLimitRequestRatio"), name)));
            keys.insert(name.clone());
        }
        for k in &keys {
            let get = |l: Option<&Quantities>| l.and_then(|l| l.get(k)).map(|v| (quantity_text(v), nano(v)));
            let (min, max, def, req, ratio) = (get(min), get(max), get(default), get(default_request), get(ratios));
            let gt = |a: &(String, Option<i128>), b: &(String, Option<i128>)| matches!((a.1, b.1), (Some(x), Some(y)) if x > y);
            let invalid =
                |field: &str, shown: &str, msg: String| FieldError::invalid(key(&child(&path, field), k), shown, msg);
            if let (Some(mn), Some(mx)) = (&min, &max)
                && gt(mn, mx)
            {
                errs.push(invalid(
                    "min",
                    &mn.0,
                    format!("min value {} is greater than max value {}", mn.0, mx.0),
                ));
            }
            if let (Some(r), Some(mn)) = (&req, &min)
                && gt(mn, r)
            {
                errs.push(invalid(
                    "defaultRequest",
                    &r.0,
                    format!("min value {} is greater than default request value {}", mn.0, r.0),
                ));
            }
            if let (Some(r), Some(mx)) = (&req, &max)
                && gt(r, mx)
            {
                errs.push(invalid(
                    "defaultRequest",
                    &r.0,
                    format!("default request value {} is greater than max value {}", r.0, mx.0),
                ));
            }
            if let (Some(r), Some(d)) = (&req, &def)
                && gt(r, d)
            {
                errs.push(invalid(
                    "defaultRequest",
                    &r.0,
                    format!(
                        "default request value {} is greater than default limit value {}",
                        r.0, d.0
                    ),
                ));
            }
            if let (Some(d), Some(mn)) = (&def, &min)
                && gt(mn, d)
            {
                errs.push(invalid(
                    "default",
                    &mn.0,
                    format!("min value {} is greater than default value {}", mn.0, d.0),
                ));
            }
            if let (Some(d), Some(mx)) = (&def, &max)
                && gt(d, mx)
            {
                errs.push(invalid(
                    "default",
                    &mx.0,
                    format!("default value {} is greater than max value {}", d.0, mx.0),
                ));
            }
            if let Some(r) = &ratio
                && r.1.is_some_and(|v| v < 1_000_000_000)
            {
                errs.push(invalid(
                    "maxLimitRequestRatio",
                    &r.0,
                    format!("ratio {} is less than 1", r.0),
                ));
            }
            if let (Some(r), Some((_, Some(mn))), Some((_, Some(mx)))) = (&ratio, &min, &max)
                && let Some(rv) = r.1
            {
                let limit = *mx as f64 / *mn as f64;
                if rv as f64 / 1e9 > limit {
                    errs.push(invalid(
                        "maxLimitRequestRatio",
                        &r.0,
                        format!("ratio {} is greater than max/min = {limit:.6}", r.0),
                    ));
                }
            }
            if !overcommit_allowed(k)
                && let (Some(d), Some(r)) = (&def, &req)
                && d.1 != r.1
            {
                errs.push(invalid(
                    "defaultRequest",
                    &r.0,
                    format!(
                        "default value {} must equal to defaultRequest value {} in {k}",
                        d.0, r.0
                    ),
                ));
            }
        }
    }
    errs
}

impl Strategy for LimitRangeStrategy {
    fn traits(&self) -> KindTraits {
        self.0
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        default_limit_range(obj);
    }

    fn prepare_for_update(&self, new: &mut Object, _old: &Object) {
        default_limit_range(new);
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_limit_range(obj)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn prepared(limits: Value) -> Object {
        let mut obj = json!({"metadata": {"name": "l"}, "spec": {"limits": limits}})
            .as_object()
            .cloned()
            .unwrap();
        default_limit_range(&mut obj);
        obj
    }

    fn messages(limits: Value) -> Vec<String> {
        validate_limit_range(&prepared(limits))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn container_defaults_come_from_max_and_min() {
        let obj = prepared(json!([{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}}]));
        let item = &obj["spec"]["limits"][0];
        assert_eq!(item["default"], json!({"cpu": "2"}));
        assert_eq!(item["defaultRequest"], json!({"cpu": "2", "memory": "64Mi"}));
        assert!(validate_limit_range(&obj).is_empty());
        let pod = prepared(json!([{"type": "Pod", "max": {"cpu": "2"}}]));
        assert!(pod["spec"]["limits"][0].get("default").is_none());
    }

    #[test]
    fn ordering_rules() {
        assert_eq!(
            messages(json!([{"type": "Container", "min": {"cpu": "200m"}, "max": {"cpu": "100m"}}])),
            [
                "spec.limits[0].min[cpu]: Invalid value: \"200m\": min value 200m is greater than max value 100m",
                "spec.limits[0].defaultRequest[cpu]: Invalid value: \"100m\": min value 200m is greater than default request value 100m",
                "spec.limits[0].default[cpu]: Invalid value: \"200m\": min value 200m is greater than default value 100m",
            ]
        );
        assert_eq!(
            messages(json!([{"type": "Container", "default": {"memory": "1Gi"}, "defaultRequest": {"memory": "2Gi"}}])),
            [
                "spec.limits[0].defaultRequest[memory]: Invalid value: \"2Gi\": default request value 2Gi is greater than default limit value 1Gi"
            ]
        );
        assert_eq!(
            messages(
                json!([{"type": "Pod", "min": {"cpu": "1"}, "max": {"cpu": "2"}, "maxLimitRequestRatio": {"cpu": "3"}}])
            ),
            [
                "spec.limits[0].maxLimitRequestRatio[cpu]: Invalid value: \"3\": ratio 3 is greater than max/min = 2.000000"
            ]
        );
        assert_eq!(
            messages(json!([{"type": "Container", "maxLimitRequestRatio": {"cpu": "500m"}}])),
            ["spec.limits[0].maxLimitRequestRatio[cpu]: Invalid value: \"500m\": ratio 500m is less than 1"]
        );
    }

    #[test]
    fn types_and_names() {
        assert_eq!(
            messages(
                json!([{"type": "Pod", "default": {"cpu": "1"}}, {"type": "Pod"}, {"type": "Node"},
                            {"type": "PersistentVolumeClaim", "max": {"pods": "1"}}])
            ),
            [
                "spec.limits[0].default: Forbidden: may not be specified when `type` is 'Pod'",
                "spec.limits[1].type: Duplicate value: \"Pod\"",
                "spec.limits[2].type: Invalid value: \"Node\": must be a standard limit type or fully qualified",
                "spec.limits[3].limits: Required value: either minimum or maximum storage value is required, but neither was provided",
            ]
        );
        assert_eq!(
            messages(json!([{"type": "Container", "max": {"pods": "1"}}])),
            [
                "spec.limits[0].max[pods]: Invalid value: \"pods\": must be a standard resource for containers",
                // Defaulted from max, so checked again.
                "spec.limits[0].default[pods]: Invalid value: \"pods\": must be a standard resource for containers",
                "spec.limits[0].defaultRequest[pods]: Invalid value: \"pods\": must be a standard resource for containers",
            ]
        );
    }
}
