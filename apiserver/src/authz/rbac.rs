//! The RBAC authorizer: the rules that apply to a user are those of every
//! ClusterRoleBinding naming them (cluster-wide) and of every RoleBinding in
//! the request's namespace naming them; a request is allowed when one rule
//! allows it (upstream's `plugin/pkg/auth/authorizer/rbac`).
//!
//! Roles and bindings come from the watch cache, never from storage per
//! request: a [`PolicyIndex`] is rebuilt when one of the four RBAC
//! resources' cache revisions moves, with bindings indexed by subject so a
//! request only looks at the bindings that can apply to its user; each
//! index remembers the decisions made on it ([`DecisionCache`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use rkube_storage::Revision;
use serde::Deserialize;

use super::decision_cache::DecisionCache;
use super::rules::{PolicyRule, RoleRef, Subject};
use super::{Attributes, Decision};
use crate::authn::UserInfo;
use crate::registry::Registry;
use crate::registry::cache::ResourceCache;
use crate::registry::list::Predicate;
use crate::selector::go_quote::go_quote;

pub const GROUP: &str = "rbac.authorization.k8s.io";
const RESOURCES: [&str; 4] = ["clusterroles", "clusterrolebindings", "roles", "rolebindings"];

#[derive(Debug, Default, Deserialize)]
struct Meta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
}

/// A Role or ClusterRole as the authorizer reads it.
#[derive(Debug, Default, Deserialize)]
struct RoleObject {
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    rules: Option<Vec<PolicyRule>>,
}

/// A RoleBinding or ClusterRoleBinding as the authorizer reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BindingObject {
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    role_ref: RoleRef,
    #[serde(default)]
    subjects: Option<Vec<Subject>>,
}

/// One binding: its namespace (empty for a ClusterRoleBinding), what it
/// refers to and whom it names.
#[derive(Debug)]
pub struct Binding {
    pub name: String,
    pub namespace: String,
    pub role_ref: RoleRef,
    pub subjects: Vec<Subject>,
}

/// Where a subject can be looked up: a user name or a group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum SubjectKey {
    User(String),
    Group(String),
}

/// Every role and binding, indexed for authorization.
#[derive(Debug, Default)]
pub struct PolicyIndex {
    revisions: [Revision; 4],
    cluster_roles: HashMap<String, Arc<Vec<PolicyRule>>>,
    roles: HashMap<(String, String), Arc<Vec<PolicyRule>>>,
    cluster_bindings: HashMap<SubjectKey, Vec<Arc<Binding>>>,
    /// RoleBindings by namespace, then subject.
    role_bindings: HashMap<String, HashMap<SubjectKey, Vec<Arc<Binding>>>>,
    /// The decisions made on this policy.
    decisions: DecisionCache,
}

impl PolicyIndex {
    fn add_binding(&mut self, b: BindingObject, cluster: bool) {
        let binding = Arc::new(Binding {
            name: b.metadata.name,
            namespace: if cluster { String::new() } else { b.metadata.namespace },
            role_ref: b.role_ref,
            subjects: b.subjects.unwrap_or_default(),
        });
        let mut keys: Vec<SubjectKey> = Vec::new();
        for s in &binding.subjects {
            let key = match s.kind.as_str() {
                "Group" => Some(SubjectKey::Group(s.name.clone())),
                _ => s.user_name(&binding.namespace).map(SubjectKey::User),
            };
            if let Some(k) = key.filter(|k| !keys.contains(k)) {
                keys.push(k);
            }
        }
        let map = if cluster {
            &mut self.cluster_bindings
        } else {
            self.role_bindings.entry(binding.namespace.clone()).or_default()
        };
        for k in keys {
            map.entry(k).or_default().push(binding.clone());
        }
    }

    /// An index of the given objects (JSON bodies), for tests and bootstrap.
    pub(super) fn from_bodies(bodies: [Vec<bytes::Bytes>; 4], revisions: [Revision; 4]) -> PolicyIndex {
        let mut index = PolicyIndex {
            revisions,
            ..Default::default()
        };
        let [cluster_roles, cluster_bindings, roles, role_bindings] = bodies;
        for body in cluster_roles {
            if let Ok(r) = serde_json::from_slice::<RoleObject>(&body) {
                index
                    .cluster_roles
                    .insert(r.metadata.name, Arc::new(r.rules.unwrap_or_default()));
            }
        }
        for body in roles {
            if let Ok(r) = serde_json::from_slice::<RoleObject>(&body) {
                index.roles.insert(
                    (r.metadata.namespace, r.metadata.name),
                    Arc::new(r.rules.unwrap_or_default()),
                );
            }
        }
        for body in cluster_bindings {
            if let Ok(b) = serde_json::from_slice::<BindingObject>(&body) {
                index.add_binding(b, true);
            }
        }
        for body in role_bindings {
            if let Ok(b) = serde_json::from_slice::<BindingObject>(&body) {
                index.add_binding(b, false);
            }
        }
        index
    }

    /// The bindings that name `user`, ClusterRoleBindings first, then the
    /// RoleBindings of `namespace` (none when it is empty).
    fn bindings_for(&self, user: &UserInfo, namespace: &str) -> Vec<Arc<Binding>> {
        let keys: Vec<SubjectKey> = std::iter::once(SubjectKey::User(user.name.clone()))
            .chain(user.groups.iter().cloned().map(SubjectKey::Group))
            .collect();
        let mut out: Vec<Arc<Binding>> = Vec::new();
        let mut collect = |map: &HashMap<SubjectKey, Vec<Arc<Binding>>>| {
            let start = out.len();
            for k in &keys {
                for b in map.get(k).into_iter().flatten() {
                    if !out[start..].iter().any(|o| Arc::ptr_eq(o, b)) {
                        out.push(b.clone());
                    }
                }
            }
        };
        collect(&self.cluster_bindings);
        if !namespace.is_empty()
            && let Some(map) = self.role_bindings.get(namespace)
        {
            collect(map);
        }
        out
    }

    /// The rules of the role a binding refers to.
    fn rules_of(&self, b: &Binding) -> Result<Arc<Vec<PolicyRule>>, RoleRefError> {
        self.role_rules(&b.role_ref, &b.namespace)
    }

    /// The rules of the role `role_ref` names from a binding in
    /// `namespace` (empty for a ClusterRoleBinding); upstream's
    /// `GetRoleReferenceRules`.
    pub fn role_rules(&self, role_ref: &RoleRef, namespace: &str) -> Result<Arc<Vec<PolicyRule>>, RoleRefError> {
        let missing = || RoleRefError::NotFound {
            kind: role_ref.kind.clone(),
            name: role_ref.name.clone(),
        };
        match role_ref.kind.as_str() {
            "ClusterRole" => self.cluster_roles.get(&role_ref.name).cloned().ok_or_else(missing),
            "Role" if !namespace.is_empty() => self
                .roles
                .get(&(namespace.to_string(), role_ref.name.clone()))
                .cloned()
                .ok_or_else(missing),
            "Role" => Err(missing()),
            kind => Err(RoleRefError::UnsupportedKind(kind.to_string())),
        }
    }

    /// Visits the rules that apply to `user` in `namespace`, with the
    /// binding and the subject that grant them, until `visit` returns
    /// false; errors (missing roles) are collected.
    pub fn visit_rules(
        &self,
        user: &UserInfo,
        namespace: &str,
        mut visit: impl FnMut(&Binding, &Subject, &PolicyRule) -> bool,
    ) -> Vec<RoleRefError> {
        let mut errors = Vec::new();
        for b in self.bindings_for(user, namespace) {
            let Some(subject) = b.subjects.iter().find(|s| s.applies_to(user, &b.namespace)) else {
                continue;
            };
            match self.rules_of(&b) {
                Ok(rules) => {
                    for r in rules.iter() {
                        if !visit(&b, subject, r) {
                            return errors;
                        }
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        errors
    }

    /// Authorizes one request.
    pub fn authorize(&self, a: &Attributes) -> Decision {
        self.authorize_with_reason(a).0
    }

    /// Authorizes one request and says why: upstream's `RBAC: allowed by
    /// RoleBinding "name/ns" of ClusterRole "view" to User "alice"` when
    /// allowed, the errors met (possibly none) otherwise.
    pub fn authorize_with_reason(&self, a: &Attributes) -> (Decision, String) {
        self.decisions.get_or_decide(a, || self.evaluate(a))
    }

    /// [`PolicyIndex::authorize_with_reason`] without the cache: walks the
    /// bindings that name the user.
    fn evaluate(&self, a: &Attributes) -> (Decision, String) {
        let mut allowed_by = None;
        let errors = self.visit_rules(&a.user, &a.namespace, |b, s, r| {
            if r.allows(a) {
                allowed_by = Some(b.describe(s));
            }
            allowed_by.is_none()
        });
        if let Some(source) = allowed_by {
            return (Decision::Allow, format!("RBAC: allowed by {source}"));
        }
        let errors: Vec<String> = errors.iter().map(RoleRefError::lister_message).collect();
        let reason = match errors.as_slice() {
            [] => String::new(),
            [one] => format!("RBAC: {one}"),
            many => format!("RBAC: [{}]", many.join(", ")),
        };
        (Decision::NoOpinion(reason.clone()), reason)
    }
}

/// Why a binding's role reference gives no rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleRefError {
    /// The Role or ClusterRole does not exist.
    NotFound { kind: String, name: String },
    /// The reference names neither a Role nor a ClusterRole.
    UnsupportedKind(String),
}

impl RoleRefError {
    /// As the authorizer reports it (upstream's listers' NotFound:
    /// `role.rbac.authorization.k8s.io "x" not found`).
    pub fn lister_message(&self) -> String {
        match self {
            RoleRefError::NotFound { kind, name } => {
                format!("{}.{GROUP} {} not found", kind.to_ascii_lowercase(), go_quote(name))
            }
            RoleRefError::UnsupportedKind(kind) => format!("unsupported role reference kind: {}", go_quote(kind)),
        }
    }

    /// As the registry reports it (`roles.rbac.authorization.k8s.io "x"
    /// not found`), for escalation checks.
    pub fn registry_message(&self) -> String {
        match self {
            RoleRefError::NotFound { kind, name } => {
                format!("{}s.{GROUP} {} not found", kind.to_ascii_lowercase(), go_quote(name))
            }
            RoleRefError::UnsupportedKind(_) => self.lister_message(),
        }
    }
}

impl Binding {
    /// Upstream's description of a binding granting to `subject`.
    fn describe(&self, subject: &Subject) -> String {
        let who = match subject.kind.as_str() {
            "ServiceAccount" => {
                let ns = if subject.namespace.is_empty() {
                    &self.namespace
                } else {
                    &subject.namespace
                };
                format!("{} {:?}", subject.kind, format!("{}/{ns}", subject.name))
            }
            _ => format!("{} {:?}", subject.kind, subject.name),
        };
        if self.namespace.is_empty() {
            format!(
                "ClusterRoleBinding {:?} of {} {:?} to {who}",
                self.name, self.role_ref.kind, self.role_ref.name
            )
        } else {
            format!(
                "RoleBinding {:?} of {} {:?} to {who}",
                format!("{}/{}", self.name, self.namespace),
                self.role_ref.kind,
                self.role_ref.name
            )
        }
    }
}

/// The caches of clusterroles, clusterrolebindings, roles and rolebindings,
/// each with its storage prefix.
type RbacCaches = [(String, Arc<ResourceCache>); 4];

/// The RBAC authorizer over the registry's watch cache.
pub struct RbacAuthorizer {
    registry: Arc<Registry>,
    index: RwLock<Arc<PolicyIndex>>,
    rebuild: Mutex<()>,
    caches: OnceLock<Option<RbacCaches>>,
}

impl RbacAuthorizer {
    pub fn new(registry: Arc<Registry>) -> Self {
        RbacAuthorizer {
            registry,
            index: RwLock::new(Arc::new(PolicyIndex::default())),
            rebuild: Mutex::new(()),
            caches: OnceLock::new(),
        }
    }

    /// The four RBAC resources' caches with their storage prefixes, looked
    /// up once.
    fn caches(&self) -> Option<&RbacCaches> {
        self.caches.get_or_init(|| self.find_caches()).as_ref()
    }

    fn find_caches(&self) -> Option<RbacCaches> {
        let get = |r: &str| {
            let store = self.registry.store(GROUP, r)?;
            let prefix = store.storage_prefix().to_string();
            let rc = self.registry.cache.resource(&prefix)?;
            Some((prefix, rc))
        };
        Some([
            get(RESOURCES[0])?,
            get(RESOURCES[1])?,
            get(RESOURCES[2])?,
            get(RESOURCES[3])?,
        ])
    }

    /// The current index, rebuilt first when the cache has moved on.
    pub fn index(&self) -> Arc<PolicyIndex> {
        let Some(caches) = self.caches() else {
            return Arc::default();
        };
        let revisions = caches.each_ref().map(|(_, rc)| rc.revision());
        let current = self.index.read().unwrap_or_else(|p| p.into_inner()).clone();
        if current.revisions == revisions {
            return current;
        }
        let _guard = self.rebuild.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.index.read().unwrap_or_else(|p| p.into_inner()).clone();
        if current.revisions == revisions {
            return current;
        }
        let bodies = caches.each_ref().map(|(prefix, rc)| {
            rc.list(prefix, &Predicate::everything(), 0, 0)
                .items
                .iter()
                .map(|o| o.body.clone())
                .collect()
        });
        let index = Arc::new(PolicyIndex::from_bodies(bodies, revisions));
        *self.index.write().unwrap_or_else(|p| p.into_inner()) = index.clone();
        index
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn body(v: serde_json::Value) -> bytes::Bytes {
        bytes::Bytes::from(v.to_string())
    }

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        }
    }

    fn attrs(u: &UserInfo, verb: &str, ns: &str, resource: &str) -> Attributes {
        Attributes {
            user: u.clone(),
            verb: verb.into(),
            is_resource_request: true,
            namespace: ns.into(),
            resource: resource.into(),
            ..Default::default()
        }
    }

    fn index() -> PolicyIndex {
        PolicyIndex::from_bodies(
            [
                vec![body(json!({"metadata": {"name": "reader"},
                    "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]}))],
                vec![body(
                    json!({"metadata": {"name": "readers"}, "roleRef": {"kind": "ClusterRole", "name": "reader"},
                    "subjects": [{"kind": "Group", "name": "auditors"}]}),
                )],
                vec![body(json!({"metadata": {"name": "writer", "namespace": "a"},
                    "rules": [{"verbs": ["create"], "apiGroups": [""], "resources": ["pods"]}]}))],
                vec![
                    body(
                        json!({"metadata": {"name": "w", "namespace": "a"}, "roleRef": {"kind": "Role", "name": "writer"},
                        "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "bot"}]}),
                    ),
                    body(
                        json!({"metadata": {"name": "r", "namespace": "b"}, "roleRef": {"kind": "ClusterRole", "name": "reader"},
                        "subjects": [{"kind": "User", "name": "alice"}]}),
                    ),
                    body(
                        json!({"metadata": {"name": "gone", "namespace": "c"}, "roleRef": {"kind": "Role", "name": "missing"},
                        "subjects": [{"kind": "User", "name": "alice"}]}),
                    ),
                ],
            ],
            [1; 4],
        )
    }

    #[test]
    fn bindings_grant_their_roles_where_they_apply() {
        let idx = index();
        let alice = user("alice", &["system:authenticated"]);
        assert_eq!(idx.authorize(&attrs(&alice, "create", "a", "pods")), Decision::Allow);
        assert!(!idx.authorize(&attrs(&alice, "create", "b", "pods")).allowed());
        assert_eq!(idx.authorize(&attrs(&alice, "list", "b", "pods")), Decision::Allow);
        assert!(!idx.authorize(&attrs(&alice, "list", "a", "pods")).allowed());
        assert!(!idx.authorize(&attrs(&alice, "list", "", "pods")).allowed());
        let auditor = user("carol", &["auditors"]);
        assert!(idx.authorize(&attrs(&auditor, "list", "", "pods")).allowed());
        assert!(idx.authorize(&attrs(&auditor, "get", "z", "pods")).allowed());
        let bot = user("system:serviceaccount:a:bot", &[]);
        assert!(idx.authorize(&attrs(&bot, "create", "a", "pods")).allowed());
    }

    #[test]
    fn a_missing_role_is_the_reason() {
        let idx = index();
        let alice = user("alice", &[]);
        assert_eq!(
            idx.authorize(&attrs(&alice, "get", "c", "pods")),
            Decision::NoOpinion("RBAC: role.rbac.authorization.k8s.io \"missing\" not found".into())
        );
        assert_eq!(
            idx.authorize(&attrs(&alice, "get", "a", "pods")),
            Decision::NoOpinion(String::new())
        );
        assert_eq!(
            idx.authorize_with_reason(&attrs(&alice, "create", "a", "pods")).1,
            r#"RBAC: allowed by RoleBinding "w/a" of Role "writer" to User "alice""#
        );
        let bot = user("system:serviceaccount:a:bot", &[]);
        assert_eq!(
            idx.authorize_with_reason(&attrs(&bot, "create", "a", "pods")).1,
            r#"RBAC: allowed by RoleBinding "w/a" of Role "writer" to ServiceAccount "bot/a""#
        );
        let auditor = user("carol", &["auditors"]);
        assert_eq!(
            idx.authorize_with_reason(&attrs(&auditor, "get", "z", "pods")).1,
            r#"RBAC: allowed by ClusterRoleBinding "readers" of ClusterRole "reader" to Group "auditors""#
        );
    }
}
