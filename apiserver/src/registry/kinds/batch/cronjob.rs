//! CronJobs: batch/v1 defaults (Allow, not suspended, history limits 3 and
//! 1), names of at most 52 characters, schedule and time zone checks, and
//! the job template validated like a Job at `spec.jobTemplate.spec`.

use serde_json::{Value, json};

use crate::registry::object::{self, Object};
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::pod_spec::fields::{at, nonnegative_at, str_at, validate_annotations, validate_labels};
use crate::validation::{FieldError, FieldErrors};

use super::super::apps::workload::spec_mut;
use super::super::default_traits;
use super::super::pod::defaults::{default_pod_template, set_default};
use super::job::validate_job_spec;

/// CronJob names leave room for the 11-character suffix of their jobs.
pub const MAX_NAME_LENGTH: usize = 52;

#[derive(Debug, Default)]
pub struct CronJobStrategy;

/// `SetDefaults_CronJob` (the job template's pod spec gets pod defaults;
/// its Job fields are defaulted when a Job is made from it).
pub fn default_cronjob(obj: &mut Object) {
    let spec = spec_mut(obj);
    set_default(spec, "concurrencyPolicy", json!("Allow"));
    set_default(spec, "suspend", json!(false));
    set_default(spec, "successfulJobsHistoryLimit", json!(3));
    set_default(spec, "failedJobsHistoryLimit", json!(1));
    if let Some(Value::Object(jt)) = spec.get_mut("jobTemplate")
        && let Some(Value::Object(js)) = jt.get_mut("spec")
    {
        default_pod_template(js.get_mut("template"));
    }
}

/// `validateScheduleFormat` plus the TZ rules.
fn validate_schedule(schedule: &str, allow_tz: bool, has_time_zone: bool, errs: &mut FieldErrors) {
    let path = "spec.schedule";
    if let Err(e) = rkube_cron::parse(schedule) {
        errs.push(FieldError::invalid(path, schedule, e));
    }
    if schedule.contains("TZ") {
        if allow_tz && has_time_zone {
            errs.push(FieldError::invalid(
                path,
                schedule,
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            ));
        } else if !allow_tz {
            errs.push(FieldError::invalid(
                path,
                schedule,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
    }
}

/// `validateTimeZone`.
fn validate_time_zone(tz: Option<&Value>, errs: &mut FieldErrors) {
    let Some(tz) = tz.and_then(Value::as_str) else { return };
    let path = "spec.timeZone";
    if tz.is_empty() {
        errs.push(FieldError::invalid(
            path,
            tz,
            "timeZone must be nil or non-empty string",
        ));
        return;
    }
    for part in tz.split('/') {
        if part == "." || part == ".." || part.starts_with('-') || !rkube_cron::valid_zone_part(part) {
            errs.push(FieldError::invalid(path, tz, format!("unknown time zone {tz}")));
            return;
        }
    }
    if tz.eq_ignore_ascii_case("local") {
        errs.push(FieldError::invalid(
            path,
            tz,
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        ));
    }
    if let Err(e) = rkube_cron::check_time_zone(tz) {
        errs.push(FieldError::invalid(path, tz, e));
    }
}

/// `ValidateCronJobSpec`.
pub fn validate_cronjob_spec(obj: &Object, allow_tz: bool) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let spec = obj.get("spec");
    let schedule = str_at(spec, "schedule");
    let tz = at(spec, &["timeZone"]);
    if schedule.is_empty() {
        errs.push(FieldError::required("spec.schedule", ""));
    } else {
        validate_schedule(schedule, allow_tz, tz.is_some(), &mut errs);
    }
    validate_time_zone(tz, &mut errs);
    nonnegative_at(spec, "startingDeadlineSeconds", "spec", &mut errs);
    match str_at(spec, "concurrencyPolicy") {
        "Allow" | "Forbid" | "Replace" => {}
        "" => errs.push(FieldError::required("spec.concurrencyPolicy", "")),
        other => errs.push(FieldError::not_supported(
            "spec.concurrencyPolicy",
            other,
            &["Allow", "Forbid", "Replace"],
        )),
    }
    // ValidateJobTemplateSpec.
    let jt = at(spec, &["jobTemplate"]);
    let js = at(jt, &["spec"]);
    validate_job_spec(js, "spec.jobTemplate.spec", &mut errs);
    if let Some(sel) = at(js, &["selector"]) {
        errs.push(FieldError::invalid(
            "spec.jobTemplate.spec.selector",
            sel.clone(),
            "`selector` will be auto-generated",
        ));
    }
    if at(js, &["manualSelector"]).and_then(Value::as_bool) == Some(true) {
        errs.push(FieldError::not_supported(
            "spec.jobTemplate.spec.manualSelector",
            true,
            &["nil", "false"],
        ));
    }
    validate_labels(
        at(jt, &["metadata", "labels"]),
        "spec.jobTemplate.metadata.labels",
        &mut errs,
    );
    validate_annotations(
        at(jt, &["metadata", "annotations"]),
        "spec.jobTemplate.metadata.annotations",
        &mut errs,
    );
    for f in ["successfulJobsHistoryLimit", "failedJobsHistoryLimit"] {
        nonnegative_at(spec, f, "spec", &mut errs);
    }
    errs
}

impl Strategy for CronJobStrategy {
    fn traits(&self) -> KindTraits {
        default_traits("batch", "cronjobs")
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        default_cronjob(obj);
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        let mut errs = FieldErrors::new();
        let name = object::name(obj);
        if name.len() > MAX_NAME_LENGTH {
            errs.push(FieldError::invalid(
                "metadata.name",
                name,
                format!("must be no more than {MAX_NAME_LENGTH} characters"),
            ));
        }
        errs.extend(validate_cronjob_spec(obj, false));
        errs
    }

    fn prepare_for_update(&self, new: &mut Object, _old: &Object) {
        default_cronjob(new);
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let allow_tz = str_at(old.get("spec"), "schedule").contains("TZ");
        validate_cronjob_spec(new, allow_tz)
    }
}
