//! Lists: merging by merge key or as sets, `$patch` elements, deletion
//! lists, and upstream's ordering of the merged result.
//!
//! Element identity is the merge key's value for lists of maps and the
//! element itself for lists of scalars, compared through its canonical JSON
//! so lookups stay linear-time on large lists.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::{
    DELETE_DIRECTIVE, DIRECTIVE_MARKER, GoKind, MERGE_DIRECTIVE, REPLACE_DIRECTIVE, bad_patch_type, clean, clean_list,
    go_kind, merge_map, no_merge_key,
};
use crate::patch::meta::{Field, Schema, Strategy};
use crate::patch::{PatchError, go_fmt};

/// Merges the patch's value of a list field into the original's, following
/// the field's strategy. `is_delete_list` marks a
/// `$deleteFromPrimitiveList/<field>` list.
pub(super) fn merge_list_field(
    original: Vec<Value>,
    patch: Vec<Value>,
    field: Field,
    is_delete_list: bool,
) -> Result<Vec<Value>, PatchError> {
    if field.strategy == Strategy::Merge || is_delete_list {
        merge_list(original, patch, field.schema, field.merge_key, is_delete_list)
    } else {
        Ok(clean_list(patch))
    }
}

fn merge_list(
    original: Vec<Value>,
    patch: Vec<Value>,
    schema: Schema,
    merge_key: Option<&'static str>,
    is_delete_list: bool,
) -> Result<Vec<Value>, PatchError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let kind = element_kind(&[&original, &patch])?;
    if kind != GoKind::Map {
        if is_delete_list {
            let doomed: HashSet<String> = patch.iter().map(canonical).collect();
            return Ok(original
                .into_iter()
                .filter(|v| !doomed.contains(&canonical(v)))
                .collect());
        }
        let server_order = Order::of(&original, None, kind)?;
        let patch_order = Order::of(&patch, None, kind)?;
        let mut seen = HashSet::new();
        let merged = original
            .into_iter()
            .chain(patch)
            .filter(|v| seen.insert(canonical(v)))
            .collect();
        return order(merged, &patch_order, &server_order);
    }
    let Some(key) = merge_key else {
        return Err(PatchError::strategic("cannot merge lists without merge key for struct"));
    };
    let (original, patch) = apply_special_elements(original, patch, key)?;
    let server_order = Order::of(&original, Some(key), kind)?;
    let patch_order = Order::of(&patch, Some(key), kind)?;
    let merged = merge_by_key(original, patch, key, schema)?;
    order(merged, &patch_order, &server_order)
}

/// The Go kind shared by all elements of `lists`: upstream's
/// `sliceElementType`.
pub(super) fn element_kind(lists: &[&[Value]]) -> Result<GoKind, PatchError> {
    let mut kind = None;
    for v in lists.iter().flat_map(|l| l.iter()) {
        let k = go_kind(v);
        match kind {
            None if k == GoKind::Slice => return Err(PatchError::ListOfLists),
            None => kind = Some(k),
            Some(prev) if prev != k => {
                let all = Value::Array(lists.iter().map(|l| Value::Array(l.to_vec())).collect());
                return Err(PatchError::strategic(format!(
                    "list element types are not identical: {}",
                    go_fmt::value(&all)
                )));
            }
            Some(_) => {}
        }
    }
    kind.ok_or_else(|| PatchError::strategic("no elements in any of the given slices"))
}

/// The element kind assumed for lists that are all empty.
pub(super) fn empty_list_kind(merge_key: Option<&str>) -> GoKind {
    if merge_key.is_some() {
        GoKind::Map
    } else {
        GoKind::String
    }
}

/// Handles the patch elements carrying `$patch`: `delete` removes the
/// original's elements with that merge key, `replace` makes the rest of the
/// patch the whole list. Returns the original and the patch to merge.
fn apply_special_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut rest = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Some(directive) = item.get(DIRECTIVE_MARKER) else {
            rest.push(item);
            continue;
        };
        let Value::Object(map) = &item else { continue };
        match directive.as_str() {
            Some(DELETE_DIRECTIVE) => {
                let Some(doomed) = map.get(key) else {
                    return Err(no_merge_key(map, key));
                };
                original.retain(|o| o.get(key) != Some(doomed));
            }
            Some(REPLACE_DIRECTIVE) => replace = true,
            Some(MERGE_DIRECTIVE) => {
                return Err(PatchError::strategic(
                    "merging lists cannot yet be specified in the patch",
                ));
            }
            _ => return Err(bad_patch_type(directive, map)),
        }
    }
    if replace {
        Ok((clean_list(rest), Vec::new()))
    } else {
        Ok((original, rest))
    }
}

/// Merges each patch element into the original element with the same merge
/// key, or appends it.
fn merge_by_key(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
    schema: Schema,
) -> Result<Vec<Value>, PatchError> {
    let mut positions: HashMap<String, usize> = HashMap::new();
    for (i, item) in original.iter().enumerate() {
        if let Some(k) = item.get(key) {
            positions.entry(canonical(k)).or_insert(i);
        }
    }
    for item in patch {
        let Value::Object(map) = item else { continue };
        let Some(k) = map.get(key).map(canonical) else {
            return Err(no_merge_key(&map, key));
        };
        match positions.get(&k).and_then(|&i| original.get_mut(i)) {
            Some(Value::Object(current)) => {
                let merged = merge_map(std::mem::take(current), map, schema)?;
                *current = merged;
            }
            _ => {
                if let Some(v) = clean(Value::Object(map)) {
                    positions.entry(k).or_insert(original.len());
                    original.push(v);
                }
            }
        }
    }
    Ok(original)
}

/// Positions of elements in a reference list, by identity.
pub(super) struct Order {
    /// The merge key, when elements are maps identified by it.
    key: Option<&'static str>,
    positions: HashMap<String, usize>,
}

impl Order {
    /// The order of `items`. For lists of maps with a merge key every item
    /// must be a map carrying the key, as upstream checks.
    pub(super) fn of(items: &[Value], merge_key: Option<&'static str>, kind: GoKind) -> Result<Order, PatchError> {
        let key = merge_key.filter(|_| kind == GoKind::Map);
        let mut order = Order {
            key,
            positions: HashMap::with_capacity(items.len()),
        };
        for (i, item) in items.iter().enumerate() {
            let id = order.identity(item)?;
            order.positions.entry(id).or_insert(i);
        }
        Ok(order)
    }

    fn identity(&self, item: &Value) -> Result<String, PatchError> {
        let Some(key) = self.key else {
            return Ok(canonical(item));
        };
        let Value::Object(map) = item else {
            return Err(PatchError::strategic(format!(
                "expected a map[string]interface {{}}, but received a {}",
                go_fmt::type_name(item)
            )));
        };
        map.get(key).map(canonical).ok_or_else(|| no_merge_key(map, key))
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.positions.get(id).copied()
    }
}

/// Upstream's `normalizeElementOrder`: the elements named by the patch in
/// the patch's order, the others in the original's order, interleaved so
/// that an original element goes before a patch element when it came first
/// in the original.
pub(super) fn order(merged: Vec<Value>, patch_order: &Order, server_order: &Order) -> Result<Vec<Value>, PatchError> {
    let mut from_patch = Vec::new();
    let mut server_only = Vec::new();
    for item in merged {
        let id = patch_order.identity(&item)?;
        match patch_order.index(&id) {
            Some(i) => from_patch.push((i, id, item)),
            None => server_only.push((server_order.index(&id).unwrap_or(usize::MAX), id, item)),
        }
    }
    from_patch.sort_by_key(|(i, _, _)| *i);
    server_only.sort_by_key(|(i, _, _)| *i);

    let mut out = Vec::with_capacity(from_patch.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = from_patch.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((_, l, _)), Some((_, r, _))) => {
                matches!((server_order.index(l), server_order.index(r)), (Some(li), Some(ri)) if li < ri)
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        if let Some((_, _, item)) = next {
            out.push(item);
        }
    }
    Ok(out)
}

/// Upstream's `validatePatchWithSetOrderList`: the patch's elements (less
/// deletions) must appear in the `$setElementOrder` list, in its order.
pub(super) fn validate_against_order(
    patch: &[Value],
    order: &[Value],
    merge_key: Option<&str>,
) -> Result<(), PatchError> {
    if order.is_empty() || patch.is_empty() {
        return Ok(());
    }
    let mut kept = Vec::with_capacity(patch.len());
    for item in patch {
        if merge_key.is_some() {
            if !item.is_object() {
                return Err(not_a_map(item));
            }
            if item.get(DIRECTIVE_MARKER).and_then(Value::as_str) == Some(DELETE_DIRECTIVE) {
                continue;
            }
        }
        kept.push(item);
    }
    let (mut p, mut s) = (0, 0);
    while p < kept.len() && s < order.len() {
        if kept[p].get(DIRECTIVE_MARKER).is_some() {
            p += 1;
            continue;
        }
        if merge_key_equal(kept[p], &order[s], merge_key)? {
            p += 1;
        }
        s += 1;
    }
    if p < kept.len() && s >= order.len() {
        return Err(PatchError::strategic(format!(
            "the order in patch list:\n{}\n doesn't match $setElementOrder list:\n{}",
            go_fmt::value(&Value::Array(patch.to_vec())),
            go_fmt::value(&Value::Array(order.to_vec()))
        )));
    }
    Ok(())
}

fn merge_key_equal(left: &Value, right: &Value, merge_key: Option<&str>) -> Result<bool, PatchError> {
    let Some(key) = merge_key else { return Ok(left == right) };
    let (Value::Object(l), Value::Object(r)) = (left, right) else {
        return Err(not_a_map(if left.is_object() { right } else { left }));
    };
    let lv = l.get(key).ok_or_else(|| no_merge_key(l, key))?;
    let rv = r.get(key).ok_or_else(|| no_merge_key(r, key))?;
    Ok(lv == rv)
}

fn not_a_map(actual: &Value) -> PatchError {
    PatchError::strategic(format!(
        "expected a map[string]interface {{}}, but received a {}",
        go_fmt::type_name(actual)
    ))
}

/// A value's identity for comparisons: its canonical (key-sorted) JSON.
fn canonical(v: &Value) -> String {
    v.to_string()
}
