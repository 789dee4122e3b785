//! Field validation in upstream's shape: every error names a field path, a
//! type (Invalid, Required, ...), the bad value and a detail, and validation
//! collects all errors instead of stopping at the first.
//!
//! Rendering matches `k8s.io/apimachinery/pkg/util/validation/field`:
//! `metadata.name: Invalid value: "UPPER": <detail>`, and several errors as
//! `[e1, e2]`.

pub mod go_value;
pub mod label_selector;
pub mod names;
pub mod object_meta;
pub mod pod_spec;

use serde_json::Value;

/// What is wrong with a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    Invalid,
    Required,
    Forbidden,
    NotSupported,
    Duplicate,
    TooLong,
    TooMany,
    NotFound,
}

impl ErrorType {
    /// `details.causes[].reason`.
    pub fn reason(self) -> &'static str {
        match self {
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Forbidden => "FieldValueForbidden",
            ErrorType::NotSupported => "FieldValueNotSupported",
            ErrorType::Duplicate => "FieldValueDuplicate",
            ErrorType::TooLong => "FieldValueTooLong",
            ErrorType::TooMany => "FieldValueTooMany",
            ErrorType::NotFound => "FieldValueNotFound",
        }
    }

    fn label(self) -> &'static str {
        match self {
            ErrorType::Invalid => "Invalid value",
            ErrorType::Required => "Required value",
            ErrorType::Forbidden => "Forbidden",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::Duplicate => "Duplicate value",
            ErrorType::TooLong => "Too long",
            ErrorType::TooMany => "Too many",
            ErrorType::NotFound => "Not found",
        }
    }
}

/// One field error.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub error_type: ErrorType,
    /// Field path, e.g. `spec.containers[0].name`.
    pub field: String,
    /// The offending value, when it is shown.
    pub bad_value: Option<Value>,
    pub detail: String,
}

/// The bad value as upstream prints it (Go's `%q`, `%v`, `%#v`).
fn render_value(v: &Value) -> String {
    go_value::render(v)
}

impl FieldError {
    pub fn new(
        error_type: ErrorType,
        field: impl Into<String>,
        bad_value: Option<Value>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            error_type,
            field: field.into(),
            bad_value,
            detail: detail.into(),
        }
    }
    pub fn invalid(field: impl Into<String>, value: impl Into<Value>, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Invalid, field, Some(value.into()), detail)
    }
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Required, field, None, detail)
    }
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Forbidden, field, None, detail)
    }
    pub fn duplicate(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::new(ErrorType::Duplicate, field, Some(value.into()), "")
    }
    pub fn too_long(field: impl Into<String>, max_bytes: usize) -> Self {
        Self::new(
            ErrorType::TooLong,
            field,
            None,
            format!("may not be more than {max_bytes} bytes"),
        )
    }
    /// `Unsupported value: "x": supported values: "a", "b"`.
    pub fn not_supported(field: impl Into<String>, value: impl Into<Value>, supported: &[&str]) -> Self {
        let list = supported
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ");
        Self::new(
            ErrorType::NotSupported,
            field,
            Some(value.into()),
            format!("supported values: {list}"),
        )
    }

    /// `details.causes[].reason`.
    pub fn reason(&self) -> &'static str {
        self.error_type.reason()
    }

    /// The message without the field: `Invalid value: "x": detail`.
    pub fn detail_message(&self) -> String {
        let mut s = self.error_type.label().to_string();
        if let Some(v) = &self.bad_value {
            s.push_str(": ");
            s.push_str(&render_value(v));
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.detail_message())
    }
}

/// All errors of one validation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn push(&mut self, e: FieldError) {
        self.0.push(e);
    }
    pub fn extend(&mut self, other: FieldErrors) {
        self.0.extend(other.0);
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = &FieldError> {
        self.0.iter()
    }
    /// `e` for one error, `[e1, e2]` for several (upstream's aggregate).
    pub fn summary(&self) -> String {
        // Like upstream's ToAggregate, repeated messages are shown once.
        let mut seen = std::collections::HashSet::new();
        let messages: Vec<String> = self
            .0
            .iter()
            .map(ToString::to_string)
            .filter(|m| seen.insert(m.clone()))
            .collect();
        match messages.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        }
    }
}

/// Joins a parent path and a child field.
pub fn child(parent: &str, field: &str) -> String {
    if parent.is_empty() {
        field.to_string()
    } else {
        format!("{parent}.{field}")
    }
}

/// A path with an index: `spec.containers[2]`.
pub fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// A path with a map key: `metadata.labels[app]`.
pub fn key(parent: &str, k: &str) -> String {
    format!("{parent}[{k}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_upstream() {
        let e = FieldError::invalid("metadata.name", "UPPER", "bad");
        assert_eq!(e.to_string(), "metadata.name: Invalid value: \"UPPER\": bad");
        let r = FieldError::required("metadata.name", "name or generateName is required");
        assert_eq!(
            r.to_string(),
            "metadata.name: Required value: name or generateName is required"
        );
        let n = FieldError::not_supported("spec.restartPolicy", "X", &["Always", "Never"]);
        assert_eq!(
            n.to_string(),
            "spec.restartPolicy: Unsupported value: \"X\": supported values: \"Always\", \"Never\""
        );
        let errs = FieldErrors(vec![e.clone(), r]);
        assert!(errs.summary().starts_with("[metadata.name: Invalid value"));
        assert_eq!(
            FieldErrors(vec![e]).summary(),
            "metadata.name: Invalid value: \"UPPER\": bad"
        );
    }
}
