//! `metav1.Status`: the one shape every API error takes on the wire.
//!
//! Handlers return [`ApiError`]; its `IntoResponse` renders the Status with
//! upstream's code, reason, message and details. Constructors are named
//! after upstream's `apierrors.NewXxx` and produce the same messages.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rkube_storage::StorageError;
use serde::Serialize;

/// One `details.causes` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusCause {
    /// `FieldValueInvalid`, `FieldValueRequired`, ...
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub field: String,
}

/// `details` of a Status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct StatusDetails {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<StatusCause>,
    #[serde(rename = "retryAfterSeconds", skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u32>,
}

/// A failed request, rendered as a `metav1.Status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: u16,
    /// `metav1.StatusReason`, e.g. `NotFound`.
    pub reason: &'static str,
    pub message: String,
    /// Boxed to keep `Result<_, ApiError>` small.
    pub details: Option<Box<StatusDetails>>,
}

#[derive(Serialize)]
struct Status<'a> {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    metadata: serde_json::Map<String, serde_json::Value>,
    status: &'static str,
    message: &'a str,
    reason: &'a str,
    details: &'a StatusDetails,
    code: u16,
}

/// The resource an error is about: group and plural resource name.
#[derive(Debug, Clone, Copy)]
pub struct GroupResource<'a> {
    pub group: &'a str,
    pub resource: &'a str,
}

impl std::fmt::Display for GroupResource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            f.write_str(self.resource)
        } else {
            write!(f, "{}.{}", self.resource, self.group)
        }
    }
}

fn details(gr: GroupResource<'_>, name: &str) -> Option<Box<StatusDetails>> {
    Some(Box::new(StatusDetails {
        name: name.to_string(),
        group: gr.group.to_string(),
        kind: gr.resource.to_string(),
        ..Default::default()
    }))
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    /// 401: no valid credentials. The message never says why.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 404 for a path the server does not serve.
    pub fn path_not_found() -> Self {
        Self::new(404, "NotFound", "the server could not find the requested resource")
    }

    /// 404 for a named object.
    pub fn not_found(gr: GroupResource<'_>, name: &str) -> Self {
        ApiError {
            details: details(gr, name),
            ..Self::new(404, "NotFound", format!("{gr} \"{name}\" not found"))
        }
    }

    /// 409 for a create of an existing name.
    pub fn already_exists(gr: GroupResource<'_>, name: &str) -> Self {
        ApiError {
            details: details(gr, name),
            ..Self::new(409, "AlreadyExists", format!("{gr} \"{name}\" already exists"))
        }
    }

    /// 409 for an update against a stale resourceVersion.
    pub fn conflict(gr: GroupResource<'_>, name: &str, why: &str) -> Self {
        ApiError {
            details: details(gr, name),
            ..Self::new(
                409,
                "Conflict",
                format!("Operation cannot be fulfilled on {gr} \"{name}\": {why}"),
            )
        }
    }

    /// The usual conflict: the object changed since the client read it.
    pub fn conflict_modified(gr: GroupResource<'_>, name: &str) -> Self {
        Self::conflict(
            gr,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 with field causes. `kind` is the object's kind (`ConfigMap`),
    /// `group` its API group (`apps`, or `""` for the core group).
    pub fn invalid(group: &str, kind: &str, name: &str, errors: &crate::validation::FieldErrors) -> Self {
        let causes = errors
            .iter()
            .map(|e| StatusCause {
                reason: e.reason().into(),
                message: e.detail_message(),
                field: e.field.clone(),
            })
            .collect();
        let summary = errors.summary();
        // Upstream names the qualified kind (`Deployment.apps`) and always
        // quotes the name, even when it is empty.
        let qualified = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let message = format!("{qualified} {name:?} is invalid: {summary}");
        ApiError {
            details: Some(Box::new(StatusDetails {
                name: name.to_string(),
                group: group.to_string(),
                kind: kind.to_string(),
                causes,
                ..Default::default()
            })),
            ..Self::new(422, "Invalid", message)
        }
    }

    /// 400 with a message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 403 with upstream's "forbidden" wording.
    pub fn forbidden(gr: GroupResource<'_>, name: &str, why: &str) -> Self {
        let message = if name.is_empty() {
            format!("{gr} is forbidden: {why}")
        } else {
            format!("{gr} \"{name}\" is forbidden: {why}")
        };
        ApiError {
            details: details(gr, name),
            ..Self::new(403, "Forbidden", message)
        }
    }

    /// 405 for a verb a resource does not support.
    pub fn method_not_supported(gr: GroupResource<'_>, verb: &str) -> Self {
        ApiError {
            details: details(gr, ""),
            ..Self::new(
                405,
                "MethodNotAllowed",
                format!("{verb} is not supported on resources of kind \"{gr}\""),
            )
        }
    }

    /// 405 for a method a non-resource path does not accept.
    pub fn method_not_allowed(method: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({method})"),
        )
    }

    /// 415 for a body in a format the server cannot decode.
    pub fn unsupported_media_type(supported: &[&str]) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                supported.join(", ")
            ),
        )
    }

    /// 406 when nothing in `Accept` can be produced.
    pub fn not_acceptable(supported: &[&str]) -> Self {
        Self::new(
            406,
            "NotAcceptable",
            format!("only the following media types are accepted: {}", supported.join(", ")),
        )
    }

    /// 413 for a body over the limit.
    pub fn request_entity_too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    /// 410 for a resourceVersion older than the kept history.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 429 with Retry-After.
    pub fn too_many_requests(retry_after_seconds: u32) -> Self {
        ApiError {
            details: Some(Box::new(StatusDetails {
                retry_after_seconds: Some(retry_after_seconds),
                ..Default::default()
            })),
            ..Self::new(429, "TooManyRequests", "Too many requests, please try again later.")
        }
    }

    /// 504 when storage did not answer in time.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(504, "Timeout", message)
    }

    /// 503 when storage is unreachable.
    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    /// 500: a fault of the server, never of the client's input.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(500, "InternalError", format!("Internal error occurred: {message}"))
    }

    /// Maps a storage failure for `name` of `gr` to its Status.
    pub fn from_storage(e: StorageError, gr: GroupResource<'_>, name: &str) -> Self {
        match e {
            StorageError::AlreadyExists { .. } => Self::already_exists(gr, name),
            StorageError::NotFound { .. } => Self::not_found(gr, name),
            StorageError::Conflict { .. } => Self::conflict_modified(gr, name),
            StorageError::Compacted { requested, compacted } => {
                Self::expired(format!("too old resource version: {requested} ({compacted})"))
            }
            StorageError::FutureRevision { requested, current } => {
                Self::timeout(format!("Too large resource version: {requested}, current: {current}"))
            }
            StorageError::InvalidArgument(m) => Self::bad_request(m),
            StorageError::Unavailable(m) => Self::service_unavailable(m),
            StorageError::Internal(m) => Self::internal(m),
        }
    }

    /// The Status JSON of this error.
    pub fn to_json(&self) -> Vec<u8> {
        let empty = StatusDetails::default();
        let status = Status {
            kind: "Status",
            api_version: "v1",
            metadata: Default::default(),
            status: "Failure",
            message: &self.message,
            reason: self.reason,
            details: self.details.as_deref().unwrap_or(&empty),
            code: self.code,
        };
        serde_json::to_vec(&status).unwrap_or_default()
    }

    /// The Status as a JSON value (for watch ERROR events).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::from_slice(&self.to_json()).unwrap_or(serde_json::Value::Null)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry = self.details.as_ref().and_then(|d| d.retry_after_seconds);
        let mut resp = (code, self.to_json()).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(secs) = retry
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_matches_upstream() {
        let e = ApiError::not_found(
            GroupResource {
                group: "apps",
                resource: "deployments",
            },
            "web",
        );
        let v = e.to_value();
        assert_eq!(v["message"], "deployments.apps \"web\" not found");
        assert_eq!(
            v["details"],
            serde_json::json!({"name": "web", "group": "apps", "kind": "deployments"})
        );
        assert_eq!(v["code"], 404);
        let e = ApiError::not_found(
            GroupResource {
                group: "",
                resource: "configmaps",
            },
            "cm1",
        );
        assert_eq!(e.message, "configmaps \"cm1\" not found");
    }
}
