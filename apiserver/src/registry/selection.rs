//! Turns `labelSelector` and `fieldSelector` parameters into a
//! [`Predicate`] for a resource, over each object's [`ObjectAttrs`].

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::resources::ResourceInfo;
use crate::selector::{FieldLabelConversion, FieldSelector, Selector, selectable_fields};
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
    ObjectAttrs {
        labels: object::labels(obj),
        fields: selectable_fields(&info.group, &info.resource, obj),
    }
}

/// The predicate of a list or watch request.
pub fn predicate(
    info: &Arc<ResourceInfo>,
    label_selector: Option<&str>,
    field_selector: Option<&str>,
) -> Result<Predicate, ApiError> {
    let labels = label_selector.filter(|s| !s.trim().is_empty());
    let fields = field_selector.filter(|s| !s.is_empty());
    if labels.is_none() && fields.is_none() {
        return Ok(Predicate::everything());
    }
    let labels = labels
        .map(Selector::parse)
        .transpose()?
        .unwrap_or_else(Selector::everything);
    let fields = match fields {
        Some(f) => FieldSelector::parse(f)?
            .convert_field_labels(&FieldLabelConversion::builtin(&info.group, &info.resource))?,
        None => FieldSelector::everything(),
    };
    Ok(Predicate::new(info.clone(), move |a: &ObjectAttrs| {
        labels.matches(&a.labels) && fields.matches(&a.fields)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::ResourceTable;
    use serde_json::json;

    #[test]
    fn selects_by_labels_and_fields() {
        let pods = ResourceTable::builtin().get("", "v1", "pods").unwrap().clone();
        let pod = json!({"metadata": {"name": "p", "namespace": "d", "labels": {"app": "web"}}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        let pod = pod.as_object().unwrap();
        let check = |l: Option<&str>, f: Option<&str>| predicate(&pods, l, f).unwrap().matches(pod);
        assert!(check(Some("app=web"), Some("spec.nodeName=n1,status.phase=Running")));
        assert!(!check(Some("app!=web"), None));
        assert!(!check(None, Some("metadata.name=q")));
        assert!(check(None, Some("metadata.namespace=d")));
        let e = predicate(&pods, None, Some("spec.bogus=1")).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (400, "field label not supported: spec.bogus")
        );
        assert_eq!(predicate(&pods, Some("a b"), None).unwrap_err().code, 400);
    }
}
