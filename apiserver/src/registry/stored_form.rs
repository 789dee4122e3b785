//! An object's stored form: the object without `metadata.resourceVersion`
//! (the storage revision is its version). Written and compared in place,
//! without the deep copy that removing the field from a clone would take on
//! every write (a pod is a few hundred map entries; the copy, its
//! allocations and frees were a measurable share of a write's CPU).

use bytes::Bytes;
use serde_json::{Map, Value};

use super::object::Object;

const RESOURCE_VERSION: &str = "resourceVersion";

/// The stored JSON of `obj`: its serialization with
/// `metadata.resourceVersion` left out. Byte for byte what serializing a
/// copy with the field removed gives (an object without a `metadata` map
/// gets an empty one, as `object::set_meta` would add).
pub fn to_vec(obj: &Object) -> Result<Vec<u8>, serde_json::Error> {
    write(obj).map(|(bytes, _)| bytes)
}

/// A stored value and where `metadata.resourceVersion` belongs in it, so
/// that the object as served (the stored object at a revision) is a splice
/// of the stored bytes rather than a second encoding of the whole object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub bytes: Bytes,
    slot: Slot,
}

/// Where `"resourceVersion":...` goes in the stored bytes: at byte
/// `offset`, which is just past the member of `metadata` before it, if
/// any, so a comma goes before it (`comma_before`); else just past
/// `metadata`'s `{`, and a comma goes after it if a member follows
/// (`comma_after`: the member's own comma is written only after a first
/// member).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Slot {
    offset: usize,
    comma_before: bool,
    comma_after: bool,
}

/// [`to_vec`], keeping the place of `metadata.resourceVersion`. The
/// members are written one by one as serde_json's compact serializer
/// writes a sorted map (keys escaped like strings, `,` and `:` without
/// spaces), so the bytes are the same.
pub fn encode(obj: &Object) -> Result<Encoded, serde_json::Error> {
    let (bytes, slot) = write(obj)?;
    Ok(Encoded {
        bytes: Bytes::from(bytes),
        slot,
    })
}

/// The stored bytes and the place of `metadata.resourceVersion` in them.
fn write(obj: &Object) -> Result<(Vec<u8>, Slot), serde_json::Error> {
    let mut out = Vec::with_capacity(512);
    let mut slot = Slot::default();
    let has_meta = obj.contains_key("metadata");
    let mut first = true;
    let mut meta_written = false;
    out.push(b'{');
    for (k, v) in obj {
        // Keys are in order (serde_json's map is sorted): a missing
        // `metadata` goes where the sorted insert would have put it.
        if !has_meta && !meta_written && k.as_str() > "metadata" {
            put_key(&mut out, "metadata", &mut first)?;
            slot = put_meta(&mut out, None)?;
            meta_written = true;
        }
        put_key(&mut out, k, &mut first)?;
        if k == "metadata" {
            slot = put_meta(&mut out, v.as_object())?;
        } else {
            serde_json::to_writer(&mut out, v)?;
        }
    }
    if !has_meta && !meta_written {
        put_key(&mut out, "metadata", &mut first)?;
        slot = put_meta(&mut out, None)?;
    }
    out.push(b'}');
    Ok((out, slot))
}

/// `"key":` (after a comma unless it is the first member).
fn put_key(out: &mut Vec<u8>, key: &str, first: &mut bool) -> Result<(), serde_json::Error> {
    if !std::mem::take(first) {
        out.push(b',');
    }
    serde_json::to_writer(&mut *out, key)?;
    out.push(b':');
    Ok(())
}

/// `metadata` without `resourceVersion` (a non-map one becomes `{}`, as
/// `object::meta_mut` replaces it); returns where the field belongs.
fn put_meta(out: &mut Vec<u8>, meta: Option<&Map<String, Value>>) -> Result<Slot, serde_json::Error> {
    out.push(b'{');
    let mut first = true;
    let mut slot = None;
    for (k, v) in meta.into_iter().flatten() {
        if k == RESOURCE_VERSION {
            continue;
        }
        if slot.is_none() && k.as_str() > RESOURCE_VERSION {
            slot = Some(Slot {
                offset: out.len(),
                comma_before: !first,
                comma_after: first,
            });
        }
        put_key(out, k, &mut first)?;
        serde_json::to_writer(&mut *out, v)?;
    }
    let slot = slot.unwrap_or(Slot {
        offset: out.len(),
        comma_before: !first,
        comma_after: false,
    });
    out.push(b'}');
    Ok(slot)
}

impl Encoded {
    /// The object at `resource_version`: the stored bytes with
    /// `metadata.resourceVersion` set, byte for byte what serializing the
    /// object with that field gives.
    pub fn with_resource_version(&self, resource_version: &str) -> Result<Vec<u8>, serde_json::Error> {
        let Slot {
            offset,
            comma_before,
            comma_after,
        } = self.slot;
        let (head, tail) = self.bytes.split_at(offset.min(self.bytes.len()));
        let mut out = Vec::with_capacity(self.bytes.len() + resource_version.len() + 24);
        out.extend_from_slice(head);
        if comma_before {
            out.push(b',');
        }
        out.extend_from_slice(b"\"resourceVersion\":");
        serde_json::to_writer(&mut out, resource_version)?;
        if comma_after {
            out.push(b',');
        }
        out.extend_from_slice(tail);
        Ok(out)
    }
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
            obj(json!({"metadata": {"uid": "u", "zz": [1, 2.5]}})),
            obj(json!({"metadata": {"name": "n", "annotations": {"a\"b": "x\ny\u{1}é"}}, "z": null})),
            obj(json!({"a": {"b": [{"c": -1}, true, 1e300]}, "metadata": {}})),
        ]
    }

    #[test]
    fn splices_the_resource_version_as_serializing_it_would() {
        for o in cases() {
            let mut at = o.clone();
            object::set_meta(&mut at, RESOURCE_VERSION, Some(json!("1234")));
            let want = serde_json::to_vec(&at).unwrap();
            let got = encode(&o).unwrap().with_resource_version("1234").unwrap();
            assert_eq!(
                String::from_utf8(got).unwrap(),
                String::from_utf8(want).unwrap(),
                "{o:?}"
            );
        }
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
