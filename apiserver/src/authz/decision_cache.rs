//! The RBAC authorizer's decisions, remembered for one [`PolicyIndex`]:
//! a request that asks what an earlier one asked (same user and groups,
//! verb, namespace, group, resource, subresource, name, or non-resource
//! path) gets the earlier answer without walking the bindings again.
//!
//! Each index has its own cache, and an index is replaced whenever a Role,
//! ClusterRole or binding changes (aggregation writes ClusterRoles too), so
//! a remembered decision never outlives the policy it was made on: the
//! invalidation upstream's RBAC authorizer gets from its informers.
//!
//! [`PolicyIndex`]: super::rbac::PolicyIndex

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Mutex;

use super::{Attributes, Decision};

/// Decisions kept before the cache starts over (a few MiB at most; one
/// entry per distinct user and request shape, names included).
const MAX_ENTRIES: usize = 16_384;

/// Decisions by request, for one policy.
#[derive(Debug, Default)]
pub struct DecisionCache {
    entries: Mutex<HashMap<String, (Decision, String)>>,
}

impl DecisionCache {
    /// The remembered answer to `a`, else `decide`'s, remembered.
    pub fn get_or_decide(&self, a: &Attributes, decide: impl FnOnce() -> (Decision, String)) -> (Decision, String) {
        let key = key(a);
        if let Some(hit) = self.lock().get(&key) {
            return hit.clone();
        }
        let answer = decide();
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, answer.clone());
        answer
    }

    /// How many decisions are remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Decision, String)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What RBAC looks at in a request, each part length-prefixed so that no
/// two requests share a key: the user's name and groups (bindings' subjects),
/// the namespace (RoleBindings), and what rules match (verb, then the
/// resource, subresource and name, or the non-resource path).
fn key(a: &Attributes) -> String {
    let mut key = String::with_capacity(128);
    let mut part = |s: &str| {
        let _ = write!(key, "{}:{s}", s.len());
    };
    part(&a.user.name);
    part(&a.user.groups.len().to_string());
    for g in &a.user.groups {
        part(g);
    }
    part(&a.verb);
    part(&a.namespace);
    if a.is_resource_request {
        part("r");
        part(&a.api_group);
        part(&a.resource);
        part(&a.subresource);
        part(&a.name);
    } else {
        part("n");
        part(&a.path);
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authn::UserInfo;

    fn attrs(user: &str, groups: &[&str], verb: &str, ns: &str, name: &str) -> Attributes {
        Attributes {
            user: UserInfo {
                name: user.into(),
                groups: groups.iter().map(|g| g.to_string()).collect(),
                ..Default::default()
            },
            verb: verb.into(),
            is_resource_request: true,
            namespace: ns.into(),
            resource: "pods".into(),
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn keys_tell_every_field_apart() {
        let base = attrs("alice", &["dev"], "get", "ns", "p");
        let others = [
            attrs("bob", &["dev"], "get", "ns", "p"),
            attrs("alice", &["ops"], "get", "ns", "p"),
            attrs("alice", &["dev", "ops"], "get", "ns", "p"),
            attrs("alice", &[], "get", "ns", "p"),
            attrs("alice", &["dev"], "list", "ns", "p"),
            attrs("alice", &["dev"], "get", "other", "p"),
            attrs("alice", &["dev"], "get", "ns", "q"),
            attrs("alice", &["dev"], "get", "ns", ""),
            Attributes {
                subresource: "status".into(),
                ..base.clone()
            },
            Attributes {
                api_group: "apps".into(),
                ..base.clone()
            },
            Attributes {
                resource: "secrets".into(),
                ..base.clone()
            },
            Attributes {
                is_resource_request: false,
                ..base.clone()
            },
            // Separators in names cannot make two requests one.
            attrs("alice:3", &["dev"], "get", "ns", "p"),
            attrs("alice", &["dev:get"], "ns", "p", ""),
        ];
        for other in &others {
            assert_ne!(key(&base), key(other), "{other:?}");
        }
        // What RBAC does not look at does not split the cache.
        let same = Attributes {
            api_version: "v2".into(),
            field_selector: "a=b".into(),
            user: UserInfo {
                uid: "u-1".into(),
                ..base.user.clone()
            },
            ..base.clone()
        };
        assert_eq!(key(&base), key(&same));
    }

    #[test]
    fn answers_are_remembered_per_request() {
        let cache = DecisionCache::default();
        let mut calls = 0;
        let a = attrs("alice", &["dev"], "get", "ns", "p");
        let mut ask = |a: &Attributes, d: Decision| {
            cache.get_or_decide(a, || {
                calls += 1;
                (d, "why".into())
            })
        };
        assert_eq!(ask(&a, Decision::Allow).0, Decision::Allow);
        // The second ask is answered from the cache, whatever would be decided now.
        assert_eq!(ask(&a, Decision::NoOpinion(String::new())).0, Decision::Allow);
        let b = attrs("alice", &["dev"], "delete", "ns", "p");
        assert_eq!(
            ask(&b, Decision::NoOpinion("no".into())).0,
            Decision::NoOpinion("no".into())
        );
        assert_eq!(calls, 2);
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn a_full_cache_starts_over() {
        let cache = DecisionCache::default();
        for i in 0..MAX_ENTRIES + 1 {
            let a = attrs("alice", &[], "get", "ns", &format!("p-{i}"));
            cache.get_or_decide(&a, || (Decision::Allow, String::new()));
        }
        assert_eq!(cache.len(), 1);
    }
}
