//! An in-process API server over the memory store, for tests of the HTTP
//! semantics of handlers and strategies without a binary, TLS or a port.
//!
//! ```ignore
//! let server = TestServer::new().await;
//! let (code, body) = server.post("/api/v1/namespaces/default/configmaps", json!({...})).await;
//! ```

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use rkube_storage::Store;
use rkube_storage::memory::MemoryStore;
use serde_json::Value;
use tower::ServiceExt;

use crate::authn::TokenFile;
use crate::registry::Registry;
use crate::routes::{AppState, router};

/// The admin token every [`TestServer`] accepts.
pub const ADMIN_TOKEN: &str = "test-admin-token";
/// Tokens of unprivileged users (only `system:authenticated`), for
/// [`TestServer::request_as`]: `alice` and `bob` (who is also in group `devs`).
pub const ALICE_TOKEN: &str = "test-alice-token";
pub const BOB_TOKEN: &str = "test-bob-token";

/// A router over a fresh memory store with the system namespaces created.
pub struct TestServer {
    pub router: Router,
    pub state: AppState,
}

impl TestServer {
    /// A server over a fresh memory store.
    pub async fn new() -> Self {
        Self::with_store(Arc::new(MemoryStore::new())).await
    }

    /// A server over `store`. Like upstream's integration servers, it runs
    /// without the ServiceAccount and TaintNodesByCondition admission
    /// plugins, whose controllers (service accounts, node lifecycle) are
    /// not running here.
    pub async fn with_store(store: Arc<dyn Store>) -> Self {
        let chain = crate::admission::Chain::without(&[
            crate::admission::Plugin::ServiceAccount,
            crate::admission::Plugin::TaintNodesByCondition,
        ]);
        Self::with_store_and_admission(store, chain).await
    }

    /// A server over a fresh memory store with exactly `chain` admitting writes.
    pub async fn with_admission(chain: crate::admission::Chain) -> Self {
        Self::with_store_and_admission(Arc::new(MemoryStore::new()), chain).await
    }

    async fn with_store_and_admission(store: Arc<dyn Store>, chain: crate::admission::Chain) -> Self {
        let registry = Arc::new(Registry::new(store.clone(), crate::resources::ResourceTable::builtin()));
        // Bootstrapped like the real server (the secure port is a stand-in).
        let bootstrapped = async {
            crate::bootstrap::ensure_system_namespaces(&registry).await?;
            crate::bootstrap_priority::ensure_priority_classes(&registry).await?;
            crate::bootstrap::ensure_kubernetes_service(&registry, 6443).await?;
            crate::authz::policy::reconcile(&registry).await
        };
        if let Err(e) = bootstrapped.await {
            panic!("bootstrapping the test server: {e:?}");
        }
        let tokens = match TokenFile::parse(&format!(
            "{ADMIN_TOKEN},admin,admin,system:masters\n{ALICE_TOKEN},alice,alice-uid\n{BOB_TOKEN},bob,bob-uid,devs\n"
        )) {
            Ok(t) => t,
            Err(e) => panic!("the test token file: {e:?}"),
        };
        let mut state = AppState::new(store, registry, Arc::new(tokens));
        state.admission = Arc::new(chain);
        TestServer {
            router: router(state.clone()),
            state,
        }
    }

    /// The registry behind the server.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.state.registry
    }

    /// Sends a request as the admin user (unless it carries its own
    /// `Authorization`; an empty one is removed: the anonymous user) and
    /// returns the raw response.
    pub async fn send(&self, mut req: Request<Body>) -> axum::response::Response {
        if req.headers().get(header::AUTHORIZATION).is_some_and(|v| v.is_empty()) {
            req.headers_mut().remove(header::AUTHORIZATION);
        } else if !req.headers().contains_key(header::AUTHORIZATION) {
            let value = format!("Bearer {ADMIN_TOKEN}");
            if let Ok(v) = value.parse() {
                req.headers_mut().insert(header::AUTHORIZATION, v);
            }
        }
        match self.router.clone().oneshot(req).await {
            Ok(resp) => resp,
            Err(never) => match never {},
        }
    }

    /// Sends `method path` with an optional body of `content_type` and
    /// returns the status and the body as JSON (`Value::Null` when empty,
    /// `Value::String` when it is not JSON).
    pub async fn request_raw(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Option<Vec<u8>>,
    ) -> (StatusCode, Value) {
        let mut builder = Request::builder().method(method).uri(path);
        if body.is_some() {
            builder = builder.header(header::CONTENT_TYPE, content_type);
        }
        let req = match builder.body(body.map(Body::from).unwrap_or_else(Body::empty)) {
            Ok(r) => r,
            Err(e) => panic!("building {method} {path}: {e}"),
        };
        let resp = self.send(req).await;
        let status = resp.status();
        let bytes = match axum::body::to_bytes(resp.into_body(), usize::MAX).await {
            Ok(b) => b,
            Err(e) => panic!("reading the body of {method} {path}: {e}"),
        };
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, value)
    }

    /// Sends a JSON body (or none) with `Authorization: Bearer <token>`
    /// (`None`: no credentials, the anonymous user).
    pub async fn request_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut builder = Request::builder().method(method).uri(path);
        if body.is_some() {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        // An empty header marks "no credentials" to `send`, which strips it.
        builder = builder.header(
            header::AUTHORIZATION,
            token.map(|t| format!("Bearer {t}")).unwrap_or_default(),
        );
        let req = match builder.body(body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty)) {
            Ok(r) => r,
            Err(e) => panic!("building {method} {path}: {e}"),
        };
        let resp = self.send(req).await;
        let status = resp.status();
        let bytes = match axum::body::to_bytes(resp.into_body(), usize::MAX).await {
            Ok(b) => b,
            Err(e) => panic!("reading the body of {method} {path}: {e}"),
        };
        let value =
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, value)
    }

    /// Sends a JSON body (or none).
    pub async fn request(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let bytes = body.map(|b| b.to_string().into_bytes());
        self.request_raw(method, path, "application/json", bytes).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.request("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.request("POST", path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.request("PUT", path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.request("DELETE", path, None).await
    }

    /// PATCH with `content_type` (`application/merge-patch+json`, ...).
    pub async fn patch(&self, path: &str, content_type: &str, body: Value) -> (StatusCode, Value) {
        self.request_raw("PATCH", path, content_type, Some(body.to_string().into_bytes()))
            .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn create_get_and_not_found() {
        let s = TestServer::new().await;
        let (code, body) = s
            .post(
                "/api/v1/namespaces/default/configmaps",
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}}),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
        let (code, body) = s.get("/api/v1/namespaces/default/configmaps/a").await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(body["data"]["k"], "v");
        let (code, body) = s.get("/api/v1/namespaces/default/configmaps/b").await;
        assert_eq!(code, StatusCode::NOT_FOUND);
        assert_eq!(body["reason"], "NotFound");
    }
}
