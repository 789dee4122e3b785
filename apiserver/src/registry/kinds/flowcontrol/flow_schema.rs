//! FlowSchema: matchingPrecedence defaults to 1000 and lies in 1-10000
//! (1 only for `exempt`), a priority level is referenced, and every rule
//! has subjects and resource or non-resource rules.

use serde_json::{Value, json};

use crate::registry::kinds::default_traits;
use crate::registry::kinds::networking::values::{go_slice, invalid_raw, set_default};
use crate::registry::object::{self, Object};
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::names::is_path_segment_name;
use crate::validation::{ErrorType, FieldError, FieldErrors, child, index};

const MAX_PRECEDENCE: i64 = 10000;
const SUBJECT_KINDS: &[&str] = &["Group", "ServiceAccount", "User"];

#[derive(Debug, Default)]
pub struct FlowSchemaStrategy;

fn apply_defaults(obj: &mut Object) {
    if let Some(Value::Object(spec)) = obj.get_mut("spec") {
        if spec.get("matchingPrecedence").is_some_and(|v| v == 0) {
            spec.remove("matchingPrecedence");
        }
        set_default(spec, "matchingPrecedence", json!(1000));
    }
}

fn strs(v: &Value, k: &str) -> Vec<String> {
    v.get(k)
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|s| s.as_str().unwrap_or("").to_string()).collect())
        .unwrap_or_default()
}

fn wildcard_list(rule: &Value, field: &str, what: &str, required: &str, path: &str, errs: &mut FieldErrors) {
    let items = strs(rule, field);
    let p = child(path, field);
    if items.is_empty() {
        errs.push(FieldError::required(p, required));
    } else if items.len() > 1 && items.iter().any(|i| i == "*") {
        let shown: Vec<&str> = items.iter().map(String::as_str).collect();
        errs.push(invalid_raw(
            p,
            &go_slice("string", Some(&shown)),
            &format!("if '*' is present, must not specify other {what}"),
        ));
    }
}

fn validate_subject(subject: &Value, path: &str, errs: &mut FieldErrors) {
    let kind = subject.get("kind").and_then(Value::as_str).unwrap_or("");
    let member = |k: &str| subject.get(k).filter(|v| !v.is_null());
    let (own, required_msg) = match kind {
        "ServiceAccount" => (
            "serviceAccount",
            "serviceAccount is required when subject kind is 'ServiceAccount'",
        ),
        "User" => ("user", "user is required when subject kind is 'User'"),
        "Group" => ("group", "group is required when subject kind is 'Group'"),
        _ => {
            errs.push(FieldError::not_supported(child(path, "kind"), kind, SUBJECT_KINDS));
            return;
        }
    };
    match member(own) {
        None => errs.push(FieldError::required(child(path, own), required_msg)),
        Some(m) => {
            let fields: &[&str] = if own == "serviceAccount" {
                &["namespace", "name"]
            } else {
                &["name"]
            };
            for f in fields {
                if m.get(*f).and_then(Value::as_str).unwrap_or("").is_empty() {
                    errs.push(FieldError::required(child(&child(path, own), f), ""));
                }
            }
        }
    }
    for (other, msg) in [
        (
            "serviceAccount",
            "serviceAccount is forbidden when subject kind is not 'ServiceAccount'",
        ),
        ("user", "user is forbidden when subject kind is not 'User'"),
        ("group", "group is forbidden when subject kind is not 'Group'"),
    ] {
        if other != own && member(other).is_some() {
            errs.push(FieldError::forbidden(child(path, other), msg));
        }
    }
}

fn validate_rule(rule: &Value, path: &str, errs: &mut FieldErrors) {
    let subjects = rule
        .get("subjects")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if subjects.is_empty() {
        errs.push(FieldError::required(
            child(path, "subjects"),
            "subjects must contain at least one value",
        ));
    }
    for (i, s) in subjects.iter().enumerate() {
        validate_subject(s, &index(&child(path, "subjects"), i), errs);
    }
    let list = |k: &str| rule.get(k).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    let (resource_rules, non_resource_rules) = (list("resourceRules"), list("nonResourceRules"));
    if resource_rules.is_empty() && non_resource_rules.is_empty() {
        errs.push(FieldError::required(
            path,
            "at least one of resourceRules and nonResourceRules has to be non-empty",
        ));
    }
    for (i, r) in resource_rules.iter().enumerate() {
        let p = index(&child(path, "resourceRules"), i);
        wildcard_list(r, "verbs", "verbs", "verbs must contain at least one value", &p, errs);
        wildcard_list(
            r,
            "apiGroups",
            "api groups",
            "resource rules must supply at least one api group",
            &p,
            errs,
        );
        wildcard_list(
            r,
            "resources",
            "resources",
            "resource rules must supply at least one resource",
            &p,
            errs,
        );
        let cluster_scope = r.get("clusterScope").and_then(Value::as_bool).unwrap_or(false);
        if strs(r, "namespaces").is_empty() && !cluster_scope {
            errs.push(FieldError::required(
                child(&p, "namespaces"),
                "resource rules that are not cluster scoped must supply at least one namespace",
            ));
        }
    }
    for (i, r) in non_resource_rules.iter().enumerate() {
        let p = index(&child(path, "nonResourceRules"), i);
        wildcard_list(r, "verbs", "verbs", "verbs must contain at least one value", &p, errs);
        wildcard_list(
            r,
            "nonResourceURLs",
            "non-resource urls",
            "nonResourceURLs must contain at least one value",
            &p,
            errs,
        );
    }
}

/// `ValidateFlowSchemaSpec`.
pub fn validate_flow_schema(obj: &Object) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let spec = obj.get("spec");
    let precedence = spec
        .and_then(|s| s.get("matchingPrecedence"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let p = "spec.matchingPrecedence";
    if precedence <= 0 {
        errs.push(FieldError::invalid(p, precedence, "must be a positive value"));
    }
    if precedence > MAX_PRECEDENCE {
        errs.push(FieldError::invalid(
            p,
            precedence,
            format!("must not be greater than {MAX_PRECEDENCE}"),
        ));
    }
    if precedence == 1 && object::name(obj) != "exempt" {
        errs.push(FieldError::invalid(
            p,
            precedence,
            "only the schema named 'exempt' may have matchingPrecedence 1",
        ));
    }
    if let Some(method) = spec.and_then(|s| s.get("distinguisherMethod")).filter(|v| !v.is_null()) {
        let ty = method.get("type").and_then(Value::as_str).unwrap_or("");
        if ty != "ByNamespace" && ty != "ByUser" {
            errs.push(FieldError::new(
                ErrorType::NotSupported,
                "spec.distinguisherMethod.type",
                None,
                format!(
                    "flowcontrol.FlowDistinguisherMethod{{Type:{}}}: supported values: \"ByNamespace\", \"ByUser\"",
                    serde_json::to_string(ty).unwrap_or_default()
                ),
            ));
        }
    }
    let level = spec
        .and_then(|s| s.get("priorityLevelConfiguration"))
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let level_path = "spec.priorityLevelConfiguration.name";
    if level.is_empty() {
        errs.push(FieldError::required(level_path, "must reference a priority level"));
    } else {
        for m in is_path_segment_name(level) {
            errs.push(FieldError::invalid(level_path, level, m));
        }
    }
    let rules = spec.and_then(|s| s.get("rules")).and_then(Value::as_array);
    for (i, rule) in rules.into_iter().flatten().enumerate() {
        validate_rule(rule, &index("spec.rules", i), &mut errs);
    }
    errs
}

impl Strategy for FlowSchemaStrategy {
    fn traits(&self) -> KindTraits {
        default_traits("flowcontrol.apiserver.k8s.io", "flowschemas")
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        apply_defaults(obj);
    }

    fn prepare_for_update(&self, new: &mut Object, _old: &Object) {
        apply_defaults(new);
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_flow_schema(obj)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::registry::strategy::testing::create_messages;

    fn messages(name: &str, spec: Value) -> Vec<String> {
        create_messages(&FlowSchemaStrategy, json!({"metadata": {"name": name}, "spec": spec}))
    }

    #[test]
    fn flow_schemas() {
        let rule = json!({"subjects": [{"kind": "User", "user": {"name": "alice"}}],
                          "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "clusterScope": true}]});
        assert!(
            messages(
                "f",
                json!({"priorityLevelConfiguration": {"name": "global-default"}, "rules": [rule]})
            )
            .is_empty()
        );
        assert_eq!(
            messages(
                "f",
                json!({"matchingPrecedence": 1, "distinguisherMethod": {"type": "ByPod"},
                       "rules": [{"subjects": [{"kind": "User"}], "resourceRules": [{"verbs": ["*", "get"]}]}, {}]})
            ),
            [
                "spec.matchingPrecedence: Invalid value: 1: only the schema named 'exempt' may have matchingPrecedence 1",
                "spec.distinguisherMethod.type: Unsupported value: flowcontrol.FlowDistinguisherMethod{Type:\"ByPod\"}: supported values: \"ByNamespace\", \"ByUser\"",
                "spec.priorityLevelConfiguration.name: Required value: must reference a priority level",
                "spec.rules[0].subjects[0].user: Required value: user is required when subject kind is 'User'",
                "spec.rules[0].resourceRules[0].verbs: Invalid value: []string{\"*\", \"get\"}: if '*' is present, must not specify other verbs",
                "spec.rules[0].resourceRules[0].apiGroups: Required value: resource rules must supply at least one api group",
                "spec.rules[0].resourceRules[0].resources: Required value: resource rules must supply at least one resource",
                "spec.rules[0].resourceRules[0].namespaces: Required value: resource rules that are not cluster scoped must supply at least one namespace",
                "spec.rules[1].subjects: Required value: subjects must contain at least one value",
                "spec.rules[1]: Required value: at least one of resourceRules and nonResourceRules has to be non-empty",
            ]
        );
    }
}
