//! The schema table: `schema.json`, generated from upstream v1.36's OpenAPI
//! document by `hack/gen/schema.py` and committed (the product never reads
//! `../shared`). It is parsed once, on first use, into definitions that
//! refer to each other by index.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::patch::GroupVersionKind;

/// The generated table, as committed.
pub(crate) const SCHEMA_JSON: &str = include_str!("schema.json");

/// The type of a field, an array's elements or a map's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Type {
    String,
    /// `[]byte`: a base64 string on the wire.
    Bytes,
    Int32,
    Int64,
    Bool,
    Float64,
    Array(Box<Type>),
    /// `additionalProperties`: string keys, values of this type.
    Map(Box<Type>),
    /// Another definition, by index.
    Ref(usize),
}

/// A struct field: its type, and the Go type upstream names in errors when
/// the generic one would be wrong (`v1.ResourceList`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field {
    pub ty: Type,
    pub go_type: Option<String>,
}

/// What a definition is, for decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DefKind {
    /// A Go struct: only these fields are known.
    Struct {
        fields: HashMap<String, Field>,
        #[allow(dead_code, reason = "kept for validation, which checks required fields")]
        required: Vec<String>,
    },
    /// `resource.Quantity`: a string or a number in quantity syntax.
    Quantity,
    /// `intstr.IntOrString`: a string or an int32.
    IntOrString,
    /// `metav1.Time`: an RFC 3339 string.
    Time,
    /// `metav1.MicroTime`: an RFC 3339 string with exactly six fractional digits.
    MicroTime,
    /// `RawExtension`, `FieldsV1`, apiextensions `JSON`: any JSON, unchecked.
    Any,
    /// `JSONSchemaPropsOrBool`: a boolean or a schema (decoded leniently).
    SchemaOrBool(usize),
    /// `JSONSchemaPropsOrArray`: a schema or an array of schemas (decoded leniently).
    SchemaOrArray(usize),
    /// `JSONSchemaPropsOrStringArray`: a schema or an array of strings (decoded leniently).
    SchemaOrStringArray(usize),
}

/// One definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Definition {
    /// `io.k8s.api.core.v1.PodSpec`.
    pub name: String,
    pub kind: DefKind,
}

impl Definition {
    /// The Go type's name, as in `Go struct field PodSpec.spec.containers`.
    pub(crate) fn go_name(&self) -> &str {
        self.name.rsplit('.').next().unwrap_or(&self.name)
    }

    /// The Go type with its package, as in `of type v1.PodSpec`.
    pub(crate) fn go_type(&self) -> String {
        let mut parts = self.name.rsplit('.');
        match (parts.next(), parts.next()) {
            (Some(name), Some(package)) => format!("{package}.{name}"),
            _ => self.name.clone(),
        }
    }
}

/// Why the table could not be read (caught by this module's tests).
#[derive(Debug, thiserror::Error)]
pub(crate) enum TableError {
    #[error("parsing the schema table: {0}")]
    Json(#[from] serde_json::Error),
    #[error("definition {definition}: {problem}")]
    Definition { definition: String, problem: String },
}

/// All definitions, and the kinds that name them.
#[derive(Debug, Default)]
pub(crate) struct Table {
    defs: Vec<Definition>,
    /// `"<apiVersion>/<Kind>"` → definition index.
    kinds: HashMap<String, usize>,
}

#[derive(Deserialize)]
struct RawTable {
    kinds: HashMap<String, String>,
    definitions: HashMap<String, RawDefinition>,
}

#[derive(Deserialize)]
struct RawDefinition {
    fields: Option<HashMap<String, String>>,
    #[serde(default)]
    required: Vec<String>,
    special: Option<String>,
    of: Option<String>,
}

/// The table of the built-in kinds, parsed on first use. An unreadable
/// table (caught by the tests) degrades to "no kind has a schema".
pub(crate) fn builtin() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| Table::parse(SCHEMA_JSON).unwrap_or_default())
}

impl Table {
    /// Parses a table in `schema.json`'s format.
    pub(crate) fn parse(text: &str) -> Result<Table, TableError> {
        let raw: RawTable = serde_json::from_str(text)?;
        let mut names: Vec<&String> = raw.definitions.keys().collect();
        names.sort();
        let index: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
        let problem = |definition: &str, problem: String| TableError::Definition {
            definition: definition.to_string(),
            problem,
        };
        let lookup = |definition: &str, target: &str| {
            index
                .get(target)
                .copied()
                .ok_or_else(|| problem(definition, format!("unknown definition {target}")))
        };
        let mut defs = Vec::with_capacity(names.len());
        for name in &names {
            let d = &raw.definitions[*name];
            let of = || {
                d.of.as_deref()
                    .ok_or_else(|| problem(name, "missing \"of\"".into()))
                    .and_then(|t| lookup(name, t))
            };
            let kind = match (d.special.as_deref(), &d.fields) {
                (None, Some(fields)) => {
                    let mut parsed = HashMap::with_capacity(fields.len());
                    for (field, spec) in fields {
                        let (ty, go_type) = match spec.split_once('|') {
                            Some((ty, go)) => (ty, Some(go.to_string())),
                            None => (spec.as_str(), None),
                        };
                        let ty = parse_type(ty, &|t| lookup(name, t))?;
                        parsed.insert(field.clone(), Field { ty, go_type });
                    }
                    DefKind::Struct {
                        fields: parsed,
                        required: d.required.clone(),
                    }
                }
                (Some("quantity"), None) => DefKind::Quantity,
                (Some("int-or-string"), None) => DefKind::IntOrString,
                (Some("time"), None) => DefKind::Time,
                (Some("micro-time"), None) => DefKind::MicroTime,
                (Some("any"), None) => DefKind::Any,
                (Some("schema-or-bool"), None) => DefKind::SchemaOrBool(of()?),
                (Some("schema-or-array"), None) => DefKind::SchemaOrArray(of()?),
                (Some("schema-or-string-array"), None) => DefKind::SchemaOrStringArray(of()?),
                (special, _) => return Err(problem(name, format!("unexpected shape (special {special:?})"))),
            };
            defs.push(Definition {
                name: name.to_string(),
                kind,
            });
        }
        let mut kinds = HashMap::with_capacity(raw.kinds.len());
        for (kind, definition) in &raw.kinds {
            kinds.insert(kind.clone(), lookup(kind, definition)?);
        }
        Ok(Table { defs, kinds })
    }

    /// The definition of a kind, if the kind is built in.
    pub(crate) fn kind(&self, gvk: &GroupVersionKind<'_>) -> Option<usize> {
        let key = if gvk.group.is_empty() {
            format!("{}/{}", gvk.version, gvk.kind)
        } else {
            format!("{}/{}/{}", gvk.group, gvk.version, gvk.kind)
        };
        self.kinds.get(&key).copied()
    }

    /// A definition by index (indices come from this table).
    pub(crate) fn def(&self, index: usize) -> Option<&Definition> {
        self.defs.get(index)
    }

    /// A definition by name.
    #[cfg(test)]
    pub(crate) fn by_name(&self, name: &str) -> Option<usize> {
        self.defs.iter().position(|d| d.name == name)
    }

    /// How many kinds the table knows.
    #[cfg(test)]
    pub(crate) fn kind_count(&self) -> usize {
        self.kinds.len()
    }

    /// The Go type upstream prints for a value of type `ty` (`[]v1.Container`,
    /// `map[string]string`, `int32`).
    pub(crate) fn go_type(&self, ty: &Type) -> String {
        match ty {
            Type::String => "string".into(),
            Type::Bytes => "[]uint8".into(),
            Type::Int32 => "int32".into(),
            Type::Int64 => "int64".into(),
            Type::Bool => "bool".into(),
            Type::Float64 => "float64".into(),
            Type::Array(t) => format!("[]{}", self.go_type(t)),
            Type::Map(t) => format!("map[string]{}", self.go_type(t)),
            Type::Ref(i) => self.def(*i).map_or_else(|| "interface {}".into(), Definition::go_type),
        }
    }
}

/// Parses `[]map[string]io.k8s...Quantity`-style type strings.
fn parse_type(spec: &str, lookup: &dyn Fn(&str) -> Result<usize, TableError>) -> Result<Type, TableError> {
    Ok(match spec {
        "string" => Type::String,
        "byte" => Type::Bytes,
        "int32" => Type::Int32,
        "int64" => Type::Int64,
        "boolean" => Type::Bool,
        "double" => Type::Float64,
        _ => {
            if let Some(rest) = spec.strip_prefix("[]") {
                Type::Array(Box::new(parse_type(rest, lookup)?))
            } else if let Some(rest) = spec.strip_prefix("map[string]") {
                Type::Map(Box::new(parse_type(rest, lookup)?))
            } else {
                Type::Ref(lookup(spec)?)
            }
        }
    })
}
