//! Objects the server ensures at every start: the system namespaces.

use serde_json::json;

use crate::registry::Registry;
use crate::registry::object::Object;
use crate::registry::store::CreateOptions;
use crate::status::ApiError;

/// Namespaces kube-apiserver creates at start.
pub const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Creates the system namespaces that do not exist yet.
pub async fn ensure_system_namespaces(registry: &Registry) -> Result<(), ApiError> {
    let Some(namespaces) = registry.store("", "namespaces") else {
        return Ok(());
    };
    for name in SYSTEM_NAMESPACES {
        let obj: Object = match json!({"metadata": {"name": name}}) {
            serde_json::Value::Object(m) => m,
            _ => continue,
        };
        match namespaces.create("", obj, &CreateOptions::default()).await {
            Ok(_) => tracing::info!(namespace = name, "created system namespace"),
            Err(e) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
