//! JSON merge patch (RFC 7386, `application/merge-patch+json`), as
//! kube-apiserver applies it (Go's `evanphx/json-patch` v4 `MergePatch`).
//!
//! Objects merge recursively, `null` deletes a member, anything else
//! replaces. Like upstream, a value that is set rather than merged has the
//! `null` members of its objects (also inside arrays) pruned. The body must
//! be a JSON object: upstream's default field validation decodes it into a
//! map first, so other JSON is a 400.

use serde_json::{Map, Value};

use super::PatchError;
use super::go_json;

const GO_MAP_TYPE: &str = "map[string]interface {}";

/// Applies the merge patch `body` to `original`.
pub(crate) fn apply(original: Value, body: &[u8]) -> Result<Value, PatchError> {
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| PatchError::bad_request(format!("error decoding patch: {}", go_json::decode_error(body, &e))))?;
    let patch = match patch {
        Value::Object(patch) => patch,
        Value::Null => return Err(PatchError::bad_request("Invalid JSON Patch")),
        other => {
            return Err(PatchError::bad_request(format!(
                "error decoding patch: {}",
                go_json::type_error(&other, GO_MAP_TYPE)
            )));
        }
    };
    match original {
        Value::Object(mut doc) => {
            merge_objects(&mut doc, patch);
            Ok(Value::Object(doc))
        }
        // A document that is not an object is replaced by the patch.
        _ => {
            let mut patch = Value::Object(patch);
            prune_nulls(&mut patch);
            Ok(patch)
        }
    }
}

fn merge_objects(doc: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (key, value) in patch {
        if value.is_null() {
            doc.remove(&key);
            continue;
        }
        match doc.get_mut(&key) {
            Some(current) if !current.is_null() => merge_value(current, value),
            _ => {
                let mut value = value;
                prune_nulls(&mut value);
                doc.insert(key, value);
            }
        }
    }
}

fn merge_value(current: &mut Value, patch: Value) {
    match (current, patch) {
        (Value::Object(current), Value::Object(patch)) => merge_objects(current, patch),
        // Upstream returns a non-object patch for an object as it is.
        (current @ Value::Object(_), patch) => *current = patch,
        (current, mut patch) => {
            prune_nulls(&mut patch);
            *current = patch;
        }
    }
}

/// Removes `null` members from objects, at any depth (arrays keep their
/// `null` elements).
pub(crate) fn prune_nulls(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(prune_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(prune_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(doc: Value, patch: Value, want: Value) {
        let body = serde_json::to_vec(&patch).unwrap_or_default();
        assert_eq!(apply(doc.clone(), &body).ok(), Some(want), "patch {patch} onto {doc}");
    }

    /// RFC 7386 appendix A, for the cases whose patch is an object.
    #[test]
    fn rfc7386_examples() {
        check(json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"}));
        check(json!({"a": "b"}), json!({"b": "c"}), json!({"a": "b", "b": "c"}));
        check(json!({"a": "b"}), json!({"a": null}), json!({}));
        check(json!({"a": "b", "b": "c"}), json!({"a": null}), json!({"b": "c"}));
        check(json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"}));
        check(json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]}));
        check(
            json!({"a": {"b": "c"}}),
            json!({"a": {"b": "d", "c": null}}),
            json!({"a": {"b": "d"}}),
        );
        check(json!({"a": [{"b": "c"}]}), json!({"a": [1]}), json!({"a": [1]}));
        check(json!({"e": null}), json!({"a": 1}), json!({"e": null, "a": 1}));
        check(json!([1, 2]), json!({"a": "b", "c": null}), json!({"a": "b"}));
        check(json!({}), json!({"a": {"bb": {"ccc": null}}}), json!({"a": {"bb": {}}}));
    }

    #[test]
    fn kubernetes_style() {
        check(
            json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 1}}),
            json!({"metadata": {"labels": {"a": null, "c": "3"}}, "spec": {"replicas": 3}}),
            json!({"metadata": {"labels": {"b": "2", "c": "3"}}, "spec": {"replicas": 3}}),
        );
        // Lists are replaced whole; nulls inside set objects are pruned.
        check(
            json!({"spec": {"containers": [{"name": "a", "image": "x"}]}}),
            json!({"spec": {"containers": [{"name": "b", "image": null}]}}),
            json!({"spec": {"containers": [{"name": "b"}]}}),
        );
    }

    #[test]
    fn non_object_bodies_are_400() {
        let cases = [
            ("null", "Invalid JSON Patch"),
            (
                "[]",
                "error decoding patch: json: cannot unmarshal array into Go value of type map[string]interface {}",
            ),
            (
                "\"x\"",
                "error decoding patch: json: cannot unmarshal string into Go value of type map[string]interface {}",
            ),
            ("{\"a\":", "error decoding patch: unexpected end of JSON input"),
        ];
        for (body, message) in cases {
            let err = apply(json!({}), body.as_bytes()).err();
            assert_eq!(
                err.map(|e| (e.code(), e.status_message())),
                Some((400, message.to_string())),
                "{body}"
            );
        }
    }
}
