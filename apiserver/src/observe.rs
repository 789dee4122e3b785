//! Request observation and admission by load: one structured log line and
//! the request metrics (by verb, resource and code) per request, the
//! in-flight gauges, and the in-flight cap (kube-apiserver's
//! `--max-requests-inflight` 400 and `--max-mutating-requests-inflight`
//! 200): past it a request gets 429 with `Retry-After`. Watches are
//! long-running and not counted, as upstream.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::authn::UserInfo;
use crate::metrics::{InflightLabels, LatencyLabels, RequestLabels};
use crate::request_info;
use crate::routes::AppState;
use crate::status::ApiError;

/// Default cap on read-only requests in flight.
pub const MAX_READ_INFLIGHT: usize = 400;
/// Default cap on mutating requests in flight.
pub const MAX_MUTATING_INFLIGHT: usize = 200;

/// In-flight counters and their caps.
#[derive(Debug)]
pub struct InflightLimits {
    read: AtomicUsize,
    mutating: AtomicUsize,
    max_read: usize,
    max_mutating: usize,
}

impl Default for InflightLimits {
    fn default() -> Self {
        Self::new(MAX_READ_INFLIGHT, MAX_MUTATING_INFLIGHT)
    }
}

impl InflightLimits {
    pub fn new(max_read: usize, max_mutating: usize) -> Self {
        InflightLimits {
            read: AtomicUsize::new(0),
            mutating: AtomicUsize::new(0),
            max_read,
            max_mutating,
        }
    }

    fn acquire(&self, read_only: bool) -> Option<InflightGuard<'_>> {
        let (counter, max) = if read_only {
            (&self.read, self.max_read)
        } else {
            (&self.mutating, self.max_mutating)
        };
        let prev = counter.fetch_add(1, Ordering::AcqRel);
        if max > 0 && prev >= max {
            counter.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(InflightGuard { counter })
    }
}

/// Releases an in-flight slot when dropped.
struct InflightGuard<'a> {
    counter: &'a AtomicUsize,
}

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The middleware.
pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let info = request_info::parse(req.method(), req.uri().path(), req.uri().query());
    let method = req.method().clone();
    let read_only = matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    let long_running = info.verb == "watch"
        || matches!(
            info.subresource.as_str(),
            "exec" | "attach" | "portforward" | "proxy" | "log"
        );
    let slot = if long_running {
        None
    } else {
        state.inflight.acquire(read_only).map(Some)
    };
    let resp = match slot {
        None if !long_running => ApiError::too_many_requests(1).into_response(),
        _ => {
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
            resp
        }
    };
    let elapsed = start.elapsed();
    let code = resp.status().as_u16();
    let resource = if info.subresource.is_empty() {
        info.resource.clone()
    } else {
        format!("{}/{}", info.resource, info.subresource)
    };
    // Upstream's metric verbs: LIST and WATCH for collections, else the
    // HTTP method.
    let verb = match info.verb.as_str() {
        "list" => "LIST".to_string(),
        "watch" => "WATCH".to_string(),
        _ => info
            .path
            .is_empty()
            .then(String::new)
            .unwrap_or_else(|| method.as_str().to_string()),
    };
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            verb: verb.clone(),
            resource: resource.clone(),
            code: code.to_string(),
        })
        .inc();
    if !long_running {
        state
            .metrics
            .request_duration
            .get_or_create(&LatencyLabels {
                verb: verb.clone(),
                resource: resource.clone(),
            })
            .observe(elapsed.as_secs_f64());
    }
    let user = resp
        .extensions()
        .get::<UserInfo>()
        .map(|u| u.name.as_str())
        .unwrap_or("");
    tracing::info!(verb = %verb, path = %info.path, resource = %resource, namespace = %info.namespace, code, user, latency_us = elapsed.as_micros() as u64, "request");
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_each_kind_separately_and_frees_slots() {
        let limits = InflightLimits::new(2, 1);
        let a = limits.acquire(true);
        let b = limits.acquire(true);
        assert!(a.is_some() && b.is_some());
        assert!(limits.acquire(true).is_none(), "third read over the cap");
        let m = limits.acquire(false);
        assert!(m.is_some());
        assert!(limits.acquire(false).is_none());
        drop(a);
        assert!(limits.acquire(true).is_some(), "a freed slot is reusable");
        drop(m);
        assert!(limits.acquire(false).is_some());
    }
}
