//! `rkube-scheduler`: flags named like kube-scheduler's, then the library.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use rkube_scheduler::leader_election::LeaderElection;

/// rkube's scheduler.
#[derive(Debug, Parser)]
#[command(name = "rkube-scheduler", version)]
struct Flags {
    /// Path to a kubeconfig (in-cluster or ~/.kube/config when unset).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Path to a KubeSchedulerConfiguration file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address for /healthz and /metrics.
    #[arg(long, default_value = "0.0.0.0")]
    bind_address: IpAddr,
    /// Port for /healthz and /metrics (plain HTTP for now).
    #[arg(long, default_value_t = 10259)]
    secure_port: u16,
    /// Schedule only while holding the kube-system/kube-scheduler Lease.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    leader_elect: bool,
    /// How long a standby waits after the leader's last renewal before
    /// taking the Lease.
    #[arg(long, default_value = "15s", value_parser = rkube_cron::parse_flag_duration)]
    leader_elect_lease_duration: Duration,
    /// How long the leader keeps trying to renew before it gives up.
    #[arg(long, default_value = "10s", value_parser = rkube_cron::parse_flag_duration)]
    leader_elect_renew_deadline: Duration,
    /// The interval between attempts to acquire or renew the Lease.
    #[arg(long, default_value = "2s", value_parser = rkube_cron::parse_flag_duration)]
    leader_elect_retry_period: Duration,
    /// Namespace of the Lease.
    #[arg(long, default_value = "kube-system")]
    leader_elect_resource_namespace: String,
    /// Name of the Lease.
    #[arg(long, default_value = "kube-scheduler")]
    leader_elect_resource_name: String,
    /// Log format: text or json.
    #[arg(long, default_value = "text")]
    log_format: String,
    /// Accepted for kube-scheduler compatibility (kubeadm passes it); the
    /// endpoints are unauthenticated for now.
    #[arg(long)]
    authentication_kubeconfig: Option<PathBuf>,
    /// Accepted for kube-scheduler compatibility; not used yet.
    #[arg(long)]
    authorization_kubeconfig: Option<PathBuf>,
    /// klog verbosity, accepted for compatibility (use RUST_LOG).
    #[arg(short = 'v', long = "v")]
    verbosity: Option<u8>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    if flags.log_format == "json" {
        tracing_subscriber::fmt().json().with_env_filter(filter).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    // kube-scheduler's validation of the leader election settings.
    if flags.leader_elect {
        if flags.leader_elect_lease_duration <= flags.leader_elect_renew_deadline {
            anyhow::bail!("--leader-elect-lease-duration must be greater than --leader-elect-renew-deadline");
        }
        if flags.leader_elect_retry_period.is_zero() {
            anyhow::bail!("--leader-elect-retry-period must be greater than zero");
        }
    }
    let leader_election = flags.leader_elect.then(|| LeaderElection {
        namespace: flags.leader_elect_resource_namespace,
        name: flags.leader_elect_resource_name,
        lease_duration: flags.leader_elect_lease_duration,
        renew_deadline: flags.leader_elect_renew_deadline,
        retry_period: flags.leader_elect_retry_period,
        ..LeaderElection::new(rkube_scheduler::instance_name())
    });
    rkube_scheduler::run(rkube_scheduler::Options {
        kubeconfig: flags.kubeconfig,
        config: flags.config,
        listen: SocketAddr::new(flags.bind_address, flags.secure_port),
        leader_election,
    })
    .await?;
    Ok(())
}
