//! Privilege-escalation prevention on writes of RBAC objects, as
//! upstream's `pkg/registry/rbac/*/policybased` storages do it:
//!
//! - creating or updating a Role or ClusterRole needs either the
//!   `escalate` verb on it or holding every rule it grants (in the
//!   request's namespace); an `aggregationRule` needs full authority;
//! - creating or updating a RoleBinding or ClusterRoleBinding needs either
//!   the `bind` verb on the role it refers to (in the binding's namespace)
//!   or holding every rule of that role.
//!
//! Members of `system:masters` (and every user under `AlwaysAllow`) skip
//! the check. An update that only changes what the garbage collector
//! changes (owner references, finalizers) is not checked.
//!
//! The check runs in the generic store on the object about to be written
//! (and the stored one), after admission's mutations and the kind's
//! validation and before validating admission ([`Checked`]); upstream runs
//! it just before the kind's validation.

use std::sync::Arc;

use serde_json::Value;

use super::covers::{describe_missing, go_quoted_list, uncovered};
use super::rbac::{GROUP, PolicyIndex, RoleRefError};
use super::rules::{PolicyRule, RoleRef};
use super::{Attributes, Decision};
use crate::authn::UserInfo;
use crate::registry::object::{self, Object};
use crate::registry::store::WriteAdmission;
use crate::selector::go_quote::go_quote;
use crate::status::{ApiError, GroupResource};

/// The RBAC kinds whose writes are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RbacKind {
    Role,
    ClusterRole,
    RoleBinding,
    ClusterRoleBinding,
}

impl RbacKind {
    /// The kind served as `resource` of `group`, if it is one of RBAC's.
    pub fn of(group: &str, resource: &str) -> Option<RbacKind> {
        if group != GROUP {
            return None;
        }
        match resource {
            "roles" => Some(RbacKind::Role),
            "clusterroles" => Some(RbacKind::ClusterRole),
            "rolebindings" => Some(RbacKind::RoleBinding),
            "clusterrolebindings" => Some(RbacKind::ClusterRoleBinding),
            _ => None,
        }
    }

    fn resource(self) -> &'static str {
        match self {
            RbacKind::Role => "roles",
            RbacKind::ClusterRole => "clusterroles",
            RbacKind::RoleBinding => "rolebindings",
            RbacKind::ClusterRoleBinding => "clusterrolebindings",
        }
    }

    fn is_role(self) -> bool {
        matches!(self, RbacKind::Role | RbacKind::ClusterRole)
    }
}

/// The escalation check of one write request to an RBAC resource, against
/// a snapshot of the policy taken when the request arrived.
#[derive(Debug)]
pub struct EscalationCheck {
    pub(super) kind: RbacKind,
    pub(super) user: UserInfo,
    /// The request's namespace (empty for cluster-scoped kinds).
    pub(super) namespace: String,
    pub(super) index: Arc<PolicyIndex>,
}

/// `*` on everything: what an aggregation rule needs.
fn full_authority() -> [PolicyRule; 2] {
    let all = || vec!["*".to_string()];
    [
        PolicyRule {
            verbs: all(),
            api_groups: all(),
            resources: all(),
            ..Default::default()
        },
        PolicyRule {
            verbs: all(),
            non_resource_urls: all(),
            ..Default::default()
        },
    ]
}

/// Whether `new` differs from `old` only in what the garbage collector
/// changes (upstream's `IsOnlyMutatingGCFields`); versions and kinds are
/// not compared.
fn only_gc_fields_change(new: &Object, old: &Object) -> bool {
    let strip = |o: &Object| {
        let mut o = o.clone();
        o.remove("apiVersion");
        o.remove("kind");
        for f in [
            "ownerReferences",
            "finalizers",
            "selfLink",
            "resourceVersion",
            "managedFields",
        ] {
            object::set_meta(&mut o, f, None);
        }
        o
    };
    strip(new) == strip(old)
}

fn rules_of(obj: &Object) -> Result<Vec<PolicyRule>, ApiError> {
    match obj.get("rules") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| ApiError::bad_request(format!("rules: {e}"))),
    }
}

fn has_aggregation_rule(obj: &Object) -> bool {
    obj.get("aggregationRule")
        .and_then(|a| a.get("clusterRoleSelectors"))
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty())
}

impl EscalationCheck {
    fn gr(&self) -> GroupResource<'static> {
        GroupResource {
            group: GROUP,
            resource: self.kind.resource(),
        }
    }

    fn forbidden(&self, obj: &Object, why: &str) -> ApiError {
        ApiError::forbidden(self.gr(), object::name(obj), why)
    }

    /// Checks the object a create (`old` is `None`) or update asks for.
    pub fn check(&self, new: &Object, old: Option<&Object>) -> Result<(), ApiError> {
        if old.is_some_and(|old| only_gc_fields_change(new, old)) {
            return Ok(());
        }
        if self.kind.is_role() {
            self.confirm_no_escalation(new, &rules_of(new)?)?;
            let aggregates = has_aggregation_rule(new) || old.is_some_and(has_aggregation_rule);
            if self.kind == RbacKind::ClusterRole && aggregates && !self.missing(&full_authority()).0.is_empty() {
                return Err(self.forbidden(new, "must have cluster-admin privileges to use the aggregationRule"));
            }
            return Ok(());
        }
        let role_ref: RoleRef = new
            .get("roleRef")
            .and_then(|r| serde_json::from_value(r.clone()).ok())
            .unwrap_or_default();
        if self.bind_authorized(&role_ref) {
            return Ok(());
        }
        let rules = match self.index.role_rules(&role_ref, &self.namespace) {
            Ok(rules) => rules,
            Err(RoleRefError::NotFound { kind, name }) => {
                let resource = if kind == "Role" { "roles" } else { "clusterroles" };
                return Err(ApiError::not_found(GroupResource { group: GROUP, resource }, &name));
            }
            // A reference validation refuses anyway.
            Err(RoleRefError::UnsupportedKind(_)) => return Ok(()),
        };
        self.confirm_no_escalation(new, &rules)
    }

    /// Upstream's `BindingAuthorized`: the `bind` verb on the referenced
    /// role, in the binding's namespace.
    fn bind_authorized(&self, role_ref: &RoleRef) -> bool {
        let resource = match role_ref.kind.as_str() {
            "ClusterRole" => "clusterroles",
            "Role" => "roles",
            _ => return false,
        };
        let group = if role_ref.api_group.is_empty() {
            GROUP
        } else {
            &role_ref.api_group
        };
        let attrs = Attributes {
            user: self.user.clone(),
            verb: "bind".into(),
            is_resource_request: true,
            namespace: self.namespace.clone(),
            api_group: group.to_string(),
            resource: resource.into(),
            name: role_ref.name.clone(),
            ..Default::default()
        };
        self.index.authorize(&attrs) == Decision::Allow
    }

    /// The rules the user holds in the request's namespace that do not
    /// cover `rules`, with the errors met resolving the user's rules.
    fn missing(&self, rules: &[PolicyRule]) -> (Vec<PolicyRule>, Vec<String>) {
        let mut held = Vec::new();
        let errors = self.index.visit_rules(&self.user, &self.namespace, |_, _, r| {
            held.push(r.clone());
            true
        });
        let mut unique: Vec<String> = Vec::new();
        for e in errors.iter().map(RoleRefError::registry_message) {
            if !unique.contains(&e) {
                unique.push(e);
            }
        }
        let errors = unique;
        (uncovered(&held, rules), errors)
    }

    /// Upstream's `ConfirmNoEscalation`, with its message.
    fn confirm_no_escalation(&self, obj: &Object, rules: &[PolicyRule]) -> Result<(), ApiError> {
        let (missing, errors) = self.missing(rules);
        if missing.is_empty() {
            return Ok(());
        }
        let mut msg = format!(
            "user {} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
            go_quote(&self.user.name),
            go_quoted_list(&self.user.groups),
            describe_missing(missing).join("\n")
        );
        match errors.as_slice() {
            [] => {}
            [one] => msg.push_str(&format!("; resolution errors: [{one}]")),
            many => msg.push_str(&format!("; resolution errors: [[{}]]", many.join(", "))),
        }
        Err(self.forbidden(obj, &msg))
    }
}

/// A store's write admission with the escalation check (when there is
/// one) run first, on the object about to be written and the stored one.
pub struct Checked<'a> {
    check: Option<EscalationCheck>,
    inner: &'a dyn WriteAdmission,
}

impl<'a> Checked<'a> {
    pub fn new(check: Option<EscalationCheck>, inner: &'a dyn WriteAdmission) -> Self {
        Checked { check, inner }
    }
}

impl WriteAdmission for Checked<'_> {
    fn validate<'b>(
        &'b self,
        new: &'b Object,
        old: Option<&'b Object>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), ApiError>> + Send + 'b>> {
        Box::pin(async move {
            if let Some(check) = &self.check {
                check.check(new, old)?;
            }
            self.inner.validate(new, old).await
        })
    }

    fn admit<'b>(
        &'b self,
        new: &'b mut Object,
        old: &'b Object,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), ApiError>> + Send + 'b>> {
        self.inner.admit(new, old)
    }
}

#[cfg(test)]
mod tests;
