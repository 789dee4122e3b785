//! `metav1.LabelSelector` and label-map validation (upstream's
//! `ValidateLabelSelector` and `ValidateLabels` in
//! `apimachinery/pkg/apis/meta/v1/validation`).

use serde_json::Value;

use super::names::{is_qualified_name, is_valid_label_value};
use super::{FieldError, FieldErrors, child, index};

/// Options of [`validate_label_selector`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LabelSelectorOptions {
    /// Skips the label-value check of `matchExpressions[].values`; set only
    /// when the stored object already had such values.
    pub allow_invalid_label_value: bool,
}

/// Validates a label key at `path`.
pub fn validate_label_name(key: &str, path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    for m in is_qualified_name(key) {
        errs.push(FieldError::invalid(path, key, m));
    }
    errs
}

/// Validates a map of labels (keys and values) at `path`; like upstream, the
/// errors name the map, not the key.
pub fn validate_labels(labels: Option<&Value>, path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let Some(map) = labels.and_then(Value::as_object) else {
        return errs;
    };
    for (k, v) in map {
        errs.extend(validate_label_name(k, path));
        let v = v.as_str().unwrap_or("");
        for m in is_valid_label_value(v) {
            errs.push(FieldError::invalid(path, v, m));
        }
    }
    errs
}

/// Validates a label selector (absent or null is valid).
pub fn validate_label_selector(selector: Option<&Value>, opts: LabelSelectorOptions, path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let Some(sel) = selector.filter(|v| !v.is_null()) else {
        return errs;
    };
    errs.extend(validate_labels(sel.get("matchLabels"), &child(path, "matchLabels")));
    let exprs = sel.get("matchExpressions").and_then(Value::as_array);
    for (i, expr) in exprs.into_iter().flatten().enumerate() {
        let p = index(&child(path, "matchExpressions"), i);
        let values: Vec<&str> = expr
            .get("values")
            .and_then(Value::as_array)
            .map(|vs| vs.iter().map(|v| v.as_str().unwrap_or("")).collect())
            .unwrap_or_default();
        let operator = expr.get("operator").and_then(Value::as_str).unwrap_or("");
        match operator {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        child(&p, "values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(
                        child(&p, "values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            other => errs.push(FieldError::invalid(
                child(&p, "operator"),
                other,
                "not a valid selector operator",
            )),
        }
        let key = expr.get("key").and_then(Value::as_str).unwrap_or("");
        errs.extend(validate_label_name(key, &child(&p, "key")));
        if !opts.allow_invalid_label_value {
            for (j, v) in values.iter().enumerate() {
                for m in is_valid_label_value(v) {
                    errs.push(FieldError::invalid(index(&child(&p, "values"), j), *v, m));
                }
            }
        }
    }
    errs
}

/// Whether `selector` passes validation (used to relax checks on update
/// for objects stored before a check existed).
pub fn is_valid_label_selector(selector: Option<&Value>) -> bool {
    validate_label_selector(selector, LabelSelectorOptions::default(), "").is_empty()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn check(sel: Value, expected: &[&str]) {
        let errs = validate_label_selector(Some(&sel), LabelSelectorOptions::default(), "spec.selector");
        let got: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn selectors() {
        check(json!({"matchLabels": {"app": "x"}}), &[]);
        check(
            json!({"matchExpressions": [{"key": "a", "operator": "In"}]}),
            &[
                "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
            ],
        );
        check(
            json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["b"]}]}),
            &[
                "spec.selector.matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            ],
        );
        check(
            json!({"matchExpressions": [{"key": "a", "operator": "Has"}]}),
            &["spec.selector.matchExpressions[0].operator: Invalid value: \"Has\": not a valid selector operator"],
        );
        let errs = validate_label_selector(
            Some(&json!({"matchExpressions": [{"key": "a", "operator": "In", "values": ["b c"]}]})),
            LabelSelectorOptions::default(),
            "s",
        );
        assert_eq!(errs.0.len(), 1);
        assert_eq!(errs.0[0].field, "s.matchExpressions[0].values[0]");
        let relaxed = validate_label_selector(
            Some(&json!({"matchExpressions": [{"key": "a", "operator": "In", "values": ["b c"]}]})),
            LabelSelectorOptions {
                allow_invalid_label_value: true,
            },
            "s",
        );
        assert!(relaxed.is_empty());
        let bad_label = validate_labels(Some(&json!({"a": "b c"})), "s.matchLabels");
        assert_eq!(bad_label.0[0].field, "s.matchLabels");
    }
}
