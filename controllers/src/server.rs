//! The health and metrics endpoint (`--secure-port`'s plain-HTTP cousin,
//! like kube-controller-manager's `/healthz` and `/metrics`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::metrics::Metrics;

async fn healthz() -> impl IntoResponse {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "ok",
    )
}

async fn metrics(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        metrics.encode(),
    )
}

/// The router: `/healthz`, `/livez`, `/readyz` and `/metrics`.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/livez", get(healthz))
        .route("/readyz", get(healthz))
        .route("/metrics", get(self::metrics))
        .with_state(metrics)
}

/// Binds `addr` and serves [`router`] until the task is dropped; returns
/// the bound address (port 0 picks a free one).
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = router(metrics);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "health server stopped");
        }
    });
    Ok((bound, task))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn healthz_and_metrics() {
        let metrics = Arc::new(Metrics::new());
        let queue = crate::runner::new_queue("replicaset", &metrics);
        for key in ["default/a", "default/b", "default/a"] {
            queue.add(key.to_string());
        }
        // Taking a key changes the depth, not the adds.
        let _ = queue.get().await;
        metrics.observe_work(
            queue.name(),
            "replicaset-controller",
            std::time::Duration::from_millis(3),
            true,
        );
        let (addr, task) = serve("127.0.0.1:0".parse().unwrap(), metrics).await.unwrap();
        let health = get(addr, "/healthz").await;
        assert!(health.starts_with("HTTP/1.1 200"), "{health}");
        assert!(health.ends_with("ok"), "{health}");
        let m = get(addr, "/metrics").await;
        // Queues by upstream's queue name, failures by controller name.
        assert!(m.contains("workqueue_depth{name=\"replicaset\"} 1"), "{m}");
        assert!(m.contains("workqueue_adds_total{name=\"replicaset\"} 2"), "{m}");
        assert!(m.contains("workqueue_retries_total{name=\"replicaset\"} 1"), "{m}");
        assert!(
            m.contains("controller_sync_errors_total{name=\"replicaset-controller\"} 1"),
            "{m}"
        );
        assert!(
            m.contains("workqueue_work_duration_seconds_count{name=\"replicaset\"} 1"),
            "{m}"
        );
        task.abort();
    }
}
