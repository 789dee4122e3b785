//! CSIDriver (defaults; attachRequired and volumeLifecycleModes
//! immutable), CSINode (drivers; a driver's entry immutable but for its
//! allocatable count) and CSIStorageCapacity.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::validate_csi_driver_name;
use crate::registry::kinds::default_traits;
use crate::registry::kinds::networking::values::{
    arr, differs, get, go_slice_at, immutable, int_at, invalid_raw, object_mut, set_default, str_at, strs,
};
use crate::registry::object::Object;
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::label_selector::{LabelSelectorOptions, is_valid_label_selector, validate_label_selector};
use crate::validation::names::{is_dns1123_subdomain, is_qualified_name};
use crate::validation::{FieldError, FieldErrors, child, index};

#[derive(Debug, Default)]
pub struct CsiDriverStrategy;

fn apply_driver_defaults(obj: &mut Object) {
    let spec = object_mut(obj, "spec");
    set_default(spec, "attachRequired", json!(true));
    set_default(spec, "podInfoOnMount", json!(false));
    set_default(spec, "storageCapacity", json!(false));
    set_default(spec, "fsGroupPolicy", json!("ReadWriteOnceWithFSType"));
    if spec
        .get("volumeLifecycleModes")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        spec.insert("volumeLifecycleModes".into(), json!(["Persistent"]));
    }
    set_default(spec, "requiresRepublish", json!(false));
    set_default(spec, "seLinuxMount", json!(false));
}

impl Strategy for CsiDriverStrategy {
    fn traits(&self) -> KindTraits {
        default_traits("storage.k8s.io", "csidrivers")
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        apply_driver_defaults(obj);
    }

    fn prepare_for_update(&self, new: &mut Object, _old: &Object) {
        apply_driver_defaults(new);
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_driver_spec(obj.get("spec"))
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let mut errs = validate_driver_spec(new.get("spec"));
        let (n, o) = (new.get("spec"), old.get("spec"));
        if differs(get(n, "attachRequired"), get(o, "attachRequired")) {
            let v = get(n, "attachRequired").cloned().unwrap_or(Value::from("null"));
            errs.push(immutable("spec.attachedRequired", v));
        }
        if differs(get(n, "volumeLifecycleModes"), get(o, "volumeLifecycleModes")) {
            errs.push(invalid_raw(
                "spec.volumeLifecycleModes",
                &go_slice_at("storage.VolumeLifecycleMode", n, "volumeLifecycleModes"),
                "field is immutable",
            ));
        }
        errs
    }
}

fn validate_driver_spec(spec: Option<&Value>) -> FieldErrors {
    let mut errs = FieldErrors::new();
    for (field, path) in [
        ("attachRequired", "spec.attachedRequired"),
        ("podInfoOnMount", "spec.podInfoOnMount"),
        ("storageCapacity", "spec.storageCapacity"),
    ] {
        if get(spec, field).is_none() {
            errs.push(FieldError::required(path, ""));
        }
    }
    if let Some(p) = get(spec, "fsGroupPolicy").and_then(Value::as_str)
        && !matches!(p, "ReadWriteOnceWithFSType" | "File" | "None")
    {
        errs.push(FieldError::not_supported(
            "spec.fsGroupPolicy",
            p,
            &["File", "None", "ReadWriteOnceWithFSType"],
        ));
    }
    let mut audiences = BTreeSet::new();
    for (i, req) in arr(spec, "tokenRequests").iter().enumerate() {
        let p = index("spec.tokenRequests", i);
        let audience = str_at(Some(req), "audience");
        if !audiences.insert(audience) {
            errs.push(FieldError::duplicate(child(&p, "audience"), audience));
            continue;
        }
        if let Some(secs) = int_at(Some(req), "expirationSeconds") {
            if secs < 600 {
                errs.push(FieldError::invalid(
                    child(&p, "expirationSeconds"),
                    secs,
                    "may not specify a duration less than 10 minutes",
                ));
            }
            if secs > 1 << 32 {
                errs.push(FieldError::invalid(
                    child(&p, "expirationSeconds"),
                    secs,
                    "may not specify a duration larger than 2^32 seconds",
                ));
            }
        }
    }
    for mode in strs(spec, "volumeLifecycleModes") {
        if !matches!(mode, "Persistent" | "Ephemeral") {
            errs.push(FieldError::not_supported(
                "spec.volumeLifecycleModes",
                mode,
                &["Persistent", "Ephemeral"],
            ));
        }
    }
    if get(spec, "seLinuxMount").is_none() {
        errs.push(FieldError::required("spec.seLinuxMount", ""));
    }
    if let Some(period) = int_at(spec, "nodeAllocatableUpdatePeriodSeconds")
        && period < 10
    {
        errs.push(FieldError::invalid(
            "spec.nodeAllocatableUpdatePeriodSeconds",
            period,
            "must be greater than or equal to 10 seconds",
        ));
    }
    errs
}

#[derive(Debug, Default)]
pub struct CsiNodeStrategy;

/// The longest `nodeID` a CSINode driver entry may have.
const CSI_NODE_ID_MAX_LENGTH: usize = 256;

impl Strategy for CsiNodeStrategy {
    fn traits(&self) -> KindTraits {
        default_traits("storage.k8s.io", "csinodes")
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_csi_node_drivers(arr(obj.get("spec"), "drivers"))
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let mut errs = self.validate(new);
        let without_allocatable = |d: &Value| {
            let mut d = d.clone();
            if let Value::Object(m) = &mut d {
                m.remove("allocatable");
            }
            d
        };
        for o in arr(old.get("spec"), "drivers") {
            for n in arr(new.get("spec"), "drivers") {
                if str_at(Some(o), "name") == str_at(Some(n), "name")
                    && without_allocatable(o) != without_allocatable(n)
                {
                    errs.push(invalid_raw(
                        "spec.drivers",
                        &format!("storage.CSINodeDriver{{Name:{:?}, ...}}", str_at(Some(n), "name")),
                        "field is immutable",
                    ));
                }
            }
        }
        errs
    }
}

fn validate_csi_node_drivers(drivers: &[Value]) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let mut names = BTreeSet::new();
    for (i, d) in drivers.iter().enumerate() {
        let p = index("spec.drivers", i);
        let name = str_at(Some(d), "name");
        errs.extend(validate_csi_driver_name(name, &child(&p, "name")));
        let node_id = str_at(Some(d), "nodeID");
        if node_id.is_empty() {
            errs.push(FieldError::required(child(&p, "nodeID"), ""));
        }
        if node_id.len() > CSI_NODE_ID_MAX_LENGTH {
            errs.push(FieldError::invalid(
                child(&p, "nodeID"),
                node_id,
                format!("must be {CSI_NODE_ID_MAX_LENGTH} characters or less"),
            ));
        }
        if let Some(count) = int_at(get(Some(d), "allocatable"), "count")
            && count < 0
        {
            errs.push(FieldError::invalid(
                format!("{p}.allocatable.count"),
                count,
                "must be greater than or equal to 0",
            ));
        }
        if !names.insert(name) {
            errs.push(FieldError::duplicate(child(&p, "name"), name));
        }
        let mut keys = BTreeSet::new();
        for key in strs(Some(d), "topologyKeys") {
            if key.is_empty() {
                errs.push(FieldError::required(&p, ""));
            }
            if !keys.insert(key) {
                errs.push(FieldError::duplicate(&p, key));
            }
            for m in is_qualified_name(key) {
                errs.push(FieldError::invalid(&p, key, m));
            }
        }
    }
    errs
}

#[derive(Debug, Default)]
pub struct CsiStorageCapacityStrategy;

impl Strategy for CsiStorageCapacityStrategy {
    fn traits(&self) -> KindTraits {
        default_traits("storage.k8s.io", "csistoragecapacities")
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_capacity(obj, LabelSelectorOptions::default())
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let opts = LabelSelectorOptions {
            allow_invalid_label_value: !is_valid_label_selector(old.get("nodeTopology")),
        };
        let mut errs = validate_capacity(new, opts);
        if differs(new.get("nodeTopology"), old.get("nodeTopology")) {
            errs.push(invalid_raw(
                "nodeTopology",
                "&v1.LabelSelector{...}",
                "field is immutable",
            ));
        }
        let class = new.get("storageClassName").and_then(Value::as_str).unwrap_or("");
        if class != old.get("storageClassName").and_then(Value::as_str).unwrap_or("") {
            errs.push(immutable("storageClassName", class));
        }
        errs
    }
}

fn validate_capacity(obj: &Object, opts: LabelSelectorOptions) -> FieldErrors {
    let mut errs = validate_label_selector(obj.get("nodeTopology"), opts, "nodeTopology");
    let class = obj.get("storageClassName").and_then(Value::as_str).unwrap_or("");
    for m in is_dns1123_subdomain(class) {
        errs.push(FieldError::invalid("storageClassName", class, m));
    }
    errs
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::testing::TestServer;
    use axum::http::StatusCode;

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
    fn csi_driver_defaults_and_validation() {
        let mut d = obj(json!({"metadata": {"name": "d"}}));
        CsiDriverStrategy.prepare_for_create(&mut d);
        assert_eq!(
            d["spec"],
            json!({"attachRequired": true, "podInfoOnMount": false, "storageCapacity": false,
                "fsGroupPolicy": "ReadWriteOnceWithFSType", "volumeLifecycleModes": ["Persistent"],
                "requiresRepublish": false, "seLinuxMount": false})
        );
        assert!(CsiDriverStrategy.validate(&d).is_empty());
        let mut bad = obj(
            json!({"spec": {"fsGroupPolicy": "Any", "volumeLifecycleModes": ["Forever"],
            "tokenRequests": [{"audience": "a", "expirationSeconds": 60}, {"audience": "a"}]}}),
        );
        CsiDriverStrategy.prepare_for_create(&mut bad);
        assert_eq!(
            messages(CsiDriverStrategy.validate(&bad)),
            [
                "spec.fsGroupPolicy: Unsupported value: \"Any\": supported values: \"File\", \"None\", \"ReadWriteOnceWithFSType\"",
                "spec.tokenRequests[0].expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes",
                "spec.tokenRequests[1].audience: Duplicate value: \"a\"",
                "spec.volumeLifecycleModes: Unsupported value: \"Forever\": supported values: \"Persistent\", \"Ephemeral\"",
            ]
        );
        let mut new = obj(
            json!({"spec": {"attachRequired": false, "volumeLifecycleModes": ["Ephemeral"], "podInfoOnMount": true}}),
        );
        CsiDriverStrategy.prepare_for_update(&mut new, &d);
        assert_eq!(
            messages(CsiDriverStrategy.validate_update(&new, &d)),
            [
                "spec.attachedRequired: Invalid value: false: field is immutable",
                "spec.volumeLifecycleModes: Invalid value: []storage.VolumeLifecycleMode{\"Ephemeral\"}: field is immutable",
            ]
        );
    }

    #[test]
    fn csi_node() {
        let n = obj(json!({"spec": {"drivers": [
            {"name": "csi.example.com", "nodeID": "n1", "topologyKeys": ["zone"], "allocatable": {"count": 5}},
            {"name": "csi.example.com", "nodeID": "", "topologyKeys": ["zone", "zone"]}]}}));
        assert_eq!(
            messages(CsiNodeStrategy.validate(&n)),
            [
                "spec.drivers[1].nodeID: Required value",
                "spec.drivers[1].name: Duplicate value: \"csi.example.com\"",
                "spec.drivers[1]: Duplicate value: \"zone\"",
            ]
        );
        let old = obj(json!({"spec": {"drivers": [{"name": "d.io", "nodeID": "n1", "allocatable": {"count": 5}}]}}));
        let count = obj(json!({"spec": {"drivers": [{"name": "d.io", "nodeID": "n1", "allocatable": {"count": 7}}]}}));
        assert!(CsiNodeStrategy.validate_update(&count, &old).is_empty());
        let id = obj(json!({"spec": {"drivers": [{"name": "d.io", "nodeID": "n2"}]}}));
        assert_eq!(CsiNodeStrategy.validate_update(&id, &old).0.len(), 1);
    }

    #[tokio::test]
    async fn http_csi_driver_defaults() {
        let s = TestServer::new().await;
        let path = "/apis/storage.k8s.io/v1/csidrivers";
        let (code, body) = s
            .post(
                path,
                json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver", "metadata": {"name": "csi.example.com"},
                    "spec": {"attachRequired": false}}),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
        let (_, body) = s.get(&format!("{path}/csi.example.com")).await;
        assert_eq!(body["spec"]["attachRequired"], false);
        assert_eq!(body["spec"]["volumeLifecycleModes"], json!(["Persistent"]));
        assert_eq!(body["spec"]["fsGroupPolicy"], "ReadWriteOnceWithFSType");
        let (code, body) = s
            .patch(
                &format!("{path}/csi.example.com"),
                "application/merge-patch+json",
                json!({"spec": {"attachRequired": true}}),
            )
            .await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["details"]["causes"][0]["field"], "spec.attachedRequired");
    }
}
