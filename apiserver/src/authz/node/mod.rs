//! The Node authorizer (upstream's `plugin/pkg/auth/authorizer/node`): a
//! kubelet, user `system:node:<name>` in group `system:nodes`, may read
//! only the secrets, config maps, claims, volumes and service-account
//! tokens that pods bound to its node need, its own Node and Lease and
//! CSINode, pods on its node; everything else is what upstream's static
//! node rules (the `system:node` ClusterRole's) allow.
//!
//! Upstream keeps a graph fed by informers; here each question is answered
//! from the watch cache when it is asked (the pods of the object's
//! namespace, filtered by their `spec.nodeName` field), so the answers
//! follow the cache exactly and nothing is kept in step with it. Refusals carry upstream's reasons ("no relationship
//! found between node 'n1' and this object").

pub mod refs;

use std::sync::Arc;

use serde_json::Value;

use super::rules::PolicyRule;
use super::{Attributes, Decision};
use crate::authn::UserInfo;
use crate::registry::Registry;
use crate::registry::list::Predicate;
use refs::{PodRefs, pv_secrets};

/// The group of every node.
pub const NODES_GROUP: &str = "system:nodes";
const NODE_USER_PREFIX: &str = "system:node:";
const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// Upstream's `NodeIdentity`: `Some(name)` for a node's user (the name
/// may be empty: a node that cannot be identified), `None` for others.
pub fn node_identity(user: &UserInfo) -> Option<&str> {
    let name = user.name.strip_prefix(NODE_USER_PREFIX)?;
    user.groups.iter().any(|g| g == NODES_GROUP).then_some(name)
}

/// The Node authorizer over the registry's watch cache.
pub struct NodeAuthorizer {
    registry: Arc<Registry>,
    node_rules: Vec<PolicyRule>,
}

/// An answer with its reason.
type Answer = (Decision, String);

fn allow() -> Answer {
    (Decision::Allow, String::new())
}

fn deny(reason: impl Into<String>) -> Answer {
    let reason = reason.into();
    (Decision::NoOpinion(reason.clone()), reason)
}

/// What a related object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vertex {
    Secret,
    ConfigMap,
    Pvc,
    Pv,
    ResourceClaim,
    VolumeAttachment,
    ServiceAccount,
    Pod,
    ResourceSlice,
}

impl NodeAuthorizer {
    /// A Node authorizer with the static node rules (upstream's
    /// `bootstrappolicy.NodeRules()`, the `system:node` ClusterRole's).
    pub fn new(registry: Arc<Registry>) -> Self {
        let node_rules = super::policy::bootstrap_policy()
            .ok()
            .and_then(|p| {
                p.cluster_roles
                    .into_iter()
                    .find(|r| crate::registry::object::name(r) == "system:node")
            })
            .and_then(|r| serde_json::from_value(r.get("rules").cloned().unwrap_or(Value::Null)).ok())
            .unwrap_or_default();
        NodeAuthorizer { registry, node_rules }
    }

    /// Decides a request; non-node users get no opinion and no reason.
    pub fn authorize(&self, a: &Attributes) -> Answer {
        let Some(node) = node_identity(&a.user) else {
            return (Decision::NoOpinion(String::new()), String::new());
        };
        if node.is_empty() {
            return deny(format!("unknown node for user {:?}", a.user.name));
        }
        if a.is_resource_request {
            let answer = match (a.api_group.as_str(), a.resource.as_str()) {
                ("", "secrets") => Some(self.read_namespaced(node, Vertex::Secret, a)),
                ("", "configmaps") => Some(self.read_namespaced(node, Vertex::ConfigMap, a)),
                ("", "persistentvolumeclaims") if a.subresource == "status" => Some(self.status_update(node, a)),
                ("", "persistentvolumeclaims") => Some(self.get(node, Vertex::Pvc, a)),
                ("", "persistentvolumes") => Some(self.get(node, Vertex::Pv, a)),
                ("resource.k8s.io", "resourceclaims") => Some(self.get(node, Vertex::ResourceClaim, a)),
                ("storage.k8s.io", "volumeattachments") => Some(self.get(node, Vertex::VolumeAttachment, a)),
                ("", "serviceaccounts") => Some(self.service_account(node, a)),
                ("coordination.k8s.io", "leases") => Some(own_object(node, a, "lease", true)),
                ("storage.k8s.io", "csinodes") => Some(own_object(node, a, "CSINode", false)),
                ("resource.k8s.io", "resourceslices") => Some(self.resource_slice(node, a)),
                ("", "nodes") => Some(node_object(node, a)),
                ("", "pods") => Some(self.pod(node, a)),
                _ => None,
            };
            if let Some(answer) = answer {
                return answer;
            }
        }
        if self.node_rules.iter().any(|r| r.allows(a)) {
            return allow();
        }
        (Decision::NoOpinion(String::new()), String::new())
    }

    fn status_update(&self, node: &str, a: &Attributes) -> Answer {
        if !matches!(a.verb.as_str(), "update" | "patch") {
            return deny("can only get/update/patch this type");
        }
        self.related(node, Vertex::Pvc, a)
    }

    fn get(&self, node: &str, vertex: Vertex, a: &Attributes) -> Answer {
        if a.verb != "get" {
            return deny("can only get individual resources of this type");
        }
        if !a.subresource.is_empty() {
            return deny("cannot get subresource");
        }
        self.related(node, vertex, a)
    }

    fn read_namespaced(&self, node: &str, vertex: Vertex, a: &Attributes) -> Answer {
        if !matches!(a.verb.as_str(), "get" | "list" | "watch") {
            return deny("can only read resources of this type");
        }
        if !a.subresource.is_empty() {
            return deny("cannot read subresource");
        }
        if a.namespace.is_empty() {
            return deny("can only read namespaced object of this type");
        }
        self.related(node, vertex, a)
    }

    fn service_account(&self, node: &str, a: &Attributes) -> Answer {
        if a.verb == "get" && a.subresource.is_empty() && !a.name.is_empty() {
            return self.related(node, Vertex::ServiceAccount, a);
        }
        if a.verb != "create" || a.name.is_empty() {
            return deny("can only create tokens for individual service accounts");
        }
        if a.subresource != "token" {
            return deny("can only create token subresource of serviceaccount");
        }
        self.related(node, Vertex::ServiceAccount, a)
    }

    fn resource_slice(&self, node: &str, a: &Attributes) -> Answer {
        if !a.subresource.is_empty() {
            return deny("cannot authorize ResourceSlice subresources");
        }
        match a.verb.as_str() {
            "create" => allow(),
            "get" | "update" | "patch" | "delete" => self.related(node, Vertex::ResourceSlice, a),
            "watch" | "list" | "deletecollection" => {
                if field_equals(a, "spec.nodeName", node) {
                    allow()
                } else {
                    deny("can only list/watch/deletecollection resourceslices with nodeName field selector")
                }
            }
            _ => deny(
                "only the following verbs are allowed for a ResourceSlice: get, watch, list, create, update, patch, delete, deletecollection",
            ),
        }
    }

    fn pod(&self, node: &str, a: &Attributes) -> Answer {
        match (a.subresource.as_str(), a.verb.as_str()) {
            ("", "get") => self.get(node, Vertex::Pod, a),
            ("", "list" | "watch") => {
                if field_equals(a, "spec.nodeName", node) {
                    allow()
                } else if !a.name.is_empty() {
                    self.related(node, Vertex::Pod, a)
                } else {
                    deny("can only list/watch pods with spec.nodeName field selector")
                }
            }
            // Mirror pods, status and evictions: NodeRestriction limits
            // them to the node's own pods.
            ("", "create" | "delete") | ("status", "update" | "patch") | ("eviction", "create") => allow(),
            _ => (Decision::NoOpinion(String::new()), String::new()),
        }
    }

    /// Upstream's `authorize`: the named object must be related to the node.
    fn related(&self, node: &str, vertex: Vertex, a: &Attributes) -> Answer {
        if a.name.is_empty() {
            return deny("No Object name found");
        }
        if self.has_path(node, vertex, &a.namespace, &a.name) {
            allow()
        } else {
            deny(format!("no relationship found between node '{node}' and this object"))
        }
    }

    /// Whether the object leads to the node: directly (its node name) or
    /// through a pod bound to it (and, for volumes' secrets, a volume and
    /// its claim).
    fn has_path(&self, node: &str, vertex: Vertex, namespace: &str, name: &str) -> bool {
        let reader = CacheReader(&self.registry);
        let pods = || reader.pods_on(node, namespace);
        match vertex {
            Vertex::Pod => pods().iter().any(|p| meta_name(p) == name),
            Vertex::Secret => {
                pods().iter().any(|p| PodRefs::of(p).secrets.contains(&name))
                    || reader.list("", "persistentvolumes", "").iter().any(|pv| {
                        pv_secrets(pv).iter().any(|(ns, n)| ns == namespace && n == name)
                            && self.has_path(node, Vertex::Pv, "", meta_name(pv))
                    })
            }
            Vertex::ConfigMap => pods().iter().any(|p| PodRefs::of(p).config_maps.contains(&name)),
            Vertex::Pvc => pods().iter().any(|p| PodRefs::of(p).claims.iter().any(|c| c == name)),
            Vertex::ResourceClaim => pods().iter().any(|p| PodRefs::of(p).resource_claims.contains(&name)),
            Vertex::ServiceAccount => pods().iter().any(|p| PodRefs::of(p).service_account == Some(name)),
            Vertex::Pv => reader.get("", "persistentvolumes", "", name).is_some_and(|pv| {
                let claim = pv.get("spec").and_then(|s| s.get("claimRef"));
                let field = |f: &str| claim.and_then(|c| c.get(f)).and_then(Value::as_str).unwrap_or("");
                !field("name").is_empty() && self.has_path(node, Vertex::Pvc, field("namespace"), field("name"))
            }),
            Vertex::VolumeAttachment => reader
                .get("storage.k8s.io", "volumeattachments", "", name)
                .is_some_and(|va| spec_node(&va) == node),
            Vertex::ResourceSlice => reader
                .get("resource.k8s.io", "resourceslices", "", name)
                .is_some_and(|s| spec_node(&s) == node),
        }
    }
}

fn meta_name(obj: &Value) -> &str {
    obj.get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn spec_node(obj: &Value) -> &str {
    obj.get("spec")
        .and_then(|s| s.get("nodeName"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Whether the request's field selector requires `field=value`.
fn field_equals(a: &Attributes, field: &str, value: &str) -> bool {
    crate::selector::fields::FieldSelector::parse(&a.field_selector)
        .ok()
        .is_some_and(|s| s.requires_exact_match(field) == Some(value))
}

/// Upstream's lease and CSINode rules: the object named as the node, in
/// `kube-node-lease` for leases (create is left to NodeRestriction).
fn own_object(node: &str, a: &Attributes, what: &str, lease: bool) -> Answer {
    if !matches!(a.verb.as_str(), "get" | "create" | "update" | "patch" | "delete") {
        return deny(if lease {
            "can only get, create, update, patch, or delete a node lease".to_string()
        } else {
            format!("can only get, create, update, patch, or delete a {what}")
        });
    }
    if lease && a.namespace != NODE_LEASE_NAMESPACE {
        return deny(format!(
            "can only access leases in the {NODE_LEASE_NAMESPACE:?} system namespace"
        ));
    }
    if !lease && !a.subresource.is_empty() {
        return deny("cannot authorize CSINode subresources");
    }
    if a.verb != "create" && a.name != node {
        return deny(if lease {
            "can only access node lease with the same name as the requesting node".to_string()
        } else {
            "can only access CSINode with the same name as the requesting node".to_string()
        });
    }
    allow()
}

/// Upstream's `authorizeNode`: a node reads only its own Node object.
fn node_object(node: &str, a: &Attributes) -> Answer {
    match (a.subresource.as_str(), a.verb.as_str()) {
        ("", "create" | "update" | "patch") | ("status", "update" | "patch") => allow(),
        ("", "get" | "list" | "watch") if a.name == node => allow(),
        ("", "get" | "list" | "watch") if a.name.is_empty() => {
            deny(format!("node '{node}' cannot read all nodes, only its own Node object"))
        }
        ("", "get" | "list" | "watch") => deny(format!(
            "node '{node}' cannot read '{}', only its own Node object",
            a.name
        )),
        _ => (Decision::NoOpinion(String::new()), String::new()),
    }
}

/// Reads objects from the watch cache.
struct CacheReader<'a>(&'a Registry);

impl CacheReader<'_> {
    fn select(
        &self,
        group: &str,
        resource: &str,
        prefix: impl FnOnce(&crate::registry::store::GenericStore) -> String,
        predicate: &Predicate,
    ) -> Vec<Value> {
        let Some(store) = self.0.store(group, resource) else {
            return Vec::new();
        };
        let Some((_, cache)) = store.cache() else {
            return Vec::new();
        };
        cache
            .list(&prefix(store), predicate, 0, 0)
            .items
            .iter()
            .filter_map(|o| serde_json::from_slice(&o.body).ok())
            .collect()
    }

    fn list(&self, group: &str, resource: &str, namespace: &str) -> Vec<Value> {
        self.select(group, resource, |s| s.prefix(namespace), &Predicate::everything())
    }

    fn get(&self, group: &str, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        self.select(group, resource, |s| s.key(namespace, name), &Predicate::everything())
            .into_iter()
            .find(|o| meta_name(o) == name)
    }

    /// The pods in `namespace` bound to `node`.
    fn pods_on(&self, node: &str, namespace: &str) -> Vec<Value> {
        let Some(store) = self.0.store("", "pods") else {
            return Vec::new();
        };
        let selector = format!("spec.nodeName={node}");
        let Ok(predicate) = crate::registry::selection::predicate(&store.info, None, Some(&selector)) else {
            return Vec::new();
        };
        self.select("", "pods", |s| s.prefix(namespace), &predicate)
    }
}

#[cfg(test)]
mod tests;
