//! ResourceSlices: a driver name (a DNS subdomain of at most 63
//! characters), a pool (name, positive slice count, non-negative
//! generation), exactly one of `nodeName`, `nodeSelector`, `allNodes`,
//! `perDeviceNodeSelection`, and uniquely named devices. Driver, pool name
//! and node name never change.

use std::collections::HashSet;

use serde_json::Value;

use crate::registry::kinds::default_traits;
use crate::registry::object::Object;
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::names::{DNS1123_SUBDOMAIN_MAX, is_dns1123_label, is_dns1123_subdomain};
use crate::validation::{FieldError, FieldErrors, child, index};

const DRIVER_NAME_MAX: usize = 63;
const EXACTLY_ONE: &str = "exactly one of `nodeName`, `nodeSelector`, `allNodes`, `perDeviceNodeSelection` is required";

#[derive(Debug, Default)]
pub struct ResourceSliceStrategy;

fn s<'a>(v: Option<&'a Value>, k: &str) -> &'a str {
    v.and_then(|v| v.get(k)).and_then(Value::as_str).unwrap_or("")
}

/// `validateDriverName`.
pub fn validate_driver_name(driver: &str, path: &str, errs: &mut FieldErrors) {
    if driver.is_empty() {
        errs.push(FieldError::required(path, ""));
        return;
    }
    if driver.len() > DRIVER_NAME_MAX {
        errs.push(FieldError::too_long(path, DRIVER_NAME_MAX));
    }
    for m in is_dns1123_subdomain(&driver.to_lowercase()) {
        errs.push(FieldError::invalid(path, driver, m));
    }
}

fn validate_pool(pool: Option<&Value>, errs: &mut FieldErrors) {
    let name = s(pool, "name");
    let p = "spec.pool.name";
    if name.is_empty() {
        errs.push(FieldError::required(p, ""));
    } else {
        if name.len() > DNS1123_SUBDOMAIN_MAX {
            errs.push(FieldError::too_long(p, DNS1123_SUBDOMAIN_MAX));
        }
        for part in name.split('/') {
            for m in is_dns1123_subdomain(part) {
                errs.push(FieldError::invalid(p, part, m));
            }
        }
    }
    let count = pool
        .and_then(|p| p.get("resourceSliceCount"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if count <= 0 {
        errs.push(FieldError::invalid(
            "spec.pool.resourceSliceCount",
            count,
            "must be greater than zero",
        ));
    }
    let generation = pool
        .and_then(|p| p.get("generation"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if generation < 0 {
        errs.push(FieldError::invalid(
            "spec.pool.generation",
            generation,
            "must be greater than or equal to zero",
        ));
    }
}

/// `validateResourceSliceSpec` (without devices' attributes and capacity).
pub fn validate_slice(obj: &Object) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let spec = obj.get("spec");
    validate_driver_name(s(spec, "driver"), "spec.driver", &mut errs);
    validate_pool(spec.and_then(|s| s.get("pool")), &mut errs);
    let mut set = Vec::new();
    if let Some(node) = spec.and_then(|s| s.get("nodeName")).and_then(Value::as_str) {
        if node.is_empty() {
            errs.push(FieldError::invalid(
                "spec.nodeName",
                "",
                "must be either unset or set to a non-empty string",
            ));
        } else {
            set.push("`nodeName`");
            for m in is_dns1123_subdomain(node) {
                errs.push(FieldError::invalid("spec.nodeName", node, m));
            }
        }
    }
    if spec.and_then(|s| s.get("nodeSelector")).is_some_and(|v| !v.is_null()) {
        set.push("`nodeSelector`");
    }
    for (field, shown) in [
        ("allNodes", "`allNodes`"),
        ("perDeviceNodeSelection", "`perDeviceNodeSelection`"),
    ] {
        match spec.and_then(|s| s.get(field)).and_then(Value::as_bool) {
            Some(true) => set.push(shown),
            Some(false) => errs.push(FieldError::invalid(
                format!("spec.{field}"),
                false,
                "must be either unset or set to true",
            )),
            None => {}
        }
    }
    match set.len() {
        0 => errs.push(FieldError::required("spec", EXACTLY_ONE)),
        1 => {}
        _ => errs.push(FieldError::invalid(
            "spec",
            format!("{{{}}}", set.join(", ")),
            format!("{EXACTLY_ONE}, but multiple fields are set"),
        )),
    }
    let devices = spec.and_then(|s| s.get("devices")).and_then(Value::as_array);
    let mut names = HashSet::new();
    for (i, d) in devices.into_iter().flatten().enumerate() {
        let p = child(&index("spec.devices", i), "name");
        let name = s(Some(d), "name");
        if name.is_empty() {
            errs.push(FieldError::required(&p, ""));
            continue;
        }
        for m in is_dns1123_label(name) {
            errs.push(FieldError::invalid(&p, name, m));
        }
        if !names.insert(name) {
            errs.push(FieldError::duplicate(&p, name));
        }
    }
    errs
}

impl Strategy for ResourceSliceStrategy {
    fn traits(&self) -> KindTraits {
        KindTraits {
            tracks_generation: true,
            ..default_traits("resource.k8s.io", "resourceslices")
        }
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        crate::registry::kinds::alpha_fields::drop_resource_slice_fields(obj, None);
    }

    fn prepare_for_update(&self, new: &mut Object, old: &Object) {
        crate::registry::kinds::alpha_fields::drop_resource_slice_fields(new, Some(old));
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_slice(obj)
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let mut errs = validate_slice(new);
        let (n, o) = (new.get("spec"), old.get("spec"));
        let pool_name = |v: Option<&Value>| s(v.and_then(|v| v.get("pool")), "name").to_string();
        for (path, a, b) in [
            ("spec.pool.name", pool_name(n), pool_name(o)),
            ("spec.driver", s(n, "driver").to_string(), s(o, "driver").to_string()),
        ] {
            if a != b {
                errs.push(FieldError::invalid(path, a, "field is immutable"));
            }
        }
        let node = |v: Option<&Value>| v.and_then(|v| v.get("nodeName")).cloned();
        if node(n) != node(o) {
            errs.push(FieldError::invalid(
                "spec.nodeName",
                node(n).unwrap_or(Value::Null),
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
    use crate::registry::strategy::testing::create_messages;
    use serde_json::json;

    fn messages(spec: Value) -> Vec<String> {
        create_messages(&ResourceSliceStrategy, json!({"metadata": {"name": "s"}, "spec": spec}))
    }

    #[test]
    fn slices() {
        assert!(
            messages(json!({"driver": "gpu.example.com", "nodeName": "n1",
                            "pool": {"name": "n1", "resourceSliceCount": 1, "generation": 0},
                            "devices": [{"name": "gpu-0"}]}))
            .is_empty()
        );
        assert_eq!(
            messages(json!({"pool": {}, "devices": [{"name": "a"}, {"name": "a"}]})),
            [
                "spec.driver: Required value",
                "spec.pool.name: Required value",
                "spec.pool.resourceSliceCount: Invalid value: 0: must be greater than zero",
                "spec: Required value: exactly one of `nodeName`, `nodeSelector`, `allNodes`, `perDeviceNodeSelection` is required",
                "spec.devices[1].name: Duplicate value: \"a\"",
            ]
        );
        assert_eq!(
            messages(
                json!({"driver": "d.io", "nodeName": "n", "allNodes": true, "pool": {"name": "p", "resourceSliceCount": 1}})
            ),
            [
                "spec: Invalid value: \"{`nodeName`, `allNodes`}\": exactly one of `nodeName`, `nodeSelector`, `allNodes`, `perDeviceNodeSelection` is required, but multiple fields are set"
            ]
        );
    }
}
