//! NamespaceLifecycle (`k8s.io/apiserver/pkg/admission/plugin/namespace/lifecycle`):
//! the namespaces `default`, `kube-system` and `kube-public` may not be
//! deleted; namespaced objects may only be created or updated in a
//! namespace that exists (else the namespace's NotFound), and not created
//! in one being terminated.

use crate::registry::Registry;
use crate::registry::object::Object;
use crate::status::{ApiError, GroupResource, StatusCause};

use super::{Attributes, Operation, forbidden};

/// The namespaces upstream's plugin refuses to delete.
pub const IMMORTAL_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

pub async fn admit(registry: &Registry, attrs: &Attributes<'_>, obj: Option<&Object>) -> Result<(), ApiError> {
    let is_namespace = attrs.resource.group.is_empty() && attrs.resource.resource == "namespaces";
    if is_namespace {
        if attrs.operation == Operation::Delete && IMMORTAL_NAMESPACES.contains(&attrs.name) {
            return Err(ApiError::forbidden(
                attrs.gr(),
                attrs.name,
                "this namespace may not be deleted",
            ));
        }
        return Ok(());
    }
    if attrs.namespace.is_empty() || attrs.operation == Operation::Delete {
        return Ok(());
    }
    let ns = match attrs.lookups.namespace(registry, attrs.namespace).await {
        Ok(Some(ns)) => ns,
        Ok(None) => return Ok(()),
        Err(e) if e.code == 404 => {
            return Err(ApiError::not_found(
                GroupResource {
                    group: "",
                    resource: "namespaces",
                },
                attrs.namespace,
            ));
        }
        Err(e) => return Err(ApiError::internal(e.message)),
    };
    if attrs.operation == Operation::Create && ns.terminating() {
        let mut err = forbidden(
            attrs,
            obj,
            &format!(
                "unable to create new content in namespace {} because it is being terminated",
                attrs.namespace
            ),
        );
        if let Some(details) = err.details.as_mut() {
            details.causes.push(StatusCause {
                reason: "NamespaceTerminating".into(),
                message: format!("namespace {} is being terminated", attrs.namespace),
                field: "metadata.namespace".into(),
            });
        }
        return Err(err);
    }
    Ok(())
}
