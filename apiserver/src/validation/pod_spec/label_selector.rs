//! `metav1.LabelSelector` validation (upstream's `ValidateLabelSelector`)
//! and the "selector matches template labels" check every workload shares.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::selector::Selector;
use crate::validation::{FieldError, FieldErrors};

/// Upstream's message when a workload's selector misses its template.
pub const SELECTOR_MISMATCH: &str = "`selector` does not match template `labels`";

/// Validates a label selector at `path` (`matchLabels`, `matchExpressions`):
/// the shared [`crate::validation::label_selector::validate_label_selector`].
pub fn validate_label_selector(selector: Option<&Value>, path: &str, errs: &mut FieldErrors) {
    errs.extend(crate::validation::label_selector::validate_label_selector(
        selector,
        Default::default(),
        path,
    ));
}

/// Whether a label selector has no requirement at all.
pub fn is_empty_selector(selector: Option<&Value>) -> bool {
    let n = |k: &str| {
        selector.and_then(|s| s.get(k)).map_or(0, |v| {
            v.as_object().map_or(0, |m| m.len()) + v.as_array().map_or(0, Vec::len)
        })
    };
    n("matchLabels") + n("matchExpressions") == 0
}

/// The labels of a pod template (`template.metadata.labels`).
pub fn template_labels(template: Option<&Value>) -> BTreeMap<String, String> {
    template
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// `Invalid(<template>.metadata.labels, labels, SELECTOR_MISMATCH)`.
pub fn mismatch_error(template: Option<&Value>, template_path: &str) -> FieldError {
    let labels = template
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .cloned()
        .unwrap_or(Value::Null);
    FieldError::invalid(format!("{template_path}.metadata.labels"), labels, SELECTOR_MISMATCH)
}

/// Parses a label selector; `None` when it cannot be converted.
pub fn parse(selector: Option<&Value>) -> Option<Selector> {
    Selector::from_label_selector_json(selector).ok()
}

/// Checks that a non-empty selector matches the template's labels
/// (upstream's `ValidatePodTemplateSpecForReplicaSet` first half). An
/// unparsable selector yields `Invalid(<selector_path>, ..., "invalid label selector")`.
pub fn check_template_match(
    selector: Option<&Value>,
    selector_path: &str,
    template: Option<&Value>,
    template_path: &str,
    errs: &mut FieldErrors,
) {
    match parse(selector) {
        None => errs.push(FieldError::invalid(
            selector_path,
            selector.cloned().unwrap_or(Value::Null),
            "invalid label selector",
        )),
        Some(sel) => {
            if !sel.is_empty() && !sel.matches(&template_labels(template)) {
                errs.push(mismatch_error(template, template_path));
            }
        }
    }
}
