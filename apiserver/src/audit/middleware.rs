//! The audit filter: one middleware, just inside authentication (so it
//! knows the user, and requests refused by impersonation, authorization or
//! admission are logged too), that writes an `audit.k8s.io/v1` Event at
//! each stage the policy keeps: `RequestReceived` before the handler runs,
//! `ResponseComplete` when it is done, and for long-running requests
//! (watch, exec, logs) `ResponseStarted` when the headers go out and
//! `ResponseComplete` when the body ends.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Map, Value, json};

use super::Auditor;
use super::annotations::Annotations;
use super::policy::{Decision, Level, Stage};
use crate::authn::UserInfo;
use crate::request_info::{self, RequestInfo};
use crate::routes::AppState;

/// Bodies larger than this are not copied into events (upstream's request
/// body limit is 3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;

/// The header carrying the request's audit ID, in and out.
pub const AUDIT_ID_HEADER: &str = "Audit-Id";

/// Set by the impersonation filter to the user a request acts as, so the
/// event can name both (`user` and `impersonatedUser`).
#[derive(Debug, Clone, Default)]
pub struct ImpersonatedUser(pub Arc<Mutex<Option<UserInfo>>>);

impl ImpersonatedUser {
    /// Records the impersonated user, if the request is audited.
    pub fn record(req: &Request, user: &UserInfo) {
        if let Some(slot) = req.extensions().get::<ImpersonatedUser>()
            && let Ok(mut s) = slot.0.lock()
        {
            *s = Some(user.clone());
        }
    }
}

/// `metav1.MicroTime` as upstream renders it.
fn micro_time(t: time::OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

fn user_json(u: &UserInfo) -> Value {
    let mut m = Map::new();
    if !u.name.is_empty() {
        m.insert("username".into(), json!(u.name));
    }
    if !u.uid.is_empty() {
        m.insert("uid".into(), json!(u.uid));
    }
    if !u.groups.is_empty() {
        m.insert("groups".into(), json!(u.groups));
    }
    if !u.extra.is_empty() {
        m.insert("extra".into(), json!(u.extra));
    }
    Value::Object(m)
}

fn object_ref(info: &RequestInfo) -> Value {
    let mut m = Map::new();
    let mut put = |k: &str, v: &str| {
        if !v.is_empty() {
            m.insert(k.into(), json!(v));
        }
    };
    put("resource", &info.resource);
    put("namespace", &info.namespace);
    put("name", &info.name);
    put("apiGroup", &info.api_group);
    put("apiVersion", &info.api_version);
    put("subresource", &info.subresource);
    Value::Object(m)
}

fn source_ips(req: &Request) -> Vec<String> {
    let mut ips: Vec<String> = Vec::new();
    let mut add = |s: &str| {
        let s = s.trim();
        if !s.is_empty() && s.parse::<std::net::IpAddr>().is_ok() && !ips.iter().any(|i| i == s) {
            ips.push(s.to_string());
        }
    };
    if let Some(v) = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        v.split(',').for_each(&mut add);
    }
    if let Some(v) = req.headers().get("x-real-ip").and_then(|v| v.to_str().ok()) {
        add(v);
    }
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<std::net::SocketAddr>>() {
        add(&peer.ip().to_string());
    }
    ips
}

fn strip_managed_fields(v: &mut Value) {
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    if let Some(items) = v.get_mut("items").and_then(Value::as_array_mut) {
        items.iter_mut().for_each(strip_managed_fields);
    }
}

/// One request's event, written at each kept stage.
struct Recorder {
    auditor: Arc<Auditor>,
    decision: Decision,
    event: Map<String, Value>,
    annotations: Annotations,
}

impl Recorder {
    fn emit(&mut self, stage: Stage) {
        if self.decision.omit_stages.contains(&stage) {
            return;
        }
        self.event.insert("stage".into(), json!(stage));
        let annotations = self.annotations.snapshot();
        if !annotations.is_empty() {
            self.event.insert("annotations".into(), json!(annotations));
        }
        self.event.insert(
            "stageTimestamp".into(),
            json!(micro_time(time::OffsetDateTime::now_utc())),
        );
        match serde_json::to_vec(&self.event) {
            Ok(line) => self.auditor.backend.write_line(&line),
            Err(e) => tracing::error!(error = %e, "encoding an audit event"),
        }
    }

    fn body_object(&self, bytes: &[u8]) -> Option<Value> {
        let mut v: Value = serde_json::from_slice(bytes).ok()?;
        if self.decision.omit_managed_fields {
            strip_managed_fields(&mut v);
        }
        Some(v)
    }
}

/// The event of a request, before any stage: who, what, from where.
fn new_event(
    req: &Request,
    info: &RequestInfo,
    user: &UserInfo,
    level: Level,
    received: time::OffsetDateTime,
) -> Map<String, Value> {
    let audit_id = req
        .headers()
        .get(AUDIT_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .unwrap_or_else(crate::registry::object::new_uid);
    let mut event = Map::new();
    event.insert("kind".into(), json!("Event"));
    event.insert("apiVersion".into(), json!("audit.k8s.io/v1"));
    event.insert("level".into(), json!(level));
    event.insert("auditID".into(), json!(audit_id));
    event.insert("stage".into(), json!(Stage::RequestReceived));
    let uri = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    event.insert("requestURI".into(), json!(uri));
    event.insert("verb".into(), json!(info.verb));
    event.insert("user".into(), user_json(user));
    event.insert("sourceIPs".into(), json!(source_ips(req)));
    if let Some(ua) = req
        .headers()
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
    {
        event.insert("userAgent".into(), json!(ua));
    }
    if info.is_resource_request {
        event.insert("objectRef".into(), object_ref(info));
    }
    event.insert("requestReceivedTimestamp".into(), json!(micro_time(received)));
    event
}

/// The middleware.
pub async fn audit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(auditor) = state.audit.clone() else {
        return next.run(req).await;
    };
    let received = time::OffsetDateTime::now_utc();
    let info = request_info::parse(req.method(), req.uri().path(), req.uri().query());
    let user = req
        .extensions()
        .get::<UserInfo>()
        .cloned()
        .unwrap_or_else(UserInfo::anonymous);
    let decision = auditor.policy.decide(&user, &info);
    if decision.level == Level::None {
        return next.run(req).await;
    }
    let event = new_event(&req, &info, &user, decision.level, received);
    let mut rec = Recorder {
        auditor,
        annotations: Annotations::at(decision.level),
        decision,
        event,
    };

    // The request object: names the object of a create in objectRef at
    // every level, and is logged from level Request on.
    let (parts, body) = req.into_parts();
    let wants_body = matches!(info.verb.as_str(), "create" | "update" | "patch")
        || (rec.decision.level >= Level::Request && parts.method != axum::http::Method::GET);
    let body = if wants_body {
        let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
            Ok(b) => b,
            Err(_) => {
                // Too large or broken: the handler reports it as it would.
                rec.emit(Stage::RequestReceived);
                let resp = crate::status::ApiError::request_entity_too_large(MAX_BODY).into_response();
                return finish(rec, resp).await;
            }
        };
        if let Some(obj) = rec.body_object(&bytes) {
            if let Some(r) = rec.event.get_mut("objectRef").and_then(Value::as_object_mut)
                && info.verb != "patch"
            {
                for (field, key) in [("name", "name"), ("namespace", "namespace")] {
                    if let Some(v) = obj.pointer(&format!("/metadata/{field}")).and_then(Value::as_str)
                        && !v.is_empty()
                    {
                        r.entry(key).or_insert_with(|| json!(v));
                    }
                }
            }
            if rec.decision.level >= Level::Request {
                rec.event.insert("requestObject".into(), obj);
            }
        }
        Body::from(bytes)
    } else {
        body
    };
    let mut req = Request::from_parts(parts, body);
    let impersonated = ImpersonatedUser::default();
    req.extensions_mut().insert(impersonated.clone());
    rec.emit(Stage::RequestReceived);

    let mut resp = rec.annotations.clone().scope(next.run(req)).await;
    if let Ok(Some(u)) = impersonated.0.lock().map(|s| s.clone()) {
        rec.event.insert("impersonatedUser".into(), user_json(&u));
    }
    if let Ok(v) = HeaderValue::from_str(rec.event["auditID"].as_str().unwrap_or_default()) {
        resp.headers_mut().insert(AUDIT_ID_HEADER, v);
    }
    let long_running = info.verb == "watch"
        || matches!(
            info.subresource.as_str(),
            "exec" | "attach" | "portforward" | "proxy" | "log"
        );
    if long_running && resp.status().is_success() {
        rec.event.insert(
            "responseStatus".into(),
            json!({"metadata": {}, "code": resp.status().as_u16()}),
        );
        rec.emit(Stage::ResponseStarted);
        let (parts, body) = resp.into_parts();
        // ResponseComplete once the stream ends or the client goes away.
        let done = CompleteOnDrop(Some(rec));
        let stream = body.into_data_stream().map(move |chunk| {
            let _keep = &done;
            chunk
        });
        return Response::from_parts(parts, Body::from_stream(stream));
    }
    finish(rec, resp).await
}

/// Writes `ResponseComplete` for a finished response, with its status and,
/// at level RequestResponse, its body.
async fn finish(mut rec: Recorder, resp: Response) -> Response {
    let code = resp.status().as_u16();
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    let want_body = is_json && (code >= 400 || rec.decision.level == Level::RequestResponse);
    let mut status = json!({"metadata": {}, "code": code});
    let resp = if want_body {
        let (parts, body) = resp.into_parts();
        let bytes = match axum::body::to_bytes(body, usize::MAX).await {
            Ok(b) => b,
            Err(_) => axum::body::Bytes::new(),
        };
        if let Some(obj) = rec.body_object(&bytes) {
            if code >= 400 && obj.get("kind").and_then(Value::as_str) == Some("Status") {
                for f in ["status", "message", "reason", "details"] {
                    if let Some(v) = obj.get(f) {
                        status[f] = v.clone();
                    }
                }
            }
            if rec.decision.level == Level::RequestResponse {
                rec.event.insert("responseObject".into(), obj);
            }
        }
        Response::from_parts(parts, Body::from(bytes))
    } else {
        resp
    };
    rec.event.insert("responseStatus".into(), status);
    rec.emit(Stage::ResponseComplete);
    resp
}

struct CompleteOnDrop(Option<Recorder>);

impl Drop for CompleteOnDrop {
    fn drop(&mut self) {
        if let Some(mut rec) = self.0.take() {
            rec.emit(Stage::ResponseComplete);
        }
    }
}

/// Upstream's `WithFailedAuthenticationAudit`: a request that
/// authentication refuses gets one event, at stage `ResponseStarted` (as
/// upstream writes it), with no user, the code and the credentials it
/// tried in `responseStatus.message`; the response gets its audit ID.
pub fn failed_authentication(state: &AppState, req: &Request, resp: &mut Response) {
    let Some(auditor) = state.audit.clone() else {
        return;
    };
    let received = time::OffsetDateTime::now_utc();
    let info = request_info::parse(req.method(), req.uri().path(), req.uri().query());
    let nobody = UserInfo::default();
    let decision = auditor.policy.decide(&nobody, &info);
    let audit_id = match decision.level {
        Level::None => None,
        level => {
            let mut rec = Recorder {
                event: new_event(req, &info, &nobody, level, received),
                auditor,
                annotations: Annotations::at(decision.level),
                decision,
            };
            rec.event.insert(
                "responseStatus".into(),
                json!({"metadata": {}, "message": auth_methods(req), "code": resp.status().as_u16()}),
            );
            rec.emit(Stage::ResponseStarted);
            rec.event["auditID"].as_str().map(str::to_string)
        }
    };
    if let Some(v) = audit_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        resp.headers_mut().insert(AUDIT_ID_HEADER, v);
    }
}

/// Upstream's `getAuthMethods`: which kinds of credentials a refused
/// request carried.
fn auth_methods(req: &Request) -> String {
    let mut methods = Vec::new();
    let authorization = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim();
    let scheme = authorization.split(' ').collect::<Vec<_>>();
    if scheme[0].eq_ignore_ascii_case("basic") && scheme.len() > 1 {
        methods.push("basic");
    }
    if scheme.len() > 1 && scheme[0].eq_ignore_ascii_case("bearer") {
        methods.push("bearer");
    }
    let access_token = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .any(|(k, v)| k == "access_token" && !v.trim().is_empty());
    if access_token {
        methods.push("access_token");
    }
    if req.extensions().get::<crate::authn::ClientCertificate>().is_some() {
        methods.push("x509");
    }
    if methods.is_empty() {
        "Authentication failed, no credentials provided".to_string()
    } else {
        format!("Authentication failed, attempted: {}", methods.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn methods(headers: &[(&str, &str)], uri: &str) -> String {
        let mut b = axum::http::Request::builder().uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        auth_methods(&b.body(Body::empty()).unwrap())
    }

    #[test]
    fn failed_authentication_names_the_credentials_tried() {
        assert_eq!(methods(&[], "/api"), "Authentication failed, no credentials provided");
        assert_eq!(
            methods(&[("authorization", "Bearer abc")], "/api"),
            "Authentication failed, attempted: bearer"
        );
        assert_eq!(
            methods(&[("authorization", "Basic YTpi")], "/api?access_token=x"),
            "Authentication failed, attempted: basic, access_token"
        );
        // A lone scheme is no credential, as upstream splits it.
        assert_eq!(
            methods(&[("authorization", "Bearer")], "/api"),
            "Authentication failed, no credentials provided"
        );
    }
}
