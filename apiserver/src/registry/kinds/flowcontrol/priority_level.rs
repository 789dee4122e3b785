//! PriorityLevelConfiguration: `exempt` and only it is of type Exempt;
//! Limited levels have non-negative shares (default 30), a lendable
//! percentage in 0-100 and a queue or reject limit response with queuing
//! defaults (64 queues, hand size 8, 50 per queue).

use serde_json::{Map, Value, json};

use crate::registry::kinds::default_traits;
use crate::registry::kinds::networking::values::{object_mut, set_default};
use crate::registry::object::{self, Object};
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::{FieldError, FieldErrors};

const MAX_QUEUES: i64 = 512;

#[derive(Debug, Default)]
pub struct PriorityLevelStrategy;

fn zero_to_default(m: &mut Map<String, Value>, key: &str, value: i64) {
    if m.get(key).is_none_or(|v| v.is_null() || v == 0) {
        m.insert(key.to_string(), json!(value));
    }
}

/// `SetDefaults_PriorityLevelConfiguration` and its parts.
fn apply_defaults(obj: &mut Object) {
    let Some(Value::Object(spec)) = obj.get_mut("spec") else {
        return;
    };
    match spec.get("type").and_then(Value::as_str) {
        Some("Exempt") => {
            let exempt = object_mut(spec, "exempt");
            set_default(exempt, "nominalConcurrencyShares", json!(0));
            set_default(exempt, "lendablePercent", json!(0));
        }
        _ => {
            if let Some(Value::Object(limited)) = spec.get_mut("limited") {
                set_default(limited, "nominalConcurrencyShares", json!(30));
                set_default(limited, "lendablePercent", json!(0));
                if let Some(Value::Object(lr)) = limited.get_mut("limitResponse")
                    && let Some(Value::Object(q)) = lr.get_mut("queuing")
                {
                    zero_to_default(q, "handSize", 8);
                    zero_to_default(q, "queues", 64);
                    zero_to_default(q, "queueLengthLimit", 50);
                }
            }
        }
    }
}

fn int(v: Option<&Value>, k: &str) -> Option<i64> {
    v.and_then(|v| v.get(k)).and_then(Value::as_i64)
}

fn present<'a>(v: Option<&'a Value>, k: &str) -> Option<&'a Value> {
    v.and_then(|v| v.get(k)).filter(|v| !v.is_null())
}

fn validate_limited(limited: &Value, errs: &mut FieldErrors) {
    let l = Some(limited);
    let p = "spec.limited";
    let shares = int(l, "nominalConcurrencyShares").unwrap_or(0);
    if shares < 0 {
        errs.push(FieldError::invalid(
            format!("{p}.nominalConcurrencyShares"),
            shares,
            "must be a non-negative integer",
        ));
    }
    let lr = present(l, "limitResponse");
    match lr.and_then(|r| r.get("type")).and_then(Value::as_str).unwrap_or("") {
        "Reject" => {
            if present(lr, "queuing").is_some() {
                errs.push(FieldError::forbidden(
                    format!("{p}.limitResponse.queuing"),
                    "must be nil if limited.limitResponse.type is not Limited",
                ));
            }
        }
        "Queue" => match present(lr, "queuing") {
            None => errs.push(FieldError::required(
                format!("{p}.limitResponse.queuing"),
                "must not be empty if limited.limitResponse.type is Limited",
            )),
            Some(q) => validate_queuing(q, &format!("{p}.limitResponse.queuing"), errs),
        },
        other => errs.push(FieldError::not_supported(
            format!("{p}.limitResponse.type"),
            other,
            &["Queue", "Reject"],
        )),
    }
    if let Some(pct) = int(l, "lendablePercent")
        && !(0..=100).contains(&pct)
    {
        errs.push(FieldError::invalid(
            format!("{p}.lendablePercent"),
            pct,
            "must be between 0 and 100, inclusive",
        ));
    }
    if let Some(pct) = int(l, "borrowingLimitPercent")
        && pct < 0
    {
        errs.push(FieldError::invalid(
            format!("{p}.borrowingLimitPercent"),
            pct,
            "if specified, must be a non-negative integer",
        ));
    }
}

fn validate_queuing(q: &Value, p: &str, errs: &mut FieldErrors) {
    let q = Some(q);
    let (limit, queues, hand) = (
        int(q, "queueLengthLimit").unwrap_or(0),
        int(q, "queues").unwrap_or(0),
        int(q, "handSize").unwrap_or(0),
    );
    if limit <= 0 {
        errs.push(FieldError::invalid(
            format!("{p}.queueLengthLimit"),
            limit,
            "must be positive",
        ));
    }
    if queues <= 0 {
        errs.push(FieldError::invalid(format!("{p}.queues"), queues, "must be positive"));
    } else if queues > MAX_QUEUES {
        errs.push(FieldError::invalid(
            format!("{p}.queues"),
            queues,
            format!("must not be greater than {MAX_QUEUES}"),
        ));
    }
    if hand <= 0 {
        errs.push(FieldError::invalid(format!("{p}.handSize"), hand, "must be positive"));
    } else if hand > queues {
        errs.push(FieldError::invalid(
            format!("{p}.handSize"),
            hand,
            format!("should not be greater than queues ({queues})"),
        ));
    }
}

/// `ValidatePriorityLevelConfigurationSpec`.
pub fn validate_priority_level(obj: &Object) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let spec = obj.get("spec");
    let ty = spec.and_then(|s| s.get("type")).and_then(Value::as_str).unwrap_or("");
    if (object::name(obj) == "exempt") != (ty == "Exempt") {
        errs.push(FieldError::invalid(
            "spec.type",
            ty,
            "type must be 'Exempt' if and only if name is 'exempt'",
        ));
    }
    match ty {
        "Exempt" => {
            if present(spec, "limited").is_some() {
                errs.push(FieldError::forbidden(
                    "spec.limited",
                    "must be nil if the type is not Limited",
                ));
            }
            let exempt = present(spec, "exempt");
            if let Some(pct) = int(exempt, "lendablePercent")
                && !(0..=100).contains(&pct)
            {
                errs.push(FieldError::invalid(
                    "spec.exempt.lendablePercent",
                    pct,
                    "must be between 0 and 100, inclusive",
                ));
            }
            if let Some(shares) = int(exempt, "nominalConcurrencyShares")
                && shares < 0
            {
                errs.push(FieldError::invalid(
                    "spec.exempt.nominalConcurrencyShares",
                    shares,
                    "must be a non-negative int",
                ));
            }
        }
        "Limited" => {
            if present(spec, "exempt").is_some() {
                errs.push(FieldError::forbidden(
                    "spec.exempt",
                    "must be nil if the type is Limited",
                ));
            }
            match present(spec, "limited") {
                None => errs.push(FieldError::required(
                    "spec.limited",
                    "must not be empty when type is Limited",
                )),
                Some(l) => validate_limited(l, &mut errs),
            }
        }
        other => errs.push(FieldError::not_supported("spec.type", other, &["Exempt", "Limited"])),
    }
    errs
}

impl Strategy for PriorityLevelStrategy {
    fn traits(&self) -> KindTraits {
        default_traits("flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations")
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        apply_defaults(obj);
    }

    fn prepare_for_update(&self, new: &mut Object, _old: &Object) {
        apply_defaults(new);
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_priority_level(obj)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn prepared(name: &str, spec: Value) -> Object {
        let mut obj = json!({"metadata": {"name": name}, "spec": spec})
            .as_object()
            .cloned()
            .unwrap();
        apply_defaults(&mut obj);
        obj
    }

    fn messages(name: &str, spec: Value) -> Vec<String> {
        validate_priority_level(&prepared(name, spec))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn defaults() {
        let obj = prepared(
            "p",
            json!({"type": "Limited", "limited": {"limitResponse": {"type": "Queue", "queuing": {}}}}),
        );
        assert_eq!(
            obj["spec"]["limited"],
            json!({"nominalConcurrencyShares": 30, "lendablePercent": 0,
                   "limitResponse": {"type": "Queue", "queuing": {"handSize": 8, "queues": 64, "queueLengthLimit": 50}}})
        );
        assert!(validate_priority_level(&obj).is_empty());
        let exempt = prepared("exempt", json!({"type": "Exempt"}));
        assert_eq!(
            exempt["spec"]["exempt"],
            json!({"nominalConcurrencyShares": 0, "lendablePercent": 0})
        );
        assert!(validate_priority_level(&exempt).is_empty());
    }

    #[test]
    fn rules() {
        assert_eq!(
            messages("p", json!({"type": "Exempt"})),
            ["spec.type: Invalid value: \"Exempt\": type must be 'Exempt' if and only if name is 'exempt'"]
        );
        assert_eq!(
            messages("p", json!({"type": "Limited"})),
            ["spec.limited: Required value: must not be empty when type is Limited"]
        );
        assert_eq!(
            messages(
                "p",
                json!({"type": "Limited", "limited": {"lendablePercent": 101,
                       "limitResponse": {"type": "Queue", "queuing": {"queues": 4, "handSize": 6}}}})
            ),
            [
                "spec.limited.limitResponse.queuing.handSize: Invalid value: 6: should not be greater than queues (4)",
                "spec.limited.lendablePercent: Invalid value: 101: must be between 0 and 100, inclusive",
            ]
        );
        assert_eq!(
            messages(
                "p",
                json!({"type": "Limited", "limited": {"limitResponse": {"type": "Drop"}}})
            ),
            ["spec.limited.limitResponse.type: Unsupported value: \"Drop\": supported values: \"Queue\", \"Reject\""]
        );
    }
}
