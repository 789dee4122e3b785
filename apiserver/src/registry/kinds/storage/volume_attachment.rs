//! VolumeAttachment (`storage.k8s.io/v1`): attacher, exactly one source,
//! node name, status sizes; the spec cannot change.

use serde_json::Value;

use super::validate_csi_driver_name;
use crate::registry::kinds::default_traits;
use crate::registry::kinds::networking::values::{get, int_at, invalid_raw, opt_str, str_at, too_long};
use crate::registry::object::Object;
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::names::is_dns1123_subdomain;
use crate::validation::{FieldError, FieldErrors};

const MAX_ATTACHED_METADATA_SIZE: usize = 256 * 1024;
const MAX_VOLUME_ERROR_MESSAGE_SIZE: usize = 1024;
const EXACTLY_ONE_SOURCE: &str = "must specify exactly one of inlineVolumeSpec and persistentVolumeName";

#[derive(Debug, Default)]
pub struct VolumeAttachmentStrategy;

impl Strategy for VolumeAttachmentStrategy {
    fn traits(&self) -> KindTraits {
        default_traits("storage.k8s.io", "volumeattachments")
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        let mut errs = validate_attachment(obj);
        // The v1 API's tighter checks of new objects.
        let spec = obj.get("spec");
        errs.extend(validate_csi_driver_name(str_at(spec, "attacher"), "spec.attacher"));
        if let Some(pv) = opt_str(get(spec, "source"), "persistentVolumeName") {
            for m in is_dns1123_subdomain(pv) {
                errs.push(FieldError::invalid("spec.source.persistentVolumeName", pv, m));
            }
        }
        errs
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let mut errs = validate_attachment(new);
        if new.get("spec") != old.get("spec") {
            errs.push(invalid_raw(
                "spec",
                &format!(
                    "storage.VolumeAttachmentSpec{{Attacher:{:?}, NodeName:{:?}, ...}}",
                    str_at(new.get("spec"), "attacher"),
                    str_at(new.get("spec"), "nodeName")
                ),
                "field is immutable",
            ));
        }
        errs
    }
}

fn validate_attachment(obj: &Object) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let spec = obj.get("spec");
    if str_at(spec, "attacher").is_empty() {
        errs.push(FieldError::required("spec.attacher", ""));
    }
    let source = get(spec, "source");
    let inline = get(source, "inlineVolumeSpec");
    let pv = opt_str(source, "persistentVolumeName");
    match (inline, pv) {
        (None, None) => errs.push(FieldError::required("spec.source", EXACTLY_ONE_SOURCE)),
        (Some(_), Some(_)) => errs.push(FieldError::forbidden("spec.source", EXACTLY_ONE_SOURCE)),
        (None, Some("")) => errs.push(FieldError::required(
            "spec.source.persistentVolumeName",
            "must specify non empty persistentVolumeName",
        )),
        _ => {}
    }
    let node = str_at(spec, "nodeName");
    for m in is_dns1123_subdomain(node) {
        errs.push(FieldError::invalid("spec.nodeName", node, m));
    }
    let status = obj.get("status");
    let size: usize = get(status, "attachmentMetadata")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| k.len() + v.as_str().map_or(0, str::len)).sum())
        .unwrap_or(0);
    if size > MAX_ATTACHED_METADATA_SIZE {
        errs.push(too_long("status.attachmentMetadata", MAX_ATTACHED_METADATA_SIZE));
    }
    for which in ["attachError", "detachError"] {
        let e = get(status, which);
        if e.is_none() {
            continue;
        }
        if str_at(e, "message").len() > MAX_VOLUME_ERROR_MESSAGE_SIZE {
            // Upstream reports the metadata limit here.
            errs.push(too_long(format!("status.{which}.message"), MAX_ATTACHED_METADATA_SIZE));
        }
        if let Some(code) = int_at(e, "errorCode")
            && code < 0
        {
            errs.push(FieldError::invalid(
                format!("status.{which}.errorCode"),
                code,
                "must be between 0 and 2147483647, inclusive",
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn obj(body: Value) -> Object {
        match body {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn messages(errs: FieldErrors) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn spec() {
        let ok = obj(json!({"spec": {"attacher": "csi.example.com", "nodeName": "n1",
            "source": {"persistentVolumeName": "pv1"}}}));
        assert!(VolumeAttachmentStrategy.validate(&ok).is_empty());
        let none = obj(json!({"spec": {"attacher": "csi.example.com", "nodeName": "n1", "source": {}}}));
        assert_eq!(
            messages(VolumeAttachmentStrategy.validate(&none)),
            ["spec.source: Required value: must specify exactly one of inlineVolumeSpec and persistentVolumeName"]
        );
        let both = obj(json!({"spec": {"attacher": "csi.example.com", "nodeName": "n1",
            "source": {"persistentVolumeName": "pv1", "inlineVolumeSpec": {}}}}));
        assert_eq!(
            messages(VolumeAttachmentStrategy.validate(&both)),
            ["spec.source: Forbidden: must specify exactly one of inlineVolumeSpec and persistentVolumeName"]
        );
        let no_attacher = obj(json!({"spec": {"nodeName": "n1", "source": {"persistentVolumeName": "pv1"}}}));
        assert_eq!(
            messages(VolumeAttachmentStrategy.validate(&no_attacher))[0],
            "spec.attacher: Required value"
        );
        let new = obj(json!({"spec": {"attacher": "csi.example.com", "nodeName": "n2",
            "source": {"persistentVolumeName": "pv1"}}}));
        assert_eq!(
            messages(VolumeAttachmentStrategy.validate_update(&new, &ok)),
            [
                "spec: Invalid value: storage.VolumeAttachmentSpec{Attacher:\"csi.example.com\", NodeName:\"n2\", ...}: field is immutable"
            ]
        );
        let status = obj(json!({"spec": {"attacher": "csi.example.com", "nodeName": "n1",
            "source": {"persistentVolumeName": "pv1"}}, "status": {"attached": true, "attachError": {"errorCode": -1}}}));
        assert_eq!(
            messages(VolumeAttachmentStrategy.validate_update(&status, &ok)),
            ["status.attachError.errorCode: Invalid value: -1: must be between 0 and 2147483647, inclusive"]
        );
    }
}
