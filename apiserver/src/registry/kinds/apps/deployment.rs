//! Deployments: apps/v1 defaults (replicas 1, RollingUpdate 25%/25%,
//! revisionHistoryLimit 10, progressDeadlineSeconds 600), spec and status
//! validation, an immutable selector, and a generation that also follows
//! annotation changes.

use serde_json::{Value, json};

use crate::registry::object::{self, Object};
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::pod_spec::fields::{int, int_or_percent_number, positive_int_or_percent, str_at};
use crate::validation::{FieldError, FieldErrors};

use super::super::default_traits;
use super::super::pod::defaults::{default_pod_template, set_default};
use super::workload::{self, spec, spec_mut};

#[derive(Debug, Default)]
pub struct DeploymentStrategy;

/// `SetDefaults_Deployment`.
pub fn default_deployment(obj: &mut Object) {
    let spec = spec_mut(obj);
    set_default(spec, "replicas", json!(1));
    let strategy = spec.entry("strategy").or_insert_with(|| json!({}));
    if let Value::Object(strategy) = strategy {
        set_default(strategy, "type", json!("RollingUpdate"));
        if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
            let ru = strategy.entry("rollingUpdate").or_insert_with(|| json!({}));
            if ru.is_null() {
                *ru = json!({});
            }
            if let Value::Object(ru) = ru {
                set_default(ru, "maxUnavailable", json!("25%"));
                set_default(ru, "maxSurge", json!("25%"));
            }
        }
    }
    set_default(spec, "revisionHistoryLimit", json!(10));
    set_default(spec, "progressDeadlineSeconds", json!(600));
    default_pod_template(spec.get_mut("template"));
}

fn validate_strategy(spec: Option<&Value>, errs: &mut FieldErrors) {
    let strategy = spec.and_then(|s| s.get("strategy"));
    let ru = strategy.and_then(|s| s.get("rollingUpdate")).filter(|r| !r.is_null());
    match str_at(strategy, "type") {
        "Recreate" => {
            if ru.is_some() {
                errs.push(FieldError::forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match ru {
            None => errs.push(FieldError::required(
                "spec.strategy.rollingUpdate",
                "this should be defaulted and never be nil",
            )),
            Some(ru) => {
                let mu = ru.get("maxUnavailable");
                let ms = ru.get("maxSurge");
                if let Some(v) = mu {
                    positive_int_or_percent(v, "spec.strategy.rollingUpdate.maxUnavailable", errs);
                }
                if let Some(v) = ms {
                    positive_int_or_percent(v, "spec.strategy.rollingUpdate.maxSurge", errs);
                }
                if int_or_percent_number(mu) == 0 && int_or_percent_number(ms) == 0 {
                    errs.push(FieldError::invalid(
                        "spec.strategy.rollingUpdate.maxUnavailable",
                        mu.cloned().unwrap_or(Value::Null),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
            }
        },
        other => errs.push(FieldError::not_supported(
            "spec.strategy",
            other,
            &["Recreate", "RollingUpdate"],
        )),
    }
}

/// `ValidateDeploymentSpec`.
pub fn validate_deployment_spec(obj: &Object) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let s = spec(obj);
    workload::nonnegative_spec(s, &["replicas"], &mut errs);
    workload::validate_selector_and_template(s, "deployment", &mut errs);
    workload::validate_always_template(s, "ReplicaSet", &mut errs);
    validate_strategy(s, &mut errs);
    workload::nonnegative_spec(s, &["minReadySeconds", "revisionHistoryLimit"], &mut errs);
    if let Some(pds) = int(s, "progressDeadlineSeconds") {
        workload::nonnegative_opt(Some(pds), "spec.progressDeadlineSeconds", &mut errs);
        if pds <= int(s, "minReadySeconds").unwrap_or(0) {
            errs.push(FieldError::invalid(
                "spec.progressDeadlineSeconds",
                pds,
                "must be greater than minReadySeconds",
            ));
        }
    }
    errs
}

fn validate_status(new: &Object, old: &Object) -> FieldErrors {
    let mut errs = workload::validate_replica_status(
        new.get("status"),
        &[
            "observedGeneration",
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
            "collisionCount",
        ],
        &["updatedReplicas", "readyReplicas", "availableReplicas"],
        Some("cannot be greater than readyReplicas"),
    );
    workload::collision_count_not_decremented(new, old, &mut errs);
    errs
}

impl Strategy for DeploymentStrategy {
    fn traits(&self) -> KindTraits {
        default_traits("apps", "deployments")
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        default_deployment(obj);
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_deployment_spec(obj)
    }

    fn prepare_for_update(&self, new: &mut Object, old: &Object) {
        default_deployment(new);
        let annotations = |o: &Object| object::meta(o).get("annotations").cloned();
        let changed = annotations(new) != annotations(old) || new.get("spec") != old.get("spec");
        workload::bump_generation_if(new, old, changed && !workload::status_changed(new, old));
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let mut errs = validate_deployment_spec(new);
        workload::selector_immutable(new, old, &mut errs);
        if workload::status_changed(new, old) {
            errs.extend(validate_status(new, old));
        }
        errs
    }
}
