//! The map-level directives `$retainKeys` and `$setElementOrder/<field>`.

use serde_json::Value;

use super::list::{self, Order};
use super::{
    BAD_RETAIN_KEYS, BAD_SET_ELEMENT_ORDER, DELETE_FROM_PRIMITIVE_LIST_PREFIX, JsonMap, RETAIN_KEYS_DIRECTIVE,
    SET_ELEMENT_ORDER_PREFIX, clean_list, not_a_list,
};
use crate::patch::PatchError;
use crate::patch::meta::Schema;

/// `$retainKeys: [k...]`: removes every key of `original` that is not
/// listed. Every non-null key of the patch must be listed too.
pub(super) fn apply_retain_keys(original: &mut JsonMap, patch: &mut JsonMap) -> Result<(), PatchError> {
    let Some(retain) = patch.remove(RETAIN_KEYS_DIRECTIVE) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(PatchError::BadDirective {
            message: BAD_RETAIN_KEYS,
        });
    };
    let listed = |key: &str| retain.iter().any(|k| k.as_str() == Some(key));
    for (key, value) in patch.iter() {
        if value.is_null()
            || key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
            || key.starts_with(SET_ELEMENT_ORDER_PREFIX)
        {
            continue;
        }
        if !listed(key) {
            return Err(PatchError::BadDirective {
                message: BAD_RETAIN_KEYS,
            });
        }
    }
    original.retain(|key, _| listed(key));
    Ok(())
}

/// `$setElementOrder/<field>: [...]`: merges the patch's `<field>` list (if
/// any) into the original's and orders the result: the elements named in
/// the directive in its order, the original's other elements kept where
/// they were relative to them. Removes the directive and the list from the
/// patch.
pub(super) fn merge_ordered_lists(
    original: &mut JsonMap,
    patch: &mut JsonMap,
    schema: Schema,
) -> Result<(), PatchError> {
    let directive_keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER_PREFIX))
        .cloned()
        .collect();
    for directive_key in directive_keys {
        let Some(order) = patch.remove(&directive_key) else {
            continue;
        };
        let Value::Array(order) = order else {
            return Err(not_a_list(&order));
        };
        let field_name = match directive_key.split_once('/') {
            Some((SET_ELEMENT_ORDER_PREFIX, field)) => field.to_string(),
            _ => {
                return Err(PatchError::BadDirective {
                    message: BAD_SET_ELEMENT_ORDER,
                });
            }
        };
        let original_list = match original.remove(&field_name) {
            None => None,
            Some(Value::Array(items)) => Some(items),
            Some(other) => return Err(not_a_list(&other)),
        };
        let patch_list = match patch.remove(&field_name) {
            None => None,
            Some(Value::Array(items)) => Some(items),
            Some(other) => return Err(not_a_list(&other)),
        };
        let field = schema.field(&field_name);
        let merge_key = field.merge_key;
        list::validate_against_order(patch_list.as_deref().unwrap_or(&[]), &order, merge_key)?;

        let lists = [
            original_list.as_deref().unwrap_or(&[]),
            patch_list.as_deref().unwrap_or(&[]),
        ];
        let kind = match list::element_kind(&lists) {
            Ok(kind) => kind,
            // Nothing to merge nor order; upstream errors here, to no use.
            Err(_) if lists.iter().all(|l| l.is_empty()) => list::empty_list_kind(merge_key),
            Err(e) => return Err(e),
        };
        let server_order = Order::of(original_list.as_deref().unwrap_or(&[]), merge_key, kind)?;
        let merged = match (original_list, patch_list) {
            (Some(original_list), None) => original_list,
            (None, Some(patch_list)) => clean_list(patch_list),
            (Some(original_list), Some(patch_list)) => list::merge_list_field(original_list, patch_list, field, false)?,
            (None, None) => continue,
        };
        let patch_order = Order::of(&order, merge_key, kind)?;
        let ordered = list::order(merged, &patch_order, &server_order)?;
        original.insert(field_name, Value::Array(ordered));
    }
    Ok(())
}
