//! Calling a webhook: a POST of the AdmissionReview over HTTPS (HTTP/1.1),
//! the server verified against the webhook's `caBundle` with rustls, the
//! whole call bounded by `timeoutSeconds`.
//!
//! `clientConfig.url` is called as given (upstream appends
//! `?timeout=<n>s`, and so does this). For `clientConfig.service`, the
//! certificate must be valid for `<name>.<namespace>.svc` like upstream's;
//! the address is a ready endpoint of the Service (its Endpoints object)
//! when there is one, else the Service's cluster IP, since this server has
//! no proxy of its own to reach cluster IPs through.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use base64::Engine;
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::net::TcpStream;

/// Largest response body read from a webhook.
const MAX_RESPONSE: usize = 3 * 1024 * 1024;

/// Where and how to call one webhook.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host:port` to connect to.
    pub address: String,
    /// The name the server's certificate must carry.
    pub server_name: String,
    /// Path and query of the request.
    pub path: String,
    /// The URL as upstream's errors show it.
    pub url: String,
    /// PEM certificates from `caBundle` (empty: no trusted roots).
    pub ca_bundle: Vec<u8>,
}

/// A failed call (upstream's `ErrCallingWebhook` reasons).
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("failed to call webhook: Post \"{url}\": {reason}")]
    Post { url: String, reason: String },
    #[error("failed to call webhook: the server responded with status {0}")]
    Status(u16),
    #[error("received invalid webhook response: {0}")]
    Invalid(String),
}

/// The `caBundle` field (base64 of PEM in JSON).
pub fn ca_bundle(client_config: &Value) -> Result<Vec<u8>, String> {
    match client_config.get("caBundle").and_then(Value::as_str) {
        None | Some("") => Ok(Vec::new()),
        Some(b) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .map_err(|e| format!("caBundle is not base64: {e}")),
    }
}

/// The target of a `clientConfig.url`.
pub fn url_target(url: &str, timeout: Duration, ca_bundle: Vec<u8>) -> Result<Target, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    if uri.scheme_str() != Some("https") {
        return Err(format!("invalid URL {url:?}: the scheme must be https"));
    }
    let host = uri.host().ok_or_else(|| format!("invalid URL {url:?}: no host"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    let port = uri.port_u16().unwrap_or(443);
    let address = match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
        _ => format!("{host}:{port}"),
    };
    let path = with_timeout(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"), timeout);
    Ok(Target {
        url: format!(
            "https://{}{}",
            uri.authority().map(|a| a.as_str()).unwrap_or(&host),
            path
        ),
        address,
        server_name: host,
        path,
        ca_bundle,
    })
}

/// `path` with upstream's `timeout` query parameter.
pub fn with_timeout(path: &str, timeout: Duration) -> String {
    let path = if path.is_empty() { "/" } else { path };
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}timeout={}s", timeout.as_secs())
}

fn tls_config(ca_bundle: &[u8]) -> Result<rustls::ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    let mut reader = ca_bundle;
    for cert in rustls_pemfile_certs(&mut reader)? {
        roots.add(cert).map_err(|e| format!("caBundle: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The certificates of a PEM bundle.
fn rustls_pemfile_certs(pem: &mut &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    use rustls_pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("caBundle: {e}"))
}

/// POSTs `body` to the target and returns the response's JSON, all within
/// `timeout`.
pub async fn post(target: &Target, body: Vec<u8>, timeout: Duration) -> Result<Value, CallError> {
    let post_err = |reason: String| CallError::Post {
        url: target.url.clone(),
        reason,
    };
    match tokio::time::timeout(timeout, post_inner(target, body)).await {
        Ok(r) => r,
        Err(_) => Err(post_err(format!(
            "context deadline exceeded (Client.Timeout exceeded while awaiting headers) after {}s",
            timeout.as_secs()
        ))),
    }
}

async fn post_inner(target: &Target, body: Vec<u8>) -> Result<Value, CallError> {
    let post_err = |reason: String| CallError::Post {
        url: target.url.clone(),
        reason,
    };
    let config = tls_config(&target.ca_bundle).map_err(post_err)?;
    let server_name = ServerName::try_from(target.server_name.clone()).map_err(|e| post_err(e.to_string()))?;
    let tcp = TcpStream::connect(&target.address).await.map_err(|e| {
        post_err(format!(
            "dial tcp {}: connect: {}",
            target.address,
            lower(&e.to_string())
        ))
    })?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(server_name, tcp)
        .await
        .map_err(|e| post_err(format!("tls: {e}")))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| post_err(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = http::Request::post(target.path.as_str())
        .header(http::header::HOST, target.server_name.as_str())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json, */*")
        .body(Body::from(body))
        .map_err(|e| post_err(e.to_string()))?;
    let resp = sender.send_request(req).await.map_err(|e| post_err(e.to_string()))?;
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(Body::new(resp.into_body()), MAX_RESPONSE)
        .await
        .map_err(|e| post_err(e.to_string()))?;
    if !(200..300).contains(&status) {
        return Err(CallError::Status(status));
    }
    serde_json::from_slice(&bytes).map_err(|e| CallError::Invalid(e.to_string()))
}

/// Go's lower-case error style for OS errors ("Connection refused (os
/// error 111)" -> "connection refused").
fn lower(e: &str) -> String {
    let e = e.split(" (os error").next().unwrap_or(e);
    let mut chars = e.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_targets() {
        let t = url_target("https://127.0.0.1:8443/mutate", Duration::from_secs(10), Vec::new()).unwrap();
        assert_eq!(t.address, "127.0.0.1:8443");
        assert_eq!(t.server_name, "127.0.0.1");
        assert_eq!(t.path, "/mutate?timeout=10s");
        assert_eq!(t.url, "https://127.0.0.1:8443/mutate?timeout=10s");
        let t = url_target("https://hooks.example.com/v?x=1", Duration::from_secs(3), Vec::new()).unwrap();
        assert_eq!(t.address, "hooks.example.com:443");
        assert_eq!(t.path, "/v?x=1&timeout=3s");
        let t = url_target("https://[::1]:9000", Duration::from_secs(3), Vec::new()).unwrap();
        assert_eq!(t.address, "[::1]:9000");
        assert_eq!(t.server_name, "::1");
        assert_eq!(t.path, "/?timeout=3s");
        assert!(url_target("http://x/", Duration::from_secs(1), Vec::new()).is_err());
        assert!(url_target("::", Duration::from_secs(1), Vec::new()).is_err());
    }

    #[test]
    fn ca_bundles() {
        assert_eq!(ca_bundle(&serde_json::json!({})).unwrap(), Vec::<u8>::new());
        assert_eq!(ca_bundle(&serde_json::json!({"caBundle": "aGk="})).unwrap(), b"hi");
        assert!(ca_bundle(&serde_json::json!({"caBundle": "!!"})).is_err());
        assert!(tls_config(b"").is_ok());
    }

    #[test]
    fn os_errors_read_like_go() {
        assert_eq!(lower("Connection refused (os error 111)"), "connection refused");
    }

    #[tokio::test]
    async fn refused_connection_is_a_post_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let t = url_target(&format!("https://{addr}/x"), Duration::from_secs(2), Vec::new()).unwrap();
        let err = post(&t, b"{}".to_vec(), Duration::from_secs(2)).await.unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!(
                "failed to call webhook: Post \"https://{addr}/x?timeout=2s\": dial tcp"
            )),
            "{msg}"
        );
        assert!(msg.ends_with("connect: connection refused"), "{msg}");
    }
}
