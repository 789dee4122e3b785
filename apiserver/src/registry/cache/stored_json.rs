//! Turning a stored value into the watch cache's form without decoding the
//! whole object into a map and encoding it again.
//!
//! A stored value is the compact JSON this server wrote from a sorted map
//! (see [`crate::registry::stored_form`]). The cache keeps the object without
//! `kind` and `apiVersion` and with `metadata.resourceVersion` set, which
//! for such a value is a splice of its bytes: [`cached_body`] drops the two
//! top-level members and inserts the resourceVersion where the sorted map
//! would put it. That is byte for byte what decoding, changing and encoding
//! the object gives only if the value is exactly serde_json's encoding of
//! what it decodes to, so the value is checked for that on the way:
//! compact, keys unescaped and in order at every level, strings escaped as
//! serde_json escapes them, integers only (a float may not parse back to
//! the same digits). Anything else (and a value without a `metadata` map)
//! gets `None`, and the caller decodes and encodes it the slow way.
//!
//! Selectors only look at labels and a few scalar fields, so
//! [`selectable_view`] decodes just those: every scalar up to two levels
//! deep, `metadata.labels` and `status.podIPs`, skipping (but still
//! checking the syntax of) everything else.

use std::fmt;
use std::ops::Range;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::registry::object::Object;

const RESOURCE_VERSION: &[u8] = b"resourceVersion";

/// Deepest nesting taken apart here (serde_json's own limit).
const MAX_DEPTH: usize = 128;

/// One member of a JSON object: the byte ranges of its key (inside the
/// quotes) and of its value.
struct Member {
    key: Range<usize>,
    value: Range<usize>,
}

/// The value of a hex digit as serde_json writes them (lowercase).
fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// The end of the string starting at `json[i]` (a quote), just past the
/// closing quote, if it is escaped exactly as serde_json escapes strings:
/// `\"`, `\\`, the short escapes of `\b \t \n \f \r`, and `\u00xx` for
/// the other control characters; nothing else.
fn skip_string(json: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        match *json.get(j)? {
            b'"' => return Some(j + 1),
            b'\\' => match *json.get(j + 1)? {
                b'"' | b'\\' | b'b' | b't' | b'n' | b'f' | b'r' => j += 2,
                b'u' => {
                    let code = match *json.get(j + 2..j + 6)? {
                        [b'0', b'0', hi, lo] => hex_digit(hi)? * 16 + hex_digit(lo)?,
                        _ => return None,
                    };
                    if code >= 0x20 || matches!(code, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d) {
                        return None;
                    }
                    j += 6;
                }
                _ => return None,
            },
            0..=0x1f => return None,
            _ => j += 1,
        }
    }
}

/// The end of the integer starting at `json[i]`, if it is one serde_json
/// writes (an `i64` or `u64` without leading zeros; not `-0`). Floats are
/// refused: parsing one is not always exact, so encoding it again may not
/// give the same digits.
fn skip_integer(json: &[u8], i: usize) -> Option<usize> {
    let negative = json.get(i) == Some(&b'-');
    let digits = i + usize::from(negative);
    let mut j = digits;
    while matches!(json.get(j), Some(b'0'..=b'9')) {
        j += 1;
    }
    if j == digits || (json[digits] == b'0' && (j - digits > 1 || negative)) {
        return None;
    }
    let text = std::str::from_utf8(&json[i..j]).ok()?;
    let fits = if negative {
        text.parse::<i64>().is_ok()
    } else {
        text.parse::<u64>().is_ok()
    };
    fits.then_some(j)
}

/// The end of the value starting at `json[i]`, if it is written as
/// serde_json writes a value of a sorted map: compact, keys in order and
/// unescaped (see [`object_key`]), strings and integers as above.
fn skip_value(json: &[u8], i: usize, depth: usize) -> Option<usize> {
    let literal = |word: &[u8]| (json.get(i..i + word.len())? == word).then_some(i + word.len());
    match *json.get(i)? {
        b'"' => skip_string(json, i),
        b'{' => skip_object(json, i, depth + 1),
        b'[' => skip_array(json, i, depth + 1),
        b't' => literal(b"true"),
        b'f' => literal(b"false"),
        b'n' => literal(b"null"),
        _ => skip_integer(json, i),
    }
}

fn skip_array(json: &[u8], i: usize, depth: usize) -> Option<usize> {
    if depth > MAX_DEPTH {
        return None;
    }
    let mut j = i + 1;
    if json.get(j) == Some(&b']') {
        return Some(j + 1);
    }
    loop {
        j = skip_value(json, j, depth)?;
        match *json.get(j)? {
            b',' => j += 1,
            b']' => return Some(j + 1),
            _ => return None,
        }
    }
}

fn skip_object(json: &[u8], i: usize, depth: usize) -> Option<usize> {
    if depth > MAX_DEPTH {
        return None;
    }
    let mut j = i + 1;
    if json.get(j) == Some(&b'}') {
        return Some(j + 1);
    }
    let mut previous = None;
    loop {
        let (key, value) = object_key(json, j, previous)?;
        j = skip_value(json, value, depth)?;
        previous = Some(key);
        match *json.get(j)? {
            b',' => j += 1,
            b'}' => return Some(j + 1),
            _ => return None,
        }
    }
}

/// The key starting at `json[i]` (inside its quotes) and where its value
/// starts, if the key has no escapes (so its bytes order as the decoded
/// string does), comes after `previous` (a sorted map's order, which also
/// rules out duplicates), and is followed by a colon.
fn object_key(json: &[u8], i: usize, previous: Option<Range<usize>>) -> Option<(Range<usize>, usize)> {
    if json.get(i) != Some(&b'"') {
        return None;
    }
    let end = skip_string(json, i)?;
    let key = i + 1..end - 1;
    if json[key.clone()].contains(&b'\\') {
        return None;
    }
    if let Some(previous) = previous
        && json[previous] >= json[key.clone()]
    {
        return None;
    }
    if json.get(end) != Some(&b':') {
        return None;
    }
    Some((key, end + 1))
}

/// The members of the object starting at `json[start]` (at nesting level
/// `depth`), and the end of the object; `None` unless it is written as
/// [`skip_value`] requires.
fn sorted_members(json: &[u8], start: usize, depth: usize) -> Option<(Vec<Member>, usize)> {
    if json.get(start) != Some(&b'{') || depth > MAX_DEPTH {
        return None;
    }
    let mut members: Vec<Member> = Vec::with_capacity(8);
    let mut i = start + 1;
    if json.get(i) == Some(&b'}') {
        return Some((members, i + 1));
    }
    loop {
        let previous = members.last().map(|m| m.key.clone());
        let (key, value) = object_key(json, i, previous)?;
        let value_end = skip_value(json, value, depth)?;
        members.push(Member {
            key,
            value: value..value_end,
        });
        match *json.get(value_end)? {
            b',' => i = value_end + 1,
            b'}' => return Some((members, value_end + 1)),
            _ => return None,
        }
    }
}

/// Writes `"key":value` of a member, with a comma before all but the first.
fn put_member(out: &mut Vec<u8>, json: &[u8], m: &Member, first: &mut bool) {
    if !std::mem::take(first) {
        out.push(b',');
    }
    out.push(b'"');
    out.extend_from_slice(&json[m.key.clone()]);
    out.extend_from_slice(b"\":");
    out.extend_from_slice(&json[m.value.clone()]);
}

/// The cache's body of a stored value at `revision`: the value without its
/// top-level `kind` and `apiVersion`, with `metadata.resourceVersion` set;
/// byte for byte what decoding it, making those changes and encoding it
/// again gives. `None` when the value is not written as [`skip_value`]
/// requires or has no `metadata` map.
pub(super) fn cached_body(value: &[u8], revision: i64) -> Option<Vec<u8>> {
    let (members, end) = sorted_members(value, 0, 1)?;
    if end != value.len() {
        return None;
    }
    let metadata = members.iter().find(|m| &value[m.key.clone()] == b"metadata")?;
    let (meta_members, meta_end) = sorted_members(value, metadata.value.start, 2)?;
    if meta_end != metadata.value.end {
        return None;
    }
    let rv = revision.to_string();
    let mut out = Vec::with_capacity(value.len() + rv.len() + 24);
    out.push(b'{');
    let mut first = true;
    for m in &members {
        match &value[m.key.clone()] {
            b"kind" | b"apiVersion" => {}
            b"metadata" => {
                if !std::mem::take(&mut first) {
                    out.push(b',');
                }
                out.extend_from_slice(b"\"metadata\":{");
                let mut first_meta = true;
                let mut rv_written = false;
                for mm in &meta_members {
                    let key = &value[mm.key.clone()];
                    if !rv_written && key >= RESOURCE_VERSION {
                        put_resource_version(&mut out, &rv, &mut first_meta);
                        rv_written = true;
                        if key == RESOURCE_VERSION {
                            continue;
                        }
                    }
                    put_member(&mut out, value, mm, &mut first_meta);
                }
                if !rv_written {
                    put_resource_version(&mut out, &rv, &mut first_meta);
                }
                out.push(b'}');
            }
            _ => put_member(&mut out, value, m, &mut first),
        }
    }
    out.push(b'}');
    // The body is kept as long as the object is cached: no spare capacity
    // (shrinking in place, the allocator does not copy).
    out.shrink_to_fit();
    Some(out)
}

fn put_resource_version(out: &mut Vec<u8>, rv: &str, first: &mut bool) {
    if !std::mem::take(first) {
        out.push(b',');
    }
    out.extend_from_slice(b"\"resourceVersion\":\"");
    out.extend_from_slice(rv.as_bytes());
    out.push(b'"');
}

/// What selectors can look at of a stored object, without `kind` and
/// `apiVersion` (as the cache keeps it): every scalar at the top level and
/// one level down (`spec.nodeName`, `metadata.name`, `involvedObject.kind`,
/// `type`), and all of `metadata.labels` and `status.podIPs`. Fails like
/// decoding the whole value would on invalid JSON.
pub(super) fn selectable_view(value: &[u8]) -> Result<Object, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(value);
    let view = TopLevel.deserialize(&mut de)?;
    de.end()?;
    Ok(view)
}

/// Members nested deeper than scalars that selectors read in full.
fn kept_whole(parent: &str, key: &str) -> bool {
    matches!((parent, key), ("metadata", "labels") | ("status", "podIPs"))
}

/// The top-level object.
struct TopLevel;

impl<'de> DeserializeSeed<'de> for TopLevel {
    type Value = Object;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Object, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopLevel {
    type Value = Object;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == "kind" || key == "apiVersion" {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            match map.next_value_seed(Member1 { key: &key })? {
                Some(v) => out.insert(key, v),
                None => out.remove(&key),
            };
        }
        Ok(out)
    }
}

/// A top-level member: a scalar, or an object of scalars (and the members
/// [`kept_whole`] names); `None` for anything else.
struct Member1<'k> {
    key: &'k str,
}

impl<'de> DeserializeSeed<'de> for Member1<'_> {
    type Value = Option<Value>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<Value>, D::Error> {
        d.deserialize_any(self)
    }
}

macro_rules! scalar_visits {
    () => {
        fn visit_bool<E>(self, v: bool) -> Result<Option<Value>, E> {
            Ok(Some(Value::Bool(v)))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Option<Value>, E> {
            Ok(Some(Value::Number(v.into())))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Option<Value>, E> {
            Ok(Some(Value::Number(v.into())))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Option<Value>, E> {
            Ok(Some(
                serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number),
            ))
        }
        fn visit_str<E>(self, v: &str) -> Result<Option<Value>, E> {
            Ok(Some(Value::String(v.to_string())))
        }
        fn visit_string<E>(self, v: String) -> Result<Option<Value>, E> {
            Ok(Some(Value::String(v)))
        }
        fn visit_unit<E>(self) -> Result<Option<Value>, E> {
            Ok(Some(Value::Null))
        }
    };
}

impl<'de> Visitor<'de> for Member1<'_> {
    type Value = Option<Value>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    scalar_visits!();
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<Value>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Value>, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = if kept_whole(self.key, &key) {
                Some(map.next_value::<Value>()?)
            } else {
                map.next_value_seed(Scalar)?
            };
            match value {
                Some(v) => out.insert(key, v),
                None => out.remove(&key),
            };
        }
        Ok(Some(Value::Object(out)))
    }
}

/// A member one level down: kept when it is a scalar.
struct Scalar;

impl<'de> DeserializeSeed<'de> for Scalar {
    type Value = Option<Value>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<Value>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Scalar {
    type Value = Option<Value>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    scalar_visits!();
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<Value>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Value>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

#[cfg(test)]
#[path = "stored_json_tests.rs"]
mod tests;
