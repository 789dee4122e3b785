//! PersistentVolumes and PersistentVolumeClaims: v1 defaults, the basic
//! spec rules and the claim's spec immutability
//! (`ValidatePersistentVolume`, `ValidatePersistentVolumeClaim*`).

use serde_json::{Value, json};

use super::checks::{arr_of, obj_of, quantity_value, set_default, spec_mut};
use crate::registry::object::Object;
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::{FieldError, FieldErrors};

const ACCESS_MODES: &[&str] = &["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"];

/// Volume sources a PersistentVolume may name (exactly one).
const PV_SOURCES: &[&str] = &[
    "awsElasticBlockStore",
    "azureDisk",
    "azureFile",
    "cephfs",
    "cinder",
    "csi",
    "fc",
    "flexVolume",
    "flocker",
    "gcePersistentDisk",
    "glusterfs",
    "hostPath",
    "iscsi",
    "local",
    "nfs",
    "photonPersistentDisk",
    "portworxVolume",
    "quobyte",
    "rbd",
    "scaleIO",
    "storageos",
    "vsphereVolume",
];

fn validate_access_modes(spec: Option<&Value>) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let modes = arr_of(spec, "accessModes");
    if modes.is_empty() {
        errs.push(FieldError::required(
            "spec.accessModes",
            "at least 1 access mode is required",
        ));
    }
    for m in modes {
        let m = m.as_str().unwrap_or("");
        if !ACCESS_MODES.contains(&m) {
            errs.push(FieldError::not_supported("spec.accessModes", m, ACCESS_MODES));
        }
    }
    if modes.len() > 1 && modes.iter().any(|m| m == "ReadWriteOncePod") {
        errs.push(FieldError::forbidden(
            "spec.accessModes",
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
    errs
}

/// The PersistentVolumeClaim strategy.
#[derive(Debug)]
pub struct ClaimStrategy(pub KindTraits);

/// `ValidatePersistentVolumeClaimSpec` (the parts clients hit).
pub fn validate_claim(pvc: &Object) -> FieldErrors {
    let spec = pvc.get("spec");
    let mut errs = validate_access_modes(spec);
    let storage = obj_of(spec, "resources")
        .and_then(|r| r.get("requests"))
        .and_then(|r| r.get("storage"));
    match storage {
        None => errs.push(FieldError::required("spec.resources[storage]", "")),
        Some(q) => {
            if quantity_value(q).is_some_and(|v| v <= 0.0) {
                errs.push(FieldError::invalid(
                    "spec.resources[storage]",
                    super::checks::quantity_text(q),
                    "must be greater than zero",
                ));
            }
        }
    }
    if let Some(mode) = spec.and_then(|s| s.get("volumeMode")).and_then(Value::as_str)
        && !matches!(mode, "Block" | "Filesystem")
    {
        errs.push(FieldError::not_supported(
            "spec.volumeMode",
            mode,
            &["Block", "Filesystem"],
        ));
    }
    errs
}

/// The claim's spec without the fields an update may change.
fn frozen_spec(pvc: &Object) -> Value {
    let mut spec = pvc.get("spec").cloned().unwrap_or(json!({}));
    if let Value::Object(s) = &mut spec {
        s.remove("volumeAttributesClassName");
        if let Some(Value::Object(r)) = s.get_mut("resources") {
            r.remove("requests");
            if r.is_empty() {
                s.remove("resources");
            }
        }
    }
    spec
}

impl Strategy for ClaimStrategy {
    fn traits(&self) -> KindTraits {
        self.0
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        if let Some(spec) = spec_mut(obj) {
            set_default(spec, "volumeMode", json!("Filesystem"));
        }
        obj.insert("status".into(), json!({"phase": "Pending"}));
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_claim(obj)
    }

    fn prepare_for_update(&self, new: &mut Object, _old: &Object) {
        if let Some(spec) = spec_mut(new) {
            set_default(spec, "volumeMode", json!("Filesystem"));
        }
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let mut errs = FieldErrors::new();
        // A binder may set volumeName once.
        let mut old_frozen = frozen_spec(old);
        let new_frozen = frozen_spec(new);
        if let (Value::Object(o), Some(name)) = (&mut old_frozen, new_frozen.get("volumeName"))
            && o.get("volumeName").is_none_or(|v| v == "")
        {
            o.insert("volumeName".into(), name.clone());
        }
        if old_frozen != new_frozen {
            errs.push(FieldError::forbidden(
                "spec",
                "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
            ));
        }
        let request = |o: &Object| {
            obj_of(o.get("spec"), "resources")
                .and_then(|r| r.get("requests"))
                .and_then(|r| r.get("storage"))
                .and_then(quantity_value)
        };
        let capacity = old
            .get("status")
            .and_then(|s| s.get("capacity"))
            .and_then(|c| c.get("storage"))
            .and_then(quantity_value);
        if let (Some(new_req), Some(old_req)) = (request(new), request(old))
            && new_req < old_req
            && capacity.is_none_or(|c| new_req < c)
        {
            errs.push(FieldError::forbidden(
                "spec.resources.requests.storage",
                "field can not be less than status.capacity",
            ));
        }
        errs.extend(validate_claim(new));
        errs
    }
}

/// The PersistentVolume strategy.
#[derive(Debug)]
pub struct VolumeStrategy(pub KindTraits);

/// `ValidatePersistentVolume` (the parts clients hit).
pub fn validate_volume(pv: &Object) -> FieldErrors {
    let spec = pv.get("spec");
    let mut errs = validate_access_modes(spec);
    match obj_of(spec, "capacity") {
        None => errs.push(FieldError::required("spec.capacity", "")),
        Some(c) => {
            if !c.contains_key("storage") || c.len() > 1 {
                errs.push(FieldError::not_supported(
                    "spec.capacity",
                    Value::from(c.keys().cloned().collect::<Vec<_>>()),
                    &["storage"],
                ));
            }
        }
    }
    let sources: Vec<&str> = PV_SOURCES
        .iter()
        .copied()
        .filter(|s| spec.and_then(|sp| sp.get(*s)).is_some_and(|v| !v.is_null()))
        .collect();
    match sources.as_slice() {
        [] => errs.push(FieldError::required("spec", "must specify a volume type")),
        [_] => {}
        [_, rest @ ..] => {
            for s in rest {
                errs.push(FieldError::forbidden(
                    format!("spec.{s}"),
                    "may not specify more than 1 volume type",
                ));
            }
        }
    }
    if let Some(p) = spec
        .and_then(|s| s.get("persistentVolumeReclaimPolicy"))
        .and_then(Value::as_str)
        && !matches!(p, "Delete" | "Recycle" | "Retain")
    {
        errs.push(FieldError::not_supported(
            "spec.persistentVolumeReclaimPolicy",
            p,
            &["Delete", "Recycle", "Retain"],
        ));
    }
    errs
}

fn default_volume(pv: &mut Object) {
    if let Some(spec) = spec_mut(pv) {
        set_default(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
        set_default(spec, "volumeMode", json!("Filesystem"));
    }
}

impl Strategy for VolumeStrategy {
    fn traits(&self) -> KindTraits {
        self.0
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        default_volume(obj);
        obj.insert("status".into(), json!({"phase": "Pending"}));
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_volume(obj)
    }

    fn prepare_for_update(&self, new: &mut Object, _old: &Object) {
        default_volume(new);
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let mut errs = validate_volume(new);
        let mode = |o: &Object| o.get("spec").and_then(|s| s.get("volumeMode")).cloned();
        if mode(new) != mode(old) {
            errs.push(FieldError::invalid(
                "spec.volumeMode",
                mode(new).unwrap_or(Value::Null),
                super::checks::FIELD_IMMUTABLE,
            ));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn obj(v: Value) -> Object {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn claims() {
        let s = ClaimStrategy(KindTraits::default());
        let mut pvc =
            obj(json!({"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}));
        s.prepare_for_create(&mut pvc);
        assert_eq!(pvc["spec"]["volumeMode"], "Filesystem");
        assert!(s.validate(&pvc).is_empty());
        assert_eq!(
            validate_claim(&obj(json!({"spec": {}}))).summary(),
            "[spec.accessModes: Required value: at least 1 access mode is required, spec.resources[storage]: Required value]"
        );
        let mut grown = pvc.clone();
        grown["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
        grown["spec"]["volumeName"] = json!("pv1");
        assert!(s.validate_update(&grown, &pvc).is_empty());
        let mut changed = pvc.clone();
        changed["spec"]["accessModes"] = json!(["ReadWriteMany"]);
        assert_eq!(
            s.validate_update(&changed, &pvc).summary(),
            "spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"
        );
    }

    #[test]
    fn volumes() {
        let s = VolumeStrategy(KindTraits::default());
        let mut pv = obj(
            json!({"spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/x"}}}),
        );
        s.prepare_for_create(&mut pv);
        assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
        assert!(s.validate(&pv).is_empty());
        let none = obj(json!({"spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}}));
        assert_eq!(
            validate_volume(&none).summary(),
            "spec: Required value: must specify a volume type"
        );
    }
}
