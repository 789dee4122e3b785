//! The wire schema of the built-in kinds (`schema.json`, generated from
//! upstream's `generated.proto` files by `hack/gen/proto_schema.py`),
//! loaded once into messages whose field types point at each other by
//! index.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

/// A protobuf scalar type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    String,
    Bytes,
    Bool,
    Int32,
    Int64,
    Uint32,
    Uint64,
    Double,
    Float,
}

/// A field's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ty {
    Scalar(Scalar),
    /// A message, by index into [`Schema::messages`].
    Message(usize),
    /// `map<key, value>` (encoded as repeated entries `{1: key, 2: value}`).
    Map(Box<Ty>, Box<Ty>),
}

/// Messages whose JSON form is not an object of their fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    None,
    /// `metav1.Time`: RFC 3339 seconds.
    Time,
    /// `metav1.MicroTime`: RFC 3339 with six fractional digits.
    MicroTime,
    /// `metav1.Duration`: Go's duration string.
    Duration,
    /// `resource.Quantity`: its string.
    Quantity,
    /// `intstr.IntOrString`: a JSON integer or string.
    IntOrString,
    /// `RawExtension`, `FieldsV1`, apiextensions `JSON`: bytes holding JSON.
    RawJson,
    /// apiextensions `JSONSchemaPropsOrArray`: a schema or an array of them.
    SchemaOrArray,
    /// apiextensions `JSONSchemaPropsOrBool`: a schema or a boolean.
    SchemaOrBool,
    /// apiextensions `JSONSchemaPropsOrStringArray`: a schema or strings.
    SchemaOrStringArray,
    /// A named slice (`type ExtraValue []string`): the JSON array itself.
    List,
}

/// One field of a message.
#[derive(Debug, Clone)]
pub struct Field {
    pub number: u32,
    pub json: String,
    pub ty: Ty,
    pub repeated: bool,
    /// A Go pointer: an explicit zero is a value, kept when decoding.
    pub pointer: bool,
    /// An embedded Go struct: its fields are the parent's in JSON.
    pub inline: bool,
}

/// One message.
#[derive(Debug, Clone)]
pub struct Message {
    pub name: String,
    pub fields: Vec<Field>,
    pub special: Special,
    by_number: HashMap<u32, usize>,
}

impl Message {
    /// The field with this number.
    pub fn field(&self, number: u32) -> Option<&Field> {
        self.by_number.get(&number).map(|&i| &self.fields[i])
    }
}

/// The whole table.
#[derive(Debug)]
pub struct Schema {
    pub messages: Vec<Message>,
    by_name: HashMap<String, usize>,
    kinds: HashMap<String, usize>,
}

impl Schema {
    /// The message of `<apiVersion>/<kind>` (`apps/v1/Deployment`,
    /// `v1/Pod`).
    pub fn kind(&self, api_version: &str, kind: &str) -> Option<usize> {
        self.kinds.get(&format!("{api_version}/{kind}")).copied()
    }

    /// A message by full proto name (`k8s.io.apimachinery.pkg.apis.meta.v1.Status`).
    pub fn message(&self, full: &str) -> Option<usize> {
        self.by_name.get(full).copied()
    }
}

#[derive(Deserialize)]
struct Raw {
    packages: Vec<String>,
    kinds: HashMap<String, String>,
    messages: HashMap<String, Vec<(u32, String, String, String)>>,
    lists: Vec<String>,
}

const META: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.";
const APIEXT: &str = "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.";

fn special(full: &str) -> Special {
    match full.strip_prefix(META) {
        Some("Time") => return Special::Time,
        Some("MicroTime") => return Special::MicroTime,
        Some("Duration") => return Special::Duration,
        Some("FieldsV1") => return Special::RawJson,
        _ => {}
    }
    match full.strip_prefix(APIEXT) {
        Some("JSON") => return Special::RawJson,
        Some("JSONSchemaPropsOrArray") => return Special::SchemaOrArray,
        Some("JSONSchemaPropsOrBool") => return Special::SchemaOrBool,
        Some("JSONSchemaPropsOrStringArray") => return Special::SchemaOrStringArray,
        _ => {}
    }
    match full {
        "k8s.io.apimachinery.pkg.api.resource.Quantity" => Special::Quantity,
        "k8s.io.apimachinery.pkg.util.intstr.IntOrString" => Special::IntOrString,
        "k8s.io.apimachinery.pkg.runtime.RawExtension" => Special::RawJson,
        _ => Special::None,
    }
}

fn scalar(name: &str) -> Option<Scalar> {
    Some(match name {
        "string" => Scalar::String,
        "bytes" => Scalar::Bytes,
        "bool" => Scalar::Bool,
        "int32" | "sint32" | "sfixed32" => Scalar::Int32,
        "int64" | "sint64" | "sfixed64" => Scalar::Int64,
        "uint32" | "fixed32" => Scalar::Uint32,
        "uint64" | "fixed64" => Scalar::Uint64,
        "double" => Scalar::Double,
        "float" => Scalar::Float,
        _ => return None,
    })
}

fn build(raw: Raw) -> Result<Schema, String> {
    // "<package index>.<Name>" -> full name.
    let full = |r: &str| -> Result<String, String> {
        let (i, name) = r.split_once('.').ok_or_else(|| format!("bad message reference {r}"))?;
        let i: usize = i.parse().map_err(|_| format!("bad message reference {r}"))?;
        let pkg = raw.packages.get(i).ok_or_else(|| format!("bad package in {r}"))?;
        Ok(format!("{pkg}.{name}"))
    };
    let mut keys: Vec<&String> = raw.messages.keys().collect();
    keys.sort();
    let index: HashMap<&str, usize> = keys.iter().enumerate().map(|(i, k)| (k.as_str(), i)).collect();
    let ty = |t: &str| -> Result<Ty, String> {
        let one = |t: &str| -> Result<Ty, String> {
            match scalar(t) {
                Some(s) => Ok(Ty::Scalar(s)),
                None => index
                    .get(t)
                    .map(|&i| Ty::Message(i))
                    .ok_or_else(|| format!("unknown type {t}")),
            }
        };
        match t.strip_prefix("map:") {
            Some(kv) => {
                let (k, v) = kv.split_once(':').ok_or_else(|| format!("bad map type {t}"))?;
                Ok(Ty::Map(Box::new(one(k)?), Box::new(one(v)?)))
            }
            None => one(t),
        }
    };
    let mut messages = Vec::with_capacity(keys.len());
    let mut by_name = HashMap::new();
    for (i, key) in keys.iter().enumerate() {
        let name = full(key)?;
        let mut fields = Vec::new();
        for (number, json, t, flags) in &raw.messages[*key] {
            fields.push(Field {
                number: *number,
                json: json.clone(),
                ty: ty(t)?,
                repeated: flags.contains('r'),
                pointer: flags.contains('p'),
                inline: flags.contains('i'),
            });
        }
        let by_number = fields.iter().enumerate().map(|(i, f)| (f.number, i)).collect();
        let special = if raw.lists.contains(key) {
            Special::List
        } else {
            special(&name)
        };
        by_name.insert(name.clone(), i);
        messages.push(Message {
            name,
            fields,
            special,
            by_number,
        });
    }
    let mut kinds = HashMap::new();
    for (k, m) in &raw.kinds {
        let i = index
            .get(m.as_str())
            .ok_or_else(|| format!("kind {k}: unknown message {m}"))?;
        kinds.insert(k.clone(), *i);
    }
    Ok(Schema {
        messages,
        by_name,
        kinds,
    })
}

/// The table (parsed on first use; a broken table is a build defect the
/// unit tests catch, served as an empty table rather than a panic).
pub fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        serde_json::from_str::<Raw>(include_str!("schema.json"))
            .map_err(|e| e.to_string())
            .and_then(build)
            .unwrap_or_else(|e| {
                tracing::error!("protobuf schema table: {e}");
                Schema {
                    messages: Vec::new(),
                    by_name: HashMap::new(),
                    kinds: HashMap::new(),
                }
            })
    })
}

/// Parses the table, reporting why it is broken (for tests).
#[cfg(test)]
pub fn parse_table() -> Result<Schema, String> {
    serde_json::from_str::<Raw>(include_str!("schema.json"))
        .map_err(|e| e.to_string())
        .and_then(build)
}
