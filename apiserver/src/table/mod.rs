//! Server-side Table output (`meta.k8s.io/v1` `Table`), what `kubectl get`
//! asks for with `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`.
//!
//! Built-in kinds that upstream kube-apiserver prints have a printer
//! ([`printers`]) matching upstream's `pkg/printers/internalversion` column
//! for column and cell for cell; every other resource gets upstream's default
//! table (`Name`, `Created At`). Like upstream, the server always prints the
//! wide form: kubectl hides priority-1 columns unless `-o wide`.
//!
//! Rows carry the object as the `includeObject` query parameter asks:
//! a `PartialObjectMetadata` by default, the whole object, or nothing.
//!
//! Architecture invariant: this module knows nothing of HTTP, storage or
//! content negotiation. It turns objects into JSON values; the handler picks
//! the objects, the resourceVersion and whether to send column definitions
//! (a Table watch sends them with the first event only).

mod columns;
mod duration;
mod field;
mod format;
mod labels;
mod printers;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;

pub use columns::ColumnDefinition;
pub use duration::human_duration;

use field::Fields;
use printers::{Object, Printed};

/// What each row's `object` holds (the `includeObject` query parameter).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IncludeObject {
    /// No object: `"object": null`.
    None,
    /// The object's metadata as a `meta.k8s.io/v1` `PartialObjectMetadata` (the default).
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

/// Why a Table request cannot be served.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TableError {
    /// `includeObject` is not `None`, `Metadata` or `Object` (upstream answers 400).
    #[error("unrecognized includeObject value: {0:?}")]
    UnrecognizedIncludeObject(String),
}

impl IncludeObject {
    /// Parses the `includeObject` query parameter; empty means [`IncludeObject::Metadata`].
    pub fn from_query(value: &str) -> Result<Self, TableError> {
        match value {
            "None" => Ok(Self::None),
            "" | "Metadata" => Ok(Self::Metadata),
            "Object" => Ok(Self::Object),
            other => Err(TableError::UnrecognizedIncludeObject(other.to_string())),
        }
    }
}

/// The column definitions for a resource: its printer's, or the default
/// table's (`Name`, `Created At`). Each is
/// `{"name","type","format","description","priority"}`.
pub fn column_definitions(group: &str, resource: &str) -> Vec<Value> {
    let columns = printers::lookup(group, resource).map_or(columns::DEFAULT, |p| p.columns);
    columns.iter().map(ColumnDefinition::to_json).collect()
}

/// Whether upstream has a printer for the resource; without one, Tables use
/// the default `Name`/`Created At` columns.
pub fn has_printer(group: &str, resource: &str) -> bool {
    printers::lookup(group, resource).is_some()
}

/// One `metav1.TableRow`: `{"cells":[...],"conditions":[...],"object":...}`,
/// with `conditions` only when there are any. Ages are relative to `now`.
pub fn row(
    group: &str,
    resource: &str,
    obj: &Map<String, Value>,
    include: IncludeObject,
    now: OffsetDateTime,
) -> Value {
    let printed = match printers::lookup(group, resource) {
        Some(printer) => (printer.print)(obj, now),
        None => default_cells(obj),
    };
    let mut row = Map::new();
    row.insert("cells".to_string(), Value::Array(printed.cells));
    if !printed.conditions.is_empty() {
        row.insert("conditions".to_string(), Value::Array(printed.conditions));
    }
    row.insert("object".to_string(), row_object(obj, include));
    Value::Object(row)
}

/// A whole `meta.k8s.io/v1` `Table` for a list (or, with one object, a get or
/// a watch event).
///
/// `list_resource_version`, `continue_token` and `remaining` fill the Table's
/// `metadata` (a get uses the object's resourceVersion; empty values are
/// left out). Without headers `columnDefinitions` is null, as upstream sends
/// it for `TableOptions.noHeaders` (every Table watch event after the first).
#[allow(clippy::too_many_arguments)] // mirrors the list response's parts one for one
pub fn table(
    group: &str,
    resource: &str,
    objs: &[Map<String, Value>],
    include: IncludeObject,
    list_resource_version: &str,
    continue_token: Option<&str>,
    remaining: Option<i64>,
    with_headers: bool,
    now: OffsetDateTime,
) -> Value {
    let rows: Vec<Value> = objs.iter().map(|obj| row(group, resource, obj, include, now)).collect();
    // Upstream's printers always build a row list; its default table builds
    // none for an empty list, which encodes as null.
    let rows = if rows.is_empty() && !has_printer(group, resource) {
        Value::Null
    } else {
        Value::Array(rows)
    };
    // The aggregator's APIService table ignores noHeaders.
    let with_headers = with_headers || (group, resource) == ("apiregistration.k8s.io", "apiservices");
    let columns = if with_headers {
        Value::Array(column_definitions(group, resource))
    } else {
        Value::Null
    };
    let mut metadata = Map::new();
    if !list_resource_version.is_empty() {
        metadata.insert("resourceVersion".to_string(), list_resource_version.into());
    }
    if let Some(token) = continue_token.filter(|t| !t.is_empty()) {
        metadata.insert("continue".to_string(), token.into());
    }
    if let Some(count) = remaining {
        metadata.insert("remainingItemCount".to_string(), count.into());
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

/// Upstream's default table row: the name and the creation time in RFC 3339 (UTC).
fn default_cells(obj: &Object) -> Printed {
    let created = obj.time_at(&["metadata", "creationTimestamp"]).map_or_else(
        || "0001-01-01T00:00:00Z".to_string(),
        |t| {
            let t = t.to_offset(time::UtcOffset::UTC);
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        },
    );
    printers::cells![obj.str_at(&["metadata", "name"]), created]
}

/// The row's `object` for the requested inclusion.
fn row_object(obj: &Object, include: IncludeObject) -> Value {
    match include {
        IncludeObject::None => Value::Null,
        IncludeObject::Object => Value::Object(obj.clone()),
        IncludeObject::Metadata => {
            let mut metadata = obj.map_at(&["metadata"]).cloned().unwrap_or_default();
            // Go always encodes ObjectMeta.creationTimestamp, as null when unset.
            metadata.entry("creationTimestamp").or_insert(Value::Null);
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata})
        }
    }
}

#[cfg(test)]
mod tests;
