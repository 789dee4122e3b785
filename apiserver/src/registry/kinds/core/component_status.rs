//! `componentstatuses` (deprecated since v1.19, still served): objects
//! computed per request by probing the control plane, like upstream's
//! `pkg/registry/core/componentstatus`. Nothing is stored.
//!
//! The components are upstream's: `etcd-0` (the storage backend: a real
//! etcd, or the embedded store, asked for its current revision),
//! `scheduler` (`https://127.0.0.1:10259/healthz`) and `controller-manager`
//! (`https://127.0.0.1:10257/healthz`), both probed without verifying the
//! serving certificate. Each object has one `Healthy` condition whose
//! status, message and error follow upstream's HTTP prober: a 2xx answer is
//! `True` with the body as the message; a refused connection or an error
//! status is `False` with the failure as the *message* (upstream's prober
//! reports those as a failed probe, not as an error); a redirect is
//! `Unknown`.

use std::sync::Arc;
use std::time::Duration;

use rkube_storage::Store;
use serde_json::{Value, json};

use crate::registry::object::Object;

/// Upstream's probe timeout (`probeTimeOut`).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(20);
/// kube-scheduler's secure port (`DefaultKubeSchedulerPort`).
pub const SCHEDULER_PORT: u16 = 10259;
/// kube-controller-manager's secure port (`KubeControllerManagerPort`).
pub const CONTROLLER_MANAGER_PORT: u16 = 10257;
/// Upstream reads at most this much of a probe's body.
const MAX_BODY: usize = 10 * 1024;

/// What a component's health is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The storage backend.
    Storage,
    /// An HTTPS health endpoint (certificate not verified, like upstream).
    Https { host: String, port: u16, path: String },
}

/// A component `componentstatuses` reports on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub name: String,
    pub target: Target,
}

/// Upstream's components, sorted by name.
pub fn default_components() -> Vec<Component> {
    let https = |name: &str, port| Component {
        name: name.into(),
        target: Target::Https {
            host: "127.0.0.1".into(),
            port,
            path: "/healthz".into(),
        },
    };
    vec![
        https("controller-manager", CONTROLLER_MANAGER_PORT),
        Component {
            name: "etcd-0".into(),
            target: Target::Storage,
        },
        https("scheduler", SCHEDULER_PORT),
    ]
}

/// `probe.Result` as a condition status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// The probe succeeded (`True`).
    Healthy,
    /// The probe failed (`False`).
    Unhealthy,
    /// The probe could not decide, e.g. it was redirected (`Unknown`).
    Unknown,
}

/// The outcome of one probe: upstream's (result, message, error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub health: Health,
    pub message: String,
    pub error: String,
}

impl Probe {
    fn new(health: Health, message: impl Into<String>) -> Self {
        Probe {
            health,
            message: message.into(),
            error: String::new(),
        }
    }
}

/// Probes `component` against `store` (for the storage backend).
pub async fn probe(component: &Component, store: &Arc<dyn Store>, timeout: Duration) -> Probe {
    match &component.target {
        Target::Storage => probe_storage(store, timeout).await,
        Target::Https { host, port, path } => probe_https(host, *port, path, timeout).await,
    }
}

/// Upstream's `EtcdServer` check: `ok`, or a failure carried as the error.
pub async fn probe_storage(store: &Arc<dyn Store>, timeout: Duration) -> Probe {
    match tokio::time::timeout(timeout, store.current_revision()).await {
        Ok(Ok(_)) => Probe::new(Health::Healthy, "ok"),
        Ok(Err(e)) => Probe {
            health: Health::Unhealthy,
            message: String::new(),
            error: e.to_string(),
        },
        Err(_) => Probe {
            health: Health::Unhealthy,
            message: String::new(),
            error: "context deadline exceeded".into(),
        },
    }
}

/// Upstream's HTTP prober against `https://host:port/path`.
pub async fn probe_https(host: &str, port: u16, path: &str, timeout: Duration) -> Probe {
    let url = format!("https://{host}:{port}{path}");
    match tokio::time::timeout(timeout, get(host, port, path)).await {
        Ok(Ok((code, body))) if (200..300).contains(&code) => Probe::new(Health::Healthy, body),
        Ok(Ok((code, body))) if (300..400).contains(&code) => Probe::new(
            Health::Unknown,
            format!("Probe terminated redirects, Response body: {body}"),
        ),
        Ok(Ok((code, _))) => Probe::new(Health::Unhealthy, format!("HTTP probe failed with statuscode: {code}")),
        Ok(Err(why)) => Probe::new(Health::Unhealthy, format!("Get \"{url}\": {why}")),
        Err(_) => Probe::new(
            Health::Unhealthy,
            format!("Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"),
        ),
    }
}

/// One HTTPS GET: the status code and up to [`MAX_BODY`] of the body, or
/// the failure in Go's words where they are known.
async fn get(host: &str, port: u16, path: &str) -> Result<(u16, String), String> {
    let addr = format!("{host}:{port}");
    let tcp = tokio::net::TcpStream::connect(&addr)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::ConnectionRefused => format!("dial tcp {addr}: connect: connection refused"),
            _ => format!("dial tcp {addr}: {e}"),
        })?;
    let server_name = rustls_pki_types::ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(insecure_client_config())
        .connect(server_name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = http::Request::get(path)
        .header(http::header::HOST, &addr)
        .header(http::header::USER_AGENT, "kube-probe/1.36")
        .header(http::header::ACCEPT, "*/*")
        .body(axum::body::Body::empty())
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let code = resp.status().as_u16();
    let body = axum::body::to_bytes(axum::body::Body::new(resp.into_body()), usize::MAX)
        .await
        .map_err(|e| e.to_string())?;
    let body = &body[..body.len().min(MAX_BODY)];
    Ok((code, String::from_utf8_lossy(body).into_owned()))
}

/// A TLS client that accepts any server certificate (upstream probes with
/// `InsecureSkipVerify`: the components' certificates are self-signed).
fn insecure_client_config() -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(AnyServerCert(provider.clone()));
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| {
            b.dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth()
        });
    match config {
        Ok(c) => Arc::new(c),
        // The ring provider supports the default versions.
        Err(_) => Arc::new(
            rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        ),
    }
}

#[derive(Debug)]
struct AnyServerCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The ComponentStatus of `name` (without `kind`/`apiVersion`).
pub fn object(name: &str, probe: &Probe) -> Object {
    let status = match probe.health {
        Health::Healthy => "True",
        Health::Unhealthy => "False",
        Health::Unknown => "Unknown",
    };
    let mut condition = serde_json::Map::new();
    condition.insert("type".into(), json!("Healthy"));
    condition.insert("status".into(), json!(status));
    if !probe.message.is_empty() {
        condition.insert("message".into(), json!(probe.message));
    }
    if !probe.error.is_empty() {
        condition.insert("error".into(), json!(probe.error));
    }
    let mut obj = Object::new();
    obj.insert(
        "metadata".into(),
        json!({"name": name, "creationTimestamp": Value::Null}),
    );
    obj.insert("conditions".into(), json!([Value::Object(condition)]));
    obj
}

/// Probes every component at once; the objects come back sorted by name.
pub async fn probe_all(components: &[Component], store: &Arc<dyn Store>, timeout: Duration) -> Vec<Object> {
    let probes = components
        .iter()
        .map(|c| async move { object(&c.name, &probe(c, store, timeout).await) });
    futures::future::join_all(probes).await
}

#[cfg(test)]
mod tests;
