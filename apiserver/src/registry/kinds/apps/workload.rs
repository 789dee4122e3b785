//! Pieces every workload kind shares: access to `spec`, the pod template
//! checks (`ValidatePodTemplateSpecForReplicaSet`), and the replica count
//! checks of their status.

use serde_json::{Map, Value};

use crate::registry::object::Object;
use crate::validation::pod_spec::fields::{IMMUTABLE, nonnegative, nonnegative_at};
use crate::validation::pod_spec::label_selector::{check_template_match, is_empty_selector, validate_label_selector};
use crate::validation::pod_spec::validate_pod_template_spec;
use crate::validation::{FieldError, FieldErrors};

/// The `spec` object of `obj`, created when absent.
pub fn spec_mut(obj: &mut Object) -> &mut Map<String, Value> {
    let spec = obj.entry("spec").or_insert_with(|| Value::Object(Map::new()));
    if !spec.is_object() {
        *spec = Value::Object(Map::new());
    }
    match spec {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

/// The `spec` of `obj`, if any.
pub fn spec(obj: &Object) -> Option<&Value> {
    obj.get("spec")
}

/// A metav1.LabelSelector `selector` that is required and non-empty
/// (`empty selector is invalid for <kind>`), then must match the template.
pub fn validate_selector_and_template(spec: Option<&Value>, kind_word: &str, errs: &mut FieldErrors) {
    let selector = spec.and_then(|s| s.get("selector")).filter(|s| !s.is_null());
    match selector {
        None => errs.push(FieldError::required("spec.selector", "")),
        Some(sel) => {
            validate_label_selector(Some(sel), "spec.selector", errs);
            if is_empty_selector(Some(sel)) {
                errs.push(FieldError::invalid(
                    "spec.selector",
                    sel.clone(),
                    format!("empty selector is invalid for {kind_word}"),
                ));
            }
        }
    }
    check_template_match(
        selector,
        "spec.selector",
        spec.and_then(|s| s.get("template")),
        "spec.template",
        errs,
    );
}

/// The template checks of ReplicaSets, Deployments and DaemonSets: the pod
/// template itself, `restartPolicy: Always`, no `activeDeadlineSeconds`.
pub fn validate_always_template(spec: Option<&Value>, kind: &str, errs: &mut FieldErrors) {
    let template = spec.and_then(|s| s.get("template")).filter(|t| !t.is_null());
    let Some(template) = template else {
        errs.push(FieldError::required("spec.template", ""));
        return;
    };
    errs.extend(validate_pod_template_spec(Some(template), "spec.template"));
    validate_always_restart(Some(template), kind, errs);
}

/// `restartPolicy` must be Always and `activeDeadlineSeconds` unset.
pub fn validate_always_restart(template: Option<&Value>, kind: &str, errs: &mut FieldErrors) {
    let pod_spec = template.and_then(|t| t.get("spec"));
    let policy = pod_spec
        .and_then(|s| s.get("restartPolicy"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if policy != "Always" {
        errs.push(FieldError::not_supported(
            "spec.template.spec.restartPolicy",
            policy,
            &["Always"],
        ));
    }
    if pod_spec
        .and_then(|s| s.get("activeDeadlineSeconds"))
        .is_some_and(|v| !v.is_null())
    {
        errs.push(FieldError::forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            format!("activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
}

/// `ValidateNonnegativeField` on the given `spec` integers.
pub fn nonnegative_spec(spec: Option<&Value>, fields: &[&str], errs: &mut FieldErrors) {
    for f in fields {
        nonnegative_at(spec, f, "spec", errs);
    }
}

/// `spec.selector` may not change (apps/v1).
pub fn selector_immutable(new: &Object, old: &Object, errs: &mut FieldErrors) {
    let sel = |o: &Object| {
        o.get("spec")
            .and_then(|s| s.get("selector"))
            .filter(|v| !v.is_null())
            .cloned()
    };
    let (n, o) = (sel(new), sel(old));
    if n != o {
        errs.push(FieldError::invalid(
            "spec.selector",
            n.unwrap_or(Value::Null),
            IMMUTABLE,
        ));
    }
}

/// Status checks of replicated workloads: `nonneg` counts must be >= 0,
/// `le_replicas` counts no more than `status.replicas`, and
/// `availableReplicas` no more than `readyReplicas` with `ready_msg`.
pub fn validate_replica_status(
    status: Option<&Value>,
    nonneg: &[&str],
    le_replicas: &[&str],
    ready_msg: Option<&str>,
) -> FieldErrors {
    let mut errs = FieldErrors::new();
    for f in nonneg {
        nonnegative_at(status, f, "status", &mut errs);
    }
    let get = |f: &str| status.and_then(|s| s.get(f)).and_then(Value::as_i64).unwrap_or(0);
    let replicas = get("replicas");
    for f in le_replicas {
        if get(f) > replicas {
            errs.push(FieldError::invalid(
                format!("status.{f}"),
                get(f),
                "cannot be greater than status.replicas",
            ));
        }
    }
    if let Some(msg) = ready_msg
        && get("availableReplicas") > get("readyReplicas")
    {
        errs.push(FieldError::invalid(
            "status.availableReplicas",
            get("availableReplicas"),
            msg,
        ));
    }
    errs
}

/// `status.collisionCount` may not go down.
pub fn collision_count_not_decremented(new: &Object, old: &Object, errs: &mut FieldErrors) {
    let get = |o: &Object| {
        o.get("status")
            .and_then(|s| s.get("collisionCount"))
            .and_then(Value::as_i64)
    };
    if let Some(o) = get(old)
        && get(new).is_none_or(|n| n < o)
    {
        errs.push(FieldError::invalid(
            "status.collisionCount",
            get(new).unwrap_or(0),
            "cannot be decremented",
        ));
    }
}

/// Whether an update changed `status` (a status subresource write).
pub fn status_changed(new: &Object, old: &Object) -> bool {
    new.get("status") != old.get("status")
}

/// Bumps `metadata.generation` once when `pred` says so and the generic
/// store has not bumped it already.
pub fn bump_generation_if(new: &mut Object, old: &Object, pred: bool) {
    let generation = |o: &Object| {
        crate::registry::object::meta(o)
            .get("generation")
            .and_then(Value::as_i64)
    };
    if pred && generation(new) == generation(old) {
        crate::registry::object::set_meta(new, "generation", Some(Value::from(generation(old).unwrap_or(0) + 1)));
    }
}

/// `ValidateNonnegativeField` on one optional integer.
pub fn nonnegative_opt(v: Option<i64>, path: &str, errs: &mut FieldErrors) {
    if let Some(v) = v {
        nonnegative(v, path, errs);
    }
}
