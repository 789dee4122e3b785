//! ClusterRole aggregation (upstream's clusterrole-aggregation controller,
//! kept in the apiserver): a ClusterRole with an `aggregationRule` has as
//! rules the union of the rules of the ClusterRoles its selectors match
//! (by selector, then by name; duplicates dropped; never itself).
//!
//! A background task looks at the ClusterRoles in the watch cache whenever
//! their revision moves and writes the roles whose rules differ.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::rbac::GROUP;
use super::rules::PolicyRule;
use crate::registry::Registry;
use crate::registry::list::Predicate;
use crate::registry::object::Object;
use crate::registry::store::UpdateOptions;
use crate::selector::labels::Selector;

/// How often the task checks the ClusterRoles' revision.
const POLL: Duration = Duration::from_millis(500);

fn name(obj: &Object) -> &str {
    obj.get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn rules(obj: &Object) -> Vec<PolicyRule> {
    obj.get("rules")
        .and_then(|r| serde_json::from_value(r.clone()).ok())
        .unwrap_or_default()
}

/// The aggregated rules of every aggregated ClusterRole among `roles` whose
/// rules are not yet those: `(name, rules)`.
pub fn aggregate(roles: &[Object]) -> Vec<(String, Vec<PolicyRule>)> {
    let mut sorted: Vec<&Object> = roles.iter().collect();
    sorted.sort_by(|a, b| name(a).cmp(name(b)));
    let mut changes = Vec::new();
    for role in roles {
        let Some(selectors) = role
            .get("aggregationRule")
            .and_then(|a| a.get("clusterRoleSelectors"))
            .and_then(Value::as_array)
        else {
            continue;
        };
        let mut want: Vec<PolicyRule> = Vec::new();
        for sel in selectors {
            let Ok(selector) = Selector::from_label_selector_json(Some(sel)) else {
                continue;
            };
            for other in &sorted {
                if name(other) == name(role) || !selector.matches_object(other) {
                    continue;
                }
                for r in rules(other) {
                    if !want.contains(&r) {
                        want.push(r);
                    }
                }
            }
        }
        if want != rules(role) {
            changes.push((name(role).to_string(), want));
        }
    }
    changes
}

/// Runs aggregation whenever the ClusterRoles change, until aborted.
pub fn spawn(registry: Arc<Registry>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Some(store) = registry.store(GROUP, "clusterroles").cloned() else {
            return;
        };
        let prefix = store.storage_prefix().to_string();
        let Some(cache) = registry.cache.resource(&prefix) else {
            return;
        };
        registry.cache.wait_ready().await;
        let mut seen = None;
        loop {
            let revision = cache.revision();
            if seen != Some(revision) {
                seen = Some(revision);
                let roles: Vec<Object> = cache
                    .list(&prefix, &Predicate::everything(), 0, 0)
                    .items
                    .iter()
                    .filter_map(|o| serde_json::from_slice(&o.body).ok())
                    .collect();
                for (role, want) in aggregate(&roles) {
                    let value = serde_json::to_value(&want).unwrap_or(Value::Null);
                    let result = store
                        .update_with(
                            "",
                            &role,
                            &UpdateOptions::default(),
                            |old| {
                                let mut obj = old.clone();
                                obj.insert("rules".into(), value.clone());
                                Ok(obj)
                            },
                            None,
                        )
                        .await;
                    match result {
                        Ok(_) => tracing::info!(clusterrole = %role, "aggregated cluster role rules"),
                        Err(e) => tracing::warn!(clusterrole = %role, error = %e.message, "aggregating cluster role"),
                    }
                }
            }
            tokio::time::sleep(POLL).await;
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Object {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn unions_matching_roles_by_name() {
        let agg = obj(json!({"metadata": {"name": "agg"},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"to-agg": "true"}}]}}));
        let b = obj(json!({"metadata": {"name": "b", "labels": {"to-agg": "true"}},
            "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]}));
        let a = obj(json!({"metadata": {"name": "a", "labels": {"to-agg": "true"}},
            "rules": [{"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]},
                      {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]}));
        let other = obj(json!({"metadata": {"name": "c"},
            "rules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]}));
        let changes = aggregate(&[agg.clone(), b.clone(), a.clone(), other.clone()]);
        assert_eq!(changes.len(), 1);
        let (name, rules) = &changes[0];
        assert_eq!(name, "agg");
        assert_eq!(
            serde_json::to_value(rules).unwrap(),
            json!([{"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]},
                   {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}])
        );
        // Once written, nothing changes.
        let mut done = agg;
        done.insert("rules".into(), serde_json::to_value(rules).unwrap());
        assert!(aggregate(&[done, b, a, other]).is_empty());
    }

    #[test]
    fn the_bootstrap_roles_are_already_aggregated() {
        let policy = super::super::policy::bootstrap_policy().unwrap();
        let changes = aggregate(&policy.cluster_roles);
        assert!(
            changes.is_empty(),
            "{:?}",
            changes.iter().map(|c| &c.0).collect::<Vec<_>>()
        );
    }
}
