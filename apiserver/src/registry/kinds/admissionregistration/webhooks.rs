//! Webhook configurations: v1 defaults (failurePolicy Fail, matchPolicy
//! Equivalent, empty selectors, timeoutSeconds 10, reinvocationPolicy
//! Never, rule scope `*`, service port 443) and validation of each webhook.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::client_config::{validate_service, validate_url};
use super::rules::validate_rule_with_operations;
use crate::registry::kinds::default_traits;
use crate::registry::kinds::networking::values::{go_slice, invalid_raw, set_default, too_many};
use crate::registry::object::Object;
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::label_selector::{LabelSelectorOptions, validate_label_selector};
use crate::validation::names::{is_dns1035_label, is_dns1123_subdomain, is_qualified_name};
use crate::validation::{FieldError, FieldErrors, child, index};

const FAILURE_POLICIES: &[&str] = &["Fail", "Ignore"];
const MATCH_POLICIES: &[&str] = &["Equivalent", "Exact"];
const REINVOCATION_POLICIES: &[&str] = &["IfNeeded", "Never"];
const ALL_SIDE_EFFECTS: &[&str] = &["None", "NoneOnDryRun", "Some", "Unknown"];
const NO_SIDE_EFFECTS: &[&str] = &["None", "NoneOnDryRun"];
const MAX_MATCH_CONDITIONS: usize = 64;
/// `AcceptedAdmissionReviewVersions`.
const REVIEW_VERSIONS: &[&str] = &["v1", "v1beta1"];

/// A Validating (`mutating: false`) or Mutating webhook configuration.
#[derive(Debug)]
pub struct WebhookConfigurationStrategy {
    pub mutating: bool,
}

fn webhooks(obj: &Object) -> &[Value] {
    obj.get("webhooks")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// `SetDefaults_ValidatingWebhook`/`MutatingWebhook`, `Rule`, `ServiceReference`.
fn apply_defaults(obj: &mut Object, mutating: bool) {
    let Some(Value::Array(hooks)) = obj.get_mut("webhooks") else {
        return;
    };
    for hook in hooks.iter_mut().filter_map(Value::as_object_mut) {
        set_default(hook, "failurePolicy", json!("Fail"));
        set_default(hook, "matchPolicy", json!("Equivalent"));
        set_default(hook, "namespaceSelector", json!({}));
        set_default(hook, "objectSelector", json!({}));
        set_default(hook, "timeoutSeconds", json!(10));
        if mutating {
            set_default(hook, "reinvocationPolicy", json!("Never"));
        }
        if let Some(Value::Array(rules)) = hook.get_mut("rules") {
            for rule in rules.iter_mut().filter_map(Value::as_object_mut) {
                set_default(rule, "scope", json!("*"));
            }
        }
        if let Some(Value::Object(svc)) = hook.get_mut("clientConfig").and_then(|c| c.get_mut("service")) {
            set_default(svc, "port", json!(443));
        }
    }
}

/// What an update tolerates because the stored object already had it.
#[derive(Debug, Clone, Copy)]
struct Options {
    require_no_side_effects: bool,
    require_recognized_review_version: bool,
    require_unique_names: bool,
}

impl Options {
    fn create() -> Self {
        Options {
            require_no_side_effects: true,
            require_recognized_review_version: true,
            require_unique_names: true,
        }
    }

    fn update(old: &Object) -> Self {
        let hooks = webhooks(old);
        let mut names = HashSet::new();
        Options {
            require_no_side_effects: hooks.iter().all(|h| {
                h.get("sideEffects")
                    .and_then(Value::as_str)
                    .is_none_or(|s| NO_SIDE_EFFECTS.contains(&s))
            }),
            require_recognized_review_version: hooks
                .iter()
                .all(|h| review_versions(h).iter().any(|v| REVIEW_VERSIONS.contains(v))),
            require_unique_names: hooks.iter().all(|h| {
                let name = h.get("name").and_then(Value::as_str).unwrap_or("");
                name.is_empty() || names.insert(name)
            }),
        }
    }
}

fn review_versions(hook: &Value) -> Vec<&str> {
    hook.get("admissionReviewVersions")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|v| v.as_str().unwrap_or("")).collect())
        .unwrap_or_default()
}

/// `IsFullyQualifiedName`.
fn validate_fully_qualified_name(path: &str, name: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    if name.is_empty() {
        errs.push(FieldError::required(path, ""));
        return errs;
    }
    let problems = is_dns1123_subdomain(name);
    if !problems.is_empty() {
        errs.push(FieldError::invalid(path, name, problems.join(",")));
    } else if name.split('.').count() < 3 {
        errs.push(FieldError::invalid(
            path,
            name,
            "should be a domain with at least three segments separated by dots",
        ));
    }
    errs
}

/// `validateAdmissionReviewVersions`.
fn validate_review_versions(hook: &Value, require_recognized: bool, path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let versions = review_versions(hook);
    if versions.is_empty() {
        errs.push(FieldError::required(
            path,
            format!("must specify one of {}", REVIEW_VERSIONS.join(", ")),
        ));
        return errs;
    }
    let mut seen = HashSet::new();
    let mut accepted = false;
    for (i, v) in versions.iter().enumerate() {
        if !seen.insert(*v) {
            errs.push(FieldError::invalid(index(path, i), *v, "duplicate version"));
            continue;
        }
        for m in is_dns1035_label(v) {
            errs.push(FieldError::invalid(index(path, i), *v, m));
        }
        accepted |= REVIEW_VERSIONS.contains(v);
    }
    if require_recognized && !accepted {
        errs.push(invalid_raw(
            path,
            &go_slice("string", Some(&versions)),
            &format!("must include at least one of {}", REVIEW_VERSIONS.join(", ")),
        ));
    }
    errs
}

/// `validateValidatingWebhook` / `validateMutatingWebhook`.
fn validate_webhook(hook: &Value, mutating: bool, opts: Options, path: &str) -> FieldErrors {
    let h = Some(hook);
    let s = |k: &str| hook.get(k).and_then(Value::as_str);
    let mut errs = validate_fully_qualified_name(&child(path, "name"), s("name").unwrap_or(""));
    for (i, rule) in hook
        .get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        errs.extend(validate_rule_with_operations(rule, &index(&child(path, "rules"), i)));
    }
    if let Some(p) = s("failurePolicy")
        && !FAILURE_POLICIES.contains(&p)
    {
        errs.push(FieldError::not_supported(
            child(path, "failurePolicy"),
            p,
            FAILURE_POLICIES,
        ));
    }
    if let Some(p) = s("matchPolicy")
        && !MATCH_POLICIES.contains(&p)
    {
        errs.push(FieldError::not_supported(child(path, "matchPolicy"), p, MATCH_POLICIES));
    }
    let allowed = if opts.require_no_side_effects {
        NO_SIDE_EFFECTS
    } else {
        ALL_SIDE_EFFECTS
    };
    match s("sideEffects") {
        None => errs.push(FieldError::required(
            child(path, "sideEffects"),
            format!("must specify one of {}", allowed.join(", ")),
        )),
        Some(se) if !allowed.contains(&se) => {
            errs.push(FieldError::not_supported(child(path, "sideEffects"), se, allowed));
        }
        Some(_) => {}
    }
    if let Some(t) = hook.get("timeoutSeconds").and_then(Value::as_i64)
        && !(1..=30).contains(&t)
    {
        errs.push(FieldError::invalid(
            child(path, "timeoutSeconds"),
            t,
            "the timeout value must be between 1 and 30 seconds",
        ));
    }
    if mutating
        && let Some(p) = s("reinvocationPolicy")
        && !REINVOCATION_POLICIES.contains(&p)
    {
        errs.push(FieldError::not_supported(
            child(path, "reinvocationPolicy"),
            p,
            REINVOCATION_POLICIES,
        ));
    }
    for sel in ["namespaceSelector", "objectSelector"] {
        errs.extend(validate_label_selector(
            hook.get(sel),
            LabelSelectorOptions::default(),
            &child(path, sel),
        ));
    }
    let cc = h.and_then(|h| h.get("clientConfig"));
    let cc_path = child(path, "clientConfig");
    let url = cc.and_then(|c| c.get("url")).and_then(Value::as_str);
    let service = cc.and_then(|c| c.get("service")).filter(|v| !v.is_null());
    match (url, service) {
        (Some(u), None) => errs.extend(validate_url(&child(&cc_path, "url"), u)),
        (None, Some(svc)) => errs.extend(validate_service(&child(&cc_path, "service"), svc)),
        _ => errs.push(FieldError::required(
            cc_path,
            "exactly one of url or service is required",
        )),
    }
    validate_match_conditions(hook, &child(path, "matchConditions"), &mut errs);
    errs
}

/// `validateMatchConditions` without compiling the CEL expressions.
fn validate_match_conditions(hook: &Value, path: &str, errs: &mut FieldErrors) {
    let conditions = hook
        .get("matchConditions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if conditions.len() > MAX_MATCH_CONDITIONS {
        errs.push(too_many(path, conditions.len(), MAX_MATCH_CONDITIONS));
    }
    let mut names = HashSet::new();
    for (i, c) in conditions.iter().enumerate() {
        let p = index(path, i);
        let expression = c.get("expression").and_then(Value::as_str).unwrap_or("").trim();
        if expression.is_empty() {
            errs.push(FieldError::required(child(&p, "expression"), ""));
        }
        let name = c.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        } else {
            for m in is_qualified_name(name) {
                errs.push(FieldError::invalid(child(&p, "name"), name, m));
            }
        }
        if !name.is_empty() && !names.insert(name) {
            errs.push(FieldError::duplicate(child(&p, "name"), name));
        }
    }
}

/// `validateValidatingWebhookConfiguration` / mutating, without metadata.
fn validate_configuration(obj: &Object, mutating: bool, opts: Options) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let mut names = HashSet::new();
    for (i, hook) in webhooks(obj).iter().enumerate() {
        let path = index("webhooks", i);
        errs.extend(validate_webhook(hook, mutating, opts, &path));
        errs.extend(validate_review_versions(
            hook,
            opts.require_recognized_review_version,
            &child(&path, "admissionReviewVersions"),
        ));
        let name = hook.get("name").and_then(Value::as_str).unwrap_or("");
        if opts.require_unique_names && !name.is_empty() && !names.insert(name) {
            errs.push(FieldError::duplicate(child(&path, "name"), name));
        }
    }
    errs
}

impl Strategy for WebhookConfigurationStrategy {
    fn traits(&self) -> KindTraits {
        let resource = if self.mutating {
            "mutatingwebhookconfigurations"
        } else {
            "validatingwebhookconfigurations"
        };
        default_traits("admissionregistration.k8s.io", resource)
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        apply_defaults(obj, self.mutating);
    }

    fn prepare_for_update(&self, new: &mut Object, _old: &Object) {
        apply_defaults(new, self.mutating);
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_configuration(obj, self.mutating, Options::create())
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        validate_configuration(new, self.mutating, Options::update(old))
    }
}
