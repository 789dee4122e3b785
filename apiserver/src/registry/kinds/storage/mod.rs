//! Strategies of the `storage.k8s.io` API group's kinds, and the checks
//! they share (provisioner and driver names, parameters).

pub mod csi;
pub mod storage_class;
pub mod volume_attachment;
pub mod volume_attributes_class;

use std::sync::Arc;

use serde_json::Value;

use crate::registry::kinds::networking::values::too_long;
use crate::registry::strategy::Strategy;
use crate::validation::names::{is_dns1123_subdomain, is_qualified_name};
use crate::validation::{FieldError, FieldErrors};

/// The strategy of `resource` when it has its own.
pub fn strategy_for(resource: &str) -> Option<Arc<dyn Strategy>> {
    match resource {
        "storageclasses" => Some(Arc::new(storage_class::StorageClassStrategy)),
        "csidrivers" => Some(Arc::new(csi::CsiDriverStrategy)),
        "csinodes" => Some(Arc::new(csi::CsiNodeStrategy)),
        "csistoragecapacities" => Some(Arc::new(csi::CsiStorageCapacityStrategy)),
        "volumeattachments" => Some(Arc::new(volume_attachment::VolumeAttachmentStrategy)),
        "volumeattributesclasses" => Some(Arc::new(volume_attributes_class::VolumeAttributesClassStrategy)),
        _ => None,
    }
}

const MAX_PARAMETERS_SIZE: usize = 256 * 1024;
const MAX_PARAMETERS: usize = 512;

/// A provisioner or driver name: required, a qualified name once
/// lower-cased.
pub fn validate_provisioner(value: &str, path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    if value.is_empty() {
        errs.push(FieldError::required(path, ""));
    } else {
        let lower = value.to_lowercase();
        for m in is_qualified_name(&lower) {
            errs.push(FieldError::invalid(path, lower.as_str(), m));
        }
    }
    errs
}

/// Class parameters: at most 512 entries and 256 KiB, no empty key, and
/// (unless `allow_empty`) at least one entry.
pub fn validate_parameters(params: Option<&Value>, allow_empty: bool, path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let map = params.and_then(Value::as_object);
    let len = map.map_or(0, |m| m.len());
    if len > MAX_PARAMETERS {
        errs.push(too_long(path, MAX_PARAMETERS));
        return errs;
    }
    let mut size = 0;
    for (k, v) in map.into_iter().flatten() {
        if k.is_empty() {
            errs.push(FieldError::invalid(path, k.as_str(), "field can not be empty."));
        }
        size += k.len() + v.as_str().map_or(0, str::len);
    }
    if size > MAX_PARAMETERS_SIZE {
        errs.push(too_long(path, MAX_PARAMETERS_SIZE));
    }
    if !allow_empty && len == 0 {
        errs.push(FieldError::required(path, "must contain at least one key/value pair"));
    }
    errs
}

/// Upstream's core `ValidateCSIDriverName`.
pub fn validate_csi_driver_name(name: &str, path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    if name.is_empty() {
        errs.push(FieldError::required(path, ""));
    }
    if name.len() > 63 {
        errs.push(too_long(path, 63));
    }
    for m in is_dns1123_subdomain(&name.to_lowercase()) {
        errs.push(FieldError::invalid(path, name, m));
    }
    errs
}
