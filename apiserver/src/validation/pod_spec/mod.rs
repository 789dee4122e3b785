//! Pod spec validation shared by pods and every pod template (upstream's
//! `ValidatePodSpec` and `ValidatePodTemplateSpec` in
//! `pkg/apis/core/validation`), over the JSON form of a v1 `PodSpec`.
//!
//! Paths and messages are upstream's; checks that need the whole object
//! (pod update rules, workload selectors) live with the kinds.

pub mod containers;
pub mod fields;
pub mod label_selector;
pub mod quantity;
mod scheduling;
#[cfg(test)]
mod tests;
mod volumes;

use std::collections::BTreeSet;

use serde_json::Value;

use super::names::is_dns1123_label;
use super::{FieldError, FieldErrors, child};
use fields::{arr, int, str_at};

/// `InclusiveRangeError(1, MaxInt32)`.
pub const ACTIVE_DEADLINE_RANGE: &str = "must be between 1 and 2147483647, inclusive";

/// Validates a pod spec at `path` (`spec`, `spec.template.spec`, ...).
pub fn validate_pod_spec(spec: Option<&Value>, path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let volume_names = volumes::validate_volumes(spec, &child(path, "volumes"), &mut errs);

    if arr(spec, "containers").is_empty() {
        errs.push(FieldError::required(child(path, "containers"), ""));
    }
    let mut names = BTreeSet::new();
    for list in ["initContainers", "containers"] {
        for (i, c) in arr(spec, list).iter().enumerate() {
            let p = format!("{path}.{list}[{i}]");
            containers::validate_container(c, &p, list == "initContainers", &volume_names, &mut names, &mut errs);
        }
    }

    match str_at(spec, "restartPolicy") {
        "" => errs.push(FieldError::required(child(path, "restartPolicy"), "")),
        "Always" | "OnFailure" | "Never" => {}
        other => errs.push(FieldError::not_supported(
            child(path, "restartPolicy"),
            other,
            &["Always", "OnFailure", "Never"],
        )),
    }
    scheduling::validate_dns(spec, path, &mut errs);
    scheduling::validate_scheduling(spec, path, &mut errs);

    if let Some(v) = int(spec, "terminationGracePeriodSeconds") {
        fields::nonnegative(v, &child(path, "terminationGracePeriodSeconds"), &mut errs);
    }
    if let Some(v) = int(spec, "activeDeadlineSeconds")
        && !(1..=i64::from(i32::MAX)).contains(&v)
    {
        errs.push(FieldError::invalid(
            child(path, "activeDeadlineSeconds"),
            v,
            ACTIVE_DEADLINE_RANGE,
        ));
    }
    for field in ["hostname", "subdomain"] {
        let v = str_at(spec, field);
        if !v.is_empty() {
            for m in is_dns1123_label(v) {
                errs.push(FieldError::invalid(child(path, field), v, m));
            }
        }
    }
    let sa = str_at(spec, "serviceAccountName");
    if !sa.is_empty() {
        for m in super::names::is_dns1123_subdomain(sa) {
            errs.push(FieldError::invalid(child(path, "serviceAccountName"), sa, m));
        }
    }
    errs
}

/// Validates a pod template (`metadata.labels`/`annotations` at upstream's
/// `<path>.labels` and `<path>.annotations`, then the spec).
pub fn validate_pod_template_spec(template: Option<&Value>, path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let meta = template.and_then(|t| t.get("metadata"));
    fields::validate_labels(meta.and_then(|m| m.get("labels")), &child(path, "labels"), &mut errs);
    fields::validate_annotations(
        meta.and_then(|m| m.get("annotations")),
        &child(path, "annotations"),
        &mut errs,
    );
    errs.extend(validate_pod_spec(
        template.and_then(|t| t.get("spec")),
        &child(path, "spec"),
    ));
    errs
}

/// Every volume source key of a v1 `Volume`.
pub fn volume_sources() -> &'static [&'static str] {
    volumes::VOLUME_SOURCES
}
