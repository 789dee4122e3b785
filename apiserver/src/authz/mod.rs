//! Authorization: may this user do this to that?
//!
//! Every request's [`Attributes`] (user, verb, API group, resource,
//! subresource, namespace, name, or a non-resource path) go to the
//! [`Authorizer`]: members of `system:masters` are always allowed (upstream's
//! privileged-group authorizer), then, by `--authorization-mode`, either
//! everything is allowed (`AlwaysAllow`) or the [`node`] authorizer (with
//! `Node`) and then [`rbac`] decide. A request nothing allows is answered
//! with 403 and upstream's message ([`forbidden`]). The bootstrap roles and
//! bindings are reconciled at start by [`policy`]; aggregated ClusterRoles
//! are kept up to date by [`aggregation`]. Writes of RBAC objects are also
//! checked for privilege escalation ([`escalation`], with the rule
//! comparison in [`covers`]).
//!
//! Architecture Invariant: authorization reads roles and bindings from the
//! watch cache only; a denied request waits for the cache to reach the
//! storage's revision once before it is refused, so a binding just created
//! takes effect for the next request.

pub mod aggregation;
pub mod covers;
mod decision_cache;
pub mod escalation;
pub mod node;
pub mod policy;
pub mod rbac;
pub mod rules;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::authn::UserInfo;
use crate::registry::Registry;
use crate::request_info::RequestInfo;
use crate::routes::AppState;
use crate::status::{ApiError, StatusDetails};

/// The group whose members may do anything.
pub const SYSTEM_MASTERS: &str = "system:masters";

/// What a request asks to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    pub user: UserInfo,
    pub verb: String,
    pub is_resource_request: bool,
    /// The path of a non-resource request.
    pub path: String,
    pub namespace: String,
    pub api_group: String,
    pub api_version: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    /// The `fieldSelector` of a list or watch (the Node authorizer allows
    /// a kubelet to list the pods of its node by `spec.nodeName`).
    pub field_selector: String,
}

impl Attributes {
    /// The attributes of a parsed request by `user`.
    pub fn from_request(info: &RequestInfo, user: UserInfo) -> Self {
        Attributes {
            user,
            verb: info.verb.clone(),
            is_resource_request: info.is_resource_request,
            path: info.path.clone(),
            namespace: info.namespace.clone(),
            api_group: info.api_group.clone(),
            api_version: info.api_version.clone(),
            resource: info.resource.clone(),
            subresource: info.subresource.clone(),
            name: info.name.clone(),
            field_selector: String::new(),
        }
    }
}

impl Attributes {
    /// A list or watch narrowed to one object by `fieldSelector=metadata.name=<name>`
    /// is about that name, as upstream's request info has it (so
    /// `resourceNames` rules can allow it).
    /// The selector is kept in [`Attributes::field_selector`].
    pub fn name_from_field_selector(&mut self, query: Option<&str>) {
        if !self.is_resource_request || !matches!(self.verb.as_str(), "list" | "watch" | "deletecollection") {
            return;
        }
        let Some(selector) = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .find(|(k, _)| k == "fieldSelector")
            .map(|(_, v)| v.into_owned())
        else {
            return;
        };
        self.field_selector = selector.clone();
        if !self.name.is_empty() || self.verb == "deletecollection" {
            return;
        }
        let Ok(selector) = crate::selector::fields::FieldSelector::parse(&selector) else {
            return;
        };
        if let Some(name) = selector.requires_exact_match("metadata.name")
            && !matches!(name, "." | "..")
            && !name.contains(['/', '%'])
        {
            self.name = name.to_string();
        }
    }
}

/// An authorizer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A rule allows the request.
    Allow,
    /// Nothing allows it; the reason (possibly empty) explains errors met.
    NoOpinion(String),
}

impl Decision {
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }
}

/// `--authorization-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// RBAC decides (the default).
    #[default]
    Rbac,
    /// `Node,RBAC`: the Node authorizer, then RBAC.
    NodeRbac,
    /// Every request is allowed.
    AlwaysAllow,
}

impl Mode {
    /// Parses kube-apiserver's comma-separated list (`Node,RBAC`):
    /// `AlwaysAllow` anywhere allows everything; otherwise `RBAC` decides,
    /// after the Node authorizer when `Node` is listed too.
    pub fn parse(modes: &[String]) -> Result<Mode, String> {
        let (mut rbac, mut node, mut always) = (false, false, false);
        for m in modes {
            match m.as_str() {
                "RBAC" => rbac = true,
                "AlwaysAllow" => always = true,
                "Node" => node = true,
                other => return Err(format!("authorization mode {other:?} is not supported")),
            }
        }
        match (always, rbac, node) {
            (true, _, _) => Ok(Mode::AlwaysAllow),
            (false, true, true) => Ok(Mode::NodeRbac),
            (false, true, false) => Ok(Mode::Rbac),
            (false, false, _) => Err("--authorization-mode needs RBAC or AlwaysAllow".into()),
        }
    }
}

/// The server's authorizer.
pub struct Authorizer {
    mode: Mode,
    registry: Arc<Registry>,
    rbac: rbac::RbacAuthorizer,
    node: node::NodeAuthorizer,
}

/// How long a request waits for the watch cache's first fill.
const CACHE_READY_TIMEOUT: Duration = Duration::from_secs(10);

impl Authorizer {
    pub fn new(mode: Mode, registry: Arc<Registry>) -> Self {
        Authorizer {
            mode,
            rbac: rbac::RbacAuthorizer::new(registry.clone()),
            node: node::NodeAuthorizer::new(registry.clone()),
            registry,
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Decides a request.
    pub async fn authorize(&self, a: &Attributes) -> Decision {
        self.authorize_with_reason(a).await.0
    }

    /// Decides a request and says why (the reason access reviews report).
    pub async fn authorize_with_reason(&self, a: &Attributes) -> (Decision, String) {
        if self.mode == Mode::AlwaysAllow || a.user.groups.iter().any(|g| g == SYSTEM_MASTERS) {
            return (Decision::Allow, String::new());
        }
        let cache = &self.registry.cache;
        if !cache.is_ready() {
            let _ = tokio::time::timeout(CACHE_READY_TIMEOUT, cache.wait_ready()).await;
        }
        let decided = self.decide(a);
        if decided.0.allowed() {
            return decided;
        }
        // Before refusing, catch up with writes the cache has not seen yet
        // (a binding created just before this request).
        match cache.sync_to_storage().await {
            Ok(_) => self.decide(a),
            Err(_) => decided,
        }
    }

    /// Decides a request on the current cache, without waiting for it
    /// (for checks made while admitting a request, like CEL's `authorizer`).
    pub fn authorize_now(&self, a: &Attributes) -> (Decision, String) {
        if self.mode == Mode::AlwaysAllow || a.user.groups.iter().any(|g| g == SYSTEM_MASTERS) {
            return (Decision::Allow, String::new());
        }
        self.decide(a)
    }

    /// The union of the configured authorizers on the current cache:
    /// the first that allows wins; otherwise their reasons, one a line.
    fn decide(&self, a: &Attributes) -> (Decision, String) {
        let mut reasons = Vec::new();
        if self.mode == Mode::NodeRbac {
            let (decision, reason) = self.node.authorize(a);
            if decision.allowed() {
                return (decision, reason);
            }
            reasons.push(reason);
        }
        let (decision, reason) = self.rbac.index().authorize_with_reason(a);
        if decision.allowed() {
            return (decision, reason);
        }
        reasons.push(reason);
        reasons.retain(|r| !r.is_empty());
        let reason = reasons.join("\n");
        (Decision::NoOpinion(reason.clone()), reason)
    }

    /// The rules that apply to `user` in `namespace` (cluster-wide ones
    /// included), and the errors met collecting them.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> (Vec<rules::PolicyRule>, Vec<String>) {
        let mut out = Vec::new();
        let errors = self.rbac.index().visit_rules(user, namespace, |_, _, r| {
            out.push(r.clone());
            true
        });
        (out, errors.iter().map(rbac::RoleRefError::lister_message).collect())
    }

    /// The privilege-escalation check of a create, update or patch of an
    /// RBAC object by `user`, or `None` when the request is not one or
    /// needs no check: `system:masters`, `AlwaysAllow`, or a Role or
    /// ClusterRole write by a user allowed to `escalate` on it (upstream's
    /// `EscalationAllowed` and `RoleEscalationAuthorized`).
    pub async fn escalation_check(
        &self,
        user: &UserInfo,
        info: &crate::request_info::RequestInfo,
    ) -> Option<escalation::EscalationCheck> {
        let kind = escalation::RbacKind::of(&info.api_group, &info.resource)?;
        if !info.subresource.is_empty() || !matches!(info.verb.as_str(), "create" | "update" | "patch") {
            return None;
        }
        if self.mode == Mode::AlwaysAllow || user.groups.iter().any(|g| g == SYSTEM_MASTERS) {
            return None;
        }
        let cache = &self.registry.cache;
        if !cache.is_ready() {
            let _ = tokio::time::timeout(CACHE_READY_TIMEOUT, cache.wait_ready()).await;
        }
        // Judge on everything written before the request (a role created
        // just before a binding to it).
        let _ = cache.sync_to_storage().await;
        let namespace = if matches!(kind, escalation::RbacKind::Role | escalation::RbacKind::RoleBinding) {
            info.namespace.clone()
        } else {
            String::new()
        };
        let escalate = Attributes {
            verb: "escalate".into(),
            ..Attributes::from_request(info, user.clone())
        };
        if matches!(kind, escalation::RbacKind::Role | escalation::RbacKind::ClusterRole)
            && self.decide(&escalate).0.allowed()
        {
            return None;
        }
        Some(escalation::EscalationCheck {
            kind,
            user: user.clone(),
            namespace,
            index: self.rbac.index(),
        })
    }
}

/// Replaces what could make an error look like HTML.
fn sanitize(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Upstream's `forbiddenMessage`: what the user cannot do.
pub fn forbidden_message(a: &Attributes) -> String {
    let user = &a.user.name;
    if !a.is_resource_request {
        return format!("User {user:?} cannot {} path {:?}", a.verb, a.path);
    }
    let resource = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    if a.namespace.is_empty() {
        format!(
            "User {user:?} cannot {} resource {resource:?} in API group {:?} at the cluster scope",
            a.verb, a.api_group
        )
    } else {
        format!(
            "User {user:?} cannot {} resource {resource:?} in API group {:?} in the namespace {:?}",
            a.verb, a.api_group, a.namespace
        )
    }
}

/// The 403 a refused request gets (upstream's `responsewriters.Forbidden`).
pub fn forbidden(a: &Attributes, reason: &str) -> ApiError {
    let msg = sanitize(&forbidden_message(a));
    let why = if reason.is_empty() {
        msg
    } else {
        format!("{msg}: {reason}")
    };
    let gr = crate::status::GroupResource {
        group: &a.api_group,
        resource: &a.resource,
    };
    let message = match (a.resource.is_empty(), a.name.is_empty()) {
        (true, _) => format!("forbidden: {why}"),
        (false, true) => format!("{gr} is forbidden: {why}"),
        (false, false) => format!("{gr} {:?} is forbidden: {why}", a.name),
    };
    let details = StatusDetails {
        name: a.name.clone(),
        group: a.api_group.clone(),
        kind: a.resource.clone(),
        ..Default::default()
    };
    ApiError {
        code: 403,
        reason: "Forbidden",
        message,
        details: Some(Box::new(details)),
    }
}

/// The authorization middleware: runs after authentication and refuses
/// what the authorizer does not allow.
pub async fn middleware(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let user = req
        .extensions()
        .get::<UserInfo>()
        .cloned()
        .unwrap_or_else(UserInfo::anonymous);
    let info = crate::request_info::parse(req.method(), req.uri().path(), req.uri().query());
    let mut attrs = Attributes::from_request(&info, user);
    attrs.name_from_field_selector(req.uri().query());
    let (decision, reason) = state.authorizer.authorize_with_reason(&attrs).await;
    let verdict = if decision.allowed() { "allow" } else { "forbid" };
    crate::audit::annotate("authorization.k8s.io/decision", verdict);
    crate::audit::annotate("authorization.k8s.io/reason", &reason);
    match decision {
        Decision::Allow => next.run(req).await,
        Decision::NoOpinion(reason) => {
            let mut resp = forbidden(&attrs, &reason).into_response();
            if let Ok(v) = "nosniff".parse() {
                resp.headers_mut().insert("x-content-type-options", v);
            }
            resp
        }
    }
}

#[cfg(test)]
mod tests;
