//! Typed decoding of request bodies: what kube-apiserver's decode into the
//! kind's Go struct does to a create or update body, done on the JSON.
//!
//! [`decode`] walks a body against the schema of its kind (from
//! `schema.json`, generated from upstream v1.36's OpenAPI document by
//! `hack/gen/schema.py`) and:
//! - drops unknown fields, reporting each as a [`StrictError`]
//!   (`unknown field "spec.foo"`), as `sigs.k8s.io/json`'s strict mode
//!   does, together with the duplicate fields the body parser found;
//! - rejects values of the wrong JSON type with Go's message
//!   (`json: cannot unmarshal bool into Go struct field ConfigMap.data of
//!   type string`), including integer overflow and fractions in integer
//!   fields;
//! - lets the types with their own JSON decoding check themselves:
//!   `Quantity` (string or number, `ParseQuantity`'s errors; numbers become
//!   strings), `IntOrString` (string or int32), `Time` and `MicroTime`
//!   (Go's `time.Parse` errors), `[]byte` (base64), and `RawExtension`,
//!   `FieldsV1` and apiextensions `JSON` (anything);
//! - drops null fields (unset); a null map value or array element becomes
//!   the zero value Go would store (`""` in a map of strings).
//!
//! Kinds without a schema (custom resources) pass through unchanged.
//! [`DecodeError`] renders upstream's whole 400 message:
//! `ConfigMap in version "v1" cannot be handled as a ConfigMap: ...`.
//!
//! *Architecture invariant:* this module knows nothing of HTTP, storage or
//! `fieldValidation`. It turns (kind, body) into (object, strict errors) or
//! an error; the handler decides what Strict, Warn and Ignore do with the
//! strict errors.

mod go_base64;
mod go_time;
#[cfg(test)]
mod proptests;
mod quantity;
mod quote;
mod table;
#[cfg(test)]
mod tests;
mod walk;

use std::collections::HashSet;

use serde_json::Value;

use crate::patch::GroupVersionKind;
use crate::status::ApiError;

/// Upstream stops collecting strict errors after this many.
pub const MAX_STRICT_ERRORS: usize = 100;

/// A field strict decoding objects to. Displays as upstream's message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StrictError {
    /// `unknown field "spec.foo"`: the kind has no such field; dropped.
    UnknownField(String),
    /// `duplicate field "metadata.name"`: the field appeared twice; the
    /// last value was kept.
    DuplicateField(String),
}

impl std::fmt::Display for StrictError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StrictError::UnknownField(path) => write!(f, "unknown field {}", quote::strconv_quote(path)),
            StrictError::DuplicateField(path) => write!(f, "duplicate field {}", quote::strconv_quote(path)),
        }
    }
}

/// A decoded body.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The body with unknown and null fields removed.
    pub object: Value,
    /// Unknown and duplicate fields, deduplicated, at most
    /// [`MAX_STRICT_ERRORS`]. For `fieldValidation=Strict` they reject the
    /// body ([`DecodeError::strict`]); for `Warn` each is a warning.
    pub strict_errors: Vec<StrictError>,
}

/// A body that cannot be decoded as its kind: always **400 BadRequest**.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A value of the wrong type, or one its type rejects. `message` is the
    /// Go decoder's (`json: cannot unmarshal ...`, `quantities must match
    /// ...`, `parsing time ...`, `illegal base64 data at input byte 4`).
    #[error("{kind} in version \"{version}\" cannot be handled as a {kind}: {message}")]
    Invalid {
        kind: String,
        version: String,
        message: String,
    },
    /// Unknown or duplicate fields under `fieldValidation=Strict`.
    #[error("{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}", join(.errors))]
    Strict {
        kind: String,
        version: String,
        errors: Vec<StrictError>,
    },
}

fn join(errors: &[StrictError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

impl DecodeError {
    /// The error `fieldValidation=Strict` gives for `errors`.
    pub fn strict(gvk: &GroupVersionKind<'_>, errors: &[StrictError]) -> DecodeError {
        DecodeError::Strict {
            kind: gvk.kind.to_string(),
            version: gvk.version.to_string(),
            errors: errors.to_vec(),
        }
    }
}

impl From<DecodeError> for ApiError {
    fn from(e: DecodeError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

/// Whether `gvk` is a built-in kind with a schema.
pub fn has_schema(gvk: &GroupVersionKind<'_>) -> bool {
    table::builtin().kind(gvk).is_some()
}

/// Checks a field path (`["spec", "replicas"]`) against a built-in kind's
/// schema, for type checking CEL selections: `None` for a kind without a
/// schema, `Some(Err(i))` when segment `i` is not a field of the struct it
/// selects from, `Some(Ok(()))` when every segment is a field or the path
/// enters a part without fixed fields (a map's values, a list, free-form
/// JSON), where the check stops.
pub fn check_field_path(gvk: &GroupVersionKind<'_>, path: &[&str]) -> Option<Result<(), usize>> {
    let t = table::builtin();
    let mut def = t.kind(gvk)?;
    for (i, segment) in path.iter().enumerate() {
        let table::DefKind::Struct { fields, .. } = &t.def(def)?.kind else {
            return Some(Ok(()));
        };
        let Some(field) = fields.get(*segment) else {
            return Some(Err(i));
        };
        match &field.ty {
            table::Type::Ref(next) => def = *next,
            _ => return Some(Ok(())),
        }
    }
    Some(Ok(()))
}

/// Decodes `body`, an object of kind `gvk`, as kube-apiserver would.
///
/// `duplicates` are the paths of fields the body parser saw twice
/// (`metadata.name`, `spec.containers[0].image`, as `FieldPath` writes
/// them); the ones upstream reports (those not inside unknown fields or
/// free-form JSON) join the unknown fields in [`Decoded::strict_errors`], in the
/// order the walk meets them. Upstream reports in document order; objects
/// are walked here in key order, so the two agree when a body's keys are
/// sorted (and always on which errors there are).
///
/// Errors: [`DecodeError::Invalid`] for a value of the wrong type. Strict
/// errors are not errors here: the caller applies `fieldValidation`.
pub fn decode(gvk: &GroupVersionKind<'_>, body: Value, duplicates: &[String]) -> Result<Decoded, DecodeError> {
    let table = table::builtin();
    let Some(def) = table.kind(gvk) else {
        let errors = duplicates.iter().cloned().map(StrictError::DuplicateField);
        return Ok(Decoded {
            object: body,
            strict_errors: dedupe(errors),
        });
    };
    let duplicates: HashSet<String> = duplicates.iter().cloned().collect();
    let mut walker = walk::Walker::new(table, &duplicates);
    let invalid = |message: String| DecodeError::Invalid {
        kind: gvk.kind.to_string(),
        version: gvk.version.to_string(),
        message,
    };
    let object = walker
        .decode(body, def)
        .map_err(|walk::Fatal(message)| invalid(message))?;
    if let Some(message) = walker.saved {
        return Err(invalid(message));
    }
    Ok(Decoded {
        object,
        strict_errors: dedupe(walker.strict_errors),
    })
}

/// Upstream keeps the first [`MAX_STRICT_ERRORS`] distinct strict errors.
fn dedupe(errors: impl IntoIterator<Item = StrictError>) -> Vec<StrictError> {
    let mut seen = HashSet::new();
    errors
        .into_iter()
        .filter(|e| seen.insert(e.clone()))
        .take(MAX_STRICT_ERRORS)
        .collect()
}
