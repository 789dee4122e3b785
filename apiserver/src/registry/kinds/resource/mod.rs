//! `resource.k8s.io/v1` (dynamic resource allocation): DeviceClass,
//! ResourceClaim, ResourceClaimTemplate and ResourceSlice
//! (`pkg/apis/resource/validation`, `v1/defaults.go`): the required
//! fields, names and counts; CEL selectors are not checked.

mod claims;
mod slices;

use std::sync::Arc;

use super::default_traits;
use crate::registry::strategy::{KindTraits, Strategy};

/// The strategy of `resource` when it has its own.
pub fn strategy_for(resource: &str) -> Option<Arc<dyn Strategy>> {
    match resource {
        "deviceclasses" => Some(Arc::new(DeviceClassStrategy)),
        "resourceclaims" => Some(Arc::new(claims::ResourceClaimStrategy)),
        "resourceclaimtemplates" => Some(Arc::new(claims::ResourceClaimTemplateStrategy)),
        "resourceslices" => Some(Arc::new(slices::ResourceSliceStrategy)),
        _ => None,
    }
}

/// DeviceClass: metadata only here; its generation follows spec changes.
#[derive(Debug, Default)]
pub struct DeviceClassStrategy;

impl Strategy for DeviceClassStrategy {
    fn traits(&self) -> KindTraits {
        KindTraits {
            tracks_generation: true,
            ..default_traits("resource.k8s.io", "deviceclasses")
        }
    }
}
