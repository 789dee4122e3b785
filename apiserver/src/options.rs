//! Command-line flags, named like kube-apiserver's where they mean the same.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use rkube_storage::{StorageBackend, StorageConfig};

use crate::config::Config;

/// Flags of `rkube-apiserver`.
#[derive(Debug, Clone, Parser)]
#[command(name = "rkube-apiserver", version, about = "rkube's Kubernetes API server")]
pub struct Options {
    /// Address to serve HTTPS on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_address: IpAddr,
    /// Port to serve HTTPS on.
    #[arg(long, default_value_t = 6443)]
    pub secure_port: u16,
    /// Directory for the embedded store, certificates and generated files.
    #[arg(long, default_value = "/var/lib/rkube")]
    pub data_dir: PathBuf,
    /// Storage backend: embedded (default), etcd, or memory (tests only).
    #[arg(long, default_value = "embedded")]
    pub storage_backend: StorageBackend,
    /// etcd client URLs, comma-separated (with --storage-backend=etcd).
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:2379")]
    pub etcd_servers: Vec<String>,
    /// Key prefix for every object in etcd.
    #[arg(long, default_value = "/registry")]
    pub etcd_prefix: String,
    /// Interval of storage compaction; history younger than this is kept. 0 disables it.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub etcd_compaction_interval: Duration,
    /// Static token file: lines of `token,user,uid,"group1,group2"`.
    #[arg(long)]
    pub token_auth_file: Option<PathBuf>,
    /// Extra DNS names or IPs for the generated serving certificate.
    #[arg(long, value_delimiter = ',')]
    pub tls_san: Vec<String>,
    /// Whether requests without credentials are served as `system:anonymous` (otherwise 401).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub anonymous_auth: bool,
    /// Authorizers in order, comma-separated: Node, RBAC (default: both), AlwaysAllow.
    #[arg(long, value_delimiter = ',', default_value = "Node,RBAC", value_parser = parse_authorization_mode)]
    pub authorization_mode: Vec<String>,
    /// Admission plugins to enable besides the default ones, comma-separated.
    #[arg(long, value_delimiter = ',', value_parser = parse_admission_plugin)]
    pub enable_admission_plugins: Vec<String>,
    /// Default admission plugins to turn off, comma-separated.
    #[arg(long, value_delimiter = ',', value_parser = parse_admission_plugin)]
    pub disable_admission_plugins: Vec<String>,
    /// Log format: text or json.
    #[arg(long, default_value = "text")]
    pub log_format: String,
    #[command(flatten)]
    pub authn: crate::authn::options::AuthnOptions,
    #[command(flatten)]
    pub encryption: crate::encryption::EncryptionOptions,
    #[command(flatten)]
    pub audit: crate::audit::AuditOptions,
}

impl Options {
    /// The configuration these flags describe.
    pub fn into_config(self) -> Config {
        Config {
            bind_address: SocketAddr::new(self.bind_address, self.secure_port),
            storage: StorageConfig {
                backend: self.storage_backend,
                data_dir: self.data_dir.join("store"),
                etcd_servers: self.etcd_servers,
                etcd_prefix: self.etcd_prefix,
                compaction_interval: self.etcd_compaction_interval,
            },
            data_dir: self.data_dir,
            token_auth_file: self.token_auth_file,
            tls_sans: self.tls_san,
            authorization_mode: crate::authz::Mode::parse(&self.authorization_mode).unwrap_or_default(),
            anonymous_auth: self.anonymous_auth,
            authn: self.authn,
            encryption: self.encryption,
            audit: self.audit,
            enable_admission_plugins: self.enable_admission_plugins,
            disable_admission_plugins: self.disable_admission_plugins,
        }
    }
}

/// Checks one admission plugin name.
fn parse_admission_plugin(s: &str) -> Result<String, String> {
    crate::admission::Chain::from_flags(&[s.to_string()], &[])
        .map(|_| s.to_string())
        .map_err(|_| format!("unknown admission plugin {s:?}"))
}

/// Checks one `--authorization-mode` entry.
fn parse_authorization_mode(s: &str) -> Result<String, String> {
    crate::authz::Mode::parse(&[s.to_string()])
        .map(|_| s.to_string())
        .or_else(|e| match s {
            "Node" => Ok(s.to_string()),
            _ => Err(e),
        })
}

/// Parses Go-style durations as kube-apiserver takes them: `300ms`, `5m`, `1h30m`, `10s`, or `0`
/// (surrounding spaces ignored, negatives refused).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    rkube_cron::parse_flag_duration(s.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let check = |s: &str, want: Option<Duration>| assert_eq!(parse_duration(s).ok(), want, "{s}");
        check("5m", Some(Duration::from_secs(300)));
        check("1h30m", Some(Duration::from_secs(5400)));
        check("250ms", Some(Duration::from_millis(250)));
        check("0", Some(Duration::ZERO));
        check("1.5s", Some(Duration::from_millis(1500)));
        for bad in ["", "m", "5", "5x", "-1s", "1e400s"] {
            check(bad, None);
        }
    }

    #[test]
    fn authorization_flags() {
        let config = |args: &[&str]| {
            Options::try_parse_from(std::iter::once("rkube-apiserver").chain(args.iter().copied()))
                .map(Options::into_config)
        };
        let c = config(&[]).unwrap();
        assert_eq!(
            (c.authorization_mode, c.anonymous_auth),
            (crate::authz::Mode::NodeRbac, true)
        );
        let c = config(&["--authorization-mode=RBAC", "--anonymous-auth=false"]).unwrap();
        assert_eq!(
            (c.authorization_mode, c.anonymous_auth),
            (crate::authz::Mode::Rbac, false)
        );
        let c = config(&["--authorization-mode", "AlwaysAllow"]).unwrap();
        assert_eq!(c.authorization_mode, crate::authz::Mode::AlwaysAllow);
        assert!(config(&["--authorization-mode=Webhook"]).is_err());
    }
}
