//! The ResourceQuota controller's flags, named like kube-controller-manager's.

use std::time::Duration;

use crate::options::parse_duration;

/// ResourceQuota controller settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Full recount period (`--resource-quota-sync-period`).
    pub sync_period: Duration,
    /// Workers (`--concurrent-resource-quota-syncs`).
    pub concurrent_syncs: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            sync_period: Duration::from_secs(300),
            concurrent_syncs: 5,
        }
    }
}

/// The flags behind [`Settings`].
#[derive(Debug, Clone, clap::Args)]
#[group(id = "resourcequota")]
pub struct SettingsFlags {
    /// The period for syncing quota usage status in the system.
    #[arg(long, default_value = "5m0s", value_parser = parse_duration)]
    pub resource_quota_sync_period: Duration,
    /// Resource quotas synced concurrently.
    #[arg(long, default_value_t = 5)]
    pub concurrent_resource_quota_syncs: i32,
}

impl SettingsFlags {
    pub fn into_settings(self) -> Result<Settings, String> {
        if self.resource_quota_sync_period.is_zero() {
            return Err("resource-quota-sync-period must be greater than 0".into());
        }
        Ok(Settings {
            sync_period: self.resource_quota_sync_period,
            concurrent_syncs: usize::try_from(self.concurrent_resource_quota_syncs.max(1)).unwrap_or(1),
        })
    }
}
