//! An object's stored form: the object without `metadata.resourceVersion`
//! (the storage revision is its version). Written and compared in place,
//! without the deep copy that removing the field from a clone would take on
//! every write (a pod is a few hundred map entries; the copy, its
//! allocations and frees were a measurable share of a write's CPU).

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use super::object::Object;

const RESOURCE_VERSION: &str = "resourceVersion";

/// The stored JSON of `obj`: its serialization with
/// `metadata.resourceVersion` left out. Byte for byte what serializing a
/// copy with the field removed gives (an object without a `metadata` map
/// gets an empty one, as `object::set_meta` would add).
pub fn to_vec(obj: &Object) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(512);
    serde_json::to_writer(&mut out, &Stored(obj))?;
    Ok(out)
}

/// Whether `a` and `b` are equal apart from `metadata.resourceVersion`
/// (a missing or non-map `metadata` counts as an empty one).
pub fn same_except_resource_version(a: &Object, b: &Object) -> bool {
    rest(a).eq(rest(b)) && meta_fields(a).eq(meta_fields(b))
}

/// The object's fields other than `metadata`.
fn rest(o: &Object) -> impl Iterator<Item = (&String, &Value)> {
    o.iter().filter(|(k, _)| k.as_str() != "metadata")
}

/// The fields of `metadata` other than `resourceVersion`.
fn meta_fields(o: &Object) -> impl Iterator<Item = (&String, &Value)> {
    o.get("metadata")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|m| m.iter())
        .filter(|(k, _)| k.as_str() != RESOURCE_VERSION)
}

/// Serializes an object as stored.
struct Stored<'a>(&'a Object);

impl Serialize for Stored<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let has_meta = self.0.contains_key("metadata");
        let len = self.0.len() + usize::from(!has_meta);
        let mut map = serializer.serialize_map(Some(len))?;
        let mut meta_written = false;
        for (k, v) in self.0 {
            // Keys are in order (serde_json's map is sorted): a missing
            // `metadata` goes where the sorted insert would have put it.
            if !has_meta && !meta_written && k.as_str() > "metadata" {
                map.serialize_entry("metadata", &Meta(None))?;
                meta_written = true;
            }
            if k == "metadata" {
                map.serialize_entry(k, &Meta(v.as_object()))?;
            } else {
                map.serialize_entry(k, v)?;
            }
        }
        if !has_meta && !meta_written {
            map.serialize_entry("metadata", &Meta(None))?;
        }
        map.end()
    }
}

/// `metadata` without `resourceVersion` (a non-map one becomes `{}`, as
/// `object::meta_mut` replaces it).
struct Meta<'a>(Option<&'a Map<String, Value>>);

impl Serialize for Meta<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Some(meta) = self.0 else {
            return serializer.serialize_map(Some(0))?.end();
        };
        let len = meta.len() - usize::from(meta.contains_key(RESOURCE_VERSION));
        let mut map = serializer.serialize_map(Some(len))?;
        for (k, v) in meta {
            if k != RESOURCE_VERSION {
                map.serialize_entry(k, v)?;
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::registry::object;

    fn obj(v: Value) -> Object {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    /// The old way: a copy with the field removed.
    fn by_copy(o: &Object) -> Object {
        let mut c = o.clone();
        object::set_meta(&mut c, RESOURCE_VERSION, None);
        c
    }

    fn cases() -> Vec<Object> {
        vec![
            obj(json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "namespace": "ns", "resourceVersion": "12", "labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]}, "status": {"phase": "Running"}})),
            obj(json!({"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}})),
            obj(json!({"kind": "X"})),
            obj(json!({"zeta": 1, "alpha": 2})),
            obj(json!({"alpha": 2})),
            obj(json!({"metadata": "not a map", "spec": {}})),
            obj(json!({"metadata": {"resourceVersion": "3"}})),
            obj(json!({})),
        ]
    }

    #[test]
    fn writes_what_a_stripped_copy_writes() {
        for o in cases() {
            let want = serde_json::to_vec(&by_copy(&o)).unwrap();
            assert_eq!(
                String::from_utf8(to_vec(&o).unwrap()).unwrap(),
                String::from_utf8(want).unwrap(),
                "{o:?}"
            );
        }
    }

    #[test]
    fn compares_like_stripped_copies() {
        let mut all = cases();
        let mut rv_changed = all[0].clone();
        object::set_meta(&mut rv_changed, RESOURCE_VERSION, Some(json!("99")));
        let mut label_changed = all[0].clone();
        object::set_meta(&mut label_changed, "labels", Some(json!({"a": "c"})));
        let mut status_changed = all[0].clone();
        status_changed.insert("status".into(), json!({"phase": "Failed"}));
        all.extend([rv_changed, label_changed, status_changed]);
        for a in &all {
            for b in &all {
                assert_eq!(
                    same_except_resource_version(a, b),
                    by_copy(a) == by_copy(b),
                    "{a:?} vs {b:?}"
                );
            }
        }
    }
}
