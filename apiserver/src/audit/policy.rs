//! The audit policy (`audit.k8s.io/v1` Policy, `--audit-policy-file`): the
//! first rule matching a request gives its level and the stages to omit,
//! as upstream's `policy.Checker`; no matching rule means level `None`.

use std::path::Path;

use serde::Deserialize;

use crate::authn::UserInfo;
use crate::request_info::RequestInfo;

/// How much of a request is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
pub enum Level {
    /// Nothing.
    None,
    /// User, verb, resource, timestamps and response code; no bodies.
    Metadata,
    /// Metadata and the request body.
    Request,
    /// Metadata, request and response bodies.
    RequestResponse,
}

/// A point in the life of a request at which an event is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
pub enum Stage {
    /// As soon as the request is received, before it is handled.
    RequestReceived,
    /// When the headers of a long-running response (watch) are sent.
    ResponseStarted,
    /// When the response is complete.
    ResponseComplete,
    /// When the handler panicked.
    Panic,
}

/// Why a policy file was refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("failed to read audit policy file {path:?}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("failed decoding audit policy file {path:?}: {message}")]
    Decode { path: String, message: String },
    #[error("invalid audit policy file {path:?}: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub omit_stages: Vec<Stage>,
    #[serde(default)]
    pub omit_managed_fields: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub level: Level,
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub user_groups: Vec<String>,
    #[serde(default)]
    pub verbs: Vec<String>,
    #[serde(default)]
    pub resources: Vec<GroupResources>,
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default, rename = "nonResourceURLs")]
    pub non_resource_urls: Vec<String>,
    #[serde(default)]
    pub omit_stages: Vec<Stage>,
    pub omit_managed_fields: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupResources {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub resource_names: Vec<String>,
}

/// What the policy decides for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub level: Level,
    pub omit_stages: Vec<Stage>,
    pub omit_managed_fields: bool,
}

impl Policy {
    /// Reads and checks a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: p.clone(),
            source,
        })?;
        Self::parse(&text).map_err(|(decode, message)| match decode {
            true => PolicyError::Decode { path: p, message },
            false => PolicyError::Invalid { path: p, message },
        })
    }

    fn parse(text: &str) -> Result<Policy, (bool, String)> {
        let policy: Policy = serde_saphyr::from_str(text).map_err(|e| (true, e.to_string()))?;
        if policy.kind != "Policy" || !matches!(policy.api_version.as_str(), "audit.k8s.io/v1") {
            return Err((
                true,
                format!(
                    "no kind \"{}\" is registered for version \"{}\"",
                    policy.kind, policy.api_version
                ),
            ));
        }
        if policy.rules.is_empty() {
            // Upstream refuses a policy without rules: it would log nothing.
            return Err((false, "loaded illegal policy with 0 rules".into()));
        }
        for (i, r) in policy.rules.iter().enumerate() {
            if !r.non_resource_urls.is_empty() && (!r.resources.is_empty() || !r.namespaces.is_empty()) {
                return Err((
                    false,
                    format!(
                        "rules[{i}].nonResourceURLs: Invalid value: rules cannot apply to both regular resources and non-resource URLs"
                    ),
                ));
            }
        }
        Ok(policy)
    }

    /// The level and omitted stages for a request.
    pub fn decide(&self, user: &UserInfo, info: &RequestInfo) -> Decision {
        for rule in &self.rules {
            if rule.matches(user, info) {
                let mut omit = self.omit_stages.clone();
                omit.extend(
                    rule.omit_stages
                        .iter()
                        .copied()
                        .filter(|s| !self.omit_stages.contains(s)),
                );
                return Decision {
                    level: rule.level,
                    omit_stages: omit,
                    omit_managed_fields: rule.omit_managed_fields.unwrap_or(self.omit_managed_fields),
                };
            }
        }
        Decision {
            level: Level::None,
            omit_stages: Vec::new(),
            omit_managed_fields: false,
        }
    }
}

impl Rule {
    fn matches(&self, user: &UserInfo, info: &RequestInfo) -> bool {
        if !self.users.is_empty() && !self.users.contains(&user.name) {
            return false;
        }
        if !self.user_groups.is_empty() && !user.groups.iter().any(|g| self.user_groups.contains(g)) {
            return false;
        }
        if !self.verbs.is_empty() && !self.verbs.contains(&info.verb) {
            return false;
        }
        if self.namespaces.is_empty() && self.resources.is_empty() && self.non_resource_urls.is_empty() {
            return true;
        }
        if info.is_resource_request {
            self.matches_resource(info)
        } else {
            self.non_resource_urls.iter().any(|u| match u.strip_suffix('*') {
                Some(prefix) => info.path.starts_with(prefix),
                None => *u == info.path,
            })
        }
    }

    fn matches_resource(&self, info: &RequestInfo) -> bool {
        if !self.non_resource_urls.is_empty() {
            return false;
        }
        if !self.namespaces.is_empty() && !self.namespaces.contains(&info.namespace) {
            return false;
        }
        if self.resources.is_empty() {
            return true;
        }
        let combined = if info.subresource.is_empty() {
            info.resource.clone()
        } else {
            format!("{}/{}", info.resource, info.subresource)
        };
        self.resources.iter().any(|gr| {
            if gr.group != info.api_group {
                return false;
            }
            if gr.resources.is_empty() {
                return true;
            }
            if !gr.resource_names.is_empty() && !gr.resource_names.contains(&info.name) {
                return false;
            }
            gr.resources.iter().any(|r| {
                r == "*"
                    || *r == combined
                    || (r.ends_with("/*") && !info.subresource.is_empty() && r[..r.len() - 2] == info.resource)
                    || (r.starts_with("*/") && r[2..] == info.subresource)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;

    const POLICY: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    users: ["system:kube-proxy"]
    verbs: [watch]
    resources: [{group: "", resources: [endpoints, services]}]
  - level: None
    userGroups: ["system:authenticated"]
    nonResourceURLs: ["/api*", "/version"]
  - level: RequestResponse
    resources: [{group: "", resources: [pods/log, "*/status"]}]
  - level: Request
    resources: [{group: "", resources: [configmaps], resourceNames: [controller-leader]}]
    namespaces: [kube-system]
  - level: Metadata
    resources: [{group: "", resources: [secrets]}]
    omitStages: [ResponseStarted]
  - level: Request
    resources: [{group: apps}]
  - level: Metadata
"#;

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn first_matching_rule_decides() {
        let policy = Policy::parse(POLICY).unwrap();
        let alice = user("alice", &["system:authenticated"]);
        let check = |u: &UserInfo, method: Method, path: &str, query: Option<&str>, want: Level| {
            let info = crate::request_info::parse(&method, path, query);
            assert_eq!(policy.decide(u, &info).level, want, "{method} {path}");
        };
        let proxy = user("system:kube-proxy", &["system:authenticated"]);
        check(&proxy, Method::GET, "/api/v1/services", Some("watch=true"), Level::None);
        check(&proxy, Method::GET, "/api/v1/services", None, Level::Metadata);
        check(
            &user("system:kube-proxy", &[]),
            Method::GET,
            "/api/v1/endpoints",
            Some("watch=1"),
            Level::None,
        );
        check(&alice, Method::GET, "/apis", None, Level::None);
        check(&alice, Method::GET, "/version", None, Level::None);
        check(&alice, Method::GET, "/healthz", None, Level::Metadata);
        check(
            &alice,
            Method::GET,
            "/api/v1/namespaces/d/pods/p/log",
            None,
            Level::RequestResponse,
        );
        check(
            &alice,
            Method::PUT,
            "/api/v1/nodes/n/status",
            None,
            Level::RequestResponse,
        );
        check(
            &alice,
            Method::PUT,
            "/api/v1/namespaces/kube-system/configmaps/controller-leader",
            None,
            Level::Request,
        );
        check(
            &alice,
            Method::PUT,
            "/api/v1/namespaces/default/configmaps/controller-leader",
            None,
            Level::Metadata,
        );
        check(
            &alice,
            Method::PUT,
            "/api/v1/namespaces/kube-system/configmaps/other",
            None,
            Level::Metadata,
        );
        check(
            &alice,
            Method::POST,
            "/apis/apps/v1/namespaces/d/deployments",
            None,
            Level::Request,
        );
        let info = crate::request_info::parse(&Method::GET, "/api/v1/namespaces/d/secrets", None);
        let d = policy.decide(&alice, &info);
        assert_eq!(
            (d.level, d.omit_stages),
            (Level::Metadata, vec![Stage::RequestReceived, Stage::ResponseStarted])
        );
    }

    #[test]
    fn refuses_bad_policies() {
        assert!(Policy::parse("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n").is_err());
        assert!(Policy::parse("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: Loud}]\n").is_err());
        assert!(Policy::parse("apiVersion: v1\nkind: Policy\nrules: [{level: None}]\n").is_err());
        assert!(
            Policy::parse(
                "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None, nonResourceURLs: [/x], resources: [{group: ''}]}]\n"
            )
            .is_err()
        );
    }
}
