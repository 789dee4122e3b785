//! Label and field selectors, parsed, validated, printed and matched exactly
//! as kube-apiserver does it.
//!
//! - [`labels`]: the `labelSelector` query syntax (`a=b`, `a in (x,y)`, `!a`,
//!   `a>1`, ...) and `metav1.LabelSelector` (`matchLabels` +
//!   `matchExpressions`), both into one [`labels::Selector`].
//! - [`fields`]: the `fieldSelector` query syntax (`a=b`, `a!=b`, with `\,`
//!   `\=` `\\` escapes) into a [`fields::FieldSelector`].
//! - [`field_labels`]: which field labels each built-in resource accepts
//!   (upstream's field label conversion functions) and the field set of an
//!   object to match against (upstream's `ToSelectableFields`).
//!
//! Label keys and values are checked with [`crate::validation::names`], the
//! same rules (and messages) as object metadata.
//!
//! Every error is a [`SelectorError`] whose message is upstream's text; the
//! HTTP layer turns it into a 400 `BadRequest` Status through
//! `From<SelectorError> for ApiError`.
//!
//! Typical use in a list or watch handler:
//!
//! ```
//! use rkube_apiserver::selector::{FieldLabelConversion, FieldSelector, Selector, selectable_fields};
//!
//! # fn main() -> Result<(), rkube_apiserver::selector::SelectorError> {
//! let (group, resource) = ("", "pods");
//! let labels = Selector::parse("app=web,tier notin (cache)")?;
//! let fields = FieldSelector::parse("spec.host=node-1")? // legacy spelling of spec.nodeName
//!     .convert_field_labels(&FieldLabelConversion::builtin(group, resource))?;
//! let pod = serde_json::json!({
//!     "metadata": {"name": "web-0", "namespace": "default", "labels": {"app": "web"}},
//!     "spec": {"nodeName": "node-1"},
//! });
//! let pod = pod.as_object().expect("an object");
//! assert!(labels.matches_object(pod));
//! assert!(fields.matches(&selectable_fields(group, resource, pod)));
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use crate::status::ApiError;
use crate::validation::FieldErrors;

pub mod field_labels;
pub mod fields;
pub(crate) mod go_quote;
pub mod labels;

pub use field_labels::{FieldLabelConversion, FieldLabelRejection, selectable_fields};
pub use fields::{FieldOperator, FieldRequirement, FieldSelector};
pub use labels::{LabelSelector, LabelSelectorRequirement, Operator, Requirement, Selector};

/// A selector that does not parse, or names something it may not.
///
/// Every message is the one kube-apiserver returns, so clients that match on
/// the text (or users reading it) see no difference.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SelectorError {
    /// A `labelSelector` that is malformed between requirements, e.g.
    /// `found ',', expected: identifier after ','`.
    #[error("{0}")]
    LabelSyntax(String),
    /// A `labelSelector` requirement that is malformed or invalid.
    #[error("unable to parse requirement: {0}")]
    LabelRequirement(RequirementError),
    /// A requirement built from a `metav1.LabelSelector` (or by
    /// [`Requirement::new`]) failed validation; upstream does not wrap these.
    #[error("{}", .0.summary())]
    InvalidRequirement(FieldErrors),
    /// A `matchExpressions` operator other than In, NotIn, Exists and
    /// DoesNotExist.
    #[error("{} is not a valid label selector operator", go_quote::go_quote(.0))]
    InvalidOperator(String),
    /// A `metav1.LabelSelector` JSON value of the wrong shape.
    #[error("invalid label selector: {0}")]
    MalformedLabelSelector(String),
    /// A `fieldSelector` term without `=`, `==` or `!=`.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    FieldSyntax { selector: String, term: String },
    /// A backslash in a `fieldSelector` value not followed by `\`, `,` or `=`.
    #[error("invalid field selector: invalid escape sequence: {0}")]
    InvalidEscapeSequence(String),
    /// An unescaped `,` or `=` in a `fieldSelector` value. Upstream prints the
    /// character as its code point (`61` for `=`).
    #[error("invalid field selector: unescaped character in value: {}", u32::from(*.0))]
    UnescapedCharacter(char),
    /// A `fieldSelector` names a field the resource does not support.
    #[error("{}", .rejection.message(.label))]
    FieldLabelNotSupported {
        label: String,
        rejection: FieldLabelRejection,
    },
}

/// Why one `labelSelector` requirement was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequirementError {
    /// Unexpected token, e.g. `found 'b', expected: in, notin, =, ==, !=, gt, lt`.
    #[error("{0}")]
    Syntax(String),
    /// Key or values fail validation.
    #[error("{}", .0.summary())]
    Invalid(FieldErrors),
}

impl From<SelectorError> for ApiError {
    /// Every selector error is the client's: 400 BadRequest, upstream's text.
    fn from(err: SelectorError) -> Self {
        ApiError::bad_request(err.to_string())
    }
}

/// Read access to a set of labels or fields: upstream's `labels.Labels` and
/// `fields.Fields`. An absent key and a key set to `""` differ for labels
/// (`Exists`), but not for fields, which compare `""` for absent keys.
pub trait Attrs {
    /// The value of `key`, or `None` when it is not set.
    fn attr(&self, key: &str) -> Option<&str>;
}

impl Attrs for BTreeMap<String, String> {
    fn attr(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl<S: BuildHasher> Attrs for HashMap<String, String, S> {
    fn attr(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// A JSON object such as `metadata.labels`; entries that are not strings are
/// treated as absent.
impl Attrs for serde_json::Map<String, serde_json::Value> {
    fn attr(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(serde_json::Value::as_str)
    }
}

impl<T: Attrs + ?Sized> Attrs for &T {
    fn attr(&self, key: &str) -> Option<&str> {
        (**self).attr(key)
    }
}
