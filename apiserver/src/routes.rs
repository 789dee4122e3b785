//! The router: which handler serves which path, and the layers around them.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use rkube_storage::Store;

use crate::authn::{Authenticator, ClientCertificate, TokenFile};
use crate::health::{Endpoint, Health};
use crate::metrics::Metrics;
use crate::status::ApiError;

/// State shared by every handler: one `Arc`, so the clone each middleware
/// layer and handler takes per request is one reference count, not one
/// per field. Fields are read through `Deref`; setting one (at start-up,
/// in tests) goes through `DerefMut`, which copies the fields first if the
/// state is already shared, so an `AppState` still behaves as a value.
#[derive(Clone)]
pub struct AppState(Arc<AppStateFields>);

impl std::ops::Deref for AppState {
    type Target = AppStateFields;
    fn deref(&self) -> &AppStateFields {
        &self.0
    }
}

impl std::ops::DerefMut for AppState {
    fn deref_mut(&mut self) -> &mut AppStateFields {
        Arc::make_mut(&mut self.0)
    }
}

/// What [`AppState`] holds.
#[derive(Clone)]
pub struct AppStateFields {
    pub store: Arc<dyn Store>,
    /// The authenticators (token file, service accounts, bootstrap tokens).
    pub authn: Arc<Authenticator>,
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
    pub registry: Arc<crate::registry::Registry>,
    pub inflight: Arc<crate::observe::InflightLimits>,
    pub authorizer: Arc<crate::authz::Authorizer>,
    /// The admission plugins writes go through.
    pub admission: Arc<crate::admission::Chain>,
    /// Whether requests without credentials are the anonymous user (else 401).
    pub anonymous_auth: bool,
    /// The audit policy and log, when auditing is on.
    pub audit: Option<Arc<crate::audit::Auditor>>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, registry: Arc<crate::registry::Registry>, tokens: Arc<TokenFile>) -> Self {
        Self::with_metrics(store, registry, tokens, Arc::new(Metrics::new()))
    }

    /// State with metrics created earlier (the storage latency histogram is
    /// fed by a store wrapped before the registry was built).
    pub fn with_metrics(
        store: Arc<dyn Store>,
        registry: Arc<crate::registry::Registry>,
        tokens: Arc<TokenFile>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let health = Arc::new(Health::new(store.clone()));
        health.set_watch_cache(registry.cache.clone());
        let mut authn = Authenticator::with_token_file(Arc::unwrap_or_clone(tokens));
        authn.service_accounts = crate::authn::service_account::ServiceAccounts::ephemeral(registry.clone());
        AppState(Arc::new(AppStateFields {
            authn: Arc::new(authn),
            authorizer: Arc::new(crate::authz::Authorizer::new(
                crate::authz::Mode::default(),
                registry.clone(),
            )),
            anonymous_auth: true,
            audit: None,
            admission: Arc::new(crate::admission::Chain::default()),
            registry,
            inflight: Arc::new(crate::observe::InflightLimits::default()),
            health,
            metrics,
            store,
        }))
    }
}

/// Builds the router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/healthz", get(healthz))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/healthz/{check}", get(healthz_check))
        .route("/livez/{check}", get(livez_check))
        .route("/readyz/{check}", get(readyz_check))
        .route("/metrics", get(metrics))
        .route(
            crate::authn::openid::CONFIGURATION_PATH,
            get(crate::authn::openid::serve_configuration),
        )
        .route(crate::authn::openid::JWKS_PATH, get(crate::authn::openid::serve_jwks))
        .route("/openapi/v2", crate::openapi::v2())
        .route("/openapi/v3", crate::openapi::v3_index())
        .route("/openapi/v3/{*path}", crate::openapi::v3_document())
        .route("/api", any(crate::handlers::serve))
        .route("/api/{*rest}", any(crate::handlers::serve))
        .route("/apis", any(crate::handlers::serve))
        .route("/apis/{*rest}", any(crate::handlers::serve))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), crate::authz::middleware))
        .layer(middleware::from_fn_with_state(state.clone(), crate::observe::limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::impersonation::middleware,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), crate::audit::audit))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(middleware::from_fn_with_state(state.clone(), crate::observe::observe))
        .with_state(state)
}

/// Authenticates the request ([`Authenticator::authenticate_request`]);
/// a refusal is a 401 that never says why.
async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let cert = req.extensions().get::<ClientCertificate>();
    let header = req.headers().get(header::AUTHORIZATION);
    let user = match state
        .authn
        .authenticate_request(cert, header, state.anonymous_auth)
        .await
    {
        Ok(user) => user,
        Err(why) => {
            tracing::debug!(reason = %why.0, "unauthorized request");
            let mut resp = ApiError::unauthorized().into_response();
            crate::audit::failed_authentication(&state, &req, &mut resp);
            return resp;
        }
    };
    req.extensions_mut().insert(user.clone());
    let mut resp = next.run(req).await;
    resp.extensions_mut().insert(user);
    resp
}

async fn version() -> Response {
    json(&crate::version::info())
}

#[derive(serde::Deserialize, Default)]
struct HealthQuery {
    verbose: Option<String>,
    #[serde(default)]
    exclude: Option<String>,
}

async fn health(state: &AppState, endpoint: Endpoint, only: Option<&str>, q: HealthQuery) -> Response {
    let exclude: Vec<String> = q
        .exclude
        .map(|e| e.split(',').map(String::from).collect())
        .unwrap_or_default();
    let (code, body) = state.health.serve(endpoint, only, q.verbose.is_some(), &exclude).await;
    text(code, body)
}

async fn healthz(State(s): State<AppState>, Query(q): Query<HealthQuery>) -> Response {
    health(&s, Endpoint::Healthz, None, q).await
}
async fn livez(State(s): State<AppState>, Query(q): Query<HealthQuery>) -> Response {
    health(&s, Endpoint::Livez, None, q).await
}
async fn readyz(State(s): State<AppState>, Query(q): Query<HealthQuery>) -> Response {
    health(&s, Endpoint::Readyz, None, q).await
}
async fn healthz_check(State(s): State<AppState>, Path(c): Path<String>) -> Response {
    health(&s, Endpoint::Healthz, Some(&c), HealthQuery::default()).await
}
async fn livez_check(State(s): State<AppState>, Path(c): Path<String>) -> Response {
    health(&s, Endpoint::Livez, Some(&c), HealthQuery::default()).await
}
async fn readyz_check(State(s): State<AppState>, Path(c): Path<String>) -> Response {
    health(&s, Endpoint::Readyz, Some(&c), HealthQuery::default()).await
}

async fn metrics(State(s): State<AppState>) -> Response {
    let mut resp = (StatusCode::OK, s.metrics.render()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

async fn not_found() -> ApiError {
    ApiError::path_not_found()
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::method_not_allowed(req.method().as_str())
}

fn json<T: serde::Serialize>(value: &T) -> Response {
    match serde_json::to_vec_pretty(value) {
        Ok(body) => {
            let mut resp = (StatusCode::OK, body).into_response();
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn text(code: StatusCode, body: String) -> Response {
    let mut resp = (code, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp.headers_mut()
        .insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    resp
}
