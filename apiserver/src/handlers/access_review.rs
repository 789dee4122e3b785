//! Reviews answered from the authenticator and authorizer, never stored:
//! `SelfSubjectReview` (authentication.k8s.io, `kubectl auth whoami`),
//! `SelfSubjectAccessReview`, `SubjectAccessReview`,
//! `LocalSubjectAccessReview` (`kubectl auth can-i`) and
//! `SelfSubjectRulesReview` (`kubectl auth can-i --list`), all
//! authorization.k8s.io/v1 and create-only.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::{body, response};
use crate::authn::UserInfo;
use crate::authz::{Attributes, Decision};
use crate::resources::ResourceInfo;
use crate::routes::AppState;
use crate::status::ApiError;
use crate::validation::{FieldError, FieldErrors};

/// Whether `info` is one of the review resources served here.
pub fn serves(info: &ResourceInfo) -> bool {
    matches!(
        (info.group.as_str(), info.resource.as_str()),
        ("authentication.k8s.io", "selfsubjectreviews")
            | (
                "authorization.k8s.io",
                "selfsubjectaccessreviews"
                    | "subjectaccessreviews"
                    | "localsubjectaccessreviews"
                    | "selfsubjectrulesreviews"
            )
    )
}

fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get(field).and_then(Value::as_str).unwrap_or("")
}

/// Serves `create` of a review; `user` made the request, `namespace` is the
/// URL's (local reviews only).
pub async fn create(
    state: &AppState,
    info: &ResourceInfo,
    namespace: &str,
    user: UserInfo,
    req: Request,
) -> Result<Response, ApiError> {
    let headers = req.headers().clone();
    let bytes = body::read(req.into_body()).await?;
    let mut obj = body::decode_object(&headers, &bytes)?.object;
    let spec = obj.get("spec").cloned().unwrap_or_else(|| json!({}));
    let status = match info.resource.as_str() {
        "selfsubjectreviews" => json!({"userInfo": super::token_review::user_info_json(&user)}),
        "selfsubjectrulesreviews" => rules_review(state, &user, str_of(&spec, "namespace")),
        "selfsubjectaccessreviews" => {
            validate(info, &spec, false, None)?;
            access_review(state, user, &spec).await
        }
        "localsubjectaccessreviews" => {
            // The object's namespace defaults to the URL's and must match it.
            let meta_ns = obj
                .get("metadata")
                .map(|m| str_of(m, "namespace"))
                .filter(|ns| !ns.is_empty())
                .unwrap_or(namespace)
                .to_string();
            if meta_ns != namespace {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            validate(info, &spec, true, Some(&meta_ns))?;
            access_review(state, subject_of(&spec), &spec).await
        }
        _ => {
            validate(info, &spec, true, None)?;
            access_review(state, subject_of(&spec), &spec).await
        }
    };
    obj.insert("apiVersion".into(), Value::String(info.api_version()));
    obj.insert("kind".into(), Value::String(info.kind.clone()));
    let meta = obj.entry("metadata").or_insert_with(|| json!({}));
    if let Value::Object(m) = meta {
        m.entry("creationTimestamp").or_insert(Value::Null);
    }
    obj.insert("status".into(), status);
    Ok(response::json(StatusCode::CREATED, &Value::Object(obj)))
}

/// The user a SubjectAccessReview asks about.
fn subject_of(spec: &Value) -> UserInfo {
    let groups: Vec<String> = spec
        .get("groups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect();
    UserInfo {
        name: str_of(spec, "user").to_string(),
        uid: str_of(spec, "uid").to_string(),
        groups,
        ..Default::default()
    }
}

/// Upstream's `ValidateSubjectAccessReviewSpec` (with `subject`: user or
/// groups required), `ValidateSelfSubjectAccessReviewSpec`, and for a
/// LocalSubjectAccessReview (`local`: its metadata.namespace) the namespace
/// and non-resource checks of `ValidateLocalSubjectAccessReview`.
fn validate(info: &ResourceInfo, spec: &Value, subject: bool, local: Option<&str>) -> Result<(), ApiError> {
    let resource = spec.get("resourceAttributes").filter(|v| v.is_object());
    let non_resource = spec.get("nonResourceAttributes").filter(|v| v.is_object());
    let mut errs = FieldErrors::new();
    if let (Some(_), Some(n)) = (resource, non_resource) {
        errs.push(FieldError::invalid(
            "spec.nonResourceAttributes",
            n.clone(),
            "cannot be specified in combination with resourceAttributes",
        ));
    }
    if resource.is_none() && non_resource.is_none() {
        errs.push(FieldError::invalid(
            "spec.resourceAttributes",
            Value::Null,
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    }
    if subject {
        let user = subject_of(spec);
        if user.name.is_empty() && user.groups.is_empty() {
            errs.push(FieldError::invalid(
                "spec.user",
                "",
                "at least one of user or group must be specified",
            ));
        }
    }
    if let Some(ns) = local {
        if let Some(r) = resource
            && str_of(r, "namespace") != ns
        {
            errs.push(FieldError::invalid(
                "spec.resourceAttributes.namespace",
                str_of(r, "namespace"),
                "must match metadata.namespace",
            ));
        }
        if let Some(n) = non_resource {
            errs.push(FieldError::invalid(
                "spec.nonResourceAttributes",
                n.clone(),
                "disallowed on this kind of request",
            ));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&info.group, &info.kind, "", &errs))
    }
}

/// Answers a validated access review for `user`.
async fn access_review(state: &AppState, user: UserInfo, spec: &Value) -> Value {
    let attrs = match spec.get("resourceAttributes").filter(|v| v.is_object()) {
        Some(r) => Attributes {
            user,
            verb: str_of(r, "verb").to_string(),
            is_resource_request: true,
            namespace: str_of(r, "namespace").to_string(),
            api_group: str_of(r, "group").to_string(),
            api_version: str_of(r, "version").to_string(),
            resource: str_of(r, "resource").to_string(),
            subresource: str_of(r, "subresource").to_string(),
            name: str_of(r, "name").to_string(),
            ..Default::default()
        },
        None => {
            let n = spec.get("nonResourceAttributes").unwrap_or(&Value::Null);
            Attributes {
                user,
                verb: str_of(n, "verb").to_string(),
                path: str_of(n, "path").to_string(),
                ..Default::default()
            }
        }
    };
    let (decision, reason) = state.authorizer.authorize_with_reason(&attrs).await;
    let mut status = json!({"allowed": decision == Decision::Allow});
    if !reason.is_empty() {
        status["reason"] = Value::String(reason);
    }
    status
}

/// The rules `user` has in `namespace` (SelfSubjectRulesReview status).
fn rules_review(state: &AppState, user: &UserInfo, namespace: &str) -> Value {
    let (rules, errors) = if user.groups.iter().any(|g| g == crate::authz::SYSTEM_MASTERS)
        || state.authorizer.mode() == crate::authz::Mode::AlwaysAllow
    {
        let all = crate::authz::rules::PolicyRule {
            verbs: vec!["*".into()],
            api_groups: vec!["*".into()],
            resources: vec!["*".into()],
            ..Default::default()
        };
        let paths = crate::authz::rules::PolicyRule {
            verbs: vec!["*".into()],
            non_resource_urls: vec!["*".into()],
            ..Default::default()
        };
        (vec![all, paths], Vec::new())
    } else {
        state.authorizer.rules_for(user, namespace)
    };
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for r in rules {
        if !r.resources.is_empty() {
            let mut v = json!({"verbs": r.verbs, "apiGroups": r.api_groups, "resources": r.resources});
            if !r.resource_names.is_empty() {
                v["resourceNames"] = json!(r.resource_names);
            }
            resource_rules.push(v);
        }
        if !r.non_resource_urls.is_empty() {
            non_resource_rules.push(json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}));
        }
    }
    let mut status = json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": !errors.is_empty(),
    });
    if !errors.is_empty() {
        status["evaluationError"] = Value::String(errors.join(", "));
    }
    status
}
