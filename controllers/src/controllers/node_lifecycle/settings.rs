//! The node lifecycle controller's flags, named and defaulted like
//! kube-controller-manager's.

use std::time::Duration;

use crate::options::parse_duration;

/// Node lifecycle and taint-eviction settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How often node health is checked (`--node-monitor-period`).
    pub monitor_period: Duration,
    /// How long a node may go without a heartbeat before it is Unknown.
    pub monitor_grace_period: Duration,
    /// The same for a node that never posted a Ready condition.
    pub startup_grace_period: Duration,
    /// Nodes tainted per second in a healthy zone.
    pub eviction_rate: f64,
    /// Nodes tainted per second in a partially disrupted large zone.
    pub secondary_eviction_rate: f64,
    /// Zones with at most this many nodes stop evicting when disrupted.
    pub large_cluster_size_threshold: usize,
    /// Fraction of not-ready nodes (at least 3) that disrupts a zone.
    pub unhealthy_zone_threshold: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            monitor_period: Duration::from_secs(5),
            monitor_grace_period: Duration::from_secs(40),
            startup_grace_period: Duration::from_secs(60),
            eviction_rate: 0.1,
            secondary_eviction_rate: 0.01,
            large_cluster_size_threshold: 50,
            unhealthy_zone_threshold: 0.55,
        }
    }
}

/// The flags behind [`Settings`].
#[derive(Debug, Clone, clap::Args)]
#[group(id = "node-lifecycle")]
pub struct SettingsFlags {
    /// Period for syncing NodeStatus in the node lifecycle controller.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub node_monitor_period: Duration,
    /// How long a running node may be unresponsive before it is marked
    /// unhealthy.
    #[arg(long, default_value = "40s", value_parser = parse_duration)]
    pub node_monitor_grace_period: Duration,
    /// How long a starting node may be unresponsive before it is marked
    /// unhealthy.
    #[arg(long, default_value = "1m0s", value_parser = parse_duration)]
    pub node_startup_grace_period: Duration,
    /// Nodes per second whose pods are evicted when a zone is healthy.
    #[arg(long, default_value_t = 0.1)]
    pub node_eviction_rate: f32,
    /// Nodes per second whose pods are evicted when a zone is unhealthy.
    #[arg(long, default_value_t = 0.01)]
    pub secondary_node_eviction_rate: f32,
    /// Zones this small or smaller stop evicting when unhealthy.
    #[arg(long, default_value_t = 50)]
    pub large_cluster_size_threshold: i32,
    /// Fraction of not-ready nodes in a zone that makes it unhealthy.
    #[arg(long, default_value_t = 0.55)]
    pub unhealthy_zone_threshold: f32,
}

impl SettingsFlags {
    /// The settings, or the first invalid flag in upstream's words.
    pub fn into_settings(self) -> Result<Settings, String> {
        if self.node_monitor_grace_period.is_zero() {
            return Err("node-monitor-grace-period must be greater than 0".into());
        }
        if self.node_monitor_period.is_zero() {
            return Err("node-monitor-period must be greater than 0".into());
        }
        if self.node_eviction_rate < 0.0 || self.secondary_node_eviction_rate < 0.0 {
            return Err("node eviction rates must not be negative".into());
        }
        Ok(Settings {
            monitor_period: self.node_monitor_period,
            monitor_grace_period: self.node_monitor_grace_period,
            startup_grace_period: self.node_startup_grace_period,
            eviction_rate: f64::from(self.node_eviction_rate),
            secondary_eviction_rate: f64::from(self.secondary_node_eviction_rate),
            large_cluster_size_threshold: usize::try_from(self.large_cluster_size_threshold).unwrap_or(0),
            unhealthy_zone_threshold: f64::from(self.unhealthy_zone_threshold),
        })
    }
}
