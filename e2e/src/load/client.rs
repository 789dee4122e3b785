//! The kube-rs client the scenarios share, and the raw requests they send
//! through it.
//!
//! Requests are built by hand (`http::Request` with `Accept` and
//! `Content-Type: application/json`, or with `--protobuf` Kubernetes
//! protobuf the way client-go's typed clients send it) and sent with
//! [`kube::Client`], so the client does no more work than reading the body:
//! what is measured is the server. Bodies are decoded only after the clock
//! stops. kube-rs opens one HTTP/1.1 connection per concurrent request.

use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use anyhow::{Context, bail};
use http::{Method, Request, header};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::json;

use super::config::REQUEST_TIMEOUT;

/// Connects with `kubeconfig` (or kube-rs's default lookup: `$KUBECONFIG`,
/// `~/.kube/config`). Refuses a server that is not on loopback unless
/// `allow_remote`. Built-in retries are off: a failed request is counted.
pub async fn connect(kubeconfig: Option<&Path>, allow_remote: bool) -> anyhow::Result<(Client, String)> {
    let mut config = match kubeconfig {
        Some(path) => {
            let kubeconfig =
                Kubeconfig::read_from(path).with_context(|| format!("reading kubeconfig {}", path.display()))?;
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .with_context(|| format!("using kubeconfig {}", path.display()))?
        }
        None => Config::infer().await.context("finding a kubeconfig")?,
    };
    let server = config.cluster_url.to_string();
    if !allow_remote && !is_loopback(&config.cluster_url) {
        bail!("{server} is not a loopback address; pass --allow-remote to load it anyway");
    }
    config.default_retry = false;
    config.read_timeout = None;
    config.connect_timeout = Some(Duration::from_secs(10));
    let client = Client::try_from(config).context("building the client")?;
    Ok((client, server))
}

/// Whether the URL's host is `localhost` or a loopback IP.
pub fn is_loopback(url: &http::Uri) -> bool {
    match url.host() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// `/api/v1/namespaces/{namespace}/{resource}`.
pub fn collection(namespace: &str, resource: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/{resource}")
}

/// The protobuf media type.
pub const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

static USE_PROTOBUF: AtomicBool = AtomicBool::new(false);

/// Makes [`request`] speak Kubernetes protobuf (`--protobuf`): bodies are
/// encoded, and responses asked for, as client-go's typed clients do.
pub fn use_protobuf(on: bool) {
    USE_PROTOBUF.store(on, Ordering::Relaxed);
}

/// A request in the run's encoding (JSON, or protobuf with `--protobuf`);
/// `body` is JSON, empty for none.
pub fn request(method: Method, uri: &str, body: Vec<u8>) -> anyhow::Result<Request<Vec<u8>>> {
    build(USE_PROTOBUF.load(Ordering::Relaxed), method, uri, body)
}

fn build(protobuf: bool, method: Method, uri: &str, body: Vec<u8>) -> anyhow::Result<Request<Vec<u8>>> {
    if !protobuf {
        return request_json(method, uri, body);
    }
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::ACCEPT, format!("{PROTOBUF},application/json"));
    let mut body = body;
    if !body.is_empty() {
        let obj: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&body).context("request body is not a JSON object")?;
        body = rkube_apiserver::protobuf::encode_object(&obj).context("encoding the body as protobuf")?;
        b = b.header(header::CONTENT_TYPE, PROTOBUF);
    }
    b.body(body).with_context(|| format!("building a request for {uri}"))
}

/// A JSON request whatever the run's encoding (watches); `body` empty for
/// none.
pub fn request_json(method: Method, uri: &str, body: Vec<u8>) -> anyhow::Result<Request<Vec<u8>>> {
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::ACCEPT, "application/json");
    if !body.is_empty() {
        b = b.header(header::CONTENT_TYPE, "application/json");
    }
    b.body(body).with_context(|| format!("building a request for {uri}"))
}

/// A JSON or protobuf body as JSON (protobuf is recognised by its magic).
pub fn decode(body: &[u8]) -> Result<serde_json::Value, OpError> {
    if body.starts_with(rkube_apiserver::protobuf::MAGIC) {
        rkube_apiserver::protobuf::decode_object(body)
            .map(serde_json::Value::Object)
            .map_err(|e| OpError(format!("unreadable protobuf: {e}")))
    } else {
        serde_json::from_slice(body).map_err(|e| OpError(format!("unreadable JSON: {e}")))
    }
}

/// Why one operation failed, short enough to count by kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpError(pub String);

impl OpError {
    /// Whether the server answered 409 AlreadyExists.
    pub fn is_already_exists(&self) -> bool {
        self.0.starts_with("409 AlreadyExists")
    }
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<kube::Error> for OpError {
    fn from(e: kube::Error) -> Self {
        match e {
            kube::Error::Api(s) => OpError(format!("{} {}: {}", s.code, s.reason, s.message)),
            other => OpError(format!("{other}")),
        }
    }
}

/// Sends `req` and reads the whole body, failing after [`REQUEST_TIMEOUT`].
/// Returns the body and the time to the last byte; an error answer is its
/// Status (JSON or protobuf), decoded after the clock stops.
pub async fn send(client: &Client, req: Request<Vec<u8>>) -> (Result<Bytes, OpError>, Duration) {
    let start = Instant::now();
    let exchange = async {
        let resp = client.send(req.map(kube::client::Body::from)).await?;
        let status = resp.status();
        let body = resp.into_body().collect_bytes().await?;
        Ok::<_, kube::Error>((status, body))
    };
    let res = tokio::time::timeout(REQUEST_TIMEOUT, exchange).await;
    let elapsed = start.elapsed();
    let res = match res {
        Ok(Ok((status, body))) if status.is_success() => Ok(body),
        Ok(Ok((status, body))) => Err(status_error(status, &body)),
        Ok(Err(e)) => Err(OpError::from(e)),
        Err(_) => Err(OpError(format!("timed out after {} s", REQUEST_TIMEOUT.as_secs()))),
    };
    (res, elapsed)
}

/// `<code> <reason>: <message>` of an error answer.
pub fn status_error(status: http::StatusCode, body: &[u8]) -> OpError {
    match decode(body) {
        Ok(v) if v.get("kind").and_then(serde_json::Value::as_str) == Some("Status") => OpError(format!(
            "{} {}: {}",
            v["code"].as_u64().unwrap_or(u64::from(status.as_u16())),
            v["reason"].as_str().unwrap_or(""),
            v["message"].as_str().unwrap_or("")
        )),
        _ => OpError(format!("{status}: {}", String::from_utf8_lossy(body).trim())),
    }
}

/// POSTs `body` to `uri`; AlreadyExists counts as success when
/// `tolerate_existing` (preloading).
pub async fn create(client: &Client, uri: &str, body: Vec<u8>, tolerate_existing: bool) -> Result<(), OpError> {
    let req = request(Method::POST, uri, body).map_err(|e| OpError(format!("{e:#}")))?;
    match send(client, req).await.0 {
        Ok(_) => Ok(()),
        Err(e) if tolerate_existing && e.is_already_exists() => Ok(()),
        Err(e) => Err(e),
    }
}

/// `metadata.resourceVersion` of a JSON or protobuf object or list.
pub fn resource_version(body: &[u8]) -> Option<String> {
    if body.starts_with(rkube_apiserver::protobuf::MAGIC) {
        return decode(body).ok()?["metadata"]["resourceVersion"]
            .as_str()
            .map(str::to_string);
    }
    #[derive(serde::Deserialize)]
    struct Meta {
        #[serde(rename = "resourceVersion")]
        resource_version: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Head {
        metadata: Meta,
    }
    serde_json::from_slice::<Head>(body).ok()?.metadata.resource_version
}

/// The current resourceVersion of the collection at `uri` (a one-item
/// list).
pub async fn current_resource_version(client: &Client, uri: &str) -> anyhow::Result<String> {
    let req = request_json(Method::GET, &format!("{uri}?limit=1"), Vec::new())?;
    let body = send(client, req)
        .await
        .0
        .map_err(|e| anyhow::anyhow!("listing {uri}: {e}"))?;
    resource_version(&body).context("a list without resourceVersion")
}

/// A JSON watch of the collection at `uri` from `rv`, uncompressed, with
/// `query` appended (e.g. `&timeoutSeconds=600`): the body's chunks as
/// they arrive, for the benchmarks' byte scanners.
pub async fn watch_raw(
    client: &Client,
    uri: &str,
    rv: &str,
    query: &str,
) -> anyhow::Result<http_body_util::BodyDataStream<kube::client::Body>> {
    use http_body_util::BodyExt;
    let mut req = request_json(
        Method::GET,
        &format!("{uri}?watch=true&resourceVersion={rv}{query}"),
        Vec::new(),
    )?;
    req.headers_mut()
        .insert(header::ACCEPT_ENCODING, http::HeaderValue::from_static("identity"));
    let resp = client
        .send(req.map(kube::client::Body::from))
        .await
        .map_err(|e| anyhow::anyhow!("watching {uri}: {}", OpError::from(e)))?;
    if !resp.status().is_success() {
        bail!("watching {uri}: HTTP {}", resp.status());
    }
    Ok(resp.into_body().into_data_stream())
}

/// Creates `namespace` unless it exists. An existing namespace is looked
/// up first, so a user who may only work inside it (a RoleBinding there,
/// no right to create namespaces) can run the load.
pub async fn ensure_namespace(client: &Client, namespace: &str) -> anyhow::Result<()> {
    let get = request(Method::GET, &format!("/api/v1/namespaces/{namespace}"), Vec::new())?;
    if send(client, get).await.0.is_ok() {
        return Ok(());
    }
    let body = serde_json::to_vec(&json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": namespace},
    }))?;
    create(client, "/api/v1/namespaces", body, true)
        .await
        .map_err(|e| anyhow::anyhow!("creating namespace {namespace}: {e}"))
}

/// The server's version string (`gitVersion`), if it answers `/version`.
pub async fn server_version(client: &Client) -> Option<String> {
    client.apiserver_version().await.ok().map(|v| v.git_version)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn loopback() {
        let check = |url: &str, want: bool| assert_eq!(is_loopback(&url.parse().unwrap()), want, "{url}");
        check("https://localhost:6443", true);
        check("https://127.0.0.1:6443", true);
        check("https://127.3.2.1", true);
        check("https://[::1]:6443", true);
        check("https://10.0.0.1:6443", false);
        check("https://api.example.com", false);
        check("https://[2001:db8::1]:443", false);
    }

    #[test]
    fn op_errors() {
        assert!(OpError("409 AlreadyExists: configmaps \"a\" already exists".into()).is_already_exists());
        assert!(!OpError("409 Conflict: the object has been modified".into()).is_already_exists());
    }

    #[test]
    fn resource_versions() {
        assert_eq!(
            resource_version(br#"{"kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"12"},"data":{}}"#),
            Some("12".into())
        );
        assert_eq!(resource_version(br#"{"metadata":{}}"#), None);
        assert_eq!(resource_version(b"not json"), None);
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "7"}});
        let pb = rkube_apiserver::protobuf::encode_object(cm.as_object().unwrap()).unwrap();
        assert_eq!(resource_version(&pb), Some("7".into()));
        assert_eq!(decode(&pb).unwrap(), cm);
    }

    #[test]
    fn requests_are_json() {
        let req = request(Method::POST, "/api/v1/namespaces/a/pods", b"{}".to_vec()).unwrap();
        assert_eq!(req.headers()[header::ACCEPT], "application/json");
        assert_eq!(req.headers()[header::CONTENT_TYPE], "application/json");
        let get = request(Method::GET, "/api/v1/namespaces/a/pods", Vec::new()).unwrap();
        assert!(get.headers().get(header::CONTENT_TYPE).is_none());
    }

    #[test]
    fn protobuf_requests() {
        let body = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}"#.to_vec();
        let req = build(true, Method::POST, "/api/v1/namespaces/a/configmaps", body).unwrap();
        let watch = request_json(Method::GET, "/api/v1/namespaces/a/configmaps?watch=true", Vec::new());
        assert_eq!(
            req.headers()[header::ACCEPT],
            "application/vnd.kubernetes.protobuf,application/json"
        );
        assert_eq!(req.headers()[header::CONTENT_TYPE], PROTOBUF);
        assert!(req.body().starts_with(b"k8s\0"));
        assert_eq!(decode(req.body()).unwrap()["metadata"]["name"], "a");
        assert_eq!(watch.unwrap().headers()[header::ACCEPT], "application/json");
    }
}
