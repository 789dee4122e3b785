//! Column definitions (`metav1.TableColumnDefinition`) and the columns many
//! kinds share.

use serde_json::{Value, json};

/// One column of a Table: what kubectl shows as a header, and whether it is
/// only shown with `-o wide` (priority 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColumnDefinition {
    /// Header, e.g. `Name`; kubectl upper-cases it.
    pub name: &'static str,
    /// OpenAPI type of the cells: `string`, `integer`, `number`, `boolean` or `date`.
    pub type_: &'static str,
    /// OpenAPI format; `name` marks the column holding the object's name.
    pub format: &'static str,
    /// Human-readable description of the column.
    pub description: &'static str,
    /// 0 for the default view, 1 for columns shown only with `-o wide`.
    pub priority: i32,
}

impl ColumnDefinition {
    /// The definition as it goes on the wire.
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.type_,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }

    /// The same column, shown only with `-o wide`.
    pub(crate) const fn wide(self) -> Self {
        Self { priority: 1, ..self }
    }
}

const fn column(name: &'static str, type_: &'static str, description: &'static str) -> ColumnDefinition {
    ColumnDefinition {
        name,
        type_,
        format: "",
        description,
        priority: 0,
    }
}

/// A column of strings.
pub(crate) const fn string(name: &'static str, description: &'static str) -> ColumnDefinition {
    column(name, "string", description)
}

/// A column of integers.
pub(crate) const fn integer(name: &'static str, description: &'static str) -> ColumnDefinition {
    column(name, "integer", description)
}

/// A column of booleans.
pub(crate) const fn boolean(name: &'static str, description: &'static str) -> ColumnDefinition {
    column(name, "boolean", description)
}

/// First sentence of `ObjectMeta.name`'s OpenAPI description.
pub(crate) const NAME_DESCRIPTION: &str = "Name must be unique within a namespace.";
/// First sentence of `ObjectMeta.creationTimestamp`'s OpenAPI description.
pub(crate) const CREATION_DESCRIPTION: &str =
    "CreationTimestamp is a timestamp representing the server time when this object was created.";

/// The object's name; kubectl uses this column for `-o name` and sorting.
pub(crate) const NAME: ColumnDefinition = ColumnDefinition {
    name: "Name",
    type_: "string",
    format: "name",
    description: NAME_DESCRIPTION,
    priority: 0,
};
/// The object's age, from its creation timestamp.
pub(crate) const AGE: ColumnDefinition = string("Age", CREATION_DESCRIPTION);
/// Wide: container names of the pod template.
pub(crate) const CONTAINERS: ColumnDefinition =
    string("Containers", "Names of the containers in the pod template.").wide();
/// Wide: container images of the pod template.
pub(crate) const IMAGES: ColumnDefinition =
    string("Images", "Images used by the containers in the pod template.").wide();
/// Wide: the label selector choosing the pods.
pub(crate) const SELECTOR: ColumnDefinition =
    string("Selector", "Label query over the pods this object manages.").wide();

/// The columns of the default table, for kinds without a printer.
pub(crate) const DEFAULT: &[ColumnDefinition] = &[
    NAME,
    ColumnDefinition {
        name: "Created At",
        type_: "date",
        format: "",
        description: CREATION_DESCRIPTION,
        priority: 0,
    },
];
