//! Strategies of the `policy` API group's kinds: PodDisruptionBudgets
//! (upstream's `ValidatePodDisruptionBudget` and its status checks).

use std::sync::Arc;

use serde_json::Value;

use crate::registry::object::Object;
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::pod_spec::fields::{at, nonnegative_at, positive_int_or_percent};
use crate::validation::pod_spec::label_selector::validate_label_selector;
use crate::validation::{FieldError, FieldErrors};

use super::default_traits;

/// The strategy of `resource` when it has its own.
pub fn strategy_for(resource: &str) -> Option<Arc<dyn Strategy>> {
    match resource {
        "poddisruptionbudgets" => Some(Arc::new(PodDisruptionBudgetStrategy)),
        _ => None,
    }
}

#[derive(Debug, Default)]
pub struct PodDisruptionBudgetStrategy;

/// `ValidatePodDisruptionBudgetSpec`.
pub fn validate_pdb_spec(obj: &Object) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let spec = obj.get("spec");
    let min = at(spec, &["minAvailable"]);
    let max = at(spec, &["maxUnavailable"]);
    if min.is_some() && max.is_some() {
        errs.push(FieldError::invalid(
            "spec",
            spec.cloned().unwrap_or(Value::Null),
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    if let Some(v) = min {
        positive_int_or_percent(v, "spec.minAvailable", &mut errs);
    }
    if let Some(v) = max {
        positive_int_or_percent(v, "spec.maxUnavailable", &mut errs);
    }
    validate_label_selector(at(spec, &["selector"]), "spec.selector", &mut errs);
    if let Some(p) = at(spec, &["unhealthyPodEvictionPolicy"]).and_then(Value::as_str)
        && !matches!(p, "AlwaysAllow" | "IfHealthyBudget")
    {
        errs.push(FieldError::not_supported(
            "spec.unhealthyPodEvictionPolicy",
            p,
            &["AlwaysAllow", "IfHealthyBudget"],
        ));
    }
    errs
}

fn validate_status(obj: &Object) -> FieldErrors {
    let mut errs = FieldErrors::new();
    for f in [
        "disruptionsAllowed",
        "currentHealthy",
        "desiredHealthy",
        "expectedPods",
        "observedGeneration",
    ] {
        nonnegative_at(obj.get("status"), f, "status", &mut errs);
    }
    errs
}

impl Strategy for PodDisruptionBudgetStrategy {
    fn traits(&self) -> KindTraits {
        default_traits("policy", "poddisruptionbudgets")
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_pdb_spec(obj)
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let mut errs = validate_pdb_spec(new);
        if new.get("status") != old.get("status") {
            errs.extend(validate_status(new));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;

    use super::*;

    fn errors(spec: Value) -> Vec<String> {
        let obj = json!({"metadata": {"name": "p"}, "spec": spec});
        validate_pdb_spec(obj.as_object().unwrap())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn pdb_rules() {
        assert!(errors(json!({"minAvailable": "50%", "selector": {"matchLabels": {"a": "b"}}})).is_empty());
        assert_eq!(
            errors(json!({"minAvailable": 1, "maxUnavailable": 1})),
            [
                "spec: Invalid value: map[string]int64{\"maxUnavailable\":1, \"minAvailable\":1}: minAvailable and maxUnavailable cannot be both set"
            ]
        );
        assert_eq!(
            errors(json!({"maxUnavailable": "150%", "unhealthyPodEvictionPolicy": "Never"})),
            [
                "spec.maxUnavailable: Invalid value: \"150%\": must not be greater than 100%",
                "spec.unhealthyPodEvictionPolicy: Unsupported value: \"Never\": supported values: \"AlwaysAllow\", \"IfHealthyBudget\"",
            ]
        );
        assert_eq!(
            errors(json!({"minAvailable": -1})),
            ["spec.minAvailable: Invalid value: -1: must be greater than or equal to 0"]
        );
        assert_eq!(
            errors(json!({"minAvailable": "x%"})),
            [
                "spec.minAvailable: Invalid value: \"x%\": a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"
            ]
        );
    }
}
