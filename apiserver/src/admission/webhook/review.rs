//! AdmissionReview v1: the request this server sends and the checks on the
//! response, as upstream's `admission/plugin/webhook/request`.

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::status::ApiError;

use super::super::{Attributes, Operation};

/// What a webhook answered.
#[derive(Debug, Default)]
pub struct Verdict {
    pub allowed: bool,
    /// `response.status` when not allowed.
    pub status: Option<Value>,
    /// The decoded JSONPatch, when one was sent.
    pub patch: Option<Vec<u8>>,
    pub warnings: Vec<String>,
    /// `response.auditAnnotations`, sorted by key.
    pub audit_annotations: Vec<(String, String)>,
}

fn operation(op: Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
    }
}

fn options_kind(op: Operation) -> &'static str {
    match op {
        Operation::Create => "CreateOptions",
        Operation::Update => "UpdateOptions",
        Operation::Delete => "DeleteOptions",
    }
}

/// The AdmissionReview for `attrs`, with the objects as served.
pub fn request(
    uid: &str,
    attrs: &Attributes<'_>,
    object: Option<&Map<String, Value>>,
    old: Option<&Map<String, Value>>,
) -> Value {
    let r = attrs.resource;
    let kind = json!({"group": r.group, "version": r.version, "kind": r.kind});
    let resource = json!({"group": r.group, "version": r.version, "resource": r.resource});
    let name = if attrs.name.is_empty() {
        object.map(crate::registry::object::name).unwrap_or("")
    } else {
        attrs.name
    };
    let user = attrs.user;
    let mut user_info = json!({"username": user.name, "groups": user.groups});
    if !user.uid.is_empty() {
        user_info["uid"] = json!(user.uid);
    }
    if !user.extra.is_empty() {
        user_info["extra"] = json!(user.extra);
    }
    let mut options = json!({"apiVersion": "meta.k8s.io/v1", "kind": options_kind(attrs.operation)});
    if attrs.dry_run {
        options["dryRun"] = json!(["All"]);
    }
    let mut req = json!({
        "uid": uid,
        "kind": kind,
        "resource": resource,
        "requestKind": kind,
        "requestResource": resource,
        "name": name,
        "operation": operation(attrs.operation),
        "userInfo": user_info,
        "object": object.map(|o| Value::Object(o.clone())).unwrap_or(Value::Null),
        "oldObject": old.map(|o| Value::Object(o.clone())).unwrap_or(Value::Null),
        "dryRun": attrs.dry_run,
        "options": options,
    });
    if !attrs.subresource.is_empty() {
        req["subResource"] = json!(attrs.subresource);
        req["requestSubResource"] = json!(attrs.subresource);
    }
    if !attrs.namespace.is_empty() {
        req["namespace"] = json!(attrs.namespace);
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req})
}

/// Checks a response like upstream's `VerifyAdmissionResponse`: the right
/// type, the request's uid, a JSONPatch only.
pub fn verdict(uid: &str, review: &Value, mutating: bool) -> Result<Verdict, String> {
    let api_version = review.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = review.get("kind").and_then(Value::as_str).unwrap_or("");
    if api_version != "admission.k8s.io/v1" || kind != "AdmissionReview" {
        return Err(format!(
            "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got {api_version}, Kind={kind}"
        ));
    }
    let Some(resp) = review.get("response").filter(|r| r.is_object()) else {
        return Err("webhook response was absent".into());
    };
    let got = resp.get("uid").and_then(Value::as_str).unwrap_or("");
    if got != uid {
        return Err(format!("expected response.uid=\"{uid}\", got \"{got}\""));
    }
    let allowed = resp.get("allowed").and_then(Value::as_bool).unwrap_or(false);
    let patch_type = resp.get("patchType").and_then(Value::as_str).unwrap_or("");
    let patch = resp.get("patch").and_then(Value::as_str).filter(|p| !p.is_empty());
    let patch = match (mutating, patch, patch_type) {
        (_, None, _) => None,
        (false, Some(_), _) => None,
        (true, Some(_), "") => return Err("webhook returned response.patch but not response.patchType".into()),
        (true, Some(p), "JSONPatch") => Some(
            base64::engine::general_purpose::STANDARD
                .decode(p)
                .map_err(|e| format!("response.patch is not base64: {e}"))?,
        ),
        (true, Some(_), other) => return Err(format!("webhook returned invalid response.patchType of \"{other}\"")),
    };
    let warnings = resp
        .get("warnings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect();
    let mut audit_annotations: Vec<(String, String)> = resp
        .get("auditAnnotations")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect();
    audit_annotations.sort();
    Ok(Verdict {
        allowed,
        status: resp.get("status").cloned(),
        patch,
        warnings,
        audit_annotations,
    })
}

/// Upstream's `ToStatusErr`: a denial as the Status the client sees, at
/// least 400, with the webhook named in the message.
pub fn denial(webhook: &str, status: Option<&Value>) -> ApiError {
    let get = |f: &str| status.and_then(|s| s.get(f)).and_then(Value::as_str).unwrap_or("");
    let code = status
        .and_then(|s| s.get("code"))
        .and_then(Value::as_u64)
        .filter(|c| (400..600).contains(c))
        .unwrap_or(400) as u16;
    let denied_by = format!("admission webhook \"{webhook}\" denied the request");
    let message = match (get("message"), get("reason")) {
        ("", "") => format!("{denied_by} without explanation"),
        ("", reason) => format!("{denied_by}: {reason}"),
        (message, _) => format!("{denied_by}: {message}"),
    };
    ApiError {
        code,
        reason: known_reason(get("reason")),
        message,
        details: None,
    }
}

/// A `metav1.StatusReason` as the static string [`ApiError`] keeps;
/// reasons upstream does not define are dropped.
fn known_reason(reason: &str) -> &'static str {
    const REASONS: &[&str] = &[
        "Unauthorized",
        "Forbidden",
        "NotFound",
        "AlreadyExists",
        "Conflict",
        "Gone",
        "Invalid",
        "ServerTimeout",
        "StoreReadError",
        "Timeout",
        "TooManyRequests",
        "BadRequest",
        "MethodNotAllowed",
        "NotAcceptable",
        "RequestEntityTooLarge",
        "UnsupportedMediaType",
        "InternalError",
        "Expired",
        "ServiceUnavailable",
    ];
    REASONS.iter().find(|r| **r == reason).copied().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        let ok = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": "u", "allowed": true, "patchType": "JSONPatch", "patch": "W10=", "warnings": ["w"],
                "auditAnnotations": {"b": "2", "a": "1"}}});
        let v = verdict("u", &ok, true).unwrap();
        assert!(v.allowed);
        assert_eq!(
            v.audit_annotations,
            [("a".to_string(), "1".to_string()), ("b".to_string(), "2".to_string())]
        );
        assert_eq!(v.patch.as_deref(), Some(&b"[]"[..]));
        assert_eq!(v.warnings, ["w"]);
        assert!(verdict("u", &ok, false).unwrap().patch.is_none());
        assert_eq!(
            verdict("other", &ok, true).unwrap_err(),
            "expected response.uid=\"other\", got \"u\""
        );
        let v1beta1 =
            json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "response": {"uid": "u"}});
        assert_eq!(
            verdict("u", &v1beta1, true).unwrap_err(),
            "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got admission.k8s.io/v1beta1, Kind=AdmissionReview"
        );
        let no_type = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": "u", "allowed": true, "patch": "W10="}});
        assert!(verdict("u", &no_type, true).is_err());
    }

    #[test]
    fn denials() {
        let e = denial(
            "deny.example.com",
            Some(&json!({"code": 403, "reason": "Forbidden", "message": "no way"})),
        );
        assert_eq!(e.code, 403);
        assert_eq!(e.reason, "Forbidden");
        assert_eq!(
            e.message,
            "admission webhook \"deny.example.com\" denied the request: no way"
        );
        let e = denial("x", None);
        assert_eq!(
            (e.code, e.message.as_str()),
            (400, "admission webhook \"x\" denied the request without explanation")
        );
        let e = denial("x", Some(&json!({"code": 200, "reason": "Custom"})));
        assert_eq!(
            (e.code, e.reason, e.message.as_str()),
            (400, "", "admission webhook \"x\" denied the request: Custom")
        );
    }
}
