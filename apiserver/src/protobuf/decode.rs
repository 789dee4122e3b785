//! Protobuf message bytes -> the JSON the JSON API uses for the same
//! object.

use base64::Engine;
use serde_json::{Map, Number, Value};

use super::schema::{Field, Scalar, Schema, Special, Ty};
use super::wire::{FIXED32, FIXED64, LEN, Reader, VARINT};
use super::{MAX_DEPTH, ProtoError, gotime};

/// A field value as read off the wire.
#[derive(Clone, Copy)]
enum Raw<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
}

/// Every field of a message in wire order.
fn collect(buf: &[u8]) -> Result<Vec<(u32, Raw<'_>)>, ProtoError> {
    let mut r = Reader::new(buf);
    let mut out = Vec::new();
    while !r.done() {
        let (number, wt) = r.tag()?;
        let v = match wt {
            VARINT => Raw::Varint(r.varint()?),
            FIXED64 => Raw::Fixed64(r.fixed64()?),
            FIXED32 => Raw::Fixed32(r.fixed32()?),
            LEN => Raw::Bytes(r.bytes()?),
            other => {
                return Err(ProtoError::new(format!(
                    "unsupported wire type {other} for field {number}"
                )));
            }
        };
        out.push((number, v));
    }
    Ok(out)
}

fn wire_name(v: &Raw<'_>) -> &'static str {
    match v {
        Raw::Varint(_) => "varint",
        Raw::Fixed64(_) => "fixed64",
        Raw::Fixed32(_) => "fixed32",
        Raw::Bytes(_) => "length-delimited",
    }
}

fn wrong(msg: &str, f: &Field, v: &Raw<'_>) -> ProtoError {
    ProtoError::new(format!(
        "{msg}: wrong wire type {} for field {} ({})",
        wire_name(v),
        f.json,
        f.number
    ))
}

/// Decodes a message; `None` is a value JSON leaves out (a zero `Time`,
/// an empty raw extension).
pub fn message(schema: &Schema, idx: usize, buf: &[u8], depth: usize) -> Result<Option<Value>, ProtoError> {
    if depth > MAX_DEPTH {
        return Err(ProtoError::new(format!("exceeded max depth {MAX_DEPTH}")));
    }
    let msg = schema
        .messages
        .get(idx)
        .ok_or_else(|| ProtoError::new("unknown message"))?;
    let fields = collect(buf)?;
    let get = |n: u32| fields.iter().rev().find(|(k, _)| *k == n).map(|(_, v)| *v);
    let varint = |n: u32| match get(n) {
        Some(Raw::Varint(v)) => Ok(v),
        None => Ok(0),
        Some(other) => Err(ProtoError::new(format!(
            "{}: wrong wire type {} for field {n}",
            msg.name,
            wire_name(&other)
        ))),
    };
    let bytes = |n: u32| match get(n) {
        Some(Raw::Bytes(b)) => Ok(Some(b)),
        None => Ok(None),
        Some(other) => Err(ProtoError::new(format!(
            "{}: wrong wire type {} for field {n}",
            msg.name,
            wire_name(&other)
        ))),
    };
    let string = |n: u32| bytes(n).map(|b| b.map(|b| String::from_utf8_lossy(b).into_owned()));
    match msg.special {
        Special::Time | Special::MicroTime => {
            if buf.is_empty() {
                return Ok(None);
            }
            let seconds = varint(1)? as i64;
            let nanos = if msg.special == Special::MicroTime {
                varint(2)? as i64 as i32
            } else {
                0
            };
            if seconds == gotime::GO_ZERO_UNIX && nanos == 0 {
                return Ok(None);
            }
            let s = gotime::format(seconds, nanos, msg.special == Special::MicroTime)
                .ok_or_else(|| ProtoError::new(format!("{}: time out of range: {seconds}s", msg.name)))?;
            return Ok(Some(Value::String(s)));
        }
        Special::Duration => {
            return Ok(Some(Value::String(gotime::format_duration(varint(1)? as i64))));
        }
        Special::Quantity => {
            let s = string(1)?.filter(|s| !s.is_empty()).unwrap_or_else(|| "0".into());
            return Ok(Some(Value::String(s)));
        }
        Special::IntOrString => {
            return Ok(Some(if varint(1)? == 1 {
                Value::String(string(3)?.unwrap_or_default())
            } else {
                Value::from(varint(2)? as i64 as i32)
            }));
        }
        Special::RawJson => {
            let Some(raw) = bytes(1)? else {
                return Ok(None);
            };
            if raw.is_empty() {
                return Ok(None);
            }
            return raw_json(schema, raw, depth).map(Some);
        }
        _ => {}
    }
    let mut obj = Map::new();
    for (number, v) in &fields {
        let Some(f) = msg.field(*number) else {
            continue;
        };
        field(schema, &msg.name, f, v, &mut obj, depth)?;
    }
    match msg.special {
        Special::List | Special::SchemaOrStringArray | Special::SchemaOrArray => {
            // The array form when it has elements, else the schema.
            let list_key = match msg.special {
                Special::List => "items",
                Special::SchemaOrStringArray => "property",
                _ => "jSONSchemas",
            };
            match obj.remove(list_key) {
                Some(Value::Array(a)) if !a.is_empty() || msg.special == Special::List => Ok(Some(Value::Array(a))),
                _ if msg.special == Special::List => Ok(Some(Value::Array(Vec::new()))),
                _ => Ok(obj.remove("schema")),
            }
        }
        Special::SchemaOrBool => match obj.remove("schema") {
            Some(s) => Ok(Some(s)),
            None => Ok(Some(Value::Bool(matches!(get(1), Some(Raw::Varint(v)) if v != 0)))),
        },
        _ => Ok(Some(Value::Object(obj))),
    }
}

/// A raw extension's bytes: JSON, or an embedded protobuf object.
fn raw_json(schema: &Schema, raw: &[u8], depth: usize) -> Result<Value, ProtoError> {
    if raw.starts_with(super::MAGIC) {
        return super::decode_envelope(schema, raw, depth + 1).map(Value::Object);
    }
    serde_json::from_slice(raw).map_err(|e| ProtoError::new(format!("raw field is not valid JSON: {e}")))
}

/// Decodes one occurrence of a field into `obj`.
fn field(
    schema: &Schema,
    owner: &str,
    f: &Field,
    v: &Raw<'_>,
    obj: &mut Map<String, Value>,
    depth: usize,
) -> Result<(), ProtoError> {
    match &f.ty {
        Ty::Map(k, val) => {
            let Raw::Bytes(entry) = v else {
                return Err(wrong(owner, f, v));
            };
            let mut key = None;
            let mut value = None;
            for (n, ev) in collect(entry)? {
                match n {
                    1 => key = Some(element(schema, owner, f, k, &ev, depth)?),
                    2 => value = Some(element(schema, owner, f, val, &ev, depth)?),
                    _ => {}
                }
            }
            let key = match key {
                Some(Some(Value::String(s))) => s,
                Some(Some(other)) => other.to_string(),
                _ => String::new(),
            };
            let value = match value {
                Some(Some(v)) => v,
                _ => zero(schema, val),
            };
            let m = obj.entry(f.json.clone()).or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = m {
                m.insert(key, value);
            }
            Ok(())
        }
        ty if f.repeated => {
            let arr = obj.entry(f.json.clone()).or_insert_with(|| Value::Array(Vec::new()));
            let Value::Array(arr) = arr else {
                return Ok(());
            };
            match (ty, v) {
                // Packed repeated numbers.
                (Ty::Scalar(s), Raw::Bytes(b)) if !matches!(s, Scalar::String | Scalar::Bytes) => {
                    let mut r = Reader::new(b);
                    while !r.done() {
                        let raw = match s {
                            Scalar::Double => Raw::Fixed64(r.fixed64()?),
                            Scalar::Float => Raw::Fixed32(r.fixed32()?),
                            _ => Raw::Varint(r.varint()?),
                        };
                        arr.push(scalar(owner, f, *s, &raw)?);
                    }
                }
                _ => {
                    let e = element(schema, owner, f, ty, v, depth)?;
                    arr.push(e.unwrap_or(Value::Null));
                }
            }
            Ok(())
        }
        Ty::Message(idx) if f.inline => {
            let Raw::Bytes(b) = v else {
                return Err(wrong(owner, f, v));
            };
            if let Some(Value::Object(inner)) = message(schema, *idx, b, depth + 1)? {
                obj.extend(inner);
            }
            Ok(())
        }
        ty => {
            match element(schema, owner, f, ty, v, depth)? {
                Some(value) if f.pointer || !is_zero_scalar(ty, &value) => {
                    obj.insert(f.json.clone(), value);
                }
                _ => {
                    obj.remove(&f.json);
                }
            }
            Ok(())
        }
    }
}

/// `""`, `0`, `false`: what a Go non-pointer field holds when unset.
fn is_zero_scalar(ty: &Ty, v: &Value) -> bool {
    match (ty, v) {
        (Ty::Scalar(_), Value::String(s)) => s.is_empty(),
        (Ty::Scalar(_), Value::Bool(b)) => !b,
        (Ty::Scalar(_), Value::Number(n)) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

/// The JSON of a map value that was left out of its entry.
fn zero(schema: &Schema, ty: &Ty) -> Value {
    match ty {
        Ty::Scalar(Scalar::String | Scalar::Bytes) => Value::String(String::new()),
        Ty::Scalar(Scalar::Bool) => Value::Bool(false),
        Ty::Scalar(_) => Value::from(0),
        Ty::Message(i) => message(schema, *i, &[], 0).ok().flatten().unwrap_or(Value::Null),
        Ty::Map(..) => Value::Object(Map::new()),
    }
}

/// One value of type `ty`.
fn element(
    schema: &Schema,
    owner: &str,
    f: &Field,
    ty: &Ty,
    v: &Raw<'_>,
    depth: usize,
) -> Result<Option<Value>, ProtoError> {
    match ty {
        Ty::Scalar(s) => scalar(owner, f, *s, v).map(Some),
        Ty::Message(idx) => match v {
            Raw::Bytes(b) => message(schema, *idx, b, depth + 1),
            _ => Err(wrong(owner, f, v)),
        },
        Ty::Map(..) => Err(wrong(owner, f, v)),
    }
}

fn scalar(owner: &str, f: &Field, s: Scalar, v: &Raw<'_>) -> Result<Value, ProtoError> {
    Ok(match (s, v) {
        (Scalar::String, Raw::Bytes(b)) => Value::String(String::from_utf8_lossy(b).into_owned()),
        (Scalar::Bytes, Raw::Bytes(b)) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        (Scalar::Bool, Raw::Varint(x)) => Value::Bool(*x != 0),
        (Scalar::Int32, Raw::Varint(x)) => Value::from(*x as i64 as i32),
        (Scalar::Int64, Raw::Varint(x)) => Value::from(*x as i64),
        (Scalar::Uint32, Raw::Varint(x)) => Value::from(*x as u32),
        (Scalar::Uint64, Raw::Varint(x)) => Value::from(*x),
        (Scalar::Int32, Raw::Fixed32(x)) => Value::from(*x as i32),
        (Scalar::Uint32, Raw::Fixed32(x)) => Value::from(*x),
        (Scalar::Int64, Raw::Fixed64(x)) => Value::from(*x as i64),
        (Scalar::Uint64, Raw::Fixed64(x)) => Value::from(*x),
        (Scalar::Double, Raw::Fixed64(x)) => float(owner, f, f64::from_bits(*x))?,
        (Scalar::Float, Raw::Fixed32(x)) => float(owner, f, f64::from(f32::from_bits(*x)))?,
        _ => return Err(wrong(owner, f, v)),
    })
}

fn float(owner: &str, f: &Field, x: f64) -> Result<Value, ProtoError> {
    Number::from_f64(x)
        .map(Value::Number)
        .ok_or_else(|| ProtoError::new(format!("{owner}: field {} is not a finite number", f.json)))
}
