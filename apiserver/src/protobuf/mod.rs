//! Kubernetes protobuf bodies (`application/vnd.kubernetes.protobuf`) for
//! the built-in kinds.
//!
//! On the wire an object is the 4 magic bytes `k8s\0` followed by a
//! `runtime.Unknown` message {1: TypeMeta{1: apiVersion, 2: kind}, 2: raw
//! (the object's own message), 3: contentEncoding, 4: contentType}. The
//! object messages are upstream's `generated.proto` ones; their field
//! numbers and types are a table (`schema.json`, from
//! `hack/gen/proto_schema.py`), and this module transcodes between those
//! bytes and the JSON the JSON API uses for the same object, so
//! everything after body decoding (schema checks, strategies, storage)
//! sees the same value whichever media type the client spoke:
//! - `metav1.Time` {seconds, nanos} is `2006-01-02T15:04:05Z`, `MicroTime`
//!   keeps six fractional digits, `Duration` is Go's duration string;
//!   `Quantity` is its string; `IntOrString` a JSON integer or string;
//!   `RawExtension`, `FieldsV1` and apiextensions `JSON` hold JSON bytes;
//!   `[]byte` fields are base64; embedded Go structs (`VolumeSource` in
//!   `Volume`) are inlined into their parent.
//! - proto2 `optional`: an absent field stays absent. Go writes every
//!   non-pointer scalar, even empty; such a zero (`""`, `0`, `false`)
//!   decodes as absent (what `omitempty` JSON says), while a Go pointer
//!   field's zero (`replicas: 0`) is kept.
//! - unknown field numbers are skipped; malformed input (truncated
//!   varints, bad lengths, wrong wire types, nesting past
//!   [`MAX_DEPTH`]) is an error, never a panic.
//!
//! Gap fields: `schema.json` lists fields of upstream v1.36's OpenAPI
//! whose `generated.proto` numbers could not be found. Every one is an
//! alpha field behind a feature gate that is off by default, so upstream
//! with default gates drops it on write (create; update unless the stored
//! object already has it), and so does rkube
//! ([`crate::registry::kinds::alpha_fields`]): nothing is lost silently on
//! the protobuf path because no stored object carries them. Evidence:
//! - `core.v1.PodSpec.schedulingGroup`: gate `GenericWorkload` (alpha;
//!   the Workload/PodGroup APIs it points at are `scheduling.k8s.io/v1alpha2`
//!   in v1.36; added by kubernetes#136976 "Create Workload API v1alpha2",
//!   website#54490 shows `feature-state GenericWorkload`).
//! - `core.v1.PodStatus.nodeAllocatableResourceClaimStatuses` and
//!   `resource.v1.Device.nodeAllocatableResourceMappings`: gate
//!   `DRANodeAllocatableResources`, alpha in v1.36 (KEP-5517; website#54598
//!   "alpha in 1.36"; kubernetes#138554 names gate and field for the 1.36
//!   changelog; beta is only proposed for a later release, enhancements#6324).
//! - `resource.v1.DeviceAttribute.ints|strings|versions`: the v1.36 OpenAPI
//!   descriptions say "alpha field and requires enabling the
//!   DRAListTypeAttributes feature gate"; `bools` belongs to the same
//!   list-typed attribute change (its description lacks the sentence, so
//!   its gating is inferred from the sibling fields).
//! - `meta.v1.ListMeta.shardInfo`: "alpha field and requires enabling the
//!   ShardedListAndWatch feature gate" (v1.36 OpenAPI). It is set by the
//!   server only for a list filtered by a shard selector; rkube never shards
//!   a list, so it is never written and there is nothing to drop.
//!
//! *Architecture invariant:* this module knows nothing of HTTP or
//! storage; handlers call [`decode_body`] for request bodies and
//! [`encode_object`] / [`encode_watch_event`] for responses.

mod decode;
mod encode;
#[cfg(test)]
mod fixtures;
mod gotime;
#[cfg(test)]
mod http_tests;
mod schema;
#[cfg(test)]
mod tests;
mod wire;

use serde_json::{Map, Value};

use crate::status::ApiError;
use schema::Schema;
use wire::{LEN, Reader, put_bytes};

/// The media type.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The magic prefix of every protobuf-encoded object.
pub const MAGIC: &[u8] = b"k8s\0";

/// Deepest message nesting accepted.
pub const MAX_DEPTH: usize = 100;

/// Why bytes are not a valid protobuf object (or a value cannot be
/// encoded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProtoError(String);

impl ProtoError {
    fn new(msg: impl Into<String>) -> Self {
        ProtoError(msg.into())
    }
}

/// Decodes a request body into the object's JSON, `apiVersion` and
/// `kind` first (from the envelope's TypeMeta). Malformed bodies are 400.
pub fn decode_body(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    decode_envelope(schema::schema(), body, 0)
        .map_err(|e| ApiError::bad_request(format!("unable to decode protobuf body: {e}")))
}

/// The envelope's (apiVersion, kind, raw object bytes).
fn unknown(body: &[u8]) -> Result<(String, String, &[u8]), ProtoError> {
    let rest = body.strip_prefix(MAGIC).ok_or_else(|| {
        ProtoError::new("provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]")
    })?;
    let mut r = Reader::new(rest);
    let (mut api_version, mut kind, mut raw, mut encoding) = (String::new(), String::new(), &[][..], String::new());
    while !r.done() {
        let (n, wt) = r.tag()?;
        if wt != LEN {
            r.skip(wt)?;
            continue;
        }
        let b = r.bytes()?;
        match n {
            1 => {
                let mut tm = Reader::new(b);
                while !tm.done() {
                    let (n, wt) = tm.tag()?;
                    if wt != LEN {
                        tm.skip(wt)?;
                        continue;
                    }
                    let s = String::from_utf8_lossy(tm.bytes()?).into_owned();
                    match n {
                        1 => api_version = s,
                        2 => kind = s,
                        _ => {}
                    }
                }
            }
            2 => raw = b,
            3 => encoding = String::from_utf8_lossy(b).into_owned(),
            _ => {}
        }
    }
    if !encoding.is_empty() {
        return Err(ProtoError::new(format!("unsupported content encoding {encoding:?}")));
    }
    Ok((api_version, kind, raw))
}

/// The message of a (apiVersion, kind) pair.
fn message_of(schema: &Schema, api_version: &str, kind: &str) -> Option<usize> {
    if let Some(i) = schema.kind(api_version, kind) {
        return Some(i);
    }
    // Options kinds are registered in every group-version.
    match kind {
        "DeleteOptions" | "Status" | "WatchEvent" | "CreateOptions" | "UpdateOptions" | "PatchOptions"
        | "ListOptions" | "GetOptions" => schema.message(&format!("{META}{kind}")),
        "PartialObjectMetadata" | "PartialObjectMetadataList"
            if matches!(api_version, "meta.k8s.io/v1" | "meta.k8s.io/v1beta1") =>
        {
            schema.message(&format!("{META}{kind}"))
        }
        _ => None,
    }
}

fn decode_envelope(schema: &Schema, body: &[u8], depth: usize) -> Result<Map<String, Value>, ProtoError> {
    if depth > MAX_DEPTH {
        return Err(ProtoError::new(format!("exceeded max depth {MAX_DEPTH}")));
    }
    let (api_version, kind, raw) = unknown(body)?;
    if kind.is_empty() {
        return Err(ProtoError::new("Object 'Kind' is missing in the protobuf envelope"));
    }
    let idx = message_of(schema, &api_version, &kind)
        .ok_or_else(|| ProtoError::new(format!("no kind {kind:?} is registered for version {api_version:?}")))?;
    let mut out = Map::new();
    out.insert("kind".into(), Value::String(kind));
    out.insert("apiVersion".into(), Value::String(api_version));
    match decode::message(schema, idx, raw, depth)? {
        Some(Value::Object(obj)) => out.extend(obj),
        _ => return Err(ProtoError::new("the envelope does not hold an object")),
    }
    Ok(out)
}

/// Encodes an object (with its `apiVersion` and `kind`) as the envelope
/// and its message.
pub fn encode_object(obj: &Map<String, Value>) -> Result<Vec<u8>, ProtoError> {
    let schema = schema::schema();
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let idx = message_of(schema, api_version, kind)
        .ok_or_else(|| ProtoError::new(format!("no protobuf message for {api_version}/{kind}")))?;
    // The envelope written around the message as it is encoded.
    let mut type_meta = Vec::with_capacity(api_version.len() + kind.len() + 4);
    put_bytes(&mut type_meta, 1, api_version.as_bytes());
    put_bytes(&mut type_meta, 2, kind.as_bytes());
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(MAGIC);
    put_bytes(&mut out, 1, &type_meta);
    encode::nested(&mut out, 2, |out| encode::object(schema, idx, obj, out))?;
    put_bytes(&mut out, 3, b"");
    put_bytes(&mut out, 4, b"");
    Ok(out)
}

/// Whether objects of this apiVersion/kind have a protobuf form.
pub fn supports(api_version: &str, kind: &str) -> bool {
    message_of(schema::schema(), api_version, kind).is_some()
}

/// The message of an apiVersion/kind, for [`encode_raw`].
pub fn message_index(api_version: &str, kind: &str) -> Option<usize> {
    message_of(schema::schema(), api_version, kind)
}

/// Encodes an object's JSON (with or without `kind`/`apiVersion`) as the
/// bare message `idx` (no envelope): how list items and cached objects
/// are kept.
pub fn encode_raw(idx: usize, obj: &Value) -> Result<Vec<u8>, ProtoError> {
    let mut raw = Vec::new();
    encode::message(schema::schema(), idx, obj, &mut raw, 0)?;
    Ok(raw)
}

/// The `k8s\0` + `runtime.Unknown` envelope around a bare message.
pub fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut type_meta = Vec::new();
    put_bytes(&mut type_meta, 1, api_version.as_bytes());
    put_bytes(&mut type_meta, 2, kind.as_bytes());
    let mut out = Vec::with_capacity(raw.len() + type_meta.len() + 16);
    out.extend_from_slice(MAGIC);
    put_bytes(&mut out, 1, &type_meta);
    put_bytes(&mut out, 2, raw);
    put_bytes(&mut out, 3, b"");
    put_bytes(&mut out, 4, b"");
    out
}

/// A `<Kind>List` message in its envelope: field 1 the `ListMeta`
/// (encoded from its JSON), field 2 each item's bare message. The output
/// is sized up front and every item copied into it once.
pub fn encode_list<'a>(
    api_version: &str,
    list_kind: &str,
    metadata: &Value,
    items: impl Iterator<Item = &'a [u8]> + Clone,
) -> Result<Vec<u8>, ProtoError> {
    let schema = schema::schema();
    let list_meta = schema
        .message(&format!("{META}ListMeta"))
        .ok_or_else(|| ProtoError::new("no ListMeta message"))?;
    let mut meta = Vec::new();
    encode::message(schema, list_meta, metadata, &mut meta, 0)?;
    let field_len = |n: usize| 1 + wire::varint_len(n as u64) + n;
    let raw_len = field_len(meta.len()) + items.clone().map(|b| field_len(b.len())).sum::<usize>();
    let mut type_meta = Vec::new();
    put_bytes(&mut type_meta, 1, api_version.as_bytes());
    put_bytes(&mut type_meta, 2, list_kind.as_bytes());
    let mut out = Vec::with_capacity(MAGIC.len() + field_len(type_meta.len()) + field_len(raw_len) + 4);
    out.extend_from_slice(MAGIC);
    put_bytes(&mut out, 1, &type_meta);
    wire::put_tag(&mut out, 2, LEN);
    wire::put_varint(&mut out, raw_len as u64);
    put_bytes(&mut out, 1, &meta);
    for item in items {
        put_bytes(&mut out, 2, item);
    }
    put_bytes(&mut out, 3, b"");
    put_bytes(&mut out, 4, b"");
    Ok(out)
}

const META: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.";

/// One watch event as upstream's protobuf watch stream frames it: a
/// 4-byte big-endian length, then a bare `metav1.WatchEvent` message (the
/// stream serializer writes neither magic nor envelope) {1: type, 2:
/// RawExtension{1: raw = the object's own enveloped encoding}}.
pub fn encode_watch_event(event_type: &str, object: &Map<String, Value>) -> Result<Vec<u8>, ProtoError> {
    Ok(watch_frame(event_type, &encode_object(object)?))
}

/// A watch frame around an already enveloped object.
pub fn watch_frame(event_type: &str, enveloped: &[u8]) -> Vec<u8> {
    let mut raw_ext = Vec::with_capacity(enveloped.len() + 6);
    put_bytes(&mut raw_ext, 1, enveloped);
    let mut ev = Vec::with_capacity(raw_ext.len() + event_type.len() + 8);
    put_bytes(&mut ev, 1, event_type.as_bytes());
    put_bytes(&mut ev, 2, &raw_ext);
    let mut out = Vec::with_capacity(ev.len() + 4);
    out.extend_from_slice(&(ev.len() as u32).to_be_bytes());
    out.extend_from_slice(&ev);
    out
}

/// Decodes bytes that hold a bare message of `(apiVersion, kind)` (a list
/// item) into JSON, for tests and tools.
pub fn decode_raw(api_version: &str, kind: &str, raw: &[u8]) -> Result<Map<String, Value>, ProtoError> {
    let schema = schema::schema();
    let idx = message_of(schema, api_version, kind)
        .ok_or_else(|| ProtoError::new(format!("no protobuf message for {api_version}/{kind}")))?;
    match decode::message(schema, idx, raw, 0)? {
        Some(Value::Object(obj)) => Ok(obj),
        Some(_) => Err(ProtoError::new("not an object")),
        None => Ok(Map::new()),
    }
}

/// Decodes a whole object (magic, envelope, message) into JSON with
/// `kind` and `apiVersion`; lists decode with their items.
pub fn decode_object(body: &[u8]) -> Result<Map<String, Value>, ProtoError> {
    decode_envelope(schema::schema(), body, 0)
}

/// A decoded watch event: its type and object.
pub type WatchEvent = (String, Map<String, Value>);

/// Splits a protobuf watch stream into (type, object JSON) events; the
/// bytes after the last whole frame are returned untouched.
pub fn decode_watch_frames(mut buf: &[u8]) -> Result<(Vec<WatchEvent>, &[u8]), ProtoError> {
    let mut events = Vec::new();
    while buf.len() >= 4 {
        let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        let Some(frame) = buf.get(4..4 + len) else {
            break;
        };
        let (mut event_type, mut object) = (String::new(), Map::new());
        let mut r = Reader::new(frame);
        while !r.done() {
            let (n, wt) = r.tag()?;
            if wt != LEN {
                r.skip(wt)?;
                continue;
            }
            let b = r.bytes()?;
            match n {
                1 => event_type = String::from_utf8_lossy(b).into_owned(),
                2 => {
                    let mut ext = Reader::new(b);
                    while !ext.done() {
                        let (n, wt) = ext.tag()?;
                        if n == 1 && wt == LEN {
                            object = decode_object(ext.bytes()?)?;
                        } else {
                            ext.skip(wt)?;
                        }
                    }
                }
                _ => {}
            }
        }
        events.push((event_type, object));
        buf = &buf[4 + len..];
    }
    Ok((events, buf))
}
