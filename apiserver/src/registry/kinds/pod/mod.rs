//! Pods: upstream's defaults for the fields clients leave out, status reset
//! to Pending on create, the full pod spec validation, the pod update rules
//! and graceful deletion for pods bound to a node.

pub mod defaults;
pub mod ephemeral;
#[cfg(test)]
mod tests;
pub mod update;

use serde_json::{Value, json};

use crate::registry::object::Object;
use crate::registry::store::UpdateTarget;
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::FieldErrors;
use crate::validation::pod_spec::validate_pod_spec;

pub use defaults::{DEFAULT_GRACE_SECONDS, default_pod, default_pod_spec, default_pod_template};

#[derive(Debug, Default)]
pub struct PodStrategy;

fn default_object(obj: &mut Object) {
    if let Some(Value::Object(spec)) = obj.get_mut("spec") {
        default_pod(spec);
    }
}

/// `spec.nodeName` may not be set while scheduling gates remain, and
/// ephemeral containers come only through their subresource.
fn validate_create_only(obj: &Object) -> FieldErrors {
    use crate::validation::FieldError;
    use crate::validation::pod_spec::fields::{arr, str_at};
    let mut errs = FieldErrors::new();
    let spec = obj.get("spec");
    if !arr(spec, "ephemeralContainers").is_empty() {
        errs.push(FieldError::forbidden(
            "spec.ephemeralContainers",
            "cannot be set on create",
        ));
    }
    if !str_at(spec, "nodeName").is_empty() && !arr(spec, "schedulingGates").is_empty() {
        errs.push(FieldError::forbidden(
            "spec.nodeName",
            "cannot be set until all schedulingGates have been cleared",
        ));
    }
    errs
}

impl Strategy for PodStrategy {
    fn traits(&self) -> KindTraits {
        super::default_traits("", "pods")
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        super::alpha_fields::drop_pod_fields(obj, None);
        default_object(obj);
        obj.insert(
            "status".into(),
            json!({"phase": "Pending", "qosClass": qos_class(obj.get("spec"))}),
        );
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        let mut errs = validate_pod_spec(obj.get("spec"), "spec");
        errs.extend(validate_create_only(obj));
        errs
    }

    fn prepare_for_update(&self, new: &mut Object, old: &Object) {
        super::alpha_fields::drop_pod_fields(new, Some(old));
        default_object(new);
    }

    fn validate_update_of(&self, target: UpdateTarget, new: &Object, old: &Object) -> FieldErrors {
        match target {
            UpdateTarget::EphemeralContainers => ephemeral::validate_update(new, old),
            _ => self.validate_update(new, old),
        }
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let mut errs = validate_pod_spec(new.get("spec"), "spec");
        errs.extend(update::validate_pod_update(new, old));
        errs
    }

    fn graceful_delete_period(&self, obj: &Object, requested: Option<i64>) -> Option<i64> {
        let spec = obj.get("spec");
        let node = spec
            .and_then(|s| s.get("nodeName"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let phase = obj
            .get("status")
            .and_then(|s| s.get("phase"))
            .and_then(Value::as_str)
            .unwrap_or("");
        // Unscheduled and finished pods go at once.
        if node.is_empty() || matches!(phase, "Succeeded" | "Failed") {
            return None;
        }
        let default = spec
            .and_then(|s| s.get("terminationGracePeriodSeconds"))
            .and_then(Value::as_i64)
            .unwrap_or(DEFAULT_GRACE_SECONDS);
        Some(requested.unwrap_or(default).max(0))
    }
}

/// The pod's QoS class from its containers' requests and limits.
pub fn qos_class(spec: Option<&Value>) -> &'static str {
    let mut any = false;
    let mut guaranteed = true;
    for list in ["initContainers", "containers"] {
        let Some(cs) = spec.and_then(|s| s.get(list)).and_then(Value::as_array) else {
            continue;
        };
        for c in cs {
            let requests = c
                .get("resources")
                .and_then(|r| r.get("requests"))
                .and_then(Value::as_object);
            let limits = c
                .get("resources")
                .and_then(|r| r.get("limits"))
                .and_then(Value::as_object);
            for res in ["cpu", "memory"] {
                let l = limits.and_then(|l| l.get(res));
                let r = requests.and_then(|r| r.get(res)).or(l);
                if l.is_some() || r.is_some() {
                    any = true;
                }
                if l.is_none() || r != l {
                    guaranteed = false;
                }
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}
