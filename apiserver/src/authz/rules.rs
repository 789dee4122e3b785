//! RBAC's building blocks as they are stored (`rbac.authorization.k8s.io/v1`
//! PolicyRule, Subject, RoleRef) and the matching of one rule or subject
//! against a request, with upstream's semantics (`rbac.RuleAllows`,
//! `appliesToUser`).

use serde::Deserialize;

use super::Attributes;
use crate::authn::UserInfo;

/// The prefix of a service account's user name.
pub const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// One rule of a Role or ClusterRole.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    #[serde(default)]
    pub verbs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_names: Vec<String>,
    #[serde(default, rename = "nonResourceURLs", skip_serializing_if = "Vec::is_empty")]
    pub non_resource_urls: Vec<String>,
}

/// Who a binding grants its role to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
}

/// The role a binding refers to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleRef {
    #[serde(default)]
    pub api_group: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
}

fn has(list: &[String], want: &str) -> bool {
    list.iter().any(|v| v == want)
}

fn has_or_star(list: &[String], want: &str) -> bool {
    list.iter().any(|v| v == "*" || v == want)
}

impl PolicyRule {
    /// Whether this rule allows the request.
    pub fn allows(&self, a: &Attributes) -> bool {
        if !has_or_star(&self.verbs, &a.verb) {
            return false;
        }
        if !a.is_resource_request {
            return self.non_resource_url_matches(&a.path);
        }
        has_or_star(&self.api_groups, &a.api_group)
            && self.resource_matches(&a.resource, &a.subresource)
            && (self.resource_names.is_empty() || has(&self.resource_names, &a.name))
    }

    /// `resources` holds `*`, `resource`, `resource/sub` or `*/sub`.
    fn resource_matches(&self, resource: &str, subresource: &str) -> bool {
        self.resources.iter().any(|r| {
            if r == "*" {
                return true;
            }
            if subresource.is_empty() {
                return r == resource;
            }
            match r.split_once('/') {
                Some((res, sub)) => sub == subresource && (res == resource || res == "*"),
                None => false,
            }
        })
    }

    /// `nonResourceURLs` holds exact paths, `*`, or prefixes ending in `*`.
    fn non_resource_url_matches(&self, path: &str) -> bool {
        self.non_resource_urls
            .iter()
            .any(|u| u == "*" || u == path || u.strip_suffix('*').is_some_and(|prefix| path.starts_with(prefix)))
    }
}

impl Subject {
    /// Whether the subject names `user`; `namespace` is the binding's
    /// (a ServiceAccount subject without a namespace means that one).
    pub fn applies_to(&self, user: &UserInfo, namespace: &str) -> bool {
        match self.kind.as_str() {
            "User" => user.name == self.name,
            "Group" => user.groups.contains(&self.name),
            "ServiceAccount" => self.user_name(namespace).is_some_and(|n| n == user.name),
            _ => false,
        }
    }

    /// The user name a subject stands for: the name of a User, the service
    /// account user of a ServiceAccount (`None` without any namespace);
    /// `None` for a Group.
    pub fn user_name(&self, namespace: &str) -> Option<String> {
        match self.kind.as_str() {
            "User" => Some(self.name.clone()),
            "ServiceAccount" => {
                let ns = if self.namespace.is_empty() {
                    namespace
                } else {
                    &self.namespace
                };
                (!ns.is_empty()).then(|| format!("{SERVICE_ACCOUNT_PREFIX}{ns}:{}", self.name))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn rule(v: serde_json::Value) -> PolicyRule {
        serde_json::from_value(v).unwrap()
    }

    fn res(verb: &str, group: &str, resource: &str, sub: &str, name: &str) -> Attributes {
        Attributes {
            user: UserInfo::anonymous(),
            verb: verb.into(),
            is_resource_request: true,
            api_group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            name: name.into(),
            namespace: "ns".into(),
            ..Default::default()
        }
    }

    fn path(verb: &str, path: &str) -> Attributes {
        Attributes {
            user: UserInfo::anonymous(),
            verb: verb.into(),
            path: path.into(),
            ..Default::default()
        }
    }

    #[test]
    fn resource_rules() {
        let r =
            rule(serde_json::json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "pods/log"]}));
        assert!(r.allows(&res("get", "", "pods", "", "p")));
        assert!(r.allows(&res("list", "", "pods", "", "")));
        assert!(r.allows(&res("get", "", "pods", "log", "p")));
        assert!(!r.allows(&res("get", "", "pods", "status", "p")));
        assert!(!r.allows(&res("create", "", "pods", "", "")));
        assert!(!r.allows(&res("get", "apps", "pods", "", "p")));
        assert!(!r.allows(&res("get", "", "services", "", "p")));
        // A rule without a subresource does not grant the subresource.
        let r = rule(serde_json::json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["deployments"]}));
        assert!(r.allows(&res("delete", "apps", "deployments", "", "d")));
        assert!(!r.allows(&res("get", "apps", "deployments", "scale", "d")));
        let r = rule(serde_json::json!({"verbs": ["get"], "apiGroups": ["*"], "resources": ["*/scale"]}));
        assert!(r.allows(&res("get", "apps", "deployments", "scale", "d")));
        assert!(!r.allows(&res("get", "apps", "deployments", "", "d")));
        let r = rule(serde_json::json!({"verbs": ["get"], "apiGroups": [""], "resources": ["*"]}));
        assert!(r.allows(&res("get", "", "pods", "status", "p")));
        // A rule without non-resource URLs grants no path.
        assert!(!r.allows(&path("get", "/healthz")));
    }

    #[test]
    fn resource_names() {
        let r = rule(
            serde_json::json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"]}),
        );
        assert!(r.allows(&res("get", "", "configmaps", "", "a")));
        assert!(!r.allows(&res("get", "", "configmaps", "", "b")));
        assert!(!r.allows(&res("list", "", "configmaps", "", "")));
    }

    #[test]
    fn non_resource_urls() {
        let r = rule(serde_json::json!({"verbs": ["get"], "nonResourceURLs": ["/healthz", "/api", "/api/*"]}));
        assert!(r.allows(&path("get", "/healthz")));
        assert!(r.allows(&path("get", "/api")));
        assert!(r.allows(&path("get", "/api/v1")));
        assert!(!r.allows(&path("get", "/apis")));
        assert!(!r.allows(&path("post", "/healthz")));
        assert!(!r.allows(&res("get", "", "healthz", "", "")));
        let r = rule(serde_json::json!({"verbs": ["*"], "nonResourceURLs": ["*"]}));
        assert!(r.allows(&path("put", "/anything")));
    }

    #[test]
    fn subjects() {
        let alice = UserInfo {
            name: "alice".into(),
            groups: vec!["devs".into()],
            ..Default::default()
        };
        let sa = UserInfo {
            name: "system:serviceaccount:ns:robot".into(),
            ..Default::default()
        };
        let s = |kind: &str, name: &str, ns: &str| Subject {
            kind: kind.into(),
            name: name.into(),
            namespace: ns.into(),
        };
        assert!(s("User", "alice", "").applies_to(&alice, ""));
        assert!(!s("User", "bob", "").applies_to(&alice, ""));
        assert!(s("Group", "devs", "").applies_to(&alice, ""));
        assert!(!s("Group", "alice", "").applies_to(&alice, ""));
        assert!(s("ServiceAccount", "robot", "ns").applies_to(&sa, ""));
        assert!(s("ServiceAccount", "robot", "").applies_to(&sa, "ns"));
        assert!(!s("ServiceAccount", "robot", "").applies_to(&sa, ""));
        assert!(!s("ServiceAccount", "robot", "other").applies_to(&sa, "ns"));
    }
}
