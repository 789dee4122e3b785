//! ReplicaSets: replicas default 1, spec and status validation, and an
//! immutable selector (apps/v1).

use serde_json::json;

use crate::registry::object::Object;
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::FieldErrors;

use super::super::default_traits;
use super::super::pod::defaults::{default_pod_template, set_default};
use super::workload::{self, spec, spec_mut};

#[derive(Debug, Default)]
pub struct ReplicaSetStrategy;

/// `SetDefaults_ReplicaSet`.
pub fn default_replicaset(obj: &mut Object) {
    let spec = spec_mut(obj);
    set_default(spec, "replicas", json!(1));
    default_pod_template(spec.get_mut("template"));
}

/// `ValidateReplicaSetSpec`.
pub fn validate_replicaset_spec(obj: &Object) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let s = spec(obj);
    workload::nonnegative_spec(s, &["replicas", "minReadySeconds"], &mut errs);
    // Upstream says "deployment" here too.
    workload::validate_selector_and_template(s, "deployment", &mut errs);
    workload::validate_always_template(s, "ReplicaSet", &mut errs);
    errs
}

/// `ValidateReplicaSetStatus`.
pub fn validate_replicaset_status(obj: &Object) -> FieldErrors {
    workload::validate_replica_status(
        obj.get("status"),
        &[
            "replicas",
            "fullyLabeledReplicas",
            "readyReplicas",
            "availableReplicas",
            "observedGeneration",
        ],
        &["fullyLabeledReplicas", "readyReplicas", "availableReplicas"],
        Some("cannot be greater than readyReplicas"),
    )
}

impl Strategy for ReplicaSetStrategy {
    fn traits(&self) -> KindTraits {
        default_traits("apps", "replicasets")
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        default_replicaset(obj);
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_replicaset_spec(obj)
    }

    fn prepare_for_update(&self, new: &mut Object, _old: &Object) {
        default_replicaset(new);
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let mut errs = validate_replicaset_spec(new);
        workload::selector_immutable(new, old, &mut errs);
        if workload::status_changed(new, old) {
            errs.extend(validate_replicaset_status(new));
        }
        errs
    }
}
