//! JSON patch (RFC 6902, `application/json-patch+json`) with kube-apiserver's
//! decoding rules and limits.
//!
//! Operations are applied by the `json-patch` crate. Around it, this module
//! keeps upstream's behaviour (Go's `evanphx/json-patch` v4 as configured by
//! kube-apiserver):
//! - the body must be an array of operation objects, else 400;
//! - at most 10000 operations, else 413;
//! - any operation that does not apply is 422 with a fixed message;
//! - a missing `value` of `add`, `replace` or `test` means `null`, and a
//!   `test` for `null` passes when the member is absent;
//! - the whole document (`""`) cannot be the target of add, remove,
//!   replace, move or copy, nor the source of move or copy;
//! - copies may duplicate at most 3 MiB in total (`JSONPatchMaxCopyBytes`).
//!
//! On top of upstream, the result may not nest deeper than serde_json can
//! read back ([`MAX_DEPTH`]): a few small operations could otherwise build a
//! document that overflows the stack when it is later dropped or encoded.

use ::json_patch::PatchOperation;
use serde_json::Value;

use super::PatchError;
use super::error::MAX_JSON_PATCH_OPERATIONS;
use super::go_json;

/// kube-apiserver's default `JSONPatchMaxCopyBytes`.
pub(crate) const MAX_COPY_BYTES: usize = 3 * 1024 * 1024;

/// The deepest nesting of arrays and objects serde_json parses by default.
pub(crate) const MAX_DEPTH: usize = 127;

const GO_OPS_TYPE: &str = "[]handlers.jsonPatchOp";
const GO_OP_TYPE: &str = "handlers.jsonPatchOp";

/// Applies the JSON patch `body` to `original`.
pub(crate) fn apply(original: Value, body: &[u8]) -> Result<Value, PatchError> {
    let parsed: Value = serde_json::from_slice(body)
        .map_err(|e| PatchError::bad_request(format!("error decoding patch: {}", go_json::decode_error(body, &e))))?;
    let ops = match parsed {
        Value::Array(ops) => ops,
        // Go decodes `null` into an empty list of operations.
        Value::Null => return Ok(original),
        other => {
            return Err(PatchError::bad_request(format!(
                "error decoding patch: {}",
                go_json::type_error(&other, GO_OPS_TYPE)
            )));
        }
    };
    check_shapes(&ops)?;
    if ops.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations { count: ops.len() });
    }

    let mut doc = original;
    let mut budget = Budget {
        depth: depth(&doc),
        copied: 0,
    };
    for (index, op) in ops.into_iter().enumerate() {
        let op = decode(op).map_err(|detail| PatchError::not_applied(format!("operation {index}: {detail}")))?;
        budget
            .admit(&doc, &op)
            .map_err(|detail| PatchError::not_applied(format!("operation {index}: {detail}")))?;
        if test_for_absent_null(&doc, &op) {
            continue;
        }
        ::json_patch::patch_unsafe(&mut doc, std::slice::from_ref(&op))
            .map_err(|e| PatchError::not_applied(format!("operation {index}: {e}")))?;
    }
    Ok(doc)
}

/// Upstream's first decoding pass (into `[]jsonPatchOp{op, path, from string;
/// value interface{}}`) fails with 400 on elements that are not objects and
/// on `op`, `path` or `from` that are not strings.
fn check_shapes(ops: &[Value]) -> Result<(), PatchError> {
    for op in ops {
        match op {
            Value::Object(fields) => {
                for name in ["from", "op", "path"] {
                    match fields.get(name) {
                        None | Some(Value::Null) | Some(Value::String(_)) => {}
                        Some(other) => {
                            return Err(PatchError::bad_request(format!(
                                "error decoding patch: {}",
                                go_json::field_type_error(other, &format!("jsonPatchOp.{name}"), "string")
                            )));
                        }
                    }
                }
            }
            Value::Null => {}
            other => {
                return Err(PatchError::bad_request(format!(
                    "error decoding patch: {}",
                    go_json::type_error(other, GO_OP_TYPE)
                )));
            }
        }
    }
    Ok(())
}

/// One operation, as the `json-patch` crate takes it.
fn decode(op: Value) -> Result<PatchOperation, String> {
    let Value::Object(mut fields) = op else {
        return Err("unexpected kind: unknown".into());
    };
    let kind = fields
        .get("op")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_string();
    if matches!(kind.as_str(), "add" | "replace" | "test") && !fields.contains_key("value") {
        fields.insert("value".into(), Value::Null);
    }
    if kind != "test" && fields.get("path").and_then(Value::as_str) == Some("") {
        return Err(format!("{kind} operation does not apply: doc is missing path: \"\""));
    }
    if matches!(kind.as_str(), "move" | "copy") && fields.get("from").and_then(Value::as_str) == Some("") {
        return Err(format!(
            "{kind} operation does not apply: doc is missing from path: \"\""
        ));
    }
    serde_json::from_value(Value::Object(fields)).map_err(|e| format!("invalid {kind} operation: {e}"))
}

/// Upstream passes `{"op":"test","value":null}` when the parent object
/// exists and lacks the member.
fn test_for_absent_null(doc: &Value, op: &PatchOperation) -> bool {
    let PatchOperation::Test(test) = op else { return false };
    if !test.value.is_null() {
        return false;
    }
    let Some((parent, last)) = test.path.split_back() else {
        return false;
    };
    matches!(doc.pointer(parent.as_str()), Some(Value::Object(map)) if !map.contains_key(last.decoded().as_ref()))
}

/// What the operations so far may have grown: an upper bound on the
/// document's depth, and the bytes duplicated by copies.
struct Budget {
    depth: usize,
    copied: usize,
}

impl Budget {
    /// Checks that `op` keeps the document within bounds, before it runs.
    fn admit(&mut self, doc: &Value, op: &PatchOperation) -> Result<(), String> {
        let placed = match op {
            PatchOperation::Add(add) => Some(segments(add.path.as_str()) + depth(&add.value)),
            PatchOperation::Replace(replace) => Some(segments(replace.path.as_str()) + depth(&replace.value)),
            PatchOperation::Move(mv) => doc
                .pointer(mv.from.as_str())
                .map(|from| segments(mv.path.as_str()) + depth(from)),
            PatchOperation::Copy(copy) => match doc.pointer(copy.from.as_str()) {
                Some(from) => {
                    self.copied = self.copied.saturating_add(encoded_len(from));
                    if self.copied > MAX_COPY_BYTES {
                        return Err(format!(
                            "unable to copy, the accumulated size increase of copy is {}, exceeding the limit {MAX_COPY_BYTES}",
                            self.copied
                        ));
                    }
                    Some(segments(copy.path.as_str()) + depth(from))
                }
                None => None,
            },
            PatchOperation::Remove(_) | PatchOperation::Test(_) => None,
        };
        if let Some(placed) = placed {
            if placed > MAX_DEPTH {
                return Err(format!("the result would nest deeper than {MAX_DEPTH} levels"));
            }
            self.depth = self.depth.max(placed);
        }
        Ok(())
    }
}

/// The number of reference tokens in a JSON pointer.
fn segments(pointer: &str) -> usize {
    pointer.bytes().filter(|&b| b == b'/').count()
}

/// Nesting depth of arrays and objects (a scalar is 0), computed without
/// recursion.
pub(crate) fn depth(v: &Value) -> usize {
    let mut max = 0;
    let mut stack = vec![(v, 0usize)];
    while let Some((v, level)) = stack.pop() {
        match v {
            Value::Array(items) => {
                max = max.max(level + 1);
                stack.extend(items.iter().map(|item| (item, level + 1)));
            }
            Value::Object(map) => {
                max = max.max(level + 1);
                stack.extend(map.values().map(|item| (item, level + 1)));
            }
            _ => {}
        }
    }
    max
}

/// The length of `v` encoded as compact JSON.
fn encoded_len(v: &Value) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing to a counter cannot fail; a failure would only undercount.
    let _ = serde_json::to_writer(&mut counter, v);
    counter.0
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(doc: Value, patch: Value, want: Value) {
        let body = serde_json::to_vec(&patch).unwrap_or_default();
        match apply(doc.clone(), &body) {
            Ok(got) => assert_eq!(got, want, "patch {patch}"),
            Err(e) => panic!("patch {patch} failed: {e}"),
        }
    }

    fn check_err(doc: Value, body: &str, code: u16, message: &str) {
        match apply(doc.clone(), body.as_bytes()) {
            Ok(got) => panic!("patch {body} applied: {got}"),
            Err(e) => {
                assert_eq!(
                    (e.code(), e.status_message().as_str()),
                    (code, message),
                    "patch {body}: {e:?}"
                );
            }
        }
    }

    #[test]
    fn operations() {
        let doc = json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"list": [1, 2, 3]}});
        let cases = [
            (
                json!([{"op": "add", "path": "/metadata/labels/y", "value": "2"}]),
                "/metadata/labels",
                json!({"x": "1", "y": "2"}),
            ),
            (
                json!([{"op": "add", "path": "/spec/list/1", "value": 9}]),
                "/spec/list",
                json!([1, 9, 2, 3]),
            ),
            (
                json!([{"op": "add", "path": "/spec/list/-", "value": 4}]),
                "/spec/list",
                json!([1, 2, 3, 4]),
            ),
            (
                json!([{"op": "remove", "path": "/spec/list/0"}]),
                "/spec/list",
                json!([2, 3]),
            ),
            (
                json!([{"op": "replace", "path": "/metadata/labels/x", "value": "z"}]),
                "/metadata/labels",
                json!({"x": "z"}),
            ),
            (
                json!([{"op": "move", "from": "/metadata/labels/x", "path": "/metadata/labels/w"}]),
                "/metadata/labels",
                json!({"w": "1"}),
            ),
            (
                json!([{"op": "copy", "from": "/metadata/name", "path": "/metadata/labels/n"}]),
                "/metadata/labels",
                json!({"x": "1", "n": "a"}),
            ),
            (
                json!([{"op": "test", "path": "/metadata/name", "value": "a"}, {"op": "remove", "path": "/metadata/labels"}]),
                "/metadata",
                json!({"name": "a"}),
            ),
            (
                json!([{"op": "add", "path": "/metadata/labels/a~1b", "value": "s"}]),
                "/metadata/labels",
                json!({"x": "1", "a/b": "s"}),
            ),
            (
                json!([{"op": "test", "path": "/metadata/absent", "value": null}]),
                "/metadata",
                json!({"name": "a", "labels": {"x": "1"}}),
            ),
            (
                json!([{"op": "add", "path": "/metadata/annotations"}]),
                "/metadata/annotations",
                json!(null),
            ),
        ];
        for (patch, pointer, want) in cases {
            let body = serde_json::to_vec(&patch).unwrap_or_default();
            let got = apply(doc.clone(), &body).unwrap_or_else(|e| panic!("{patch}: {e}"));
            assert_eq!(got.pointer(pointer), Some(&want), "{patch}");
        }
        check(json!({}), json!(null), json!({}));
        check(json!({"a": 1}), json!([]), json!({"a": 1}));
    }

    #[test]
    fn failures_are_422_with_upstream_message() {
        let doc = json!({"metadata": {"name": "a"}, "spec": {"list": [1]}});
        for body in [
            r#"[{"op":"test","path":"/metadata/name","value":"b"}]"#,
            r#"[{"op":"remove","path":"/metadata/missing"}]"#,
            r#"[{"op":"replace","path":"/spec/missing","value":1}]"#,
            r#"[{"op":"add","path":"/nope/x","value":1}]"#,
            r#"[{"op":"add","path":"/spec/list/5","value":1}]"#,
            r#"[{"op":"frobnicate","path":"/spec"}]"#,
            r#"[{"path":"/spec"}]"#,
            r#"[{"op":"add"}]"#,
            r#"[{"op":"move","path":"/spec/x"}]"#,
            r#"[{"op":"add","path":"","value":{}}]"#,
            r#"[{"op":"remove","path":""}]"#,
            r#"[{"op":"add","path":"spec","value":1}]"#,
            r#"[null]"#,
        ] {
            check_err(
                doc.clone(),
                body,
                422,
                "the server rejected our request due to an error in our request",
            );
        }
    }

    #[test]
    fn undecodable_bodies_are_400() {
        let doc = json!({});
        let cases = [
            ("{", "error decoding patch: unexpected end of JSON input"),
            (
                "x",
                "error decoding patch: invalid character 'x' looking for beginning of value",
            ),
            (
                "{}",
                "error decoding patch: json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp",
            ),
            (
                "[1]",
                "error decoding patch: json: cannot unmarshal number into Go value of type handlers.jsonPatchOp",
            ),
            (
                r#"[{"op":"add","path":5}]"#,
                "error decoding patch: json: cannot unmarshal number into Go struct field jsonPatchOp.path of type string",
            ),
        ];
        for (body, message) in cases {
            check_err(doc.clone(), body, 400, message);
        }
    }

    #[test]
    fn limits() {
        let ops: Vec<Value> = (0..10_001)
            .map(|_| json!({"op": "test", "path": "/a", "value": 1}))
            .collect();
        let body = serde_json::to_vec(&ops).unwrap_or_default();
        let err = apply(json!({"a": 1}), &body).err();
        assert_eq!(err, Some(PatchError::TooManyOperations { count: 10_001 }));
        assert_eq!(
            err.map(|e| e.status_message()).as_deref(),
            Some("Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001")
        );

        // Doubling the document by copies stops at the copy budget.
        let big = "x".repeat(1 << 20);
        let ops: Vec<Value> = (0..4)
            .map(|i| json!({"op": "copy", "from": "/a", "path": format!("/b{i}")}))
            .collect();
        let body = serde_json::to_vec(&ops).unwrap_or_default();
        assert_eq!(apply(json!({ "a": big }), &body).map_err(|e| e.code()).err(), Some(422));

        // Copying a subtree into itself cannot nest without bound.
        let ops: Vec<Value> = (0..200)
            .map(|i| json!({"op": "copy", "from": "/a", "path": format!("/a{}/x", "/x".repeat(i))}))
            .collect();
        let body = serde_json::to_vec(&ops).unwrap_or_default();
        assert_eq!(
            apply(json!({"a": {"x": {}}}), &body).map_err(|e| e.code()).err(),
            Some(422)
        );
    }
}
