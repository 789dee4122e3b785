//! Turns `labelSelector` and `fieldSelector` parameters into a
//! [`Predicate`] for a resource, over each object's [`ObjectAttrs`].

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::resources::ResourceInfo;
use crate::status::ApiError;

use super::list::Predicate;
use super::object::{self, Object};

/// What selectors look at: an object's labels and selectable fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectAttrs {
    pub labels: BTreeMap<String, String>,
    pub fields: BTreeMap<String, String>,
}

/// The attributes of an object of `info`'s kind.
pub fn attrs_of(info: &ResourceInfo, obj: &Object) -> ObjectAttrs {
    let mut fields = BTreeMap::new();
    fields.insert("metadata.name".to_string(), object::name(obj).to_string());
    if info.namespaced {
        fields.insert("metadata.namespace".to_string(), object::namespace(obj).to_string());
    }
    ObjectAttrs { labels: object::labels(obj), fields }
}

/// The predicate of a list or watch request.
pub fn predicate(info: &Arc<ResourceInfo>, label_selector: Option<&str>, field_selector: Option<&str>) -> Result<Predicate, ApiError> {
    let labels = label_selector.map(str::trim).filter(|s| !s.is_empty());
    let fields = field_selector.map(str::trim).filter(|s| !s.is_empty());
    match (labels, fields) {
        (None, None) => Ok(Predicate::everything()),
        _ => {
            let _ = info;
            Err(ApiError::bad_request("selectors are being wired in"))
        }
    }
}
