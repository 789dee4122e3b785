//! Request observation and admission by load.
//!
//! [`observe`] records the request metrics (by verb, resource and code) and
//! writes one structured DEBUG log line per request. [`limit`] caps the requests being
//! served, in the spirit of API Priority and Fairness with its bootstrap
//! configuration: the `exempt` flow (group `system:masters`, and the health
//! probes) is never held back; everyone else shares 400 read-only and 200
//! mutating slots (the defaults of upstream's `--max-requests-inflight` and
//! `--max-mutating-requests-inflight`), waits in line for
//! one when they are taken, and gets 429 with `Retry-After` only after
//! waiting a quarter of the request timeout (upstream's queue wait limit).
//! Watches and other long-running requests are not counted, as upstream.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::authn::UserInfo;
use crate::metrics::{InflightLabels, LatencyLabels, RequestLabels};
use crate::request_info::{self, RequestInfo};
use crate::routes::AppState;
use crate::status::ApiError;

/// Default cap on read-only requests in flight.
pub const MAX_READ_INFLIGHT: usize = 400;
/// Default cap on mutating requests in flight.
pub const MAX_MUTATING_INFLIGHT: usize = 200;
/// How long a request waits for a slot: a quarter of the 60 s request
/// timeout, as upstream's flow control.
pub const QUEUE_WAIT: Duration = Duration::from_secs(15);
/// The group whose requests are exempt (upstream's `exempt` FlowSchema).
const EXEMPT_GROUP: &str = "system:masters";
/// Health probes (upstream's `probes` FlowSchema, exempt priority level).
const PROBE_PATHS: [&str; 3] = ["/healthz", "/livez", "/readyz"];

/// The in-flight slots of both kinds.
#[derive(Debug)]
pub struct InflightLimits {
    read: Arc<Semaphore>,
    mutating: Arc<Semaphore>,
    wait: Duration,
}

impl Default for InflightLimits {
    fn default() -> Self {
        Self::new(MAX_READ_INFLIGHT, MAX_MUTATING_INFLIGHT)
    }
}

impl InflightLimits {
    pub fn new(max_read: usize, max_mutating: usize) -> Self {
        Self::with_wait(max_read, max_mutating, QUEUE_WAIT)
    }

    pub fn with_wait(max_read: usize, max_mutating: usize, wait: Duration) -> Self {
        InflightLimits {
            read: Arc::new(Semaphore::new(max_read)),
            mutating: Arc::new(Semaphore::new(max_mutating)),
            wait,
        }
    }

    /// A slot of the kind, waiting in line for at most the queue wait;
    /// `None` when none freed up in time.
    async fn acquire(&self, read_only: bool) -> Option<OwnedSemaphorePermit> {
        let sem = if read_only { &self.read } else { &self.mutating };
        if let Ok(p) = sem.clone().try_acquire_owned() {
            return Some(p);
        }
        tokio::time::timeout(self.wait, sem.clone().acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
    }
}

fn is_long_running(info: &request_info::RequestInfo) -> bool {
    info.verb == "watch"
        || matches!(
            info.subresource.as_str(),
            "exec" | "attach" | "portforward" | "proxy" | "log"
        )
}

fn is_exempt(req: &Request) -> bool {
    let path = req.uri().path();
    if PROBE_PATHS.iter().any(|p| {
        path.strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }) {
        return true;
    }
    req.extensions()
        .get::<UserInfo>()
        .is_some_and(|u| u.groups.iter().any(|g| g == EXEMPT_GROUP))
}

/// The request's [`RequestInfo`]: the one [`observe`] parsed and attached
/// (so the layers and the handler do not parse the path again), or parsed
/// now for a request that did not pass through it.
pub fn request_info(req: &Request) -> Arc<RequestInfo> {
    match req.extensions().get::<Arc<RequestInfo>>() {
        Some(info) => info.clone(),
        None => Arc::new(request_info::parse(req.method(), req.uri().path(), req.uri().query())),
    }
}

/// The in-flight cap; runs after authentication and impersonation, so it
/// knows who is asking.
pub async fn limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let info = request_info(&req);
    if is_long_running(&info) {
        return next.run(req).await;
    }
    let read_only = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let permit = if is_exempt(&req) {
        None
    } else {
        match state.inflight.acquire(read_only).await {
            Some(p) => Some(p),
            None => return ApiError::too_many_requests(1).into_response(),
        }
    };
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
    drop(permit);
    resp
}

/// The logging and metrics middleware (outermost).
pub async fn observe(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let info = Arc::new(request_info::parse(req.method(), req.uri().path(), req.uri().query()));
    req.extensions_mut().insert(info.clone());
    let method = req.method().clone();
    let long_running = is_long_running(&info);
    let resp = next.run(req).await;
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
    let user = resp
        .extensions()
        .get::<UserInfo>()
        .map(|u| u.name.as_str())
        .unwrap_or("");
    // Upstream's httplog line is -v=3: DEBUG here (RUST_LOG=debug shows it).
    tracing::debug!(verb = %verb, path = %info.path, resource = %resource, namespace = %info.namespace, code, user, latency_us = elapsed.as_micros() as u64, "request");
    // One set of label strings per request: the latency's reuse the count's.
    let requests = RequestLabels {
        verb,
        resource,
        code: code.to_string(),
    };
    state.metrics.requests.get_or_create(&requests).inc();
    if !long_running {
        state
            .metrics
            .request_duration
            .get_or_create(&LatencyLabels {
                verb: requests.verb,
                resource: requests.resource,
            })
            .observe(elapsed.as_secs_f64());
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masters_and_health_probes_are_exempt() {
        let req = |path: &str, groups: &[&str]| {
            let mut r = Request::new(axum::body::Body::empty());
            *r.uri_mut() = path.parse().unwrap_or_default();
            r.extensions_mut().insert(UserInfo {
                name: "u".into(),
                groups: groups.iter().map(|g| g.to_string()).collect(),
                ..UserInfo::default()
            });
            r
        };
        assert!(is_exempt(&req(
            "/api/v1/pods",
            &["system:masters", "system:authenticated"]
        )));
        assert!(!is_exempt(&req("/api/v1/pods", &["system:authenticated"])));
        assert!(is_exempt(&req("/readyz", &[])));
        assert!(is_exempt(&req("/healthz/etcd", &[])));
        assert!(!is_exempt(&req("/healthzx", &[])));
    }

    #[tokio::test]
    async fn caps_each_kind_separately_waits_for_a_slot_and_frees_slots() {
        let limits = InflightLimits::with_wait(2, 1, Duration::from_millis(50));
        let a = limits.acquire(true).await;
        let b = limits.acquire(true).await;
        assert!(a.is_some() && b.is_some());
        assert!(
            limits.acquire(true).await.is_none(),
            "third read over the cap, after the wait"
        );
        let m = limits.acquire(false).await;
        assert!(m.is_some());
        assert!(limits.acquire(false).await.is_none());
        drop(a);
        assert!(limits.acquire(true).await.is_some(), "a freed slot is reusable");
        // A request in line gets the slot freed while it waits.
        let limits = Arc::new(InflightLimits::with_wait(1, 1, Duration::from_secs(5)));
        let held = limits.acquire(false).await;
        let l = limits.clone();
        let waiter = tokio::spawn(async move { l.acquire(false).await.is_some() });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(held);
        assert!(waiter.await.unwrap_or(false), "the waiting request got the freed slot");
        drop(m);
    }
}
