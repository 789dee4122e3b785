//! DaemonSets: apps/v1 defaults (RollingUpdate with maxUnavailable 1 and
//! maxSurge 0, revisionHistoryLimit 10), spec/status validation, an
//! immutable selector, and the `deprecated.daemonset.template.generation`
//! annotation upstream keeps for its internal template generation.

use serde_json::{Value, json};

use crate::registry::object::{self, Object};
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::pod_spec::fields::{int_or_percent_number, positive_int_or_percent, str_at};
use crate::validation::{FieldError, FieldErrors};

use super::super::default_traits;
use super::super::pod::defaults::{default_pod_template, set_default};
use super::workload::{self, spec, spec_mut};

/// The annotation holding the template generation.
pub const TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

#[derive(Debug, Default)]
pub struct DaemonSetStrategy;

/// `SetDefaults_DaemonSet`.
pub fn default_daemonset(obj: &mut Object) {
    let spec = spec_mut(obj);
    let us = spec.entry("updateStrategy").or_insert_with(|| json!({}));
    if let Value::Object(us) = us {
        set_default(us, "type", json!("RollingUpdate"));
        if us.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
            set_default(us, "rollingUpdate", json!({}));
            if let Some(Value::Object(ru)) = us.get_mut("rollingUpdate") {
                set_default(ru, "maxUnavailable", json!(1));
                set_default(ru, "maxSurge", json!(0));
            }
        }
    }
    set_default(spec, "revisionHistoryLimit", json!(10));
    default_pod_template(spec.get_mut("template"));
}

fn validate_update_strategy(s: Option<&Value>, errs: &mut FieldErrors) {
    let us = s.and_then(|s| s.get("updateStrategy"));
    match str_at(us, "type") {
        "OnDelete" => {}
        "RollingUpdate" => {
            let Some(ru) = us.and_then(|u| u.get("rollingUpdate")).filter(|r| !r.is_null()) else {
                errs.push(FieldError::required("spec.updateStrategy.rollingUpdate", ""));
                return;
            };
            let p = "spec.updateStrategy.rollingUpdate";
            let (mu, ms) = (ru.get("maxUnavailable"), ru.get("maxSurge"));
            if let Some(v) = mu {
                positive_int_or_percent(v, &format!("{p}.maxUnavailable"), errs);
            }
            if let Some(v) = ms {
                positive_int_or_percent(v, &format!("{p}.maxSurge"), errs);
            }
            match (int_or_percent_number(mu) != 0, int_or_percent_number(ms) != 0) {
                (true, true) => errs.push(FieldError::invalid(
                    format!("{p}.maxSurge"),
                    ms.cloned().unwrap_or(Value::Null),
                    "may not be set when maxUnavailable is non-zero",
                )),
                (false, false) => errs.push(FieldError::required(
                    format!("{p}.maxUnavailable"),
                    "cannot be 0 when maxSurge is 0",
                )),
                _ => {}
            }
        }
        other => errs.push(FieldError::not_supported(
            "spec.updateStrategy",
            other,
            &["RollingUpdate", "OnDelete"],
        )),
    }
}

/// `ValidateDaemonSetSpec`.
pub fn validate_daemonset_spec(obj: &Object) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let s = spec(obj);
    workload::validate_selector_and_template(s, "daemonset", &mut errs);
    workload::validate_always_template(s, "DaemonSet", &mut errs);
    workload::nonnegative_spec(s, &["minReadySeconds"], &mut errs);
    validate_update_strategy(s, &mut errs);
    workload::nonnegative_spec(s, &["revisionHistoryLimit"], &mut errs);
    errs
}

fn validate_status(new: &Object, old: &Object) -> FieldErrors {
    let mut errs = workload::validate_replica_status(
        new.get("status"),
        &[
            "currentNumberScheduled",
            "numberMisscheduled",
            "desiredNumberScheduled",
            "numberReady",
            "observedGeneration",
            "updatedNumberScheduled",
            "numberAvailable",
            "numberUnavailable",
            "collisionCount",
        ],
        &[],
        None,
    );
    workload::collision_count_not_decremented(new, old, &mut errs);
    errs
}

fn template_generation(obj: &Object) -> i64 {
    object::meta(obj)
        .get("annotations")
        .and_then(|a| a.get(TEMPLATE_GENERATION))
        .and_then(Value::as_str)
        .and_then(|g| g.parse().ok())
        .unwrap_or(0)
}

fn set_template_generation(obj: &mut Object, generation: i64) {
    let meta = object::meta_mut(obj);
    let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
    if !annotations.is_object() {
        *annotations = json!({});
    }
    if let Value::Object(a) = annotations {
        a.insert(TEMPLATE_GENERATION.into(), Value::String(generation.to_string()));
    }
}

impl Strategy for DaemonSetStrategy {
    fn traits(&self) -> KindTraits {
        default_traits("apps", "daemonsets")
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        default_daemonset(obj);
        set_template_generation(obj, 1);
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_daemonset_spec(obj)
    }

    fn prepare_for_update(&self, new: &mut Object, old: &Object) {
        default_daemonset(new);
        let template = |o: &Object| o.get("spec").and_then(|s| s.get("template")).cloned();
        let old_generation = template_generation(old);
        let generation = if template(new) != template(old) {
            old_generation + 1
        } else {
            old_generation.max(1)
        };
        set_template_generation(new, generation);
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let mut errs = validate_daemonset_spec(new);
        workload::selector_immutable(new, old, &mut errs);
        if workload::status_changed(new, old) {
            errs.extend(validate_status(new, old));
        }
        errs
    }
}
