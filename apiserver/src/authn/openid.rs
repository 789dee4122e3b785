//! Service-account issuer discovery: `/.well-known/openid-configuration`
//! and `/openid/v1/jwks`, so that other parties can verify the tokens
//! this server issues. Served, as upstream, only when the issuer is an
//! https URL without query or fragment; who may read them is RBAC's
//! (`system:service-account-issuer-discovery`, bound to
//! `system:serviceaccounts` by default).

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::service_account::ServiceAccounts;
use crate::routes::AppState;
use crate::status::ApiError;

/// The JWKS path.
pub const JWKS_PATH: &str = "/openid/v1/jwks";
/// The discovery document path.
pub const CONFIGURATION_PATH: &str = "/.well-known/openid-configuration";

/// Why the discovery documents are not served for an issuer (upstream's
/// checks), or `None` when they are.
pub fn unservable(issuer: &str) -> Option<String> {
    let Some(rest) = issuer.strip_prefix("https://") else {
        return Some(format!("issuer URL must use https scheme, got: {issuer}"));
    };
    if rest.contains('?') {
        return Some(format!("issuer URL may not include a query, got: {issuer}"));
    }
    if rest.contains('#') {
        return Some(format!("issuer URL may not include a fragment, got: {issuer}"));
    }
    None
}

/// The discovery document.
pub fn configuration(sa: &ServiceAccounts) -> Value {
    let mut algs: Vec<&str> = sa.keys.iter().filter_map(|k| k.jwk["alg"].as_str()).collect();
    algs.sort_unstable();
    algs.dedup();
    json!({
        "issuer": sa.issuer(),
        "jwks_uri": sa.settings.jwks_uri,
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
    })
}

/// The key set.
pub fn jwks(sa: &ServiceAccounts) -> Value {
    json!({"keys": sa.keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()})
}

fn serve(state: &AppState, content_type: &'static str, doc: fn(&ServiceAccounts) -> Value) -> Response {
    let Some(sa) = state
        .authn
        .service_accounts
        .as_ref()
        .filter(|sa| unservable(sa.issuer()).is_none())
    else {
        return ApiError::path_not_found().into_response();
    };
    let body = serde_json::to_vec(&doc(sa)).unwrap_or_default();
    let mut resp = (StatusCode::OK, body).into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    resp
}

/// `GET /.well-known/openid-configuration`.
pub async fn serve_configuration(State(state): State<AppState>) -> Response {
    serve(&state, "application/json", configuration)
}

/// `GET /openid/v1/jwks`.
pub async fn serve_jwks(State(state): State<AppState>) -> Response {
    serve(&state, "application/jwk-set+json", jwks)
}
