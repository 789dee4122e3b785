//! The scheduler's HTTP endpoint: `/healthz` and `/metrics` (plain HTTP on
//! `--bind-address:--secure-port` for now).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::get;

use crate::metrics::Metrics;

async fn healthz() -> &'static str {
    "ok"
}

async fn metrics(State(m): State<Arc<Metrics>>) -> ([(&'static str, &'static str); 1], String) {
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        m.encode(),
    )
}

/// Binds `addr` and serves until the future is dropped; returns the bound
/// address (port 0 picks one) and the serving future.
pub async fn bind(
    addr: SocketAddr,
    m: Arc<Metrics>,
) -> std::io::Result<(SocketAddr, impl std::future::Future<Output = std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/livez", get(healthz))
        .route("/readyz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(m);
    Ok((local, async move { axum::serve(listener, app).await }))
}
