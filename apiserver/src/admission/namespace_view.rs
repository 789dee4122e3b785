//! The request's namespace as the plugins read it on every write: its
//! labels (PodSecurity's policy) and whether it is being terminated
//! (NamespaceLifecycle). Read from the watch cache straight into this view
//! ([`GenericStore::get_cached_as`]), without decoding the whole object.
//!
//! [`GenericStore::get_cached_as`]: crate::registry::store::GenericStore::get_cached_as

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::registry::Registry;
use crate::status::ApiError;

/// The fields of a Namespace the plugins look at.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NamespaceView {
    metadata: Meta,
    status: Status,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Meta {
    labels: Option<Map<String, Value>>,
    deletion_timestamp: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Status {
    phase: Option<String>,
}

impl NamespaceView {
    /// The namespace `name` (errors as the store's: 404 when missing), or
    /// `None` when this server has no namespaces resource.
    pub async fn read(registry: &Registry, name: &str) -> Result<Option<Arc<NamespaceView>>, ApiError> {
        match registry.store("", "namespaces") {
            Some(store) => store.get_cached_as("", name).await.map(Some),
            None => Ok(None),
        }
    }

    /// `metadata.labels`, when it is a map.
    pub fn labels(&self) -> Option<&Map<String, Value>> {
        self.metadata.labels.as_ref()
    }

    /// Whether the namespace is being terminated: phase `Terminating` or a
    /// deletion timestamp.
    pub fn terminating(&self) -> bool {
        self.status.phase.as_deref() == Some("Terminating")
            || self.metadata.deletion_timestamp.as_ref().is_some_and(|v| !v.is_null())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn view(json: &str) -> NamespaceView {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn reads_labels_and_termination() {
        let active = view(
            r#"{"metadata":{"name":"a","labels":{"pod-security.kubernetes.io/enforce":"restricted"},
                "annotations":{"x":"y"}},"spec":{"finalizers":["kubernetes"]},"status":{"phase":"Active"}}"#,
        );
        assert!(!active.terminating());
        assert_eq!(
            active.labels().unwrap()["pod-security.kubernetes.io/enforce"],
            "restricted"
        );
        assert!(view(r#"{"status":{"phase":"Terminating"}}"#).terminating());
        assert!(view(r#"{"metadata":{"deletionTimestamp":"2026-12-06T10:00:00Z"}}"#).terminating());
        let bare = view(r#"{"metadata":{"deletionTimestamp":null,"labels":null},"status":{}}"#);
        assert!(!bare.terminating());
        assert!(bare.labels().is_none());
    }
}
