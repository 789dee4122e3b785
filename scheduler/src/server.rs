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
        let m = Arc::new(Metrics::default());
        m.attempt("default-scheduler", "scheduled", 0.002);
        m.scheduled(2, 0.5);
        m.preemption_attempts.inc();
        m.preemption_victims.observe(3.0);
        m.set_queue_sizes(crate::queue::QueueSizes {
            active: 2,
            ..Default::default()
        });
        let (addr, serve) = bind("127.0.0.1:0".parse().unwrap(), m).await.unwrap();
        let task = tokio::spawn(serve);
        let health = get(addr, "/healthz").await;
        assert!(health.starts_with("HTTP/1.1 200") && health.ends_with("ok"), "{health}");
        let metrics = get(addr, "/metrics").await;
        assert!(
            metrics.contains(r#"scheduler_schedule_attempts_total{profile="default-scheduler",result="scheduled"} 1"#),
            "{metrics}"
        );
        assert!(
            metrics.contains(r#"scheduler_pending_pods{queue="active"} 2"#),
            "{metrics}"
        );
        assert!(
            metrics.contains("scheduler_scheduling_attempt_duration_seconds_bucket"),
            "{metrics}"
        );
        // Upstream's SLI latency is labelled by the attempts the pod took;
        // preemption victims are a histogram (1 doubling to 64).
        for line in [
            r#"scheduler_pod_scheduling_sli_duration_seconds_count{attempts="2"} 1"#,
            "scheduler_pod_scheduling_attempts_count 1",
            "# TYPE scheduler_preemption_victims histogram",
            "scheduler_preemption_victims_count 1",
            "scheduler_preemption_attempts_total 1",
        ] {
            assert!(metrics.contains(line), "{line} in {metrics}");
        }
        let victim_buckets: Vec<&str> = metrics
            .lines()
            .filter(|l| l.starts_with("scheduler_preemption_victims_bucket"))
            .collect();
        assert_eq!(victim_buckets.len(), 8, "1, 2, 4 ... 64 and +Inf: {victim_buckets:?}");
        task.abort();
    }
}
