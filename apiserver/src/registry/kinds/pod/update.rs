//! Pod update rules (upstream's `ValidatePodUpdate`): the spec is immutable
//! but for container images, a shrinking `activeDeadlineSeconds`, added
//! tolerations, a negative grace period becoming 1, and removed
//! scheduling gates.

use serde_json::{Map, Value};

use crate::validation::pod_spec::fields::{arr, at};
use crate::validation::{FieldError, FieldErrors, child, index};

/// The fields a pod update may change, as upstream lists them.
const UPDATABLE: &[&str] = &[
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
];

/// The leading text of the Forbidden error on `spec`.
pub fn forbidden_message() -> String {
    format!("pod updates may not change fields other than {}", UPDATABLE.join(","))
}

fn spec_of(obj: &Map<String, Value>) -> Map<String, Value> {
    obj.get("spec").and_then(Value::as_object).cloned().unwrap_or_default()
}

/// A short diff of the top-level spec fields that differ.
fn diff(new: &Map<String, Value>, old: &Map<String, Value>) -> String {
    let mut keys: Vec<&String> = new.keys().chain(old.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = String::from("  core.PodSpec{\n");
    for k in keys {
        let (n, o) = (new.get(k), old.get(k));
        if n == o {
            continue;
        }
        if let Some(o) = o {
            out.push_str(&format!("- \t{k}: {o},\n"));
        }
        if let Some(n) = n {
            out.push_str(&format!("+ \t{k}: {n},\n"));
        }
    }
    out.push_str("  }\n");
    out
}

/// Whether every old toleration is still there (its `tolerationSeconds`
/// may change).
fn only_added_tolerations(new: &[Value], old: &[Value]) -> bool {
    let strip = |t: &Value| {
        let mut t = t.as_object().cloned().unwrap_or_default();
        t.remove("tolerationSeconds");
        t
    };
    old.iter().all(|o| {
        let o = strip(o);
        new.iter().any(|n| strip(n) == o)
    })
}

/// Validates the spec of an updated pod against the stored one.
pub fn validate_pod_update(new: &Map<String, Value>, old: &Map<String, Value>) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let (new_spec, old_spec) = (spec_of(new), spec_of(old));
    let (new_value, old_value) = (Value::Object(new_spec.clone()), Value::Object(old_spec.clone()));
    let (n, o) = (Some(&new_value), Some(&old_value));

    for list in ["containers", "initContainers"] {
        let (nc, oc) = (arr(n, list), arr(o, list));
        if nc.len() != oc.len() {
            errs.push(FieldError::forbidden(
                format!("spec.{list}"),
                "pod updates may not add or remove containers",
            ));
            return errs;
        }
        for (i, c) in nc.iter().enumerate() {
            if c.get("image").and_then(Value::as_str).unwrap_or("").is_empty() {
                errs.push(FieldError::required(
                    child(&index(&format!("spec.{list}"), i), "image"),
                    "",
                ));
            }
        }
    }

    let deadline = "spec.activeDeadlineSeconds";
    match (
        new_spec.get("activeDeadlineSeconds").filter(|v| !v.is_null()),
        old_spec.get("activeDeadlineSeconds").filter(|v| !v.is_null()),
    ) {
        (Some(nv), old_v) => {
            let nv = nv.as_i64().unwrap_or(-1);
            if !(0..=i64::from(i32::MAX)).contains(&nv) {
                errs.push(FieldError::invalid(
                    deadline,
                    nv,
                    "must be between 0 and 2147483647, inclusive",
                ));
                return errs;
            }
            if let Some(ov) = old_v.and_then(Value::as_i64)
                && ov < nv
            {
                errs.push(FieldError::invalid(
                    deadline,
                    nv,
                    "must be less than or equal to previous value",
                ));
                return errs;
            }
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            deadline,
            Value::Null,
            "must not update from a positive integer to nil value",
        )),
        (None, None) => {}
    }

    let new_tol = arr(n, "tolerations");
    let old_tol = arr(o, "tolerations");
    if !only_added_tolerations(new_tol, old_tol) {
        errs.push(FieldError::forbidden(
            "spec.tolerations",
            "existing toleration can not be modified except its tolerationSeconds",
        ));
        return errs;
    }

    let old_gates: Vec<&Value> = arr(o, "schedulingGates").iter().collect();
    for g in arr(n, "schedulingGates") {
        if !old_gates.contains(&g) {
            let name = at(Some(g), &["name"]).and_then(Value::as_str).unwrap_or("");
            errs.push(FieldError::forbidden(
                "spec.schedulingGates",
                format!("only deletion is allowed, but found new scheduling gate '{name}'"),
            ));
        }
    }

    // Everything else must be as before: copy the updatable fields from
    // the old spec and compare.
    let mut munged = new_spec.clone();
    for list in ["containers", "initContainers"] {
        if let (Some(Value::Array(nc)), Some(Value::Array(oc))) = (munged.get_mut(list), old_spec.get(list)) {
            for (c, oc) in nc.iter_mut().zip(oc) {
                if let (Value::Object(c), Some(img)) = (c, oc.get("image")) {
                    c.insert("image".into(), img.clone());
                }
            }
        }
    }
    for field in ["activeDeadlineSeconds", "tolerations", "schedulingGates"] {
        match old_spec.get(field) {
            Some(v) => munged.insert(field.into(), v.clone()),
            None => munged.remove(field),
        };
    }
    let old_grace = old_spec.get("terminationGracePeriodSeconds").and_then(Value::as_i64);
    let new_grace = new_spec.get("terminationGracePeriodSeconds").and_then(Value::as_i64);
    if old_grace.is_some_and(|g| g < 0)
        && new_grace == Some(1)
        && let Some(v) = old_spec.get("terminationGracePeriodSeconds")
    {
        munged.insert("terminationGracePeriodSeconds".into(), v.clone());
    }
    if munged != old_spec {
        errs.push(FieldError::forbidden(
            "spec",
            format!("{}\n{}", forbidden_message(), diff(&munged, &old_spec)),
        ));
    }
    errs
}
