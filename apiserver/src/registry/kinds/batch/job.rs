//! Jobs: batch/v1 defaults, the server-generated selector and pod labels
//! (`batch.kubernetes.io/controller-uid`, `batch.kubernetes.io/job-name`
//! and their legacy forms), spec validation shared with CronJob job
//! templates, and the update rules (immutable selector, completions and
//! template, with the scheduling directives of a suspended, unstarted job
//! mutable).

use serde_json::{Map, Value, json};

use crate::registry::object::{self, Object};
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::pod_spec::fields::{IMMUTABLE, at, has, immutable, int, nonnegative_at, str_at};
use crate::validation::pod_spec::label_selector::{check_template_match, parse, validate_label_selector};
use crate::validation::pod_spec::validate_pod_template_spec;
use crate::validation::{FieldError, FieldErrors, child};

use super::super::apps::workload::spec_mut;
use super::super::default_traits;
use super::super::pod::defaults::{default_pod_template, set_default};

/// The label holding the job's uid.
pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
/// The label holding the job's name.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
/// The legacy uid label.
pub const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";
/// The legacy name label.
pub const LEGACY_JOB_NAME_LABEL: &str = "job-name";

/// Indexed jobs may not have more completions or parallelism than this.
const MAX_INDEXED: i64 = 100_000;

#[derive(Debug, Default)]
pub struct JobStrategy;

/// `SetDefaults_Job` on the spec (and its pod template).
pub fn default_job_spec(spec: &mut Map<String, Value>) {
    if spec.get("completions").is_none_or(Value::is_null) && spec.get("parallelism").is_none_or(Value::is_null) {
        spec.insert("completions".into(), json!(1));
        spec.insert("parallelism".into(), json!(1));
    }
    set_default(spec, "parallelism", json!(1));
    let per_index = spec.get("backoffLimitPerIndex").is_some_and(|v| !v.is_null());
    set_default(spec, "backoffLimit", json!(if per_index { i32::MAX } else { 6 }));
    set_default(spec, "completionMode", json!("NonIndexed"));
    set_default(spec, "suspend", json!(false));
    let has_failure_policy = spec.get("podFailurePolicy").is_some_and(|v| !v.is_null());
    if let Some(Value::Array(rules)) = spec.get_mut("podFailurePolicy").and_then(|p| p.get_mut("rules")) {
        for rule in rules {
            if let Some(Value::Array(conds)) = rule.get_mut("onPodConditions") {
                for c in conds.iter_mut().filter_map(Value::as_object_mut) {
                    set_default(c, "status", json!("True"));
                }
            }
        }
    }
    set_default(
        spec,
        "podReplacementPolicy",
        json!(if has_failure_policy {
            "Failed"
        } else {
            "TerminatingOrFailed"
        }),
    );
    default_pod_template(spec.get_mut("template"));
}

fn manual_selector(obj: &Object) -> bool {
    obj.get("spec")
        .and_then(|s| s.get("manualSelector"))
        .and_then(Value::as_bool)
        == Some(true)
}

/// Upstream's `generateSelector`: the template gets the four labels (kept
/// when the client set them) and the selector matches the uid label.
pub fn generate_selector(obj: &mut Object) {
    let uid = object::uid(obj).to_string();
    let name = object::name(obj).to_string();
    let spec = spec_mut(obj);
    let template = spec.entry("template").or_insert_with(|| json!({}));
    if let Value::Object(t) = template {
        let meta = t.entry("metadata").or_insert_with(|| json!({}));
        if let Value::Object(meta) = meta {
            let labels = meta.entry("labels").or_insert_with(|| json!({}));
            if !labels.is_object() {
                *labels = json!({});
            }
            if let Value::Object(labels) = labels {
                for (k, v) in [
                    (LEGACY_CONTROLLER_UID_LABEL, &uid),
                    (LEGACY_JOB_NAME_LABEL, &name),
                    (CONTROLLER_UID_LABEL, &uid),
                    (JOB_NAME_LABEL, &name),
                ] {
                    labels.entry(k).or_insert_with(|| Value::String(v.clone()));
                }
            }
        }
    }
    let selector = spec.entry("selector").or_insert_with(|| json!({}));
    if !selector.is_object() {
        *selector = json!({});
    }
    if let Value::Object(sel) = selector {
        let ml = sel.entry("matchLabels").or_insert_with(|| json!({}));
        if !ml.is_object() {
            *ml = json!({});
        }
        if let Value::Object(ml) = ml {
            ml.insert(CONTROLLER_UID_LABEL.into(), Value::String(uid));
        }
    }
}

/// `SetDefaults_Job`'s labels: a job without labels takes its template's.
fn default_job_labels(obj: &mut Object) {
    let labels = obj
        .get("spec")
        .and_then(|s| at(Some(s), &["template", "metadata", "labels"]))
        .filter(|l| l.is_object())
        .cloned();
    let empty = object::meta(obj)
        .get("labels")
        .and_then(Value::as_object)
        .is_none_or(Map::is_empty);
    if let Some(labels) = labels
        && empty
    {
        object::set_meta(obj, "labels", Some(labels));
    }
}

/// `validateJobSpec` at `path` (`spec` or `spec.jobTemplate.spec`).
pub fn validate_job_spec(spec: Option<&Value>, path: &str, errs: &mut FieldErrors) {
    for f in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
        "maxFailedIndexes",
    ] {
        nonnegative_at(spec, f, path, errs);
    }
    let mode = spec.and_then(|s| s.get("completionMode")).and_then(Value::as_str);
    match mode {
        None | Some("NonIndexed") => {}
        Some("Indexed") => {
            match int(spec, "completions") {
                None => errs.push(FieldError::required(
                    child(path, "completions"),
                    "when completion mode is Indexed",
                )),
                Some(c) if c > MAX_INDEXED => errs.push(FieldError::invalid(
                    child(path, "completions"),
                    c,
                    format!("must be less than or equal to {MAX_INDEXED} when completion mode is Indexed"),
                )),
                Some(_) => {}
            }
            if let Some(p) = int(spec, "parallelism")
                && p > MAX_INDEXED
            {
                errs.push(FieldError::invalid(
                    child(path, "parallelism"),
                    p,
                    format!("must be less than or equal to {MAX_INDEXED} when completion mode is Indexed"),
                ));
            }
        }
        Some(other) => errs.push(FieldError::not_supported(
            child(path, "completionMode"),
            other,
            &["NonIndexed", "Indexed"],
        )),
    }
    if has(spec, "backoffLimitPerIndex") && mode != Some("Indexed") {
        errs.push(FieldError::invalid(
            child(path, "backoffLimitPerIndex"),
            int(spec, "backoffLimitPerIndex").unwrap_or(0),
            "requires indexed completion mode",
        ));
    }
    if has(spec, "maxFailedIndexes") && !has(spec, "backoffLimitPerIndex") {
        errs.push(FieldError::required(
            child(path, "backoffLimitPerIndex"),
            "when maxFailedIndexes is specified",
        ));
    }
    if let Some(p) = spec.and_then(|s| s.get("podReplacementPolicy")).and_then(Value::as_str)
        && !matches!(p, "TerminatingOrFailed" | "Failed")
    {
        errs.push(FieldError::not_supported(
            child(path, "podReplacementPolicy"),
            p,
            &["Failed", "TerminatingOrFailed"],
        ));
    }
    let template = spec.and_then(|s| s.get("template"));
    let template_path = child(path, "template");
    errs.extend(validate_pod_template_spec(template, &template_path));
    let policy = str_at(template.and_then(|t| t.get("spec")), "restartPolicy");
    if has(spec, "podFailurePolicy") {
        if policy != "Never" {
            errs.push(FieldError::invalid(
                format!("{template_path}.spec.restartPolicy"),
                policy,
                "only \"Never\" is supported when podFailurePolicy is specified",
            ));
        }
    } else if !matches!(policy, "OnFailure" | "Never") {
        errs.push(FieldError::not_supported(
            format!("{template_path}.spec.restartPolicy"),
            policy,
            &["OnFailure", "Never"],
        ));
    }
}

/// `ValidateHasLabel` on the template.
fn has_label(obj: &Object, key: &str, expected: &str, errs: &mut FieldErrors) {
    let labels = at(obj.get("spec"), &["template", "metadata", "labels"]);
    let path = format!("spec.template.metadata.labels[{key}]");
    match labels.and_then(|l| l.get(key)).and_then(Value::as_str) {
        None => errs.push(FieldError::required(path, format!("must be '{expected}'"))),
        Some(v) if v != expected => errs.push(FieldError::invalid(
            path,
            labels.cloned().unwrap_or(Value::Null),
            format!("must be '{expected}'"),
        )),
        Some(_) => {}
    }
}

/// `ValidateGeneratedSelector`.
fn validate_generated_selector(obj: &Object, errs: &mut FieldErrors) {
    let selector = at(obj.get("spec"), &["selector"]);
    if manual_selector(obj) || selector.is_none() {
        return;
    }
    let uid = object::uid(obj);
    let name = object::name(obj);
    if uid.is_empty() {
        errs.push(FieldError::required("metadata.uid", ""));
    }
    has_label(obj, CONTROLLER_UID_LABEL, uid, errs);
    has_label(obj, JOB_NAME_LABEL, name, errs);
    let labels = at(obj.get("spec"), &["template", "metadata", "labels"]);
    for (legacy, expected) in [(LEGACY_CONTROLLER_UID_LABEL, uid), (LEGACY_JOB_NAME_LABEL, name)] {
        if labels.and_then(|l| l.get(legacy)).is_some() {
            has_label(obj, legacy, expected, errs);
        }
    }
    let expected: std::collections::BTreeMap<String, String> =
        [(CONTROLLER_UID_LABEL.to_string(), uid.to_string())].into();
    if let Some(sel) = parse(selector)
        && !sel.matches(&expected)
    {
        errs.push(FieldError::invalid(
            "spec.selector",
            selector.cloned().unwrap_or(Value::Null),
            "`selector` not auto-generated",
        ));
    }
}

/// `ValidateJob` beyond metadata.
pub fn validate_job(obj: &Object) -> FieldErrors {
    let mut errs = FieldErrors::new();
    validate_generated_selector(obj, &mut errs);
    let spec = obj.get("spec");
    validate_job_spec(spec, "spec", &mut errs);
    let selector = at(spec, &["selector"]);
    match selector {
        None => errs.push(FieldError::required("spec.selector", "")),
        Some(s) => validate_label_selector(Some(s), "spec.selector", &mut errs),
    }
    if selector.is_some() {
        check_template_match(
            selector,
            "spec.selector",
            at(spec, &["template"]),
            "spec.template",
            &mut errs,
        );
    }
    errs
}

/// The template with the scheduling directives a suspended job may change
/// copied from `new`.
fn mutable_scheduling_template(old: &Value, new: &Value) -> Value {
    let mut t = old.clone();
    for key in ["labels", "annotations"] {
        let v = at(Some(new), &["metadata", key]).cloned();
        if let Some(Value::Object(meta)) = t.get_mut("metadata") {
            match v {
                Some(v) => meta.insert(key.into(), v),
                None => meta.remove(key),
            };
        } else if let (Some(v), Value::Object(t)) = (v, &mut t) {
            t.insert("metadata".into(), json!({ key: v }));
        }
    }
    let new_spec = new.get("spec");
    if let Some(Value::Object(spec)) = t.get_mut("spec") {
        for key in ["nodeSelector", "tolerations", "schedulingGates"] {
            match new_spec.and_then(|s| s.get(key)) {
                Some(v) => spec.insert(key.into(), v.clone()),
                None => spec.remove(key),
            };
        }
        let new_node_affinity = at(new_spec, &["affinity", "nodeAffinity"]).cloned();
        let new_has_affinity = at(new_spec, &["affinity"]).is_some();
        let mut affinity = spec.get("affinity").and_then(Value::as_object).cloned();
        match (&mut affinity, new_has_affinity) {
            (Some(a), false) => {
                a.remove("nodeAffinity");
                if a.is_empty() {
                    spec.remove("affinity");
                } else {
                    spec.insert("affinity".into(), Value::Object(a.clone()));
                }
            }
            (None, true) => {
                let mut a = Map::new();
                if let Some(n) = new_node_affinity {
                    a.insert("nodeAffinity".into(), n);
                }
                spec.insert("affinity".into(), Value::Object(a));
            }
            (Some(a), true) => {
                match new_node_affinity {
                    Some(n) => a.insert("nodeAffinity".into(), n),
                    None => a.remove("nodeAffinity"),
                };
                spec.insert("affinity".into(), Value::Object(a.clone()));
            }
            (None, false) => {}
        }
    }
    t
}

/// `ValidateJobSpecUpdate` (beyond re-validating the new spec).
pub fn validate_job_update(new: &Object, old: &Object) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let (ns, os) = (new.get("spec"), old.get("spec"));
    immutable(at(ns, &["selector"]), at(os, &["selector"]), "spec.selector", &mut errs);
    let indexed = str_at(ns, "completionMode") == "Indexed";
    match (int(ns, "completions"), int(os, "completions")) {
        (Some(n), Some(o)) if indexed => {
            if n != o && Some(n) != int(ns, "parallelism") {
                errs.push(FieldError::invalid(
                    "spec.completions",
                    n,
                    "can only be modified in tandem with spec.parallelism",
                ));
            }
        }
        _ => immutable(
            at(ns, &["completions"]),
            at(os, &["completions"]),
            "spec.completions",
            &mut errs,
        ),
    }
    let suspended = |o: &Object| at(o.get("spec"), &["suspend"]).and_then(Value::as_bool) == Some(true);
    let not_started = at(old.get("status"), &["startTime"]).is_none();
    let new_template = at(ns, &["template"]).cloned().unwrap_or(Value::Null);
    let mut old_template = at(os, &["template"]).cloned().unwrap_or(Value::Null);
    if suspended(old) && suspended(new) && not_started {
        old_template = mutable_scheduling_template(&old_template, &new_template);
    }
    if new_template != old_template {
        errs.push(FieldError::invalid("spec.template", new_template, IMMUTABLE));
    }
    for f in [
        "completionMode",
        "podFailurePolicy",
        "backoffLimitPerIndex",
        "managedBy",
        "successPolicy",
    ] {
        immutable(at(ns, &[f]), at(os, &[f]), &format!("spec.{f}"), &mut errs);
    }
    errs
}

fn validate_status(obj: &Object) -> FieldErrors {
    let mut errs = FieldErrors::new();
    for f in ["active", "succeeded", "failed", "ready", "terminating"] {
        nonnegative_at(obj.get("status"), f, "status", &mut errs);
    }
    errs
}

/// The defaults of a Job object (spec and labels).
pub fn default_job(obj: &mut Object) {
    default_job_spec(spec_mut(obj));
    let spec = spec_mut(obj);
    set_default(spec, "manualSelector", json!(false));
}

impl Strategy for JobStrategy {
    fn traits(&self) -> KindTraits {
        default_traits("batch", "jobs")
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        default_job(obj);
        if !manual_selector(obj) {
            generate_selector(obj);
        }
        default_job_labels(obj);
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_job(obj)
    }

    fn prepare_for_update(&self, new: &mut Object, _old: &Object) {
        default_job(new);
        default_job_labels(new);
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let mut errs = validate_job(new);
        errs.extend(validate_job_update(new, old));
        if new.get("status") != old.get("status") {
            errs.extend(validate_status(new));
        }
        errs
    }
}
