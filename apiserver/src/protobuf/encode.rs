//! JSON in the JSON API's shape -> protobuf message bytes.

use base64::Engine;
use serde_json::{Map, Value};

use super::schema::{Field, Scalar, Schema, Special, Ty};
use super::wire::{FIXED32, FIXED64, LEN, VARINT, put_bytes, put_tag, put_varint};
use super::{MAX_DEPTH, ProtoError, gotime};

/// Writes field `number` as a length-delimited message that `body` writes
/// straight into `out`; the length goes in front afterwards (moving the
/// body by the varint's few bytes), so no buffer is allocated per message.
pub fn nested(
    out: &mut Vec<u8>,
    number: u32,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), ProtoError>,
) -> Result<(), ProtoError> {
    put_tag(out, number, LEN);
    let start = out.len();
    body(out)?;
    let (mut n, mut buf, mut used) = ((out.len() - start) as u64, [0u8; 10], 0);
    loop {
        let byte = (n & 0x7F) as u8;
        n >>= 7;
        buf[used] = if n == 0 { byte } else { byte | 0x80 };
        used += 1;
        if n == 0 {
            break;
        }
    }
    out.splice(start..start, buf[..used].iter().copied());
    Ok(())
}

fn mismatch(f: &str, want: &str, v: &Value) -> ProtoError {
    ProtoError::new(format!("field {f}: expected {want}, got {v}"))
}

/// Encodes `v` as message `idx` (its bytes, without tag or length).
pub fn message(schema: &Schema, idx: usize, v: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), ProtoError> {
    if depth > MAX_DEPTH {
        return Err(ProtoError::new(format!("exceeded max depth {MAX_DEPTH}")));
    }
    let msg = schema
        .messages
        .get(idx)
        .ok_or_else(|| ProtoError::new("unknown message"))?;
    let name = msg.name.as_str();
    match msg.special {
        Special::Time | Special::MicroTime => {
            let s = v.as_str().ok_or_else(|| mismatch(name, "a time string", v))?;
            let (secs, nanos) = gotime::parse(s).ok_or_else(|| mismatch(name, "an RFC 3339 time", v))?;
            put_tag(out, 1, VARINT);
            put_varint(out, secs as u64);
            put_tag(out, 2, VARINT);
            put_varint(out, i64::from(nanos) as u64);
            return Ok(());
        }
        Special::Duration => {
            let s = v.as_str().ok_or_else(|| mismatch(name, "a duration string", v))?;
            let d = gotime::parse_duration(s).ok_or_else(|| mismatch(name, "a duration", v))?;
            put_tag(out, 1, VARINT);
            put_varint(out, d as u64);
            return Ok(());
        }
        Special::Quantity => {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(mismatch(name, "a quantity", v)),
            };
            put_bytes(out, 1, s.as_bytes());
            return Ok(());
        }
        Special::IntOrString => {
            let (ty, int, s) = match v {
                Value::Number(n) => (0, n.as_i64().ok_or_else(|| mismatch(name, "an integer", v))?, ""),
                Value::String(s) => (1, 0, s.as_str()),
                _ => return Err(mismatch(name, "an integer or string", v)),
            };
            put_tag(out, 1, VARINT);
            put_varint(out, ty);
            put_tag(out, 2, VARINT);
            put_varint(out, int as u64);
            put_bytes(out, 3, s.as_bytes());
            return Ok(());
        }
        Special::RawJson => {
            let raw = serde_json::to_vec(v).map_err(|e| ProtoError::new(e.to_string()))?;
            put_bytes(out, 1, &raw);
            return Ok(());
        }
        Special::SchemaOrBool => {
            match v {
                Value::Bool(b) => {
                    put_tag(out, 1, VARINT);
                    put_varint(out, u64::from(*b));
                }
                _ => {
                    put_tag(out, 1, VARINT);
                    put_varint(out, 1);
                    let f = msg.field(2).ok_or_else(|| ProtoError::new("schema field"))?;
                    write(schema, f, v, out, depth)?;
                }
            }
            return Ok(());
        }
        Special::SchemaOrArray | Special::SchemaOrStringArray | Special::List => {
            let (list, one) = match msg.special {
                Special::List => (1, 0),
                _ => (2, 1),
            };
            let number = if v.is_array() { list } else { one };
            let f = msg.field(number).ok_or_else(|| mismatch(name, "an array", v))?;
            return write(schema, f, v, out, depth);
        }
        Special::None => {}
    }
    let Value::Object(obj) = v else {
        return Err(mismatch(name, "an object", v));
    };
    fields(schema, idx, obj, out, depth)
}

/// Encodes an object as message `idx` without copying it into a
/// [`Value`] first (kinds are never special messages).
pub fn object(schema: &Schema, idx: usize, obj: &Map<String, Value>, out: &mut Vec<u8>) -> Result<(), ProtoError> {
    match schema.messages.get(idx) {
        Some(m) if m.special == Special::None => fields(schema, idx, obj, out, 0),
        Some(_) => message(schema, idx, &Value::Object(obj.clone()), out, 0),
        None => Err(ProtoError::new("unknown message")),
    }
}

fn fields(
    schema: &Schema,
    idx: usize,
    obj: &Map<String, Value>,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), ProtoError> {
    let msg = &schema.messages[idx];
    for f in &msg.fields {
        if f.inline {
            if let Ty::Message(inner) = f.ty {
                // The embedded struct's fields live in this object.
                nested(out, f.number, |out| fields(schema, inner, obj, out, depth + 1))?;
            }
            continue;
        }
        match obj.get(&f.json) {
            None | Some(Value::Null) => {}
            Some(v) => write(schema, f, v, out, depth)?,
        }
    }
    Ok(())
}

/// Writes field `f` holding `v` (every element of a repeated field, every
/// entry of a map).
fn write(schema: &Schema, f: &Field, v: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), ProtoError> {
    match &f.ty {
        Ty::Map(k, val) => {
            let Value::Object(m) = v else {
                return Err(mismatch(&f.json, "an object", v));
            };
            for (key, value) in m {
                nested(out, f.number, |entry| {
                    match **k {
                        Ty::Scalar(Scalar::String) => put_bytes(entry, 1, key.as_bytes()),
                        _ => {
                            let key_value = key
                                .parse::<i64>()
                                .map(Value::from)
                                .map_err(|_| mismatch(&f.json, "an integer key", v))?;
                            element(schema, &f.json, 1, k, &key_value, entry, depth)?;
                        }
                    }
                    if !value.is_null() {
                        element(schema, &f.json, 2, val, value, entry, depth)?;
                    }
                    Ok(())
                })?;
            }
            Ok(())
        }
        ty if f.repeated => {
            let Value::Array(items) = v else {
                return Err(mismatch(&f.json, "an array", v));
            };
            for item in items {
                element(schema, &f.json, f.number, ty, item, out, depth)?;
            }
            Ok(())
        }
        ty => element(schema, &f.json, f.number, ty, v, out, depth),
    }
}

fn int(name: &str, v: &Value) -> Result<i64, ProtoError> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_u64().map(|u| u as i64))
            .or_else(|| n.as_f64().filter(|x| x.fract() == 0.0).map(|x| x as i64))
            .ok_or_else(|| mismatch(name, "an integer", v)),
        _ => Err(mismatch(name, "an integer", v)),
    }
}

fn element(
    schema: &Schema,
    name: &str,
    number: u32,
    ty: &Ty,
    v: &Value,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), ProtoError> {
    match ty {
        Ty::Scalar(s) => match s {
            Scalar::String => {
                let s = v.as_str().ok_or_else(|| mismatch(name, "a string", v))?;
                put_bytes(out, number, s.as_bytes());
            }
            Scalar::Bytes => {
                let s = v.as_str().ok_or_else(|| mismatch(name, "a base64 string", v))?;
                let b = base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|_| mismatch(name, "a base64 string", v))?;
                put_bytes(out, number, &b);
            }
            Scalar::Bool => {
                let b = v.as_bool().ok_or_else(|| mismatch(name, "a boolean", v))?;
                put_tag(out, number, VARINT);
                put_varint(out, u64::from(b));
            }
            Scalar::Int32 | Scalar::Int64 | Scalar::Uint32 | Scalar::Uint64 => {
                let i = int(name, v)?;
                put_tag(out, number, VARINT);
                put_varint(out, i as u64);
            }
            Scalar::Double => {
                let x = v.as_f64().ok_or_else(|| mismatch(name, "a number", v))?;
                put_tag(out, number, FIXED64);
                out.extend_from_slice(&x.to_bits().to_le_bytes());
            }
            Scalar::Float => {
                let x = v.as_f64().ok_or_else(|| mismatch(name, "a number", v))?;
                put_tag(out, number, FIXED32);
                out.extend_from_slice(&(x as f32).to_bits().to_le_bytes());
            }
        },
        Ty::Message(idx) => nested(out, number, |out| message(schema, *idx, v, out, depth + 1))?,
        Ty::Map(..) => return Err(mismatch(name, "a map value", v)),
    }
    Ok(())
}
