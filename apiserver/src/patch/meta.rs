//! Strategic-merge-patch metadata of the built-in kinds: which lists merge,
//! by which key, and which structs retain keys or are replaced whole.
//!
//! The table is `patch_meta.json`, generated from upstream v1.36's OpenAPI
//! document by `hack/gen/patch_meta.py` and committed (the product never
//! reads `../shared`). It is parsed once, on first use.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

use super::GroupVersionKind;

/// The fields of one definition that carry patch metadata or lead to one
/// that does.
pub(crate) type Definition = HashMap<String, FieldMeta>;

#[derive(Debug, Default, Deserialize)]
struct Table {
    /// `"<apiVersion>/<Kind>"` → definition name.
    kinds: HashMap<String, String>,
    definitions: HashMap<String, Definition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum FieldType {
    Struct,
    Array,
    Map,
}

/// One field's entry in the table.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FieldMeta {
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// The definition of a struct field.
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    /// The definition of an array's elements.
    pub items: Option<String>,
    /// The definition of a map's values.
    pub values: Option<String>,
    /// `x-kubernetes-patch-strategy`, e.g. `merge` or `merge,retainKeys`.
    pub patch_strategy: Option<String>,
    /// `x-kubernetes-patch-merge-key`.
    pub patch_merge_key: Option<String>,
    /// `x-kubernetes-list-type` (`atomic`, `set`, `map`).
    #[allow(dead_code, reason = "kept for server-side apply, which reads list types")]
    pub list_type: Option<String>,
    /// `x-kubernetes-list-map-keys`.
    #[allow(dead_code, reason = "kept for server-side apply, which reads list types")]
    #[serde(default)]
    pub list_map_keys: Vec<String>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    // The file is generated and covered by a test; an unreadable table
    // degrades to "no kind supports strategic merge patch" rather than a panic.
    TABLE.get_or_init(|| serde_json::from_str(include_str!("patch_meta.json")).unwrap_or_default())
}

/// The schema of a kind's objects, or `None` for kinds without built-in
/// patch metadata (custom resources, unknown kinds).
pub(crate) fn schema_for(gvk: &GroupVersionKind<'_>) -> Option<Schema> {
    let key = if gvk.group.is_empty() {
        format!("{}/{}", gvk.version, gvk.kind)
    } else {
        format!("{}/{}/{}", gvk.group, gvk.version, gvk.kind)
    };
    let t = table();
    let name = t.kinds.get(&key)?;
    // A kind whose definition has no patch metadata at all is still a
    // built-in kind: every map merges and every list is replaced.
    Some(t.definitions.get(name).map_or(Schema::Unknown, Schema::Struct))
}

fn definition(name: Option<&String>) -> Schema {
    name.and_then(|n| table().definitions.get(n))
        .map_or(Schema::Unknown, Schema::Struct)
}

/// What is known about the value at some place in a document.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Schema {
    /// A struct: its fields' metadata.
    Struct(&'static Definition),
    /// A map whose values are all of this definition (or unknown).
    MapOf(Option<&'static Definition>),
    /// Nothing: maps merge, lists are replaced.
    Unknown,
}

/// How a list or map field is patched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strategy {
    /// Maps merge recursively; lists are replaced.
    Default,
    /// Lists merge (by `merge_key` for lists of maps, as sets otherwise).
    Merge,
    /// The value is replaced whole.
    Replace,
}

/// The patch metadata of one field.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    pub strategy: Strategy,
    /// `patchMergeKey`, for lists of maps with the merge strategy.
    pub merge_key: Option<&'static str>,
    /// The schema of the field's value, or of a list's elements.
    pub schema: Schema,
}

const UNKNOWN_FIELD: Field = Field {
    strategy: Strategy::Default,
    merge_key: None,
    schema: Schema::Unknown,
};

impl Schema {
    /// The metadata of field `name` of a value with this schema. Unknown
    /// fields have none, so they patch like JSON merge patch (upstream
    /// rejects them; the lenient reading cannot change a known field).
    pub(crate) fn field(&self, name: &str) -> Field {
        match self {
            Schema::Struct(def) => def.get(name).map_or(UNKNOWN_FIELD, field_of),
            Schema::MapOf(values) => Field {
                strategy: Strategy::Default,
                merge_key: None,
                schema: values.map_or(Schema::Unknown, Schema::Struct),
            },
            Schema::Unknown => UNKNOWN_FIELD,
        }
    }
}

fn field_of(meta: &'static FieldMeta) -> Field {
    // `merge,retainKeys` and `retainKeys` only change what clients send
    // (`$retainKeys`), which is applied wherever it appears.
    let strategies: Vec<&str> = meta.patch_strategy.as_deref().unwrap_or("").split(',').collect();
    let strategy = if strategies.contains(&"merge") {
        Strategy::Merge
    } else if strategies.contains(&"replace") {
        Strategy::Replace
    } else {
        Strategy::Default
    };
    let schema = match meta.field_type {
        FieldType::Struct => definition(meta.reference.as_ref()),
        FieldType::Array => definition(meta.items.as_ref()),
        FieldType::Map => Schema::MapOf(meta.values.as_ref().and_then(|n| table().definitions.get(n))),
    };
    Field {
        strategy,
        merge_key: meta.patch_merge_key.as_deref(),
        schema,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gvk<'a>(group: &'a str, version: &'a str, kind: &'a str) -> GroupVersionKind<'a> {
        GroupVersionKind { group, version, kind }
    }

    #[test]
    fn table_loads_and_knows_builtin_kinds() {
        assert!(table().kinds.len() > 200, "patch_meta.json did not load");
        assert!(schema_for(&gvk("", "v1", "Pod")).is_some());
        assert!(schema_for(&gvk("apps", "v1", "Deployment")).is_some());
        assert!(schema_for(&gvk("", "v1", "ConfigMap")).is_some());
        assert!(schema_for(&gvk("example.com", "v1", "Widget")).is_none());
    }

    #[test]
    fn pod_spec_lists_have_upstream_strategies() {
        let Some(pod) = schema_for(&gvk("", "v1", "Pod")) else {
            panic!("no Pod")
        };
        let spec = pod.field("spec").schema;
        let containers = spec.field("containers");
        assert_eq!(
            (containers.strategy, containers.merge_key),
            (Strategy::Merge, Some("name"))
        );
        let ports = containers.schema.field("ports");
        assert_eq!(
            (ports.strategy, ports.merge_key),
            (Strategy::Merge, Some("containerPort"))
        );
        let mounts = containers.schema.field("volumeMounts");
        assert_eq!(mounts.merge_key, Some("mountPath"));
        assert_eq!(spec.field("tolerations").strategy, Strategy::Default);
        assert_eq!(spec.field("volumes").strategy, Strategy::Merge);
        let meta = pod.field("metadata").schema;
        assert_eq!(meta.field("finalizers").strategy, Strategy::Merge);
        assert_eq!(meta.field("ownerReferences").merge_key, Some("uid"));
        let status = pod.field("status").schema;
        assert_eq!(status.field("conditions").merge_key, Some("type"));
    }

    #[test]
    fn map_values_and_replace_strategy() {
        let Some(crd) = schema_for(&gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition")) else {
            panic!("no CRD")
        };
        let props = crd.field("spec").schema.field("versions").schema.field("schema").schema;
        let open_api = props.field("openAPIV3Schema").schema;
        let nested = open_api.field("properties").schema.field("anything");
        assert_eq!(nested.schema.field("x-kubernetes-validations").merge_key, Some("rule"));
        let Some(pdb) = schema_for(&gvk("policy", "v1", "PodDisruptionBudget")) else {
            panic!("no PDB")
        };
        assert_eq!(pdb.field("spec").schema.field("selector").strategy, Strategy::Replace);
    }
}
