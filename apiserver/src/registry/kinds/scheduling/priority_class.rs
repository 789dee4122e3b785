//! PriorityClass (`scheduling.k8s.io/v1`): the `system-` prefix reserved
//! for the built-in classes, the user-definable maximum, preemptionPolicy
//! (default PreemptLowerPriority) and the immutable value.

use serde_json::{Value, json};

use crate::registry::kinds::default_traits;
use crate::registry::kinds::networking::values::{immutable, set_default};
use crate::registry::object::{self, Object};
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::{FieldError, FieldErrors};

/// Names starting with this are reserved for the built-in classes.
pub const SYSTEM_PREFIX: &str = "system-";
/// The largest value a user-defined class may have.
pub const HIGHEST_USER_DEFINABLE_PRIORITY: i64 = 1_000_000_000;
/// The value of `system-cluster-critical`.
pub const SYSTEM_CRITICAL_PRIORITY: i64 = 2 * HIGHEST_USER_DEFINABLE_PRIORITY;

/// A built-in priority class.
#[derive(Debug, Clone, Copy)]
pub struct SystemPriorityClass {
    pub name: &'static str,
    pub value: i64,
    pub description: &'static str,
}

/// The classes the apiserver creates at start.
pub const SYSTEM_PRIORITY_CLASSES: &[SystemPriorityClass] = &[
    SystemPriorityClass {
        name: "system-node-critical",
        value: SYSTEM_CRITICAL_PRIORITY + 1000,
        description: "Used for system critical pods that must not be moved from their current node.",
    },
    SystemPriorityClass {
        name: "system-cluster-critical",
        value: SYSTEM_CRITICAL_PRIORITY,
        description: "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
    },
];

/// Upstream's `IsKnownSystemPriorityClass`: `Err` says why not.
fn is_known_system_priority_class(name: &str, value: i64, global_default: bool) -> Result<(), String> {
    match SYSTEM_PRIORITY_CLASSES.iter().find(|c| c.name == name) {
        None => Err(format!("{name} is not a known system priority class")),
        Some(c) if c.value != value => Err(format!("value of {} PriorityClass must be {}", c.name, c.value)),
        Some(c) if global_default => Err(format!("globalDefault of {} PriorityClass must be false", c.name)),
        Some(_) => Ok(()),
    }
}

#[derive(Debug, Default)]
pub struct PriorityClassStrategy;

fn value_of(obj: &Object) -> i64 {
    obj.get("value").and_then(Value::as_i64).unwrap_or(0)
}

impl Strategy for PriorityClassStrategy {
    fn traits(&self) -> KindTraits {
        default_traits("scheduling.k8s.io", "priorityclasses")
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        set_default(obj, "preemptionPolicy", json!("PreemptLowerPriority"));
    }

    fn prepare_for_update(&self, new: &mut Object, _old: &Object) {
        set_default(new, "preemptionPolicy", json!("PreemptLowerPriority"));
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        let mut errs = FieldErrors::new();
        let name = object::name(obj);
        let value = value_of(obj);
        let global_default = obj.get("globalDefault").and_then(Value::as_bool).unwrap_or(false);
        if name.starts_with(SYSTEM_PREFIX) {
            if let Err(e) = is_known_system_priority_class(name, value, global_default) {
                errs.push(FieldError::forbidden(
                    "metadata.name",
                    format!(
                        "priority class names with '{SYSTEM_PREFIX}' prefix are reserved for system use only. error: {e}"
                    ),
                ));
            }
        } else if value > HIGHEST_USER_DEFINABLE_PRIORITY {
            errs.push(FieldError::forbidden(
                "value",
                format!("maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}"),
            ));
        }
        if let Some(p) = obj.get("preemptionPolicy").and_then(Value::as_str) {
            errs.extend(validate_preemption_policy(p, "preemptionPolicy"));
        }
        errs
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let mut errs = FieldErrors::new();
        if value_of(new) != value_of(old) {
            errs.push(FieldError::forbidden("value", "may not be changed in an update."));
        }
        let policy = |o: &Object| o.get("preemptionPolicy").and_then(Value::as_str).map(String::from);
        if policy(new) != policy(old) {
            errs.push(match policy(new) {
                Some(p) => immutable("preemptionPolicy", p),
                None => immutable("preemptionPolicy", "null"),
            });
        }
        errs
    }
}

/// Upstream's `ValidatePreemptionPolicy`.
pub fn validate_preemption_policy(policy: &str, path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    match policy {
        "PreemptLowerPriority" | "Never" => {}
        "" => errs.push(FieldError::required(path, "")),
        other => errs.push(FieldError::not_supported(
            path,
            other,
            &["PreemptLowerPriority", "Never"],
        )),
    }
    errs
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::registry::strategy::testing::{create_messages, prepared};

    fn pc(body: Value) -> Object {
        prepared(&PriorityClassStrategy, body)
    }

    fn check(body: Value, expected: &[&str]) {
        assert_eq!(create_messages(&PriorityClassStrategy, body), expected);
    }

    #[test]
    fn rules() {
        check(json!({"metadata": {"name": "high"}, "value": 1000}), &[]);
        assert_eq!(
            pc(json!({"metadata": {"name": "high"}, "value": 1}))["preemptionPolicy"],
            "PreemptLowerPriority"
        );
        check(
            json!({"metadata": {"name": "high"}, "value": 1_000_000_001}),
            &["value: Forbidden: maximum allowed value of a user defined priority is 1000000000"],
        );
        check(
            json!({"metadata": {"name": "system-mine"}, "value": 1}),
            &[
                "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-mine is not a known system priority class",
            ],
        );
        check(
            json!({"metadata": {"name": "system-node-critical"}, "value": 1}),
            &[
                "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: value of system-node-critical PriorityClass must be 2000001000",
            ],
        );
        check(
            json!({"metadata": {"name": "system-cluster-critical"}, "value": 2_000_000_000, "globalDefault": true}),
            &[
                "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: globalDefault of system-cluster-critical PriorityClass must be false",
            ],
        );
        check(
            json!({"metadata": {"name": "system-cluster-critical"}, "value": 2_000_000_000}),
            &[],
        );
        check(
            json!({"metadata": {"name": "p"}, "value": 1, "preemptionPolicy": "Always"}),
            &["preemptionPolicy: Unsupported value: \"Always\": supported values: \"PreemptLowerPriority\", \"Never\""],
        );
    }

    #[test]
    fn update() {
        let old = pc(json!({"metadata": {"name": "p"}, "value": 1}));
        let new = pc(json!({"metadata": {"name": "p"}, "value": 2, "preemptionPolicy": "Never"}));
        let got: Vec<String> = PriorityClassStrategy
            .validate_update(&new, &old)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            got,
            [
                "value: Forbidden: may not be changed in an update.",
                "preemptionPolicy: Invalid value: \"Never\": field is immutable"
            ]
        );
        let same = pc(json!({"metadata": {"name": "p"}, "value": 1, "description": "d"}));
        assert!(PriorityClassStrategy.validate_update(&same, &old).is_empty());
    }
}
