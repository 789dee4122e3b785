//! Request observation: one structured log line and the request metrics per
//! request, plus the in-flight gauges.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use crate::authn::UserInfo;
use crate::metrics::{InflightLabels, LatencyLabels, RequestLabels};
use crate::routes::AppState;

/// Kubernetes verb of a non-resource request.
fn verb(method: &Method) -> &'static str {
    match *method {
        Method::GET => "get",
        Method::HEAD => "head",
        Method::POST => "post",
        Method::PUT => "put",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        Method::OPTIONS => "options",
        _ => "other",
    }
}

/// The middleware.
pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let read_only = matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    let inflight = state
        .metrics
        .inflight
        .get_or_create(&InflightLabels {
            request_kind: if read_only { "readOnly" } else { "mutating" },
        })
        .clone();
    inflight.inc();
    let resp = next.run(req).await;
    inflight.dec();
    let elapsed = start.elapsed();
    let code = resp.status().as_u16();
    let verb = verb(&method);
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            verb: verb.to_string(),
            resource: String::new(),
            code: code.to_string(),
        })
        .inc();
    state
        .metrics
        .request_duration
        .get_or_create(&LatencyLabels {
            verb: verb.to_string(),
            resource: String::new(),
        })
        .observe(elapsed.as_secs_f64());
    let user = resp
        .extensions()
        .get::<UserInfo>()
        .map(|u| u.name.as_str())
        .unwrap_or("");
    tracing::info!(
        verb,
        path,
        code,
        user,
        latency_us = elapsed.as_micros() as u64,
        "request"
    );
    resp
}
