//! The Kubernetes REST API: requests under `/api` and `/apis` are parsed
//! into a [`RequestInfo`](crate::request_info::RequestInfo), routed to
//! discovery or to the resource's generic store by verb, and answered in
//! JSON (errors as `metav1.Status`).

pub mod access_review;
pub mod binding;
pub mod body;
pub mod component_status;
pub mod crud;
pub mod discovery;
pub mod eviction;
pub mod negotiate;
pub mod params;
pub mod render;
pub mod response;
pub mod scale;
pub mod token_request;
pub mod token_review;
pub mod watch;

#[cfg(test)]
mod proptests;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};

use crate::request_info::RequestInfo;
use crate::routes::AppState;
use crate::status::{ApiError, GroupResource};

use params::Params;

/// Serves any request under `/api` or `/apis`.
pub async fn serve(State(state): State<AppState>, req: Request) -> Response {
    let info = crate::observe::request_info(&req);
    let encoding = info
        .is_resource_request
        .then(|| negotiate::response_encoding(req.headers()));
    // Admission webhooks' warnings become Warning headers, on errors too.
    let (result, warnings) = crate::admission::webhook::warnings::collect(dispatch(&state, &info, req)).await;
    let resp = match result {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    };
    let resp = response::with_warnings(resp, &warnings);
    match encoding {
        Some(encoding) => response::transcode(encoding, resp).await,
        None => resp,
    }
}

async fn dispatch(state: &AppState, info: &RequestInfo, req: Request) -> Result<Response, ApiError> {
    if !info.is_resource_request {
        return discovery::serve(state, info, req.headers());
    }
    let params = Params::parse(req.uri().query());
    let resource = state
        .registry
        .resources
        .get(&info.api_group, &info.api_version, &info.resource)
        .cloned()
        .ok_or_else(ApiError::path_not_found)?;
    let gr = GroupResource {
        group: &resource.group,
        resource: &resource.resource,
    };
    if !info.subresource.is_empty() && resource.subresource(&info.subresource).is_none() {
        return Err(ApiError::path_not_found());
    }
    // Namespaced resources need a namespace except for list and watch
    // across all namespaces; cluster-scoped ones have none.
    let namespace = if resource.namespaced {
        info.namespace.clone()
    } else {
        String::new()
    };
    if !resource.namespaced && !info.namespace.is_empty() && info.resource != "namespaces" {
        return Err(ApiError::path_not_found());
    }
    let verb = info.verb.as_str();
    let allowed = match info.subresource.as_str() {
        "" => resource.has_verb(verb),
        sub => resource
            .subresource(sub)
            .is_some_and(|s| s.verbs.iter().any(|v| v == verb)),
    };
    if !allowed {
        return Err(ApiError::method_not_supported(gr, verb));
    }
    if resource.namespaced && namespace.is_empty() && !matches!(verb, "list" | "watch") {
        return Err(ApiError::path_not_found());
    }
    if verb == "create" && info.subresource.is_empty() && token_review::serves(&resource) {
        return token_review::create(state, &resource, req).await;
    }
    if verb == "create" && info.subresource.is_empty() && access_review::serves(&resource) {
        let user = req
            .extensions()
            .get::<crate::authn::UserInfo>()
            .cloned()
            .unwrap_or_default();
        return access_review::create(state, &resource, &namespace, user, req).await;
    }
    if component_status::serves(&resource) {
        return component_status::serve(state, &resource, info, &params, req.headers()).await;
    }
    // `bindings` has no objects of its own: it writes pods.
    let store_resource = match (resource.group.as_str(), resource.resource.as_str()) {
        ("", "bindings") => "pods",
        (_, r) => r,
    };
    let store = state
        .registry
        .store(&resource.group, store_resource)
        .cloned()
        .ok_or_else(|| ApiError::method_not_supported(gr, verb))?;
    let ctx = crud::Ctx {
        state,
        info,
        resource: &resource,
        store: &store,
        namespace: &namespace,
        params: &params,
    };
    match (verb, info.subresource.as_str()) {
        ("get", "" | "status" | "ephemeralcontainers" | "approval") => crud::get(&ctx, req.headers()).await,
        ("list", "") => crud::list(&ctx, req.headers()).await,
        ("watch", "") => watch::serve(&ctx, req.headers()).await,
        ("create", "") if resource.resource == "bindings" && resource.group.is_empty() => {
            binding::create(&ctx, req).await
        }
        ("create", "") => crud::create(&ctx, req).await,
        ("update", "" | "status" | "finalize" | "ephemeralcontainers" | "approval") => crud::update(&ctx, req).await,
        ("delete", "") => crud::delete(&ctx, req).await,
        ("deletecollection", "") => crud::delete_collection(&ctx, req).await,
        ("patch", "" | "status" | "ephemeralcontainers" | "approval") => crud::patch(&ctx, req).await,
        ("create", "binding") => binding::create(&ctx, req).await,
        ("create", "eviction") => eviction::create(&ctx, req).await,
        ("create", "token") if resource.resource == "serviceaccounts" => token_request::create(&ctx, req).await,
        ("get", "scale") => scale::get(&ctx).await,
        ("update", "scale") => scale::write(&ctx, req, false).await,
        ("patch", "scale") => scale::write(&ctx, req, true).await,
        _ => Err(ApiError::method_not_supported(gr, verb)),
    }
}
