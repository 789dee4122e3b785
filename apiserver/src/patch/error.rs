//! Why a patch could not be applied, and the `metav1.Status` upstream sends
//! for each reason.
//!
//! The mapping follows kube-apiserver's PATCH handler
//! (`staging/src/k8s.io/apiserver/pkg/endpoints/handlers/patch.go`):
//! bodies that do not decode are 400 BadRequest with the decoder's message;
//! a JSON patch that does not apply is 422 Invalid with a fixed message (the
//! detail is not sent); strategic-merge-patch errors upstream does not
//! classify (and answers with a 500) are 400 BadRequest here with the same
//! message: they are the client's input, never a server fault.

use crate::status::ApiError;

/// Upstream's maximum number of operations in one JSON patch.
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// The message upstream's `NewGenericServerResponse(422, ...)` puts in the
/// Status: the underlying error text is not sent.
pub const INVALID_PATCH_MESSAGE: &str = "the server rejected our request due to an error in our request";

/// The patch types a custom resource (or any kind without strategic merge
/// metadata) accepts, in the order upstream lists them in its 415 message.
pub const NON_STRATEGIC_PATCH_TYPES: [&str; 3] = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
];

/// A patch that could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The body does not decode into what the patch type needs: invalid
    /// JSON, a JSON patch that is not an array of operation objects, a merge
    /// patch that is not an object, a field of the wrong JSON type.
    ///
    /// **400 BadRequest**, with upstream's message, e.g.
    /// `error decoding patch: invalid character 'x' looking for beginning of value`
    /// (JSON and merge patch) or `invalid character 'x' looking for beginning
    /// of value` (strategic merge patch), or `Invalid JSON Patch` for a merge
    /// patch of `null`.
    #[error("{message}")]
    BadRequest { message: String },

    /// A JSON patch with more than [`MAX_JSON_PATCH_OPERATIONS`] operations.
    ///
    /// **413 RequestEntityTooLarge**: `Request entity too large: The allowed
    /// maximum operations in a JSON patch is 10000, got N`.
    #[error("the allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {count}")]
    TooManyOperations { count: usize },

    /// A JSON patch operation did not apply: a `test` failed, a path does not
    /// exist, an operation is malformed (unknown `op`, missing `path`), a
    /// copy would exceed the 3 MiB copy budget, or the result would nest
    /// deeper than the server can store.
    ///
    /// **422 Invalid**, with upstream's fixed message
    /// [`INVALID_PATCH_MESSAGE`]; `detail` is for logs only, as upstream
    /// does not send it either.
    #[error("json patch did not apply: {detail}")]
    JsonPatchNotApplied { detail: String },

    /// A malformed strategic-merge-patch directive that upstream classifies
    /// as a bad request: a `$deleteFromPrimitiveList/`, `$setElementOrder/`
    /// or `$retainKeys` directive of the wrong shape, or a patch field not
    /// listed in `$retainKeys`.
    ///
    /// **400 BadRequest**, message e.g. `invalid patch format of retainKeys`.
    #[error("{message}")]
    BadDirective { message: &'static str },

    /// A strategic merge patch with a list of lists.
    ///
    /// **422 Invalid**, with upstream's fixed message [`INVALID_PATCH_MESSAGE`].
    #[error("lists of lists are not supported")]
    ListOfLists,

    /// A strategic merge patch upstream cannot apply and does not classify:
    /// a `$patch` directive with an unknown value (`unknown patch type: foo
    /// in map: map[$patch:foo name:a]`), `$patch: merge` in a list, a list
    /// element without its merge key, list elements of different types.
    ///
    /// **400 BadRequest** with this message (kube-apiserver answers 500 with
    /// an empty reason because it does not classify them; the fault is the
    /// patch's, so rkube says so).
    #[error("{message}")]
    StrategicMerge { message: String },

    /// A strategic merge patch for a kind without built-in patch metadata
    /// (custom resources, aggregated kinds, unknown kinds).
    ///
    /// **415 UnsupportedMediaType**: `the body of the request was in an
    /// unknown format - accepted media types include:
    /// application/json-patch+json, application/merge-patch+json,
    /// application/apply-patch+yaml`.
    #[error("strategic merge patch is not supported for {api_version}, Kind={kind}")]
    UnsupportedKind { api_version: String, kind: String },
}

impl PatchError {
    /// The HTTP status code upstream answers with.
    pub fn code(&self) -> u16 {
        match self {
            PatchError::BadRequest { .. } | PatchError::BadDirective { .. } | PatchError::StrategicMerge { .. } => 400,
            PatchError::TooManyOperations { .. } => 413,
            PatchError::UnsupportedKind { .. } => 415,
            PatchError::JsonPatchNotApplied { .. } | PatchError::ListOfLists => 422,
        }
    }

    /// The `metav1.StatusReason` upstream answers with; empty for
    /// `StatusReasonUnknown`.
    pub fn reason(&self) -> &'static str {
        match self {
            PatchError::BadRequest { .. } | PatchError::BadDirective { .. } | PatchError::StrategicMerge { .. } => {
                "BadRequest"
            }
            PatchError::TooManyOperations { .. } => "RequestEntityTooLarge",
            PatchError::UnsupportedKind { .. } => "UnsupportedMediaType",
            PatchError::JsonPatchNotApplied { .. } | PatchError::ListOfLists => "Invalid",
        }
    }

    /// The Status message upstream sends.
    pub fn status_message(&self) -> String {
        match self {
            PatchError::BadRequest { message } => message.clone(),
            PatchError::BadDirective { message } => (*message).to_string(),
            PatchError::TooManyOperations { count } => format!(
                "Request entity too large: The allowed maximum operations in a JSON patch is \
                 {MAX_JSON_PATCH_OPERATIONS}, got {count}"
            ),
            PatchError::UnsupportedKind { .. } => format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                NON_STRATEGIC_PATCH_TYPES.join(", ")
            ),
            PatchError::JsonPatchNotApplied { .. } | PatchError::ListOfLists => INVALID_PATCH_MESSAGE.to_string(),
            PatchError::StrategicMerge { message } => message.clone(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        PatchError::BadRequest {
            message: message.into(),
        }
    }

    pub(crate) fn not_applied(detail: impl Into<String>) -> Self {
        PatchError::JsonPatchNotApplied { detail: detail.into() }
    }

    pub(crate) fn strategic(message: impl Into<String>) -> Self {
        PatchError::StrategicMerge {
            message: message.into(),
        }
    }
}

impl From<PatchError> for ApiError {
    fn from(err: PatchError) -> Self {
        ApiError {
            code: err.code(),
            reason: err.reason(),
            message: err.status_message(),
            details: None,
        }
    }
}
