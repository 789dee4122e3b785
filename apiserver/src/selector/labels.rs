//! Label selectors: the `labelSelector` query syntax and `metav1.LabelSelector`.
//!
//! Mirrors apimachinery's `labels/selector.go` (parsing, validation,
//! matching, `String()`) and `apis/meta/v1/helpers.go`
//! (`LabelSelectorAsSelector`). The grammar:
//!
//! ```text
//! selector    ::= requirement ( "," requirement )*
//! requirement ::= [ "!" ] KEY [ ( "in" | "notin" ) "(" VALUE ( "," VALUE )* ")"
//!                            | ( "=" | "==" | "!=" | ">" | "<" ) VALUE ]
//! ```
//!
//! Whitespace (space, tab, CR, LF) separates tokens; keys and values are
//! validated as label keys and values; `>`/`<` take base-10 integers.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Attrs, SelectorError};
use crate::validation::names::{is_qualified_name, is_valid_label_value};
use crate::validation::{FieldError, FieldErrors};

mod parse;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

/// The relation a [`Requirement`] states between a label and its values
/// (upstream's `selection.Operator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `key in (a,b)`: the label is set to one of the values.
    In,
    /// `key notin (a,b)`: the label is unset or set to none of the values.
    NotIn,
    /// `key=a`: the label is set to the value.
    Equals,
    /// `key==a`: the same as [`Operator::Equals`], kept for printing.
    DoubleEquals,
    /// `key!=a`: the label is unset or set to another value.
    NotEquals,
    /// `key`: the label is set.
    Exists,
    /// `!key`: the label is unset.
    DoesNotExist,
    /// `key>1`: the label is an integer greater than the value.
    GreaterThan,
    /// `key<1`: the label is an integer less than the value.
    LessThan,
}

impl Operator {
    /// Upstream's spelling (`in`, `notin`, `=`, `==`, `!=`, `exists`, `!`,
    /// `gt`, `lt`).
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::Exists => "exists",
            Operator::DoesNotExist => "!",
            Operator::GreaterThan => "gt",
            Operator::LessThan => "lt",
        }
    }
}

/// One condition on one label key: validated when built by
/// [`Requirement::new`] or by parsing, trusted as given by
/// [`Selector::from_set`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// A validated requirement (upstream's `NewRequirement`): the key must be a
    /// qualified name; `in`/`notin` need values, `=`/`==`/`!=`/`>`/`<`
    /// exactly one (an integer for `>`/`<`), `exists`/`!` none; values must
    /// be label values. Errors are reported all at once, upstream's way.
    pub fn new(key: impl Into<String>, operator: Operator, values: Vec<String>) -> Result<Self, SelectorError> {
        Self::validated(key.into(), operator, values).map_err(SelectorError::InvalidRequirement)
    }

    /// [`Requirement::new`] with the errors unwrapped: the parser wraps them
    /// in `unable to parse requirement:`, `metav1.LabelSelector` does not.
    pub(crate) fn validated(key: String, operator: Operator, values: Vec<String>) -> Result<Self, FieldErrors> {
        let mut errs = FieldErrors::new();
        if let Some(e) = key_error(&key, "key") {
            errs.push(e);
        }
        // Upstream prints the list as JSON; every path that reports an empty
        // one passes a nil slice, printed `null`.
        let list = || {
            if values.is_empty() {
                Value::Null
            } else {
                Value::from(values.clone())
            }
        };
        let detail = match operator {
            Operator::In | Operator::NotIn if values.is_empty() => {
                Some("for 'in', 'notin' operators, values set can't be empty")
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals if values.len() != 1 => {
                Some("exact-match compatibility requires one single value")
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                Some("values set must be empty for exists and does not exist")
            }
            Operator::GreaterThan | Operator::LessThan if values.len() != 1 => {
                Some("for 'Gt', 'Lt' operators, exactly one value is required")
            }
            _ => None,
        };
        if let Some(detail) = detail {
            errs.push(FieldError::invalid("values", list(), detail));
        }
        if matches!(operator, Operator::GreaterThan | Operator::LessThan) {
            for (i, v) in values.iter().enumerate() {
                if v.parse::<i64>().is_err() {
                    errs.push(FieldError::invalid(
                        format!("values[{i}]"),
                        v.as_str(),
                        "for 'Gt', 'Lt' operators, the value must be an integer",
                    ));
                }
            }
        }
        for (i, v) in values.iter().enumerate() {
            let problems = is_valid_label_value(v);
            if !problems.is_empty() {
                errs.push(FieldError::invalid(
                    format!("values[{i}][{key}]"),
                    v.as_str(),
                    problems.join("; "),
                ));
            }
        }
        if errs.is_empty() {
            Ok(Requirement { key, operator, values })
        } else {
            Err(errs)
        }
    }

    /// The label key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values, as given (parsed selectors hold them sorted, without
    /// duplicates).
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether `labels` satisfy this requirement (upstream's
    /// `Requirement.Matches`).
    pub fn matches<A: Attrs + ?Sized>(&self, labels: &A) -> bool {
        let value = labels.attr(&self.key);
        let has = |v: &str| self.values.iter().any(|x| x == v);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => value.is_some_and(has),
            Operator::NotIn | Operator::NotEquals => !value.is_some_and(has),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(actual) = value.and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                let [bound] = self.values.as_slice() else {
                    return false;
                };
                let Ok(bound) = bound.parse::<i64>() else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    actual > bound
                } else {
                    actual < bound
                }
            }
        }
    }
}

/// Upstream's `Requirement.String()`: `!key`, `key`, `key=v`, `key==v`,
/// `key!=v`, `key>v`, `key<v`, `key in (a,b)`, `key notin (a,b)`; several
/// values print sorted.
impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_char('!')?;
        }
        f.write_str(&self.key)?;
        let (op, set) = match self.operator {
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
            Operator::Equals => ("=", false),
            Operator::DoubleEquals => ("==", false),
            Operator::NotEquals => ("!=", false),
            Operator::GreaterThan => (">", false),
            Operator::LessThan => ("<", false),
            Operator::In => (" in (", true),
            Operator::NotIn => (" notin (", true),
        };
        f.write_str(op)?;
        if let [one] = self.values.as_slice() {
            f.write_str(one)?;
        } else {
            let mut sorted: Vec<&str> = self.values.iter().map(String::as_str).collect();
            sorted.sort_unstable();
            f.write_str(&sorted.join(","))?;
        }
        if set {
            f.write_char(')')?;
        }
        Ok(())
    }
}

/// A label selector: requirements that must all hold, or "nothing".
///
/// Requirements are kept sorted by key (stable, like upstream's `Add`), so
/// [`Display`](fmt::Display) gives the canonical form and parsing it back
/// gives an equal selector.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Selector {
    requirements: Vec<Requirement>,
    /// Upstream's `labels.Nothing()`: what a nil `metav1.LabelSelector` means.
    nothing: bool,
}

impl Selector {
    /// Matches every label set (the empty selector).
    pub fn everything() -> Self {
        Selector::default()
    }

    /// Matches no label set.
    pub fn nothing() -> Self {
        Selector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Parses the `labelSelector` query syntax (upstream's `labels.Parse`).
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        parse::parse(selector).map(Self::from_requirements)
    }

    /// All of `requirements`, sorted by key.
    pub fn from_requirements(requirements: impl IntoIterator<Item = Requirement>) -> Self {
        let mut requirements: Vec<Requirement> = requirements.into_iter().collect();
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Selector {
            requirements,
            nothing: false,
        }
    }

    /// `key=value` for every entry, unvalidated (upstream's
    /// `SelectorFromValidatedSet`, for sets that are already valid labels).
    pub fn from_set(set: &BTreeMap<String, String>) -> Self {
        Self::from_requirements(set.iter().map(|(k, v)| Requirement {
            key: k.clone(),
            operator: Operator::Equals,
            values: vec![v.clone()],
        }))
    }

    /// Converts a `metav1.LabelSelector` (upstream's `LabelSelectorAsSelector`):
    /// `None` selects nothing, an empty one everything; `matchLabels` become
    /// `key=value`, `matchExpressions` In/NotIn/Exists/DoesNotExist.
    pub fn from_label_selector(selector: Option<&LabelSelector>) -> Result<Self, SelectorError> {
        let Some(ps) = selector else {
            return Ok(Self::nothing());
        };
        let labels = ps.match_labels.as_ref();
        let expressions = ps.match_expressions.as_deref().unwrap_or_default();
        if labels.map_or(0, BTreeMap::len) + expressions.len() == 0 {
            return Ok(Self::everything());
        }
        let mut requirements = Vec::new();
        for (k, v) in labels.into_iter().flatten() {
            requirements.push(
                Requirement::validated(k.clone(), Operator::Equals, vec![v.clone()])
                    .map_err(SelectorError::InvalidRequirement)?,
            );
        }
        for expr in expressions {
            let operator = match expr.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => return Err(SelectorError::InvalidOperator(other.to_string())),
            };
            requirements.push(
                Requirement::validated(expr.key.clone(), operator, expr.values.clone().unwrap_or_default())
                    .map_err(SelectorError::InvalidRequirement)?,
            );
        }
        Ok(Self::from_requirements(requirements))
    }

    /// [`Selector::from_label_selector`] for a JSON value as it appears in an
    /// object (`spec.selector`); absent or `null` selects nothing.
    pub fn from_label_selector_json(value: Option<&Value>) -> Result<Self, SelectorError> {
        match value {
            None | Some(Value::Null) => Ok(Self::nothing()),
            Some(v) => {
                let ps =
                    LabelSelector::deserialize(v).map_err(|e| SelectorError::MalformedLabelSelector(e.to_string()))?;
                Self::from_label_selector(Some(&ps))
            }
        }
    }

    /// This selector plus `requirement`, keeping key order (upstream's `Add`).
    pub fn with_requirement(mut self, requirement: Requirement) -> Self {
        if self.nothing {
            return self;
        }
        let at = self.requirements.partition_point(|r| r.key <= requirement.key);
        self.requirements.insert(at, requirement);
        self
    }

    /// True when the selector does not restrict anything (upstream's `Empty`;
    /// false for [`Selector::nothing`]).
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// True for [`Selector::nothing`].
    pub fn is_nothing(&self) -> bool {
        self.nothing
    }

    /// The requirements, sorted by key (none for [`Selector::nothing`]).
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether every requirement holds for `labels`.
    pub fn matches<A: Attrs + ?Sized>(&self, labels: &A) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// [`Selector::matches`] against an object's `metadata.labels`.
    pub fn matches_object(&self, object: &serde_json::Map<String, Value>) -> bool {
        let empty = serde_json::Map::new();
        let labels = object
            .get("metadata")
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        self.matches(labels)
    }

    /// The single value `key` must have, when the first requirement on `key`
    /// is `=`, `==` or a one-value `in` (upstream's `RequiresExactMatch`).
    pub fn requires_exact_match(&self, key: &str) -> Option<&str> {
        let r = self.requirements.iter().find(|r| r.key == key)?;
        match (r.operator, r.values.as_slice()) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [one]) => Some(one),
            _ => None,
        }
    }
}

/// The canonical form: requirements joined by `,` (empty for everything and
/// for nothing, like upstream).
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_char(',')?;
            }
            r.fmt(f)?;
        }
        Ok(())
    }
}

impl FromStr for Selector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// `metav1.LabelSelector`, as it appears in JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_expressions: Option<Vec<LabelSelectorRequirement>>,
}

/// `metav1.LabelSelectorRequirement`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelSelectorRequirement {
    #[serde(default)]
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    #[serde(default)]
    pub operator: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
}

/// The error for an invalid key at `path` (`<nil>` when upstream passes none).
fn key_error(key: &str, path: &str) -> Option<FieldError> {
    let problems = is_qualified_name(key);
    (!problems.is_empty()).then(|| FieldError::invalid(path, key, problems.join("; ")))
}
