//! Webhook rules (`validateRuleWithOperations`, `validateRule`,
//! `validateResources` in `pkg/apis/admissionregistration/validation`).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::registry::kinds::networking::values::{go_slice, invalid_raw};
use crate::validation::{FieldError, FieldErrors, child, index};

const OPERATIONS: &[&str] = &["*", "CONNECT", "CREATE", "DELETE", "UPDATE"];
const SCOPES: &[&str] = &["*", "Cluster", "Namespaced"];

fn strings<'a>(v: &'a Value, k: &str) -> Option<Vec<&'a str>> {
    v.get(k)
        .filter(|v| !v.is_null())
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|s| s.as_str().unwrap_or("")).collect())
}

/// `validateRuleWithOperations` (subresources allowed).
pub fn validate_rule_with_operations(rule: &Value, path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let ops = strings(rule, "operations").unwrap_or_default();
    let ops_path = child(path, "operations");
    if ops.is_empty() {
        errs.push(FieldError::required(&ops_path, ""));
    }
    if ops.len() > 1 && ops.contains(&"*") {
        errs.push(invalid_raw(
            &ops_path,
            &go_slice("admissionregistration.OperationType", Some(&ops)),
            "if '*' is present, must not specify other operations",
        ));
    }
    for (i, op) in ops.iter().enumerate() {
        if !OPERATIONS.contains(op) {
            errs.push(FieldError::not_supported(index(&ops_path, i), *op, OPERATIONS));
        }
    }
    errs.extend(validate_rule(rule, path));
    errs
}

/// `validateRule`.
fn validate_rule(rule: &Value, path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    for (field, what) in [("apiGroups", "API groups"), ("apiVersions", "API versions")] {
        let items = strings(rule, field).unwrap_or_default();
        let p = child(path, field);
        if items.is_empty() {
            errs.push(FieldError::required(&p, ""));
        }
        if items.len() > 1 && items.contains(&"*") {
            errs.push(invalid_raw(
                &p,
                &go_slice("string", Some(&items)),
                &format!("if '*' is present, must not specify other {what}"),
            ));
        }
        if field == "apiVersions" {
            for (i, v) in items.iter().enumerate() {
                if v.is_empty() {
                    errs.push(FieldError::required(index(&p, i), ""));
                }
            }
        }
    }
    errs.extend(validate_resources(
        strings(rule, "resources"),
        &child(path, "resources"),
    ));
    if let Some(scope) = rule.get("scope").and_then(Value::as_str)
        && !SCOPES.contains(&scope)
    {
        errs.push(FieldError::not_supported(child(path, "scope"), scope, SCOPES));
    }
    errs
}

/// `validateResources`: wildcards may not overlap.
fn validate_resources(resources: Option<Vec<&str>>, path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let list = resources.clone().unwrap_or_default();
    if list.is_empty() {
        errs.push(FieldError::required(path, ""));
    }
    let mut wildcard_sub = BTreeSet::new();
    let mut wildcard_res = BTreeSet::new();
    let (mut double, mut single, mut plain) = (false, false, false);
    for (i, rs) in list.iter().enumerate() {
        if rs.is_empty() {
            errs.push(FieldError::required(index(path, i), ""));
            continue;
        }
        double |= *rs == "*/*";
        single |= *rs == "*";
        let Some((res, sub)) = rs.split_once('/') else {
            plain = *rs != "*";
            continue;
        };
        if wildcard_sub.contains(res) {
            errs.push(FieldError::invalid(
                index(path, i),
                *rs,
                format!("if '{res}/*' is present, must not specify {rs}"),
            ));
        }
        if wildcard_res.contains(sub) {
            errs.push(FieldError::invalid(
                index(path, i),
                *rs,
                format!("if '*/{sub}' is present, must not specify {rs}"),
            ));
        }
        if sub == "*" {
            wildcard_sub.insert(res);
        }
        if res == "*" {
            wildcard_res.insert(sub);
        }
    }
    let shown = go_slice("string", resources.as_deref());
    if list.len() > 1 && double {
        errs.push(invalid_raw(
            path,
            &shown,
            "if '*/*' is present, must not specify other resources",
        ));
    }
    if single && plain {
        errs.push(invalid_raw(
            path,
            &shown,
            "if '*' is present, must not specify other resources without subresources",
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(rule: Value, expected: &[&str]) {
        let got: Vec<String> = validate_rule_with_operations(&rule, "r")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, expected, "{rule}");
    }

    #[test]
    fn rules() {
        check(
            json!({"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods", "pods/status"]}),
            &[],
        );
        check(
            json!({}),
            &[
                "r.operations: Required value",
                "r.apiGroups: Required value",
                "r.apiVersions: Required value",
                "r.resources: Required value",
            ],
        );
        check(
            json!({"operations": ["*", "PATCH"], "apiGroups": ["*", "apps"], "apiVersions": ["v1"],
                   "resources": ["*", "pods", "*/*"], "scope": "Global"}),
            &[
                "r.operations: Invalid value: []admissionregistration.OperationType{\"*\", \"PATCH\"}: if '*' is present, must not specify other operations",
                "r.operations[1]: Unsupported value: \"PATCH\": supported values: \"*\", \"CONNECT\", \"CREATE\", \"DELETE\", \"UPDATE\"",
                "r.apiGroups: Invalid value: []string{\"*\", \"apps\"}: if '*' is present, must not specify other API groups",
                "r.resources: Invalid value: []string{\"*\", \"pods\", \"*/*\"}: if '*/*' is present, must not specify other resources",
                "r.resources: Invalid value: []string{\"*\", \"pods\", \"*/*\"}: if '*' is present, must not specify other resources without subresources",
                "r.scope: Unsupported value: \"Global\": supported values: \"*\", \"Cluster\", \"Namespaced\"",
            ],
        );
    }
}
