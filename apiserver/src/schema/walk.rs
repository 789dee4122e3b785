//! One pass over a body against a definition, doing what Go's
//! `encoding/json` (as forked by `sigs.k8s.io/json`) does when it decodes
//! into the kind's struct: keep known fields, drop and report unknown
//! ones, check every value's JSON type, and let the special types check
//! their own syntax.
//!
//! Two kinds of failure, as in Go's decoder:
//! - a value of the wrong JSON type (or bad base64) is *saved*: the first
//!   one is reported, and decoding goes on;
//! - an error from a type's own `UnmarshalJSON` (Quantity, IntOrString,
//!   Time, MicroTime, apiextensions' wrappers) is [`Fatal`]: decoding stops
//!   and it replaces any saved error.
//!
//! Objects are visited in `serde_json::Map` order (sorted keys), so when a
//! body has several problems the "first" is the first in that order, not
//! necessarily in the document.

use std::collections::HashSet;

use base64::Engine;
use serde_json::{Map, Number, Value};

use super::StrictError;
use super::table::{DefKind, Table, Type};
use super::{go_base64, go_time, quantity};
use crate::field_path::FieldPath;

/// An error that stops decoding at once.
#[derive(Debug)]
pub(crate) struct Fatal(pub String);

/// Where the walker is.
#[derive(Clone, Copy)]
struct Loc<'a> {
    /// The path strict errors print: `spec.containers[0].image`; empty at the root.
    path: &'a FieldPath<'a>,
    /// Go's error context: the innermost struct whose field holds the value…
    go_struct: Option<&'a str>,
    /// …and the struct field names from the root, joined by dots
    /// (`spec.containers.image`: no indices, no map keys).
    go_field: &'a FieldPath<'a>,
    /// Whether unknown and duplicate fields are reported: false inside the
    /// lenient decoder apiextensions' `JSONSchemaPropsOr*` types run.
    strict: bool,
}

const NESTED: Loc<'static> = Loc {
    path: &FieldPath::Root,
    go_struct: None,
    go_field: &FieldPath::Root,
    strict: false,
};

/// The walker's state for one body.
pub(crate) struct Walker<'t> {
    table: &'t Table,
    /// Paths of duplicated fields, as the body parser found them.
    duplicates: &'t HashSet<String>,
    /// Unknown and duplicate fields, in walk order (may repeat).
    pub(crate) strict_errors: Vec<StrictError>,
    /// Go's `savedError`: the first type error.
    pub(crate) saved: Option<String>,
}

/// The JSON type names Go's messages use.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Whether `n` is an integer literal that fits the Go integer type.
fn fits(n: &Number, ty: &Type) -> bool {
    match n.as_i64() {
        Some(i) => *ty != Type::Int32 || i32::try_from(i).is_ok(),
        None => false,
    }
}

impl<'t> Walker<'t> {
    pub(crate) fn new(table: &'t Table, duplicates: &'t HashSet<String>) -> Self {
        Walker {
            table,
            duplicates,
            strict_errors: Vec::new(),
            saved: None,
        }
    }

    /// Decodes a body as the struct `def`.
    pub(crate) fn decode(&mut self, body: Value, def: usize) -> Result<Value, Fatal> {
        let root = Loc {
            path: &FieldPath::Root,
            go_struct: None,
            go_field: &FieldPath::Root,
            strict: true,
        };
        self.value(body, &Type::Ref(def), None, &root)
    }

    fn save(&mut self, message: String) {
        if self.saved.is_none() {
            self.saved = Some(message);
        }
    }

    /// Saves Go's `UnmarshalTypeError` for a `what` (`bool`, `number 1.5`)
    /// that does not fit `go_type` at `loc`.
    fn type_error(&mut self, what: &str, go_type: impl FnOnce() -> String, loc: &Loc<'_>) {
        if self.saved.is_some() {
            return;
        }
        let go_type = go_type();
        self.save(match loc.go_struct {
            Some(s) => format!(
                "json: cannot unmarshal {what} into Go struct field {s}.{} of type {go_type}",
                loc.go_field.render()
            ),
            None => format!("json: cannot unmarshal {what} into Go value of type {go_type}"),
        });
    }

    fn check_duplicate(&mut self, path: &FieldPath<'_>, loc: &Loc<'_>) {
        if loc.strict && !self.duplicates.is_empty() {
            let path = path.render();
            if self.duplicates.contains(&path) {
                self.strict_errors.push(StrictError::DuplicateField(path));
            }
        }
    }

    /// What a JSON null becomes where Go allocates a value for it (a map
    /// value or an array element): the type's zero value, as Go encodes it.
    fn zero(&self, ty: &Type) -> Value {
        match ty {
            Type::String => Value::String(String::new()),
            Type::Int32 | Type::Int64 | Type::Float64 => Value::from(0),
            Type::Bool => Value::Bool(false),
            Type::Bytes | Type::Array(_) | Type::Map(_) => Value::Null,
            Type::Ref(i) => match self.table.def(*i).map(|d| &d.kind) {
                Some(DefKind::Struct { .. }) => Value::Object(Map::new()),
                Some(DefKind::Quantity) => Value::String("0".into()),
                Some(DefKind::IntOrString) => Value::from(0),
                _ => Value::Null,
            },
        }
    }

    /// Decodes `v` as `ty`; `go_type` overrides the Go type errors name.
    /// A value with a type error comes back as null (the body is rejected).
    fn value(&mut self, v: Value, ty: &Type, go_type: Option<&str>, loc: &Loc<'_>) -> Result<Value, Fatal> {
        if v.is_null() {
            return Ok(self.zero(ty));
        }
        let table = self.table;
        let go = || go_type.map_or_else(|| table.go_type(ty), String::from);
        match ty {
            Type::String | Type::Bool | Type::Float64 => {
                let ok = matches!(
                    (ty, &v),
                    (Type::String, Value::String(_)) | (Type::Bool, Value::Bool(_)) | (Type::Float64, Value::Number(_))
                );
                if ok {
                    return Ok(v);
                }
                self.type_error(kind(&v), go, loc);
                Ok(Value::Null)
            }
            Type::Int32 | Type::Int64 => {
                match &v {
                    Value::Number(n) if fits(n, ty) => return Ok(v),
                    Value::Number(n) => self.type_error(&format!("number {n}"), go, loc),
                    other => self.type_error(kind(other), go, loc),
                }
                Ok(Value::Null)
            }
            Type::Bytes => Ok(self.bytes(v, loc)),
            Type::Array(elem) => {
                let Value::Array(items) = v else {
                    self.type_error(kind(&v), go, loc);
                    return Ok(Value::Null);
                };
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    let path = FieldPath::Index(loc.path, i);
                    out.push(self.value(item, elem, None, &Loc { path: &path, ..*loc })?);
                }
                Ok(Value::Array(out))
            }
            Type::Map(values) => {
                let Value::Object(map) = v else {
                    self.type_error(kind(&v), go, loc);
                    return Ok(Value::Null);
                };
                let mut out = Map::new();
                for (key, item) in map {
                    let path = FieldPath::Key(loc.path, &key);
                    let item = self.value(item, values, None, &Loc { path: &path, ..*loc })?;
                    self.check_duplicate(&path, loc);
                    out.insert(key, item);
                }
                Ok(Value::Object(out))
            }
            Type::Ref(i) => self.definition(v, *i, loc),
        }
    }

    /// A `[]byte`: a base64 string (or, as Go allows, an array of bytes),
    /// re-encoded in canonical base64.
    fn bytes(&mut self, v: Value, loc: &Loc<'_>) -> Value {
        let engine = &base64::engine::general_purpose::STANDARD;
        match v {
            Value::String(s) => match go_base64::decode(s.as_bytes()) {
                Ok(bytes) => Value::String(engine.encode(bytes)),
                Err(at) => {
                    self.save(format!("illegal base64 data at input byte {at}"));
                    Value::Null
                }
            },
            Value::Array(items) => {
                let mut bytes = Vec::with_capacity(items.len());
                for item in &items {
                    match item {
                        Value::Null => bytes.push(0),
                        Value::Number(n) => match n.as_u64().and_then(|u| u8::try_from(u).ok()) {
                            Some(b) => bytes.push(b),
                            None => self.type_error(&format!("number {n}"), || "uint8".into(), loc),
                        },
                        other => self.type_error(kind(other), || "uint8".into(), loc),
                    }
                }
                Value::String(engine.encode(bytes))
            }
            other => {
                self.type_error(kind(&other), || "[]uint8".into(), loc);
                Value::Null
            }
        }
    }

    /// A value of definition `index`.
    fn definition(&mut self, v: Value, index: usize, loc: &Loc<'_>) -> Result<Value, Fatal> {
        let table = self.table;
        let Some(def) = table.def(index) else {
            return Ok(v);
        };
        match &def.kind {
            DefKind::Struct { fields, .. } => {
                let Value::Object(map) = v else {
                    self.type_error(kind(&v), || def.go_type(), loc);
                    return Ok(Value::Null);
                };
                let mut out = Map::new();
                for (key, child) in map {
                    let path = FieldPath::Key(loc.path, &key);
                    let Some(field) = fields.get(&key) else {
                        if loc.strict {
                            self.strict_errors.push(StrictError::UnknownField(path.render()));
                        }
                        continue;
                    };
                    // A null field is unset: Go leaves (or makes) it zero.
                    let mut kept = None;
                    if !child.is_null() {
                        let go_field = FieldPath::Key(loc.go_field, &key);
                        let inner = Loc {
                            path: &path,
                            go_struct: Some(def.go_name()),
                            go_field: &go_field,
                            ..*loc
                        };
                        let value = self.value(child, &field.ty, field.go_type.as_deref(), &inner)?;
                        if !value.is_null() {
                            kept = Some(value);
                        }
                    }
                    self.check_duplicate(&path, loc);
                    if let Some(value) = kept {
                        out.insert(key, value);
                    }
                }
                Ok(Value::Object(out))
            }
            DefKind::Quantity => match v {
                Value::String(s) => match quantity::check(&s) {
                    Ok(()) => Ok(Value::String(s.trim().to_string())),
                    Err(e) => Err(Fatal(e.to_string())),
                },
                // Every JSON number is a valid quantity; upstream stores it
                // as a string.
                Value::Number(n) => Ok(Value::String(n.to_string())),
                _ => Err(Fatal(quantity::ERR_FORMAT_WRONG.to_string())),
            },
            DefKind::IntOrString => match &v {
                Value::String(_) => Ok(v),
                Value::Number(n) if fits(n, &Type::Int32) => Ok(v),
                Value::Number(n) => Err(Fatal(format!(
                    "json: cannot unmarshal number {n} into Go value of type int32"
                ))),
                other => Err(Fatal(format!(
                    "json: cannot unmarshal {} into Go value of type int32",
                    kind(other)
                ))),
            },
            DefKind::Time | DefKind::MicroTime => match &v {
                Value::String(s) => {
                    let checked = if def.kind == DefKind::Time {
                        go_time::check_time(s)
                    } else {
                        go_time::check_micro_time(s)
                    };
                    checked.map(|()| v).map_err(Fatal)
                }
                other => Err(Fatal(format!(
                    "json: cannot unmarshal {} into Go value of type string",
                    kind(other)
                ))),
            },
            DefKind::Any => Ok(v),
            DefKind::SchemaOrBool(schema) => match v {
                Value::Bool(_) => Ok(v),
                Value::Object(_) => self.nested(v, &Type::Ref(*schema)),
                _ => Err(Fatal("boolean or JSON schema expected".into())),
            },
            DefKind::SchemaOrArray(schema) => match v {
                Value::Object(_) => self.nested(v, &Type::Ref(*schema)),
                Value::Array(_) => self.nested(v, &Type::Array(Box::new(Type::Ref(*schema)))),
                // Anything else decodes to an empty wrapper, encoded as null.
                _ => Ok(Value::Null),
            },
            DefKind::SchemaOrStringArray(schema) => match v {
                Value::Object(_) => self.nested(v, &Type::Ref(*schema)),
                Value::Array(_) => self.nested(v, &Type::Array(Box::new(Type::String))),
                _ => Ok(Value::Null),
            },
        }
    }

    /// A second, lenient `json.Unmarshal` inside a type's `UnmarshalJSON`:
    /// unknown fields are dropped silently, and its first error (with its
    /// own, fresh context) is fatal for the outer decode.
    fn nested(&mut self, v: Value, ty: &Type) -> Result<Value, Fatal> {
        let outer = self.saved.take();
        let result = self.value(v, ty, None, &NESTED);
        let inner = std::mem::replace(&mut self.saved, outer);
        let value = result?;
        match inner {
            Some(message) => Err(Fatal(message)),
            None => Ok(value),
        }
    }
}
