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
    pub labels: AttrSet,
    pub fields: AttrSet,
}

/// A small immutable map of strings, sorted by key: the watch cache keeps
/// one per object for labels and one for fields, so it is one allocation
/// (plus the strings) rather than a tree of nodes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttrSet(Box<[(Box<str>, Box<str>)]>);

impl AttrSet {
    /// The entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<BTreeMap<String, String>> for AttrSet {
    fn from(map: BTreeMap<String, String>) -> Self {
        AttrSet(
            map.into_iter()
                .map(|(k, v)| (k.into_boxed_str(), v.into_boxed_str()))
                .collect(),
        )
    }
}

impl crate::selector::Attrs for AttrSet {
    fn attr(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .map(|i| &*self.0[i].1)
    }
}

/// The attributes of an object of `info`'s kind.
pub fn attrs_of(info: &ResourceInfo, obj: &Object) -> ObjectAttrs {
    ObjectAttrs {
        labels: labels_of(obj),
        fields: selectable_fields(&info.group, &info.resource, obj).into(),
    }
}

/// The object's labels (as [`object::labels`] reads them), straight from
/// its label map, which is already in key order.
fn labels_of(obj: &Object) -> AttrSet {
    let labels = object::meta(obj).get("labels").and_then(serde_json::Value::as_object);
    AttrSet(
        labels
            .into_iter()
            .flatten()
            .map(|(k, v)| (Box::from(k.as_str()), Box::from(v.as_str().unwrap_or(""))))
            .collect(),
    )
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
    fn labels_read_in_place_equal_the_label_map() {
        for obj in [
            json!({"metadata": {"labels": {"b": "2", "a": "1", "n": 5, "": "e"}}}),
            json!({"metadata": {"labels": "x"}}),
            json!({"metadata": {}}),
            json!({}),
        ] {
            let obj = obj.as_object().unwrap();
            assert_eq!(labels_of(obj), AttrSet::from(object::labels(obj)), "{obj:?}");
        }
    }

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

    #[test]
    fn attr_set_lookups() {
        use crate::selector::Attrs;
        let map: BTreeMap<String, String> = [("b", "2"), ("a", "1"), ("c", "")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let set = AttrSet::from(map);
        assert_eq!(set.len(), 3);
        assert_eq!(set.attr("a"), Some("1"));
        assert_eq!(set.attr("b"), Some("2"));
        assert_eq!(set.attr("c"), Some(""));
        assert_eq!(set.attr("d"), None);
        assert_eq!(set.iter().map(|(k, _)| k).collect::<Vec<_>>(), ["a", "b", "c"]);
        assert!(AttrSet::default().attr("a").is_none());
    }
}
