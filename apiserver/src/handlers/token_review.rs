//! `POST /apis/authentication.k8s.io/v1/tokenreviews`: asks the server's
//! token authenticators about a token, as upstream's TokenReview REST
//! (never stored). `status.error` says why a token was refused; the
//! review itself is only refused for a missing token.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::{body, response};
use crate::authn::UserInfo;
use crate::resources::ResourceInfo;
use crate::routes::AppState;
use crate::status::ApiError;

/// Whether `info` is TokenReview.
pub fn serves(info: &ResourceInfo) -> bool {
    info.group == "authentication.k8s.io" && info.resource == "tokenreviews"
}

/// A user as `authentication.k8s.io/v1` UserInfo.
pub fn user_info_json(user: &UserInfo) -> Value {
    let mut m = Map::new();
    m.insert("username".into(), Value::String(user.name.clone()));
    if !user.uid.is_empty() {
        m.insert("uid".into(), Value::String(user.uid.clone()));
    }
    if !user.groups.is_empty() {
        m.insert("groups".into(), json!(user.groups));
    }
    if !user.extra.is_empty() {
        m.insert("extra".into(), json!(user.extra));
    }
    Value::Object(m)
}

/// Serves `create` of a TokenReview.
pub async fn create(state: &AppState, info: &ResourceInfo, req: Request) -> Result<Response, ApiError> {
    let headers = req.headers().clone();
    let bytes = body::read(req.into_body()).await?;
    let mut obj = body::decode_object(&headers, &bytes)?.object;
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    let token = spec.get("token").and_then(Value::as_str).unwrap_or("");
    if token.is_empty() {
        return Err(ApiError::bad_request(
            "token is required for TokenReview in authentication",
        ));
    }
    let asked: Vec<String> = spec
        .get("audiences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect();
    let api_audiences = state
        .authn
        .service_accounts
        .as_ref()
        .map(|sa| sa.settings.api_audiences.clone())
        .unwrap_or_default();
    let audiences = if asked.is_empty() { api_audiences } else { asked.clone() };
    let mut status = Map::new();
    match state.authn.authenticate_token(token, Some(&audiences)).await {
        Ok(r) => {
            // Upstream refuses a review whose authenticator answered for
            // none of the audiences asked for.
            if !asked.is_empty() && !r.audiences.is_empty() && !r.audiences.iter().any(|a| asked.contains(a)) {
                return Err(ApiError::internal("error validating audiences"));
            }
            status.insert("authenticated".into(), Value::Bool(true));
            status.insert("user".into(), user_info_json(&r.user));
            if !r.audiences.is_empty() {
                status.insert("audiences".into(), json!(r.audiences));
            }
        }
        Err(why) => {
            status.insert("user".into(), json!({}));
            status.insert("error".into(), Value::String(why));
        }
    }
    obj.insert("apiVersion".into(), Value::String(info.api_version()));
    obj.insert("kind".into(), Value::String(info.kind.clone()));
    if let Value::Object(m) = obj.entry("metadata").or_insert_with(|| json!({})) {
        m.entry("creationTimestamp").or_insert(Value::Null);
    }
    obj.insert("status".into(), Value::Object(status));
    Ok(response::json(StatusCode::CREATED, &Value::Object(obj)))
}
