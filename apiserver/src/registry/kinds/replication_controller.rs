//! ReplicationControllers (core/v1): the selector and the object's labels
//! default to the template's labels, replicas to 1; the selector is a plain
//! label map that must be non-empty and match the template. Unlike apps/v1
//! kinds, the selector may change.

use serde_json::{Value, json};

use crate::registry::object::{self, Object};
use crate::registry::strategy::{KindTraits, Strategy};
use crate::selector::Selector;
use crate::validation::pod_spec::fields::{obj, validate_labels};
use crate::validation::pod_spec::label_selector::{mismatch_error, template_labels};
use crate::validation::pod_spec::validate_pod_template_spec;
use crate::validation::{FieldError, FieldErrors};

use super::apps::replicaset::validate_replicaset_status;
use super::apps::workload::{self, spec, spec_mut};
use super::default_traits;
use super::pod::defaults::{default_pod_template, set_default};

#[derive(Debug, Default)]
pub struct ReplicationControllerStrategy;

fn non_empty_map(v: Option<&Value>) -> bool {
    v.and_then(Value::as_object).is_some_and(|m| !m.is_empty())
}

/// `SetDefaults_ReplicationController`.
pub fn default_replication_controller(o: &mut Object) {
    let labels = o
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .filter(|l| l.is_object())
        .cloned();
    if let Some(labels) = labels {
        if !non_empty_map(o.get("spec").and_then(|s| s.get("selector"))) {
            spec_mut(o).insert("selector".into(), labels.clone());
        }
        if !non_empty_map(object::meta(o).get("labels")) {
            object::set_meta(o, "labels", Some(labels));
        }
    }
    let spec = spec_mut(o);
    set_default(spec, "replicas", json!(1));
    default_pod_template(spec.get_mut("template"));
}

/// `ValidateReplicationControllerSpec`.
pub fn validate_replication_controller_spec(o: &Object) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let s = spec(o);
    workload::nonnegative_spec(s, &["minReadySeconds"], &mut errs);
    let selector = obj(s, "selector");
    if selector.is_none_or(|m| m.is_empty()) {
        errs.push(FieldError::required("spec.selector", ""));
    }
    validate_labels(s.and_then(|s| s.get("selector")), "spec.selector", &mut errs);
    workload::nonnegative_spec(s, &["replicas"], &mut errs);
    let template = s.and_then(|s| s.get("template")).filter(|t| !t.is_null());
    let Some(template) = template else {
        errs.push(FieldError::required("spec.template", ""));
        return errs;
    };
    let set = selector
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    let sel = Selector::from_set(&set);
    if !sel.is_empty() && !sel.matches(&template_labels(Some(template))) {
        errs.push(mismatch_error(Some(template), "spec.template"));
    }
    errs.extend(validate_pod_template_spec(Some(template), "spec.template"));
    workload::validate_always_restart(Some(template), "ReplicationController", &mut errs);
    errs
}

impl Strategy for ReplicationControllerStrategy {
    fn traits(&self) -> KindTraits {
        default_traits("", "replicationcontrollers")
    }

    fn prepare_for_create(&self, o: &mut Object) {
        default_replication_controller(o);
    }

    fn validate(&self, o: &Object) -> FieldErrors {
        validate_replication_controller_spec(o)
    }

    fn prepare_for_update(&self, new: &mut Object, _old: &Object) {
        default_replication_controller(new);
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let mut errs = validate_replication_controller_spec(new);
        if workload::status_changed(new, old) {
            // `ValidateReplicationControllerStatus` checks what the ReplicaSet one does.
            errs.extend(validate_replicaset_status(new));
        }
        errs
    }
}
