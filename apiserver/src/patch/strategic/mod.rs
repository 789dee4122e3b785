//! Strategic merge patch (`application/strategic-merge-patch+json`), the
//! patch kubectl's client-side apply, `kubectl patch` and many controllers
//! send.
//!
//! Like JSON merge patch, objects merge and `null` deletes; unlike it, lists
//! follow the field's patch strategy from the kind's schema ([`meta`]):
//! lists with the `merge` strategy merge by their merge key (lists of maps)
//! or as sets (lists of scalars), other lists are replaced. Directives in
//! the patch refine that:
//! - `$patch: replace` in a map replaces the map; in a list element, the
//!   list. `$patch: delete` deletes the map, or the list element with the
//!   same merge key.
//! - `$retainKeys: [...]` keeps only the listed keys of the map.
//! - `$setElementOrder/<field>: [...]` orders the merged list.
//! - `$deleteFromPrimitiveList/<field>: [...]` deletes scalars from a list.
//!
//! The semantics are upstream's apply half of
//! `k8s.io/apimachinery/pkg/util/strategicpatch` (v1.36), reimplemented;
//! its error messages are kept. Two deliberate differences: fields unknown
//! to the schema merge like JSON merge patch instead of failing, and values
//! taken from the patch as they are (new members, replaced lists) lose all
//! directive keys, where upstream would leave some for the decoder to drop.
//!
//! [`meta`]: super::meta

mod directives;
mod list;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use super::meta::{self, Schema, Strategy};
use super::{GroupVersionKind, PatchError, go_fmt, go_json};

pub(crate) const DIRECTIVE_MARKER: &str = "$patch";
const DELETE_DIRECTIVE: &str = "delete";
const REPLACE_DIRECTIVE: &str = "replace";
const MERGE_DIRECTIVE: &str = "merge";
pub(crate) const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
pub(crate) const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder";
pub(crate) const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList";

const BAD_PRIMITIVE_LIST: &str = "invalid patch format of primitive list";
const BAD_RETAIN_KEYS: &str = "invalid patch format of retainKeys";
const BAD_SET_ELEMENT_ORDER: &str = "invalid patch format of setElementOrder list";

type JsonMap = Map<String, Value>;

/// Applies the strategic merge patch `body` to `original`, an object of
/// kind `gvk`.
pub(crate) fn apply(original: Value, body: &[u8], gvk: &GroupVersionKind<'_>) -> Result<Value, PatchError> {
    let Some(schema) = meta::schema_for(gvk) else {
        return Err(PatchError::UnsupportedKind {
            api_version: gvk.api_version(),
            kind: gvk.kind.to_string(),
        });
    };
    let patch: Value =
        serde_json::from_slice(body).map_err(|e| PatchError::bad_request(go_json::decode_error(body, &e)))?;
    let patch = match patch {
        Value::Object(patch) => patch,
        // Go decodes `null` into an empty map: nothing to do.
        Value::Null => return Ok(original),
        other => {
            return Err(PatchError::bad_request(go_json::type_error(
                &other,
                "map[string]interface {}",
            )));
        }
    };
    let Value::Object(original) = original else {
        return Err(PatchError::strategic("invalid JSON document"));
    };
    merge_map(original, patch, schema).map(Value::Object)
}

/// The Go kind of a decoded JSON value; upstream compares these to decide
/// between merging and replacing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GoKind {
    Nil,
    Bool,
    Int,
    Float,
    String,
    Slice,
    Map,
}

pub(crate) fn go_kind(v: &Value) -> GoKind {
    match v {
        Value::Null => GoKind::Nil,
        Value::Bool(_) => GoKind::Bool,
        Value::Number(n) if n.is_i64() => GoKind::Int,
        Value::Number(_) => GoKind::Float,
        Value::String(_) => GoKind::String,
        Value::Array(_) => GoKind::Slice,
        Value::Object(_) => GoKind::Map,
    }
}

/// Merges `patch` into `original`, a map with schema `schema`.
fn merge_map(mut original: JsonMap, mut patch: JsonMap, schema: Schema) -> Result<JsonMap, PatchError> {
    if let Some(directive) = patch.get(DIRECTIVE_MARKER) {
        return match directive.as_str() {
            Some(REPLACE_DIRECTIVE) => {
                patch.remove(DIRECTIVE_MARKER);
                Ok(clean_map(patch))
            }
            Some(DELETE_DIRECTIVE) => Ok(JsonMap::new()),
            _ => Err(bad_patch_type(directive, &patch)),
        };
    }
    directives::apply_retain_keys(&mut original, &mut patch)?;
    directives::merge_ordered_lists(&mut original, &mut patch, schema)?;

    for (key, patch_value) in patch {
        let (key, is_delete_list) = match key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
            Some(rest) => match rest.strip_prefix('/') {
                Some(field) => (field.to_string(), true),
                None => {
                    return Err(PatchError::BadDirective {
                        message: BAD_PRIMITIVE_LIST,
                    });
                }
            },
            None => (key, false),
        };
        if patch_value.is_null() {
            original.remove(&key);
            continue;
        }
        let Some(current) = original.get_mut(&key) else {
            if !is_delete_list && let Some(value) = clean(patch_value) {
                original.insert(key, value);
            }
            continue;
        };
        if go_kind(current) != go_kind(&patch_value) {
            if !is_delete_list {
                match clean(patch_value) {
                    Some(value) => *current = value,
                    None => {
                        original.remove(&key);
                    }
                }
            }
            continue;
        }
        match (current, patch_value) {
            (Value::Object(current), Value::Object(patch_map)) => {
                let field = schema.field(&key);
                let merged = if field.strategy == Strategy::Replace {
                    clean_map(patch_map)
                } else {
                    merge_map(std::mem::take(current), patch_map, field.schema)?
                };
                *current = merged;
            }
            (Value::Array(current), Value::Array(patch_list)) => {
                let field = schema.field(&key);
                *current = list::merge_list_field(std::mem::take(current), patch_list, field, is_delete_list)?;
            }
            // Scalars of the same kind: the patch wins.
            (current, patch_value) => *current = patch_value,
        }
    }
    Ok(original)
}

/// Upstream's `ErrBadPatchType`.
fn bad_patch_type(directive: &Value, map: &JsonMap) -> PatchError {
    PatchError::strategic(format!(
        "unknown patch type: {} in map: {}",
        go_fmt::value_as_s(directive),
        go_fmt::value(&Value::Object(map.clone()))
    ))
}

/// Upstream's `ErrNoMergeKey`.
fn no_merge_key(map: &JsonMap, key: &str) -> PatchError {
    PatchError::strategic(format!(
        "map: {} does not contain declared merge key: {key}",
        go_fmt::value(&Value::Object(map.clone()))
    ))
}

/// Upstream's `ErrBadArgType`, for a value that should have been a list.
fn not_a_list(actual: &Value) -> PatchError {
    PatchError::strategic(format!(
        "expected a []interface {{}}, but received a {}",
        go_fmt::type_name(actual)
    ))
}

/// Whether `key` is one of the directive keys a patch may carry in a map.
fn is_directive_key(key: &str) -> bool {
    key == DIRECTIVE_MARKER
        || key == RETAIN_KEYS_DIRECTIVE
        || key.starts_with(SET_ELEMENT_ORDER_PREFIX)
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
}

/// A value taken from the patch as it is: `null` members of its maps are
/// dropped, maps carrying `$patch` are dropped whole (upstream's
/// `removeDirectives`), and other directive keys are removed. `None` when
/// the value itself is such a map.
pub(crate) fn clean(v: Value) -> Option<Value> {
    match v {
        Value::Object(map) => {
            if map.contains_key(DIRECTIVE_MARKER) {
                None
            } else {
                Some(Value::Object(clean_map(map)))
            }
        }
        Value::Array(items) => Some(Value::Array(clean_list(items))),
        other => Some(other),
    }
}

fn clean_map(map: JsonMap) -> JsonMap {
    map.into_iter()
        .filter(|(k, v)| !v.is_null() && !is_directive_key(k))
        .filter_map(|(k, v)| clean(v).map(|v| (k, v)))
        .collect()
}

pub(crate) fn clean_list(items: Vec<Value>) -> Vec<Value> {
    items.into_iter().filter_map(clean).collect()
}
