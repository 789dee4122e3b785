//! Field selectors: the `fieldSelector` query syntax.
//!
//! Mirrors apimachinery's `fields/selector.go`: comma-separated terms
//! `field=value`, `field==value` or `field!=value`; in values, `\,`, `\=` and
//! `\\` stand for `,`, `=` and `\`, and any other backslash or an unescaped
//! `=` is an error. Nothing is trimmed: `a = b` compares field `a ` with
//! ` b`. Terms are sorted as written before parsing, so the first error and
//! the printed order are upstream's. A field the object does not have
//! compares as `""`.
//!
//! Which fields a resource supports is not decided here: see
//! [`FieldSelector::convert_field_labels`] and
//! [`crate::selector::field_labels`].

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::str::FromStr;

use super::field_labels::{FieldLabelConversion, FieldLabelRejection};
use super::{Attrs, SelectorError};

#[cfg(test)]
mod tests;

/// How a [`FieldRequirement`] compares the field with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FieldOperator {
    /// `field=value` or `field==value`.
    Equals,
    /// `field!=value`.
    NotEquals,
}

/// One term of a field selector.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldRequirement {
    pub field: String,
    pub operator: FieldOperator,
    /// The value, unescaped.
    pub value: String,
}

impl FieldRequirement {
    /// Whether `fields` satisfy this term; an absent field is `""`.
    pub fn matches<A: Attrs + ?Sized>(&self, fields: &A) -> bool {
        let actual = fields.attr(&self.field).unwrap_or_default();
        match self.operator {
            FieldOperator::Equals => actual == self.value,
            FieldOperator::NotEquals => actual != self.value,
        }
    }
}

/// `field=value` or `field!=value`, the value escaped.
impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            FieldOperator::Equals => "=",
            FieldOperator::NotEquals => "!=",
        };
        write!(f, "{}{}{}", self.field, op, escape_value(&self.value))
    }
}

/// A field selector: terms that must all hold. The empty selector matches
/// everything.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Matches everything.
    pub fn everything() -> Self {
        FieldSelector::default()
    }

    /// Parses the `fieldSelector` query syntax (upstream's
    /// `fields.ParseSelector`).
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let mut terms = split_terms(selector);
        terms.sort_unstable();
        let mut requirements = Vec::with_capacity(terms.len());
        for term in terms.into_iter().filter(|t| !t.is_empty()) {
            let Some((field, op, raw_value)) = split_term(term) else {
                return Err(SelectorError::FieldSyntax {
                    selector: selector.to_string(),
                    term: term.to_string(),
                });
            };
            let value = unescape_value(raw_value)?;
            let operator = if op == "!=" {
                FieldOperator::NotEquals
            } else {
                FieldOperator::Equals
            };
            requirements.push(FieldRequirement {
                field: field.to_string(),
                operator,
                value,
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// `field=value` (upstream's `OneTermEqualSelector`), e.g.
    /// `metadata.name=<name>` for watching one object.
    pub fn one_term_equal(field: impl Into<String>, value: impl Into<String>) -> Self {
        FieldSelector::from_requirements([FieldRequirement {
            field: field.into(),
            operator: FieldOperator::Equals,
            value: value.into(),
        }])
    }

    /// `field=value` for every entry (upstream's `SelectorFromSet`).
    pub fn from_set(set: &BTreeMap<String, String>) -> Self {
        FieldSelector::from_requirements(set.iter().map(|(k, v)| FieldRequirement {
            field: k.clone(),
            operator: FieldOperator::Equals,
            value: v.clone(),
        }))
    }

    /// All of `requirements`, in the given order.
    pub fn from_requirements(requirements: impl IntoIterator<Item = FieldRequirement>) -> Self {
        FieldSelector {
            requirements: requirements.into_iter().collect(),
        }
    }

    /// The terms, in order.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// True when the selector does not restrict anything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether every term holds for `fields`.
    pub fn matches<A: Attrs + ?Sized>(&self, fields: &A) -> bool {
        self.requirements.iter().all(|r| r.matches(fields))
    }

    /// The value of the first `field=value` term on `field` (upstream's
    /// `RequiresExactMatch`), e.g. to serve `metadata.name=x` as a get.
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && r.operator == FieldOperator::Equals)
            .map(|r| r.value.as_str())
    }

    /// Rewrites every term's field and value with `f` (upstream's
    /// `Transform`); a term both rewritten to `""` is dropped.
    pub fn transform(
        &self,
        mut f: impl FnMut(&str, &str) -> Result<(String, String), SelectorError>,
    ) -> Result<Self, SelectorError> {
        let mut requirements = Vec::with_capacity(self.requirements.len());
        for r in &self.requirements {
            let (field, value) = f(&r.field, &r.value)?;
            if !(field.is_empty() && value.is_empty()) {
                requirements.push(FieldRequirement {
                    field,
                    operator: r.operator,
                    value,
                });
            }
        }
        Ok(FieldSelector { requirements })
    }

    /// Checks every field against the resource's field label conversion and
    /// rewrites legacy spellings (`spec.host` to `spec.nodeName` for pods,
    /// `regarding.*` to `involvedObject.*` for events.k8s.io), as the
    /// apiserver does before matching. The first unsupported field is the
    /// error.
    pub fn convert_field_labels(&self, conversion: &FieldLabelConversion) -> Result<Self, SelectorError> {
        self.transform(|field, value| Ok((conversion.convert(field)?, value.to_string())))
    }

    /// Checks every field with `supported`; the first one it refuses is
    /// `field label not supported: <field>`.
    pub fn validate_fields(&self, supported: impl Fn(&str) -> bool) -> Result<(), SelectorError> {
        match self.requirements.iter().find(|r| !supported(&r.field)) {
            Some(r) => Err(SelectorError::FieldLabelNotSupported {
                label: r.field.clone(),
                rejection: FieldLabelRejection::NotSupported,
            }),
            None => Ok(()),
        }
    }
}

/// Terms joined by `,`, values escaped; parses back to the same terms.
impl fmt::Display for FieldSelector {
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

impl FromStr for FieldSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Escapes `\`, `,` and `=` so any string can be a field selector value.
pub fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The literal value of an escaped field selector value.
pub fn unescape_value(value: &str) -> Result<String, SelectorError> {
    if !value.contains(['\\', ',', '=']) {
        return Ok(value.to_string());
    }
    let mut out = String::with_capacity(value.len());
    let mut in_slash = false;
    for c in value.chars() {
        if in_slash {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(SelectorError::InvalidEscapeSequence(format!("\\{c}")));
            }
            out.push(c);
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => return Err(SelectorError::UnescapedCharacter(c)),
            c => out.push(c),
        }
    }
    if in_slash {
        return Err(SelectorError::InvalidEscapeSequence("\\".to_string()));
    }
    Ok(out)
}

/// The comma-separated terms of `selector`; an escaped comma stays in its
/// term, backslash included.
fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in selector.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&selector[start..i]);
            start = i + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// `(field, operator, raw value)` split at the first `!=`, `==` or `=`.
fn split_term(term: &str) -> Option<(&str, &'static str, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for op in ["!=", "==", "="] {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((&term[..i], op, value));
            }
        }
    }
    None
}
