//! Type checking of a policy's expressions (upstream's `TypeChecker`, whose
//! results the policy status controller writes to
//! `status.typeChecking.expressionWarnings`): every selection of a field
//! on `object` or `oldObject` is checked against the schema of each kind
//! the policy's `matchConstraints` name exactly (rules with wildcards or
//! subresources are not checked, as upstream), every selection on
//! `params` against the schema of the policy's `paramKind` (when it is a
//! built-in kind), and a field the kind does not have is a warning in
//! cel-go's words, issues in source order:
//!
//! ```text
//! apps/v1, Kind=Deployment: ERROR: <input>:1:7: undefined field 'replicas'
//!  | object.replicas > 1
//!  | ......^
//! ```
//!
//! The `cel` crate has no type checker, so this checks field names only
//! (not operand types); selections into maps, lists and free-form JSON are
//! not checked.

use cel::common::ast::{Expr, IdedExpr, SourceInfo};
use serde_json::{Value, json};

use crate::patch::GroupVersionKind;
use crate::registry::object::Object;
use crate::resources::ResourceTable;

/// `(group, version, kind)` of each kind the policy matches exactly, sorted.
fn kinds(spec: &Value) -> Vec<(String, String, String)> {
    let strings = |v: &Value, k: &str| -> Vec<String> {
        v.get(k)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    let rules = spec
        .pointer("/matchConstraints/resourceRules")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for rule in &rules {
        let (groups, versions, resources) = (
            strings(rule, "apiGroups"),
            strings(rule, "apiVersions"),
            strings(rule, "resources"),
        );
        let wild = |l: &[String]| l.iter().any(|x| x == "*");
        if wild(&groups) || wild(&versions) || wild(&resources) {
            continue;
        }
        for g in &groups {
            for v in &versions {
                for r in resources.iter().filter(|r| !r.contains('/')) {
                    if let Some(info) = ResourceTable::builtin()
                        .all()
                        .iter()
                        .find(|i| i.group == *g && i.version == *v && i.resource == *r)
                    {
                        out.push((g.clone(), v.clone(), info.kind.clone()));
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `(group, version, kind)` of the policy's `paramKind`, if it names one.
fn param_kind(spec: &Value) -> Option<(String, String, String)> {
    let pk = spec.get("paramKind")?;
    let api_version = pk.get("apiVersion").and_then(Value::as_str)?;
    let kind = pk.get("kind").and_then(Value::as_str).filter(|k| !k.is_empty())?;
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    Some((group.to_string(), version.to_string(), kind.to_string()))
}

/// The expressions to check, with their field paths.
fn expressions(spec: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut add = |list: &str, field: &str| {
        for (i, item) in spec
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(e) = item.get(field).and_then(Value::as_str).filter(|e| !e.trim().is_empty()) {
                out.push((format!("spec.{list}[{i}].{field}"), e.to_string()));
            }
        }
    };
    add("validations", "expression");
    add("validations", "messageExpression");
    add("auditAnnotations", "valueExpression");
    add("matchConditions", "expression");
    add("variables", "expression");
    out
}

/// One selection chain rooted at `object`/`oldObject` or `params`: its
/// field names, and the node id of each segment's selection.
struct Chain {
    params: bool,
    fields: Vec<String>,
    ids: Vec<u64>,
}

/// The chain `e` spells, if it is `object.a.b...`, `oldObject.a.b...` or
/// `params.a.b...`.
fn chain(e: &IdedExpr) -> Option<Chain> {
    let mut fields = Vec::new();
    let mut ids = Vec::new();
    let mut node = e;
    let params;
    loop {
        match &node.expr {
            Expr::Select(s) => {
                fields.push(s.field.clone());
                ids.push(node.id);
                node = &s.operand;
            }
            Expr::Ident(root) if matches!(root.as_str(), "object" | "oldObject" | "params") => {
                params = root == "params";
                break;
            }
            _ => return None,
        }
    }
    fields.reverse();
    ids.reverse();
    Some(Chain { params, fields, ids })
}

/// Every maximal chain in `e`.
fn chains(e: &IdedExpr, out: &mut Vec<Chain>) {
    if let Some(c) = chain(e) {
        if !c.fields.is_empty() {
            out.push(c);
        }
        return;
    }
    match &e.expr {
        Expr::Select(s) => chains(&s.operand, out),
        Expr::Call(c) => {
            if let Some(t) = &c.target {
                chains(t, out);
            }
            c.args.iter().for_each(|a| chains(a, out));
        }
        Expr::Comprehension(c) => {
            for x in [&c.iter_range, &c.accu_init, &c.loop_cond, &c.loop_step, &c.result] {
                chains(x, out);
            }
        }
        Expr::List(l) => l.elements.iter().for_each(|x| chains(x, out)),
        Expr::Map(m) => m.entries.iter().for_each(|en| {
            if let cel::common::ast::EntryExpr::MapEntry(me) = &en.expr {
                chains(&me.key, out);
                chains(&me.value, out);
            }
        }),
        _ => {}
    }
}

/// cel-go's rendering of one error at `offset` of `source`.
fn issue(source: &str, offset: usize, message: &str) -> String {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count();
    let text = source.lines().nth(line - 1).unwrap_or("");
    format!(
        "ERROR: <input>:{line}:{}: {message}\n | {text}\n | {}^",
        column + 1,
        ".".repeat(column)
    )
}

/// The undefined-field errors of `expr` for one kind (and the params'
/// kind, if known), in source order.
fn check_expression(
    expr: &str,
    parsed: &(IdedExpr, SourceInfo),
    gvk: &GroupVersionKind<'_>,
    params: Option<&GroupVersionKind<'_>>,
) -> Vec<String> {
    let mut found = Vec::new();
    chains(&parsed.0, &mut found);
    let mut issues = Vec::new();
    for c in found {
        let kind = match (c.params, params) {
            (false, _) => gvk,
            (true, Some(p)) => p,
            (true, None) => continue,
        };
        let path: Vec<&str> = c.fields.iter().map(String::as_str).collect();
        if let Some(Err(i)) = crate::schema::check_field_path(kind, &path) {
            let offset = parsed.1.offset_for(c.ids[i]).map_or(0, |(start, _)| start as usize);
            issues.push((
                offset,
                issue(expr, offset, &format!("undefined field '{}'", c.fields[i])),
            ));
        }
    }
    issues.sort_by_key(|(offset, _)| *offset);
    issues.into_iter().map(|(_, i)| i).collect()
}

/// `status.typeChecking` of a policy.
pub fn type_check(policy: &Object) -> Value {
    let Some(spec) = policy.get("spec") else {
        return json!({});
    };
    let kinds = kinds(spec);
    let param_kind = param_kind(spec);
    let params = param_kind.as_ref().map(|(g, v, k)| GroupVersionKind {
        group: g,
        version: v,
        kind: k,
    });
    let mut warnings = Vec::new();
    if !kinds.is_empty() {
        for (field_ref, expr) in expressions(spec) {
            let Ok(parsed) = cel::parser::Parser::new().parse_with_source_info(&expr) else {
                continue;
            };
            let per_kind: Vec<String> = kinds
                .iter()
                .filter_map(|(g, v, k)| {
                    let gvk = GroupVersionKind {
                        group: g,
                        version: v,
                        kind: k,
                    };
                    let issues = check_expression(&expr, &parsed, &gvk, params.as_ref());
                    (!issues.is_empty()).then(|| format!("{g}/{v}, Kind={k}: {}", issues.join("\n")))
                })
                .collect();
            if !per_kind.is_empty() {
                warnings.push(json!({"fieldRef": field_ref, "warning": per_kind.join("\n")}));
            }
        }
    }
    if warnings.is_empty() {
        json!({})
    } else {
        json!({ "expressionWarnings": warnings })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(spec: Value) -> Value {
        type_check(json!({"metadata": {"name": "p"}, "spec": spec}).as_object().unwrap())
    }

    fn deployments() -> Value {
        json!({"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["deployments"]}]})
    }

    /// A `has()` test is placed at its macro's `(`, as cel-go places it.
    #[test]
    fn undefined_fields_are_warnings_per_kind() {
        let got = check(json!({
            "matchConstraints": deployments(),
            "validations": [
                {"expression": "object.replicas > 1", "messageExpression": "'n: ' + object.metadata.name"},
                {"expression": "object.spec.replicas <= 5 && has(oldObject.spec.nope)"},
                {"expression": "object.spec.template.spec.containers.all(c, c.image != '') && object.metadata.labels.app == 'x'"},
            ]
        }));
        assert_eq!(
            got,
            json!({"expressionWarnings": [
                {"fieldRef": "spec.validations[0].expression",
                 "warning": "apps/v1, Kind=Deployment: ERROR: <input>:1:7: undefined field 'replicas'\n | object.replicas > 1\n | ......^"},
                {"fieldRef": "spec.validations[1].expression",
                 "warning": "apps/v1, Kind=Deployment: ERROR: <input>:1:33: undefined field 'nope'\n | object.spec.replicas <= 5 && has(oldObject.spec.nope)\n | ................................^"},
            ]})
        );
    }

    #[test]
    fn wildcards_and_unknown_kinds_are_not_checked() {
        let star = json!({"resourceRules": [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["*"], "resources": ["*"]}]});
        assert_eq!(
            check(json!({"matchConstraints": star, "validations": [{"expression": "object.nope"}]})),
            json!({})
        );
        let core = json!({"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["configmaps", "pods/status"]}]});
        assert_eq!(
            check(json!({"matchConstraints": core, "variables": [{"name": "d", "expression": "object.datum"}]})),
            json!({"expressionWarnings": [{"fieldRef": "spec.variables[0].expression",
                "warning": "/v1, Kind=ConfigMap: ERROR: <input>:1:7: undefined field 'datum'\n | object.datum\n | ......^"}]})
        );
    }

    #[test]
    fn params_are_checked_against_the_param_kind() {
        let core = json!({"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["configmaps"]}]});
        let got = check(json!({
            "matchConstraints": core,
            "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
            "validations": [{"expression": "params.datum.size() > 0 && object.data == params.data && object.nope"}],
        }));
        assert_eq!(
            got,
            json!({"expressionWarnings": [{"fieldRef": "spec.validations[0].expression",
                "warning": "/v1, Kind=ConfigMap: ERROR: <input>:1:7: undefined field 'datum'\n | params.datum.size() > 0 && object.data == params.data && object.nope\n | ......^\nERROR: <input>:1:64: undefined field 'nope'\n | params.datum.size() > 0 && object.data == params.data && object.nope\n | ...............................................................^"}]})
        );
        // An unknown param kind leaves params unchecked.
        let got = check(json!({
            "matchConstraints": deployments(),
            "paramKind": {"apiVersion": "example.com/v1", "kind": "Limits"},
            "validations": [{"expression": "object.spec.replicas <= params.max"}],
        }));
        assert_eq!(got, json!({}));
    }
}
