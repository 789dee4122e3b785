//! Which webhooks a request goes to, like upstream's
//! `admission/plugin/webhook/predicates`: `rules` (operations, apiGroups,
//! apiVersions, resources with subresources and wildcards, scope) under the
//! webhook's `matchPolicy`, then `namespaceSelector` and `objectSelector`.

use serde_json::Value;

use crate::registry::object::Object;
use crate::selector::Selector;

use super::super::{Attributes, Operation};

/// The request as the rules see it.
pub struct RequestFacts<'a> {
    pub operation: Operation,
    pub group: &'a str,
    pub version: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub namespaced: bool,
}

impl<'a> RequestFacts<'a> {
    pub fn of(attrs: &'a Attributes<'_>) -> Self {
        RequestFacts {
            operation: attrs.operation,
            group: &attrs.resource.group,
            version: &attrs.resource.version,
            resource: &attrs.resource.resource,
            subresource: attrs.subresource,
            namespaced: attrs.resource.namespaced,
        }
    }
}

fn operation_name(op: Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
    }
}

fn strings(v: Option<&Value>) -> impl Iterator<Item = &str> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

fn has(list: Option<&Value>, want: &str) -> bool {
    strings(list).any(|s| s == "*" || s == want)
}

/// `rule.Matcher.Matches` for one RuleWithOperations; `exact_version` off
/// (matchPolicy Equivalent) ignores the rule's apiVersions, since every
/// version this server serves of a resource is the same resource.
fn rule_matches(rule: &Value, req: &RequestFacts<'_>, exact_version: bool) -> bool {
    if !has(rule.get("operations"), operation_name(req.operation)) {
        return false;
    }
    if !has(rule.get("apiGroups"), req.group) {
        return false;
    }
    if exact_version && !has(rule.get("apiVersions"), req.version) {
        return false;
    }
    let scope_ok = match rule.get("scope").and_then(Value::as_str).unwrap_or("*") {
        "Cluster" => !req.namespaced,
        "Namespaced" => req.namespaced,
        _ => true,
    };
    scope_ok && resource_matches(rule.get("resources"), req.resource, req.subresource)
}

/// `resources` entries: `pods`, `pods/status`, `pods/*`, `*`, `*/scale`, `*/*`.
fn resource_matches(resources: Option<&Value>, resource: &str, subresource: &str) -> bool {
    let full = if subresource.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}/{subresource}")
    };
    strings(resources).any(|r| {
        if r == "*/*" || r == full {
            return true;
        }
        match r.split_once('/') {
            None => r == "*" && subresource.is_empty(),
            Some((res, sub)) => {
                (res == "*" || res == resource) && (sub == "*" || sub == subresource) && !subresource.is_empty()
            }
        }
    })
}

/// Whether any of `webhook.rules` matches, under its matchPolicy
/// (`Equivalent` by default).
pub fn rules_match(webhook: &Value, req: &RequestFacts<'_>) -> bool {
    let exact = webhook.get("matchPolicy").and_then(Value::as_str) == Some("Exact");
    let rules: Vec<&Value> = webhook
        .get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    rules.iter().any(|r| rule_matches(r, req, true)) || (!exact && rules.iter().any(|r| rule_matches(r, req, false)))
}

/// A selector field; absent means everything, like upstream's defaulting.
fn selector(webhook: &Value, field: &str) -> Result<Selector, String> {
    match webhook.get(field) {
        None | Some(Value::Null) => Ok(Selector::everything()),
        some => Selector::from_label_selector_json(some).map_err(|e| e.to_string()),
    }
}

/// `namespaceSelector` against the labels of the request's namespace
/// (`None` for cluster-scoped requests, which always match, except
/// namespaces themselves, judged by their own labels).
pub fn namespace_matches(webhook: &Value, namespace: Option<&Object>) -> Result<bool, String> {
    let sel = selector(webhook, "namespaceSelector")?;
    Ok(match namespace {
        None => true,
        Some(ns) => sel.matches_object(ns),
    })
}

/// `objectSelector` against the new or the old object: either matching is
/// enough (upstream's `MatchObjectSelector`).
pub fn object_matches(webhook: &Value, new: Option<&Object>, old: Option<&Object>) -> Result<bool, String> {
    let sel = selector(webhook, "objectSelector")?;
    if sel.is_empty() {
        return Ok(true);
    }
    Ok(new.is_some_and(|o| sel.matches_object(o)) || old.is_some_and(|o| sel.matches_object(o)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn req<'a>(op: Operation, group: &'a str, resource: &'a str, sub: &'a str, namespaced: bool) -> RequestFacts<'a> {
        RequestFacts {
            operation: op,
            group,
            version: "v1",
            resource,
            subresource: sub,
            namespaced,
        }
    }

    fn check(rule: Value, policy: &str, r: &RequestFacts<'_>, want: bool) {
        let hook = json!({"rules": [rule], "matchPolicy": policy});
        assert_eq!(
            rules_match(&hook, r),
            want,
            "{hook} vs {}/{}",
            r.resource,
            r.subresource
        );
    }

    #[test]
    fn rules_with_wildcards_subresources_and_scope() {
        let pods = req(Operation::Create, "", "pods", "", true);
        let pod_status = req(Operation::Update, "", "pods", "status", true);
        let deploy_scale = req(Operation::Update, "apps", "deployments", "scale", true);
        let nodes = req(Operation::Create, "", "nodes", "", false);
        let base =
            |res: Value| json!({"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": res});
        check(base(json!(["pods"])), "Exact", &pods, true);
        check(base(json!(["pods"])), "Exact", &pod_status, false);
        check(base(json!(["pods/status"])), "Exact", &pod_status, true);
        check(base(json!(["pods/*"])), "Exact", &pod_status, true);
        check(base(json!(["pods/*"])), "Exact", &pods, false);
        check(base(json!(["*"])), "Exact", &pods, true);
        check(base(json!(["*"])), "Exact", &pod_status, false);
        check(base(json!(["*/scale"])), "Exact", &deploy_scale, true);
        check(base(json!(["*/scale"])), "Exact", &pod_status, false);
        check(base(json!(["*/*"])), "Exact", &pod_status, true);
        check(base(json!(["*/*"])), "Exact", &pods, true);
        let mut namespaced = base(json!(["*"]));
        namespaced["scope"] = json!("Namespaced");
        check(namespaced.clone(), "Exact", &nodes, false);
        check(namespaced, "Exact", &pods, true);
        let mut cluster = base(json!(["*"]));
        cluster["scope"] = json!("Cluster");
        check(cluster, "Exact", &nodes, true);
    }

    #[test]
    fn operations_groups_and_match_policy() {
        let pods = req(Operation::Create, "", "pods", "", true);
        let rule = json!({"operations": ["UPDATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]});
        check(rule, "Exact", &pods, false);
        let rule =
            json!({"operations": ["CREATE"], "apiGroups": ["apps"], "apiVersions": ["v1"], "resources": ["pods"]});
        check(rule, "Equivalent", &pods, false);
        let other_version =
            json!({"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1beta1"], "resources": ["pods"]});
        check(other_version.clone(), "Exact", &pods, false);
        check(other_version.clone(), "Equivalent", &pods, true);
        // Equivalent is the default.
        let hook = json!({"rules": [other_version]});
        assert!(rules_match(&hook, &pods));
    }

    #[test]
    fn selectors() {
        let labelled: Object = serde_json::from_value(json!({"metadata": {"labels": {"team": "a"}}})).unwrap();
        let bare: Object = serde_json::from_value(json!({"metadata": {}})).unwrap();
        let hook = json!({"namespaceSelector": {"matchLabels": {"team": "a"}},
            "objectSelector": {"matchExpressions": [{"key": "team", "operator": "Exists"}]}});
        assert_eq!(namespace_matches(&hook, Some(&labelled)), Ok(true));
        assert_eq!(namespace_matches(&hook, Some(&bare)), Ok(false));
        assert_eq!(namespace_matches(&hook, None), Ok(true));
        assert_eq!(object_matches(&hook, Some(&bare), Some(&labelled)), Ok(true));
        assert_eq!(object_matches(&hook, Some(&bare), None), Ok(false));
        assert_eq!(object_matches(&json!({}), None, None), Ok(true));
        let bad = json!({"objectSelector": {"matchExpressions": [{"key": "x", "operator": "Near"}]}});
        assert!(object_matches(&bad, Some(&bare), None).is_err());
    }
}
