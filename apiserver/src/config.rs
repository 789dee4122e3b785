//! The server's configuration, built from [`crate::options::Options`].

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use rkube_storage::StorageConfig;

/// Everything [`crate::run`] needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address and port to serve HTTPS on.
    pub bind_address: SocketAddr,
    /// Where the embedded store, the PKI and generated files live.
    pub data_dir: PathBuf,
    /// Storage backend and its settings.
    pub storage: StorageConfig,
    /// Upstream-format static token file (`token,user,uid,"group1,group2"`).
    pub token_auth_file: Option<PathBuf>,
    /// Extra names and addresses for the serving certificate.
    pub tls_sans: Vec<String>,
    /// `--authorization-mode`: RBAC (default) or AlwaysAllow.
    pub authorization_mode: crate::authz::Mode,
    /// `--anonymous-auth`: serve requests without credentials as `system:anonymous`.
    pub anonymous_auth: bool,
    /// Service-account token and bootstrap token flags.
    pub authn: crate::authn::options::AuthnOptions,
    /// `--encryption-provider-config`: encryption at rest.
    pub encryption: crate::encryption::EncryptionOptions,
    /// `--audit-policy-file` and `--audit-log-*`.
    pub audit: crate::audit::AuditOptions,
    /// `--enable-admission-plugins` and `--disable-admission-plugins`.
    pub enable_admission_plugins: Vec<String>,
    pub disable_admission_plugins: Vec<String>,
}

impl Config {
    /// Directory of the generated CA and serving certificate.
    pub fn pki_dir(&self) -> PathBuf {
        self.data_dir.join("pki")
    }

    /// `host:port` clients reach this server at (the bind address, or
    /// 127.0.0.1 when it is unspecified).
    pub fn external_address(&self) -> String {
        let ip = self.bind_address.ip();
        let ip = if ip.is_unspecified() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            ip
        };
        SocketAddr::new(ip, self.bind_address.port()).to_string()
    }

    /// Names the serving certificate must cover.
    pub fn certificate_names(&self) -> Vec<String> {
        let mut names = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
            "kubernetes".to_string(),
            "kubernetes.default".to_string(),
            "kubernetes.default.svc".to_string(),
            "kubernetes.default.svc.cluster.local".to_string(),
        ];
        let ip = self.bind_address.ip();
        if !ip.is_unspecified() && ip != IpAddr::from([127, 0, 0, 1]) {
            names.push(ip.to_string());
        }
        for n in &self.tls_sans {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
        names
    }
}
