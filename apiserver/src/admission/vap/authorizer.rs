//! The server's authorizer behind CEL's `authorizer` variable: checks as
//! the request's user (or `authorizer.serviceAccount(ns, name)`), decided
//! on the current RBAC cache like the request itself.

use std::sync::Arc;

use crate::authn::UserInfo;
use crate::authz::{Attributes, Authorizer};
use crate::cel::authorizer::{Authorize, Check, Decision};

/// The chain's authorizer, if the server gave it one (unit-test chains
/// have none, and their `authorizer` checks fail as unavailable).
#[derive(Clone, Default)]
pub struct AuthorizerSlot(pub Option<Arc<Authorizer>>);

impl std::fmt::Debug for AuthorizerSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "AuthorizerSlot(set)"
        } else {
            "AuthorizerSlot(none)"
        })
    }
}

/// Every chain's authorizer is the server's: chains compare by plugins.
impl PartialEq for AuthorizerSlot {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for AuthorizerSlot {}

/// Checks as one user.
pub struct AsUser {
    pub authorizer: Option<Arc<Authorizer>>,
    pub user: UserInfo,
}

impl std::fmt::Debug for AsUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsUser").field("user", &self.user.name).finish()
    }
}

/// The user a service account authenticates as (upstream's
/// `ServiceAccountInfo.UserInfo`: no `system:authenticated`).
fn service_account_user(namespace: &str, name: &str) -> UserInfo {
    UserInfo {
        name: format!("system:serviceaccount:{namespace}:{name}"),
        groups: vec![
            "system:serviceaccounts".to_string(),
            format!("system:serviceaccounts:{namespace}"),
        ],
        ..Default::default()
    }
}

/// The authorization attributes of a CEL check (upstream checks resources
/// at API version `*`).
pub fn attributes(check: &Check, request_user: &UserInfo) -> Attributes {
    let user = match &check.service_account {
        Some((ns, name)) => service_account_user(ns, name),
        None => request_user.clone(),
    };
    match &check.path {
        Some(path) => Attributes {
            user,
            verb: check.verb.clone(),
            is_resource_request: false,
            path: path.clone(),
            ..Default::default()
        },
        None => Attributes {
            user,
            verb: check.verb.clone(),
            is_resource_request: true,
            namespace: check.namespace.clone(),
            api_group: check.group.clone(),
            api_version: "*".to_string(),
            resource: check.resource.clone(),
            subresource: check.subresource.clone(),
            name: check.name.clone(),
            ..Default::default()
        },
    }
}

impl Authorize for AsUser {
    fn check(&self, check: &Check) -> Decision {
        let Some(authz) = &self.authorizer else {
            return Decision {
                allowed: false,
                reason: String::new(),
                error: Some("no authorizer is configured".to_string()),
            };
        };
        let (decision, reason) = authz.authorize_now(&attributes(check, &self.user));
        Decision {
            allowed: decision.allowed(),
            reason,
            error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_become_authorization_attributes() {
        let alice = UserInfo {
            name: "alice".into(),
            groups: vec!["dev".into()],
            ..Default::default()
        };
        let check = Check {
            group: "apps".into(),
            resource: "deployments".into(),
            subresource: "scale".into(),
            namespace: "ns".into(),
            name: "d".into(),
            verb: "update".into(),
            ..Default::default()
        };
        let a = attributes(&check, &alice);
        assert_eq!(
            (
                a.user.name.as_str(),
                a.is_resource_request,
                a.api_group.as_str(),
                a.api_version.as_str()
            ),
            ("alice", true, "apps", "*")
        );
        assert_eq!(
            (
                a.resource.as_str(),
                a.subresource.as_str(),
                a.namespace.as_str(),
                a.name.as_str(),
                a.verb.as_str()
            ),
            ("deployments", "scale", "ns", "d", "update")
        );
        let sa = Check {
            service_account: Some(("kube-system".into(), "bot".into())),
            path: Some("/healthz".into()),
            verb: "get".into(),
            ..Default::default()
        };
        let a = attributes(&sa, &alice);
        assert_eq!(a.user.name, "system:serviceaccount:kube-system:bot");
        assert_eq!(
            a.user.groups,
            vec!["system:serviceaccounts", "system:serviceaccounts:kube-system"]
        );
        assert!(!a.is_resource_request);
        assert_eq!(a.path, "/healthz");
    }
}
