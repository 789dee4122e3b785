//! VolumeAttributesClass (`storage.k8s.io/v1`): driverName and parameters
//! are required and cannot change.

use super::{validate_parameters, validate_provisioner};
use crate::registry::kinds::default_traits;
use crate::registry::kinds::networking::values::differs;
use crate::registry::object::Object;
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::{FieldError, FieldErrors};

#[derive(Debug, Default)]
pub struct VolumeAttributesClassStrategy;

impl Strategy for VolumeAttributesClassStrategy {
    fn traits(&self) -> KindTraits {
        default_traits("storage.k8s.io", "volumeattributesclasses")
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        let driver = obj.get("driverName").and_then(|v| v.as_str()).unwrap_or("");
        let mut errs = validate_provisioner(driver, "driverName");
        errs.extend(validate_parameters(obj.get("parameters"), false, "parameters"));
        errs
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let mut errs = FieldErrors::new();
        if differs(new.get("driverName"), old.get("driverName")) {
            errs.push(FieldError::forbidden(
                "driverName",
                "updates to driverName are forbidden.",
            ));
        }
        if differs(new.get("parameters"), old.get("parameters")) {
            errs.push(FieldError::forbidden(
                "parameters",
                "updates to parameters are forbidden.",
            ));
        }
        errs.extend(self.validate(new));
        errs
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::{Value, json};

    fn obj(body: Value) -> Object {
        match body {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn rules() {
        let ok = obj(json!({"driverName": "csi.example.com", "parameters": {"iops": "100"}}));
        assert!(VolumeAttributesClassStrategy.validate(&ok).is_empty());
        let got: Vec<String> = VolumeAttributesClassStrategy
            .validate(&obj(json!({})))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            got,
            [
                "driverName: Required value",
                "parameters: Required value: must contain at least one key/value pair"
            ]
        );
        let new = obj(json!({"driverName": "other.example.com", "parameters": {"iops": "200"}}));
        let got: Vec<String> = VolumeAttributesClassStrategy
            .validate_update(&new, &ok)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            got,
            [
                "driverName: Forbidden: updates to driverName are forbidden.",
                "parameters: Forbidden: updates to parameters are forbidden."
            ]
        );
    }
}
