//! ControllerRevisions: `data` is mandatory and immutable, `revision` is
//! non-negative.

use crate::registry::object::Object;
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::pod_spec::fields::{IMMUTABLE, has, int, nonnegative};
use crate::validation::{FieldError, FieldErrors};

use super::super::default_traits;

#[derive(Debug, Default)]
pub struct ControllerRevisionStrategy;

/// `ValidateControllerRevision` (beyond metadata).
pub fn validate_controller_revision(obj: &Object) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let v = serde_json::Value::Object(obj.clone());
    if !has(Some(&v), "data") {
        errs.push(FieldError::required("data", "data is mandatory"));
    }
    nonnegative(int(Some(&v), "revision").unwrap_or(0), "revision", &mut errs);
    errs
}

impl Strategy for ControllerRevisionStrategy {
    fn traits(&self) -> KindTraits {
        default_traits("apps", "controllerrevisions")
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_controller_revision(obj)
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let mut errs = validate_controller_revision(new);
        if new.get("data") != old.get("data") {
            errs.push(FieldError::invalid(
                "data",
                new.get("data").cloned().unwrap_or(serde_json::Value::Null),
                IMMUTABLE,
            ));
        }
        errs
    }
}
