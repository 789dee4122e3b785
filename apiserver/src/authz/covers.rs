//! Whether one set of policy rules grants everything another grants, with
//! upstream's semantics (`component-helpers/auth/rbac/validation.Covers`):
//! the granted rules are broken down into single (group, resource, verb,
//! name) or (URL, verb) tuples, and each tuple must be covered by one of the
//! holder's rules. What is left over is reported as upstream's escalation
//! error lists it: simple rules differing only by verb merged, each rendered
//! by `CompactString`, sorted and deduplicated.

use super::rules::PolicyRule;
use crate::selector::go_quote::go_quote;

/// The rules of `granted` that `held` does not cover, broken down to single
/// tuples (empty when `held` covers everything).
pub fn uncovered(held: &[PolicyRule], granted: &[PolicyRule]) -> Vec<PolicyRule> {
    granted
        .iter()
        .flat_map(breakdown)
        .filter(|sub| !held.iter().any(|owner| rule_covers(owner, sub)))
        .collect()
}

/// One rule as rules of at most one verb, group, resource and name, or one
/// verb and non-resource URL.
fn breakdown(rule: &PolicyRule) -> Vec<PolicyRule> {
    let one = |s: &String| vec![s.clone()];
    let mut out = Vec::new();
    for group in &rule.api_groups {
        for resource in &rule.resources {
            for verb in &rule.verbs {
                let base = PolicyRule {
                    verbs: one(verb),
                    api_groups: one(group),
                    resources: one(resource),
                    ..Default::default()
                };
                if rule.resource_names.is_empty() {
                    out.push(base);
                } else {
                    out.extend(rule.resource_names.iter().map(|n| PolicyRule {
                        resource_names: one(n),
                        ..base.clone()
                    }));
                }
            }
        }
    }
    for url in &rule.non_resource_urls {
        for verb in &rule.verbs {
            out.push(PolicyRule {
                verbs: one(verb),
                non_resource_urls: one(url),
                ..Default::default()
            });
        }
    }
    out
}

fn has(set: &[String], want: &str) -> bool {
    set.iter().any(|s| s == want)
}

fn has_all(set: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|w| has(set, w))
}

/// `resources` of the holder cover the wanted ones: `*`, the same name, or
/// `*/<sub>` for a subresource.
fn resources_cover(set: &[String], wanted: &[String]) -> bool {
    if has(set, "*") {
        return true;
    }
    wanted
        .iter()
        .all(|w| has(set, w) || w.split_once('/').is_some_and(|(_, sub)| has(set, &format!("*/{sub}"))))
}

/// An exact URL, or a prefix ending in `*`.
fn url_covers(owner: &str, path: &str) -> bool {
    owner == path || (owner.ends_with('*') && path.starts_with(owner.trim_end_matches('*')))
}

/// Whether `owner` covers `sub`, a rule from [`breakdown`].
fn rule_covers(owner: &PolicyRule, sub: &PolicyRule) -> bool {
    let verbs = has(&owner.verbs, "*") || has_all(&owner.verbs, &sub.verbs);
    let groups = has(&owner.api_groups, "*") || has_all(&owner.api_groups, &sub.api_groups);
    let resources = resources_cover(&owner.resources, &sub.resources);
    let urls = sub
        .non_resource_urls
        .iter()
        .all(|p| owner.non_resource_urls.iter().any(|o| url_covers(o, p)));
    let names = if sub.resource_names.is_empty() {
        owner.resource_names.is_empty()
    } else {
        owner.resource_names.is_empty() || has_all(&owner.resource_names, &sub.resource_names)
    };
    verbs && groups && resources && urls && names
}

/// Upstream's `CompactRules`: rules with exactly one group and one
/// resource and nothing else but verbs are merged per (group, resource).
fn compact(rules: Vec<PolicyRule>) -> Vec<PolicyRule> {
    let mut out: Vec<PolicyRule> = Vec::with_capacity(rules.len());
    let mut simple: Vec<PolicyRule> = Vec::new();
    for rule in rules {
        let is_simple = rule.api_groups.len() == 1
            && rule.resources.len() == 1
            && rule.resource_names.is_empty()
            && rule.non_resource_urls.is_empty();
        if !is_simple {
            out.push(rule);
            continue;
        }
        match simple
            .iter_mut()
            .find(|s| s.api_groups == rule.api_groups && s.resources == rule.resources)
        {
            Some(existing) => existing.verbs.extend(rule.verbs),
            None => simple.push(rule),
        }
    }
    out.extend(simple);
    out
}

/// Go's `%q` of a string slice: `["a" "b"]`.
pub fn go_quoted_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", quoted.join(" "))
}

/// Upstream's `CompactString` of a rule:
/// `{APIGroups:[""], Resources:["pods"], Verbs:["get" "list"]}`.
pub fn compact_string(r: &PolicyRule) -> String {
    let parts: Vec<String> = [
        ("APIGroups", &r.api_groups),
        ("Resources", &r.resources),
        ("NonResourceURLs", &r.non_resource_urls),
        ("ResourceNames", &r.resource_names),
        ("Verbs", &r.verbs),
    ]
    .iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| format!("{k}:{}", go_quoted_list(v)))
    .collect();
    format!("{{{}}}", parts.join(", "))
}

/// The lines upstream's escalation error lists for uncovered rules:
/// compacted, rendered, sorted and without duplicates.
pub fn describe_missing(missing: Vec<PolicyRule>) -> Vec<String> {
    let mut lines: Vec<String> = compact(missing).iter().map(compact_string).collect();
    lines.sort();
    lines.dedup();
    lines
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn rules(v: serde_json::Value) -> Vec<PolicyRule> {
        serde_json::from_value(v).unwrap()
    }

    /// `held` covers `granted` exactly when nothing is listed as missing;
    /// `missing` is the listing upstream's error message would show.
    fn check(held: serde_json::Value, granted: serde_json::Value, missing: &[&str]) {
        let got = describe_missing(uncovered(&rules(held), &rules(granted)));
        assert_eq!(got, missing);
    }

    #[test]
    fn exact_and_wildcard_verbs_groups_resources() {
        let pods_read = json!([{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]);
        check(pods_read.clone(), pods_read.clone(), &[]);
        check(
            pods_read.clone(),
            json!([{"verbs": ["get", "delete", "create"], "apiGroups": [""], "resources": ["pods", "secrets"]}]),
            &[
                r#"{APIGroups:[""], Resources:["pods"], Verbs:["delete" "create"]}"#,
                r#"{APIGroups:[""], Resources:["secrets"], Verbs:["get" "delete" "create"]}"#,
            ],
        );
        let all = json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]);
        check(
            all.clone(),
            json!([{"verbs": ["get", "escalate"], "apiGroups": ["apps", "rbac.authorization.k8s.io"], "resources": ["roles", "deployments/scale"], "resourceNames": ["x"]}]),
            &[],
        );
        // A wildcard is only covered by a wildcard.
        check(
            pods_read,
            json!([{"verbs": ["*"], "apiGroups": [""], "resources": ["pods"]}]),
            &[r#"{APIGroups:[""], Resources:["pods"], Verbs:["*"]}"#],
        );
        check(
            json!([{"verbs": ["get"], "apiGroups": ["", "apps"], "resources": ["*"]}]),
            json!([{"verbs": ["get"], "apiGroups": ["*"], "resources": ["pods"]}]),
            &[r#"{APIGroups:["*"], Resources:["pods"], Verbs:["get"]}"#],
        );
        // Rules without a resource or group grant nothing, so need nothing.
        check(
            json!([]),
            json!([{"verbs": ["get"], "apiGroups": [""], "resources": []}]),
            &[],
        );
        // Several held rules together cover a granted one.
        check(
            json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]},
                   {"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]}]),
            json!([{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]),
            &[],
        );
    }

    #[test]
    fn subresources() {
        let held = json!([{"verbs": ["get"], "apiGroups": ["*"], "resources": ["*/scale", "pods/log"]}]);
        check(
            held.clone(),
            json!([{"verbs": ["get"], "apiGroups": ["apps"], "resources": ["deployments/scale", "pods/log"]}]),
            &[],
        );
        check(
            held.clone(),
            json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["pods", "pods/exec", "*/scale"]}]),
            &[
                r#"{APIGroups:[""], Resources:["pods"], Verbs:["get"]}"#,
                r#"{APIGroups:[""], Resources:["pods/exec"], Verbs:["get"]}"#,
            ],
        );
        // The resource alone does not cover its subresources.
        check(
            json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]),
            json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["pods/status"]}]),
            &[r#"{APIGroups:[""], Resources:["pods/status"], Verbs:["get"]}"#],
        );
    }

    #[test]
    fn resource_names() {
        let named = json!([{"verbs": ["get", "update"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a", "b"]}]);
        check(
            named.clone(),
            json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["b"]}]),
            &[],
        );
        // Named rules do not cover the whole resource, nor other names.
        check(
            named,
            json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a", "c"]},
                   {"verbs": ["update"], "apiGroups": [""], "resources": ["configmaps"]}]),
            &[
                r#"{APIGroups:[""], Resources:["configmaps"], ResourceNames:["c"], Verbs:["get"]}"#,
                r#"{APIGroups:[""], Resources:["configmaps"], Verbs:["update"]}"#,
            ],
        );
        // An unnamed rule covers every name.
        check(
            json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"]}]),
            json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["x"]}]),
            &[],
        );
    }

    #[test]
    fn non_resource_urls() {
        let held = json!([{"verbs": ["get"], "nonResourceURLs": ["/healthz", "/apis/*"]}]);
        check(
            held.clone(),
            json!([{"verbs": ["get"], "nonResourceURLs": ["/healthz", "/apis/apps", "/apis/*"]}]),
            &[],
        );
        check(
            held,
            json!([{"verbs": ["get", "post"], "nonResourceURLs": ["/metrics", "/healthz"]}]),
            &[
                r#"{NonResourceURLs:["/healthz"], Verbs:["post"]}"#,
                r#"{NonResourceURLs:["/metrics"], Verbs:["get"]}"#,
                r#"{NonResourceURLs:["/metrics"], Verbs:["post"]}"#,
            ],
        );
        check(
            json!([{"verbs": ["*"], "nonResourceURLs": ["*"]}]),
            json!([{"verbs": ["get"], "nonResourceURLs": ["/anything", "*"]}]),
            &[],
        );
        // Resource rules never cover URLs and the reverse.
        check(
            json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]),
            json!([{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]),
            &[r#"{NonResourceURLs:["/healthz"], Verbs:["get"]}"#],
        );
    }

    #[test]
    fn compact_strings_quote_like_go() {
        let r = PolicyRule {
            verbs: vec!["get".into()],
            api_groups: vec!["a\"b".into()],
            resources: vec!["x\ny".into()],
            ..Default::default()
        };
        assert_eq!(
            compact_string(&r),
            r#"{APIGroups:["a\"b"], Resources:["x\ny"], Verbs:["get"]}"#
        );
        assert_eq!(go_quoted_list(&[]), "[]");
    }
}
