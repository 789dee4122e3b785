//! ValidatingAdmissionPolicy and its Binding: v1 defaults (failurePolicy
//! Fail, matchPolicy Equivalent, empty selectors, rule scope `*`) and
//! validation (`ValidateValidatingAdmissionPolicy`,
//! `ValidateValidatingAdmissionPolicyBinding`), with every CEL expression
//! compiled through [`crate::cel`] so a bad one is refused at write time.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::rules::validate_rule_with_operations;
use crate::admission::vap::declared_variables;
use crate::registry::kinds::default_traits;
use crate::registry::kinds::networking::values::{go_slice, invalid_raw, set_default};
use crate::registry::object::{self, Object};
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::label_selector::{LabelSelectorOptions, validate_label_selector};
use crate::validation::names::is_qualified_name;
use crate::validation::{FieldError, FieldErrors, child, index};

const FAILURE_POLICIES: &[&str] = &["Fail", "Ignore"];
const MATCH_POLICIES: &[&str] = &["Equivalent", "Exact"];
const REASONS: &[&str] = &["Unauthorized", "Forbidden", "Invalid", "RequestEntityTooLarge"];
const ACTIONS: &[&str] = &["Audit", "Deny", "Warn"];
const NOT_FOUND_ACTIONS: &[&str] = &["Allow", "Deny"];

/// `validatingadmissionpolicies` (`binding: false`) or
/// `validatingadmissionpolicybindings`.
#[derive(Debug)]
pub struct PolicyStrategy {
    pub binding: bool,
}

fn items<'a>(v: Option<&'a Value>, k: &str) -> &'a [Value] {
    v.and_then(|v| v.get(k))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// Defaults of a `MatchResources`.
fn default_match_resources(m: &mut Value) {
    let Some(m) = m.as_object_mut() else {
        return;
    };
    set_default(m, "matchPolicy", json!("Equivalent"));
    set_default(m, "namespaceSelector", json!({}));
    set_default(m, "objectSelector", json!({}));
    for k in ["resourceRules", "excludeResourceRules"] {
        if let Some(Value::Array(rules)) = m.get_mut(k) {
            for rule in rules.iter_mut().filter_map(Value::as_object_mut) {
                set_default(rule, "scope", json!("*"));
            }
        }
    }
}

fn apply_defaults(obj: &mut Object, binding: bool) {
    let Some(Value::Object(spec)) = obj.get_mut("spec") else {
        return;
    };
    if binding {
        if let Some(m) = spec.get_mut("matchResources") {
            default_match_resources(m);
        }
    } else {
        set_default(spec, "failurePolicy", json!("Fail"));
        if let Some(m) = spec.get_mut("matchConstraints") {
            default_match_resources(m);
        }
    }
}

/// `validateMatchResources`; a policy's must have resourceRules.
fn validate_match_resources(m: Option<&Value>, policy: bool, path: &str, errs: &mut FieldErrors) {
    let Some(m) = m.filter(|v| !v.is_null()) else {
        if policy {
            errs.push(FieldError::required(path, ""));
        }
        return;
    };
    if let Some(p) = m.get("matchPolicy").and_then(Value::as_str)
        && !MATCH_POLICIES.contains(&p)
    {
        errs.push(FieldError::not_supported(child(path, "matchPolicy"), p, MATCH_POLICIES));
    }
    for sel in ["namespaceSelector", "objectSelector"] {
        errs.extend(validate_label_selector(
            m.get(sel),
            LabelSelectorOptions::default(),
            &child(path, sel),
        ));
    }
    if policy && items(Some(m), "resourceRules").is_empty() {
        errs.push(FieldError::required(child(path, "resourceRules"), ""));
    }
    for k in ["resourceRules", "excludeResourceRules"] {
        for (i, rule) in items(Some(m), k).iter().enumerate() {
            errs.extend(validate_rule_with_operations(rule, &index(&child(path, k), i)));
        }
    }
}

/// A CEL expression at `path`: required, and compiled.
fn validate_expression(expr: &str, vars: &[&str], path: &str, errs: &mut FieldErrors) {
    if expr.trim().is_empty() {
        errs.push(FieldError::required(path, ""));
    } else if let Err(e) = crate::cel::compile(expr, vars) {
        errs.push(FieldError::invalid(path, expr, e.to_string()));
    }
}

/// Whether `name` is a CEL identifier (a variable's name).
fn is_cel_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn validate_policy(obj: &Object) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let spec = obj.get("spec");
    let param_kind = spec.and_then(|s| s.get("paramKind")).filter(|v| !v.is_null());
    if let Some(pk) = param_kind {
        for k in ["apiVersion", "kind"] {
            if str_of(pk, k).is_empty() {
                errs.push(FieldError::required(child("spec.paramKind", k), ""));
            }
        }
    }
    let vars = declared_variables(param_kind.is_some());
    let fp = spec.map(|s| str_of(s, "failurePolicy")).unwrap_or("");
    if !fp.is_empty() && !FAILURE_POLICIES.contains(&fp) {
        errs.push(FieldError::not_supported("spec.failurePolicy", fp, FAILURE_POLICIES));
    }
    validate_match_resources(
        spec.and_then(|s| s.get("matchConstraints")),
        true,
        "spec.matchConstraints",
        &mut errs,
    );

    let mut names = HashSet::new();
    for (i, c) in items(spec, "matchConditions").iter().enumerate() {
        let p = index("spec.matchConditions", i);
        let name = str_of(c, "name");
        if name.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        } else {
            for m in is_qualified_name(name) {
                errs.push(FieldError::invalid(child(&p, "name"), name, m));
            }
            if !names.insert(name) {
                errs.push(FieldError::duplicate(child(&p, "name"), name));
            }
        }
        validate_expression(str_of(c, "expression"), &vars, &child(&p, "expression"), &mut errs);
    }
    for (i, v) in items(spec, "variables").iter().enumerate() {
        let p = index("spec.variables", i);
        let name = str_of(v, "name");
        if name.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        } else if !is_cel_identifier(name) {
            errs.push(FieldError::invalid(
                child(&p, "name"),
                name,
                "name is not a valid CEL identifier",
            ));
        }
        validate_expression(str_of(v, "expression"), &vars, &child(&p, "expression"), &mut errs);
    }
    let validations = items(spec, "validations");
    if validations.is_empty() && items(spec, "auditAnnotations").is_empty() {
        errs.push(FieldError::required(
            "spec.validations",
            "validations or auditAnnotations must contain at least one item",
        ));
    }
    for (i, v) in validations.iter().enumerate() {
        let p = index("spec.validations", i);
        validate_expression(str_of(v, "expression"), &vars, &child(&p, "expression"), &mut errs);
        let message = str_of(v, "message");
        if message.contains('\n') {
            errs.push(FieldError::invalid(
                child(&p, "message"),
                message,
                "message must not contain line breaks",
            ));
        }
        let me = str_of(v, "messageExpression");
        if !me.is_empty()
            && let Err(e) = crate::cel::compile(me, &vars)
        {
            errs.push(FieldError::invalid(child(&p, "messageExpression"), me, e.to_string()));
        }
        let reason = str_of(v, "reason");
        if !reason.is_empty() && !REASONS.contains(&reason) {
            errs.push(FieldError::not_supported(child(&p, "reason"), reason, REASONS));
        }
    }
    validate_audit_annotations(obj, spec, &vars, &mut errs);
    errs
}

/// `auditAnnotations`: `<policy name>/<key>` a qualified name, keys
/// unique, each valueExpression given and compiling.
fn validate_audit_annotations(obj: &Object, spec: Option<&Value>, vars: &[&str], errs: &mut FieldErrors) {
    let policy_name = crate::registry::object::name(obj);
    let mut keys = HashSet::new();
    for (i, a) in items(spec, "auditAnnotations").iter().enumerate() {
        let p = index("spec.auditAnnotations", i);
        let key = str_of(a, "key");
        if policy_name.is_empty() {
            errs.push(FieldError::invalid(
                child(&p, "key"),
                key,
                "requires metadata.name be non-empty",
            ));
        } else {
            for m in is_qualified_name(&format!("{policy_name}/{key}")) {
                errs.push(FieldError::invalid(child(&p, "key"), format!("{policy_name}/{key}"), m));
            }
        }
        if !keys.insert(key) {
            errs.push(FieldError::duplicate(child(&p, "key"), key));
        }
        let value = str_of(a, "valueExpression");
        if value.trim().is_empty() {
            errs.push(FieldError::required(
                child(&p, "valueExpression"),
                "valueExpression is not specified",
            ));
        } else {
            validate_expression(value, vars, &child(&p, "valueExpression"), errs);
        }
    }
}

fn validate_binding(obj: &Object) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let spec = obj.get("spec");
    if spec.map(|s| str_of(s, "policyName")).unwrap_or("").is_empty() {
        errs.push(FieldError::required("spec.policyName", ""));
    }
    let actions: Vec<&str> = items(spec, "validationActions")
        .iter()
        .map(|a| a.as_str().unwrap_or(""))
        .collect();
    if actions.is_empty() {
        errs.push(FieldError::required(
            "spec.validationActions",
            "at least one validation action is required",
        ));
    }
    let mut seen = HashSet::new();
    for (i, a) in actions.iter().enumerate() {
        let p = index("spec.validationActions", i);
        if !seen.insert(*a) {
            errs.push(FieldError::duplicate(&p, *a));
        } else if !ACTIONS.contains(a) {
            errs.push(FieldError::not_supported(&p, *a, ACTIONS));
        }
    }
    if seen.contains("Deny") && seen.contains("Warn") {
        errs.push(invalid_raw(
            "spec.validationActions",
            &go_slice("admissionregistration.ValidationAction", Some(&actions)),
            "must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)",
        ));
    }
    if let Some(pr) = spec.and_then(|s| s.get("paramRef")).filter(|v| !v.is_null()) {
        let has_name = !str_of(pr, "name").is_empty();
        let has_selector = pr.get("selector").is_some_and(|s| !s.is_null());
        match (has_name, has_selector) {
            (true, true) => errs.push(FieldError::forbidden(
                "spec.paramRef.name",
                "name and selector are mutually exclusive",
            )),
            (false, false) => errs.push(FieldError::required(
                "spec.paramRef",
                "one of name or selector must be specified",
            )),
            _ => {}
        }
        if has_selector {
            errs.extend(validate_label_selector(
                pr.get("selector"),
                LabelSelectorOptions::default(),
                "spec.paramRef.selector",
            ));
        }
        match str_of(pr, "parameterNotFoundAction") {
            "" => errs.push(FieldError::required("spec.paramRef.parameterNotFoundAction", "")),
            a if !NOT_FOUND_ACTIONS.contains(&a) => errs.push(FieldError::not_supported(
                "spec.paramRef.parameterNotFoundAction",
                a,
                NOT_FOUND_ACTIONS,
            )),
            _ => {}
        }
    }
    validate_match_resources(
        spec.and_then(|s| s.get("matchResources")),
        false,
        "spec.matchResources",
        &mut errs,
    );
    errs
}

impl Strategy for PolicyStrategy {
    fn traits(&self) -> KindTraits {
        let resource = if self.binding {
            "validatingadmissionpolicybindings"
        } else {
            "validatingadmissionpolicies"
        };
        default_traits("admissionregistration.k8s.io", resource)
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        apply_defaults(obj, self.binding);
        self.set_type_checking(obj);
    }

    fn prepare_for_update(&self, new: &mut Object, old: &Object) {
        apply_defaults(new, self.binding);
        // The generation moves with the spec here (not after the strategy,
        // as the store would) so that the status can say which one it saw.
        let generation = |o: &Object| object::meta(o).get("generation").and_then(Value::as_i64).unwrap_or(0);
        if !self.binding && new.get("spec") != old.get("spec") && generation(new) == generation(old) {
            object::set_meta(new, "generation", Some(json!(generation(old) + 1)));
        }
        self.set_type_checking(new);
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        if self.binding {
            validate_binding(obj)
        } else {
            validate_policy(obj)
        }
    }
}

impl PolicyStrategy {
    /// A policy's `status.typeChecking` and `status.observedGeneration`
    /// (the generation it was checked at), computed on every write
    /// (upstream's status controller writes the same shortly after).
    fn set_type_checking(&self, obj: &mut Object) {
        if self.binding {
            return;
        }
        let checked = crate::admission::vap::type_check(obj);
        let generation = object::meta(obj).get("generation").cloned();
        let status = obj.entry("status").or_insert_with(|| json!({}));
        if let Some(status) = status.as_object_mut() {
            if let Some(generation) = generation.filter(|g| !g.is_null()) {
                status.insert("observedGeneration".into(), generation);
            }
            status.insert("typeChecking".into(), checked);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(binding: bool, spec: Value, expected: &[&str]) {
        let mut obj = json!({"metadata": {"name": "x"}, "spec": spec})
            .as_object()
            .unwrap()
            .clone();
        let s = PolicyStrategy { binding };
        s.prepare_for_create(&mut obj);
        let got: Vec<String> = s.validate(&obj).iter().map(ToString::to_string).collect();
        assert_eq!(got, expected);
    }

    fn rules() -> Value {
        json!({"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}]})
    }

    #[test]
    fn policies() {
        check(
            false,
            json!({"matchConstraints": rules(), "validations": [{"expression": "true"}]}),
            &[],
        );
        check(
            false,
            json!({"validations": []}),
            &[
                "spec.matchConstraints: Required value",
                "spec.validations: Required value: validations or auditAnnotations must contain at least one item",
            ],
        );
        check(
            false,
            json!({"matchConstraints": rules(), "failurePolicy": "Maybe", "validations": [
                {"expression": "params.x", "reason": "Teapot"},
                {"expression": "object.(", "message": "a\nb"}
            ]}),
            &[
                "spec.failurePolicy: Unsupported value: \"Maybe\": supported values: \"Fail\", \"Ignore\"",
                "spec.validations[0].expression: Invalid value: \"params.x\": compilation failed: ERROR: <input>:1:1: undeclared reference to 'params' (in container '')",
                "spec.validations[0].reason: Unsupported value: \"Teapot\": supported values: \"Unauthorized\", \"Forbidden\", \"Invalid\", \"RequestEntityTooLarge\"",
                "spec.validations[1].expression: Invalid value: \"object.(\": compilation failed: ERROR: <input>:1:8: \
                 Syntax error: no viable alternative at input '.('\n| object.(\n| .......^",
                "spec.validations[1].message: Invalid value: \"a\\nb\": message must not contain line breaks",
            ],
        );
    }

    #[test]
    fn audit_annotations() {
        check(
            false,
            json!({"matchConstraints": rules(), "auditAnnotations": [
                {"key": "ok", "valueExpression": "'v'"},
                {"key": "ok", "valueExpression": " "},
                {"key": "bad key!", "valueExpression": "nope"},
            ]}),
            &[
                "spec.auditAnnotations[1].key: Duplicate value: \"ok\"",
                "spec.auditAnnotations[1].valueExpression: Required value: valueExpression is not specified",
                "spec.auditAnnotations[2].key: Invalid value: \"x/bad key!\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
                "spec.auditAnnotations[2].valueExpression: Invalid value: \"nope\": compilation failed: ERROR: <input>:1:1: undeclared reference to 'nope' (in container '')",
            ],
        );
    }

    #[test]
    fn bindings() {
        check(true, json!({"policyName": "p", "validationActions": ["Deny"]}), &[]);
        check(
            true,
            json!({"validationActions": ["Deny", "Warn"], "paramRef": {"name": "a", "selector": {}}}),
            &[
                "spec.policyName: Required value",
                "spec.validationActions: Invalid value: []admissionregistration.ValidationAction{\"Deny\", \"Warn\"}: must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)",
                "spec.paramRef.name: Forbidden: name and selector are mutually exclusive",
                "spec.paramRef.parameterNotFoundAction: Required value",
            ],
        );
    }

    /// The status says which generation it was checked at; a spec change
    /// moves both, a status-only write neither.
    #[tokio::test]
    async fn observed_generation_follows_the_spec() {
        let s = crate::testing::TestServer::new().await;
        let path = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies";
        let policy = |expr: &str| {
            json!({"metadata": {"name": "p"}, "spec": {"matchConstraints": rules(),
                "validations": [{"expression": expr}]}})
        };
        let (code, created) = s.post(path, policy("true")).await;
        assert_eq!(code, axum::http::StatusCode::CREATED, "{created}");
        assert_eq!(created["metadata"]["generation"], 1);
        assert_eq!(created["status"]["observedGeneration"], 1);
        let (code, updated) = s.put(&format!("{path}/p"), policy("object.spec.nope == 1")).await;
        assert_eq!(code, axum::http::StatusCode::OK, "{updated}");
        assert_eq!(updated["metadata"]["generation"], 2);
        assert_eq!(updated["status"]["observedGeneration"], 2);
        assert_eq!(
            updated["status"]["typeChecking"]["expressionWarnings"][0]["fieldRef"],
            "spec.validations[0].expression"
        );
        let (code, same) = s.put(&format!("{path}/p"), policy("object.spec.nope == 1")).await;
        assert_eq!(code, axum::http::StatusCode::OK, "{same}");
        assert_eq!(same["metadata"]["generation"], 2);
        assert_eq!(same["status"]["observedGeneration"], 2);
    }
}
