//! Whether a request is in a policy's `matchConstraints` or a binding's
//! `matchResources` (upstream's `matching.Matcher`): resource rules and
//! their exclusions, the namespace and object selectors.
//!
//! `matchPolicy` is accepted with both values: every resource here is
//! served at one version per group, so an `Equivalent` match through
//! another version of the same resource is the exact match.

use serde_json::Value;

use crate::admission::{Attributes, Operation};
use crate::registry::object::{self, Object};
use crate::selector::labels::Selector;

/// What the matcher needs besides the request.
pub struct Subject<'a> {
    pub attrs: &'a Attributes<'a>,
    /// The new object, or the old one on delete.
    pub object: Option<&'a Object>,
    pub old_object: Option<&'a Object>,
    /// The request's namespace object, when it is namespaced and exists.
    pub namespace: Option<&'a Object>,
}

/// Whether `constraints` (a `MatchResources`) select the request. A
/// missing `constraints` matches everything (a binding without
/// `matchResources`).
pub fn matches(constraints: Option<&Value>, s: &Subject<'_>) -> Result<bool, String> {
    let Some(c) = constraints else {
        return Ok(true);
    };
    let rules = c.get("resourceRules").and_then(Value::as_array);
    // A policy needs resourceRules to match; a binding without them
    // inherits the policy's (validated so).
    if let Some(rules) = rules
        && !rules.iter().any(|r| rule_matches(r, s.attrs, object_name(s)))
    {
        return Ok(false);
    }
    if let Some(excluded) = c.get("excludeResourceRules").and_then(Value::as_array)
        && excluded.iter().any(|r| rule_matches(r, s.attrs, object_name(s)))
    {
        return Ok(false);
    }
    if !namespace_matches(c.get("namespaceSelector"), s)? {
        return Ok(false);
    }
    object_matches(c.get("objectSelector"), s)
}

fn object_name<'a>(s: &'a Subject<'a>) -> &'a str {
    if !s.attrs.name.is_empty() {
        return s.attrs.name;
    }
    s.object.map(object::name).unwrap_or("")
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

fn op_name(op: Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
    }
}

/// One `NamedRuleWithOperations`.
fn rule_matches(rule: &Value, attrs: &Attributes<'_>, name: &str) -> bool {
    let any = |list: Vec<String>, want: &str| list.iter().any(|x| x == "*" || x == want);
    if !any(strings(rule, "operations"), op_name(attrs.operation)) {
        return false;
    }
    if !any(strings(rule, "apiGroups"), &attrs.resource.group)
        || !any(strings(rule, "apiVersions"), &attrs.resource.version)
    {
        return false;
    }
    let resource = &attrs.resource.resource;
    let sub = attrs.subresource;
    let resource_ok = strings(rule, "resources").iter().any(|r| {
        let (res, rsub) = r.split_once('/').unwrap_or((r.as_str(), ""));
        let res_ok = res == "*" || res == resource;
        let sub_ok = if r.contains('/') {
            rsub == "*" || rsub == sub
        } else {
            sub.is_empty()
        };
        res_ok && sub_ok
    });
    if !resource_ok {
        return false;
    }
    let scope = rule.get("scope").and_then(Value::as_str).unwrap_or("*");
    let scope_ok = match scope {
        "Cluster" => !attrs.resource.namespaced,
        "Namespaced" => attrs.resource.namespaced,
        _ => true,
    };
    let names = strings(rule, "resourceNames");
    scope_ok && (names.is_empty() || names.iter().any(|n| n == name))
}

/// An admission selector: absent or `{}` selects everything.
fn selector(v: Option<&Value>) -> Result<Selector, String> {
    match v {
        None | Some(Value::Null) => Ok(Selector::everything()),
        v => Selector::from_label_selector_json(v).map_err(|e| e.to_string()),
    }
}

/// `namespaceSelector`: cluster-scoped objects always match (except
/// Namespaces themselves, matched by their own labels), as upstream.
fn namespace_matches(sel: Option<&Value>, s: &Subject<'_>) -> Result<bool, String> {
    let sel = selector(sel)?;
    if sel.is_empty() {
        return Ok(true);
    }
    let labels = if s.attrs.resource.group.is_empty() && s.attrs.resource.resource == "namespaces" {
        s.object.or(s.old_object).map(object::labels).unwrap_or_default()
    } else if !s.attrs.resource.namespaced {
        return Ok(true);
    } else {
        s.namespace.map(object::labels).unwrap_or_default()
    };
    Ok(sel.matches(&labels))
}

/// `objectSelector`: matches when either the new or the old object does.
fn object_matches(sel: Option<&Value>, s: &Subject<'_>) -> Result<bool, String> {
    let sel = selector(sel)?;
    if sel.is_empty() {
        return Ok(true);
    }
    let hit = |o: Option<&Object>| o.is_some_and(|o| sel.matches(&object::labels(o)));
    Ok(hit(s.object) || hit(s.old_object))
}
