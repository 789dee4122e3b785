//! `apiextensions.k8s.io`: CustomResourceDefinition
//! (`apiextensions-apiserver/pkg/apis/apiextensions/validation`,
//! `v1/defaults.go`, `pkg/registry/customresourcedefinition/strategy.go`).
//!
//! Definitions are stored and validated here; serving their custom
//! resources is not done yet.

mod crd;

use std::sync::Arc;

use crate::registry::strategy::Strategy;

/// The strategy of `resource` when it has its own.
pub fn strategy_for(resource: &str) -> Option<Arc<dyn Strategy>> {
    match resource {
        "customresourcedefinitions" => Some(Arc::new(crd::CrdStrategy)),
        _ => None,
    }
}
