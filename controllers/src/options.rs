//! Command-line flags, named like kube-controller-manager's.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::leader_election::{LeaderElectionConfig, default_identity};
use crate::selection::Selection;
use crate::{Concurrency, Config};

/// rkube's controller manager.
#[derive(Debug, Parser)]
#[command(name = "rkube-controllers", version)]
pub struct Options {
    /// Path to a kubeconfig; without it, in-cluster config or $KUBECONFIG.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Controllers to run: '*' (all on by default), 'foo' (turn on foo),
    /// '-foo' (turn off foo); comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "*")]
    pub controllers: Vec<String>,
    /// Run only while holding the leader-election lease.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// How long non-leaders wait after the last renewal before taking over.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub leader_elect_lease_duration: Duration,
    /// How long the leader retries renewing before giving up.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub leader_elect_renew_deadline: Duration,
    /// Interval between acquire and renew attempts.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub leader_elect_retry_period: Duration,
    /// Namespace of the lease.
    #[arg(long, default_value = "kube-system")]
    pub leader_elect_resource_namespace: String,
    /// Name of the lease.
    #[arg(long, default_value = "kube-controller-manager")]
    pub leader_elect_resource_name: String,
    /// Address of the health and metrics endpoint.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_address: IpAddr,
    /// Port of the plain-HTTP /healthz and /metrics endpoint (0: none).
    /// Upstream serves these over HTTPS on --secure-port 10257.
    #[arg(long, default_value_t = 10257)]
    pub port: u16,
    /// PEM CA bundle published as `kube-root-ca.crt` in every namespace.
    #[arg(long)]
    pub root_ca_file: Option<PathBuf>,
    /// PEM private key signing legacy service-account token Secrets.
    #[arg(long)]
    pub service_account_private_key_file: Option<PathBuf>,
    #[arg(long, default_value_t = 5)]
    pub concurrent_replicaset_syncs: usize,
    #[arg(long, default_value_t = 5)]
    pub concurrent_deployment_syncs: usize,
    #[arg(long, default_value_t = 10)]
    pub concurrent_namespace_syncs: usize,
    #[arg(long, default_value_t = 20)]
    pub concurrent_gc_syncs: usize,
    #[arg(long, default_value_t = 5)]
    pub concurrent_statefulset_syncs: usize,
    #[arg(long, default_value_t = 2)]
    pub concurrent_daemonset_syncs: usize,
    #[arg(long, default_value_t = 5)]
    pub concurrent_job_syncs: usize,
    #[arg(long, default_value_t = 5)]
    pub concurrent_cron_job_syncs: usize,
    #[command(flatten)]
    pub endpoints: crate::controllers::endpoints::SettingsFlags,
    #[command(flatten)]
    pub node_lifecycle: crate::controllers::node_lifecycle::SettingsFlags,
    #[command(flatten)]
    pub node_ipam: crate::controllers::node_ipam::SettingsFlags,
    #[command(flatten)]
    pub resourcequota: crate::controllers::resourcequota::SettingsFlags,
    #[command(flatten)]
    pub certificates: crate::controllers::certificates::SettingsFlags,
    /// Log format: text or json.
    #[arg(long, default_value = "text")]
    pub log_format: String,
}

/// Why flags could not become a [`Config`].
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error(transparent)]
    Controllers(#[from] crate::selection::UnknownController),
    #[error("reading --root-ca-file {0}: {1}")]
    RootCa(PathBuf, std::io::Error),
    #[error("--leader-elect-renew-deadline must be less than --leader-elect-lease-duration")]
    RenewDeadline,
    #[error("{0}")]
    Endpoints(String),
    /// A node lifecycle, node IPAM or resource quota flag is invalid.
    #[error("{0}")]
    NodeLifecycle(String),
    /// A CSR signing flag is invalid.
    #[error("{0}")]
    Certificates(String),
}

impl Options {
    pub fn into_config(self) -> Result<Config, OptionsError> {
        let controllers = Selection::parse(&self.controllers, crate::manager::is_known)?;
        let root_ca = match &self.root_ca_file {
            Some(p) => Some(std::fs::read_to_string(p).map_err(|e| OptionsError::RootCa(p.clone(), e))?),
            None => None,
        };
        if self.leader_elect && self.leader_elect_renew_deadline >= self.leader_elect_lease_duration {
            return Err(OptionsError::RenewDeadline);
        }
        let leader_election = self.leader_elect.then(|| LeaderElectionConfig {
            namespace: self.leader_elect_resource_namespace.clone(),
            name: self.leader_elect_resource_name.clone(),
            identity: default_identity(),
            lease_duration: self.leader_elect_lease_duration,
            renew_deadline: self.leader_elect_renew_deadline,
            retry_period: self.leader_elect_retry_period,
        });
        Ok(Config {
            kubeconfig: self.kubeconfig,
            controllers,
            leader_election,
            bind: (self.port != 0).then_some(SocketAddr::new(self.bind_address, self.port)),
            root_ca,
            service_account_private_key_file: self.service_account_private_key_file,
            endpoints: self.endpoints.into_settings().map_err(OptionsError::Endpoints)?,
            node_lifecycle: self
                .node_lifecycle
                .into_settings()
                .map_err(OptionsError::NodeLifecycle)?,
            node_ipam: self.node_ipam.into_settings().map_err(OptionsError::NodeLifecycle)?,
            resourcequota: self
                .resourcequota
                .into_settings()
                .map_err(OptionsError::NodeLifecycle)?,
            certificates: self.certificates.into_settings().map_err(OptionsError::Certificates)?,
            concurrency: Concurrency {
                replicaset: self.concurrent_replicaset_syncs,
                deployment: self.concurrent_deployment_syncs,
                namespace: self.concurrent_namespace_syncs,
                garbage_collector: self.concurrent_gc_syncs,
                statefulset: self.concurrent_statefulset_syncs,
                daemonset: self.concurrent_daemonset_syncs,
                job: self.concurrent_job_syncs,
                cronjob: self.concurrent_cron_job_syncs,
                serviceaccount: 1,
            },
        })
    }
}

/// A Go-style duration flag: `1h2m3.5s`, `250ms`, `90s` (negatives refused).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    rkube_cron::parse_flag_duration(s)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("15").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn flags_become_config() {
        let o = Options::parse_from([
            "rkube-controllers",
            "--controllers=*,-deployment",
            "--leader-elect-retry-period=500ms",
        ]);
        let c = o.into_config().unwrap();
        let le = c.leader_election.unwrap();
        assert_eq!(le.retry_period, Duration::from_millis(500));
        assert_eq!(le.lease_duration, Duration::from_secs(15));
        assert_eq!(le.name, "kube-controller-manager");
        assert!(
            !c.controllers
                .is_enabled(&["deployment-controller", "deployment"], false)
        );
        assert!(
            c.controllers
                .is_enabled(&["replicaset-controller", "replicaset"], false)
        );
        let bad = Options::parse_from(["rkube-controllers", "--controllers=nope"]).into_config();
        assert!(bad.is_err());
    }
}
