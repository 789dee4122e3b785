//! Strategies of the `rbac.authorization.k8s.io` API group's kinds: policy
//! rules of Roles and ClusterRoles, and the roleRef (immutable) and
//! subjects of bindings, with upstream's v1 defaults. Authorization itself
//! is not here.

pub mod bindings;
pub mod roles;

use std::sync::Arc;

use crate::registry::strategy::Strategy;

/// The API group the roleRef and User/Group subjects name.
pub const GROUP: &str = "rbac.authorization.k8s.io";

/// The strategy of `resource` when it has its own.
pub fn strategy_for(resource: &str) -> Option<Arc<dyn Strategy>> {
    match resource {
        "roles" => Some(Arc::new(roles::RoleStrategy { cluster: false })),
        "clusterroles" => Some(Arc::new(roles::RoleStrategy { cluster: true })),
        "rolebindings" => Some(Arc::new(bindings::BindingStrategy { cluster: false })),
        "clusterrolebindings" => Some(Arc::new(bindings::BindingStrategy { cluster: true })),
        _ => None,
    }
}
