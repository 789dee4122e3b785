//! Flags and settings of the Endpoints, EndpointSlice, EndpointSlice
//! mirroring and pod GC controllers, named and bounded like
//! kube-controller-manager's.

use std::time::Duration;

/// What the four controllers are configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Workers of the Endpoints controller (`--concurrent-endpoint-syncs`).
    pub concurrent_endpoint_syncs: usize,
    /// Workers of the EndpointSlice controller
    /// (`--concurrent-service-endpoint-syncs`).
    pub concurrent_service_endpoint_syncs: usize,
    /// Workers of the mirroring controller
    /// (`--mirroring-concurrent-service-endpoint-syncs`).
    pub mirroring_concurrent_service_endpoint_syncs: usize,
    /// Endpoints per EndpointSlice (`--max-endpoints-per-slice`).
    pub max_endpoints_per_slice: usize,
    /// Addresses mirrored per Endpoints subset
    /// (`--mirroring-max-endpoints-per-subset`).
    pub mirroring_max_endpoints_per_subset: usize,
    /// Terminated pods kept before the oldest are deleted; 0 keeps them
    /// all (`--terminated-pod-gc-threshold`).
    pub terminated_pod_gc_threshold: usize,
    /// How often pod GC runs (upstream: 20 s, not a flag).
    pub pod_gc_period: Duration,
    /// How long a node must be missing before pod GC deletes its pods
    /// (upstream: 40 s, not a flag).
    pub pod_gc_quarantine: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            concurrent_endpoint_syncs: 5,
            concurrent_service_endpoint_syncs: 5,
            mirroring_concurrent_service_endpoint_syncs: 5,
            max_endpoints_per_slice: 100,
            mirroring_max_endpoints_per_subset: 1000,
            terminated_pod_gc_threshold: 12500,
            pod_gc_period: crate::controllers::podgc::GC_CHECK_PERIOD,
            pod_gc_quarantine: crate::controllers::podgc::QUARANTINE,
        }
    }
}

/// The command-line flags behind [`Settings`].
#[derive(Debug, Clone, clap::Args)]
pub struct SettingsFlags {
    #[arg(long, default_value_t = 5)]
    pub concurrent_endpoint_syncs: i64,
    #[arg(long, default_value_t = 5)]
    pub concurrent_service_endpoint_syncs: i64,
    #[arg(long, default_value_t = 5)]
    pub mirroring_concurrent_service_endpoint_syncs: i64,
    /// The most endpoints one EndpointSlice holds (1-1000).
    #[arg(long, default_value_t = 100)]
    pub max_endpoints_per_slice: i64,
    /// The most addresses mirrored from one Endpoints subset (1-1000).
    #[arg(long, default_value_t = 1000)]
    pub mirroring_max_endpoints_per_subset: i64,
    /// Terminated pods kept before the oldest are deleted (0: no limit).
    #[arg(long, default_value_t = 12500)]
    pub terminated_pod_gc_threshold: i64,
}

fn bounded(flag: &str, v: i64, min: i64, max: i64, errs: &mut Vec<String>) -> usize {
    if v < min {
        errs.push(format!("{flag} must not be less than {min}, but got {v}"));
    } else if v > max {
        errs.push(format!("{flag} must not be more than {max}, but got {v}"));
    }
    usize::try_from(v.clamp(min, max)).unwrap_or(0)
}

impl SettingsFlags {
    /// The settings, or every out-of-range flag in upstream's words.
    pub fn into_settings(self) -> Result<Settings, String> {
        let mut errs = Vec::new();
        let s = Settings {
            concurrent_endpoint_syncs: usize::try_from(self.concurrent_endpoint_syncs.max(1)).unwrap_or(1),
            concurrent_service_endpoint_syncs: bounded(
                "concurrent-service-endpoint-syncs",
                self.concurrent_service_endpoint_syncs,
                1,
                50,
                &mut errs,
            ),
            mirroring_concurrent_service_endpoint_syncs: bounded(
                "mirroring-concurrent-service-endpoint-syncs",
                self.mirroring_concurrent_service_endpoint_syncs,
                1,
                50,
                &mut errs,
            ),
            max_endpoints_per_slice: bounded(
                "max-endpoints-per-slice",
                self.max_endpoints_per_slice,
                1,
                1000,
                &mut errs,
            ),
            mirroring_max_endpoints_per_subset: bounded(
                "mirroring-max-endpoints-per-subset",
                self.mirroring_max_endpoints_per_subset,
                1,
                1000,
                &mut errs,
            ),
            terminated_pod_gc_threshold: usize::try_from(self.terminated_pod_gc_threshold.max(0)).unwrap_or(0),
            ..Settings::default()
        };
        if errs.is_empty() { Ok(s) } else { Err(errs.join(", ")) }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        flags: SettingsFlags,
    }

    fn parse(args: &[&str]) -> Result<Settings, String> {
        let mut v = vec!["x"];
        v.extend_from_slice(args);
        Cli::parse_from(v).flags.into_settings()
    }

    #[test]
    fn defaults_are_upstreams() {
        assert_eq!(parse(&[]).unwrap(), Settings::default());
    }

    #[test]
    fn flags_are_bounded_like_upstream() {
        let s = parse(&["--max-endpoints-per-slice=7", "--terminated-pod-gc-threshold=0"]).unwrap();
        assert_eq!((s.max_endpoints_per_slice, s.terminated_pod_gc_threshold), (7, 0));
        assert_eq!(
            parse(&["--max-endpoints-per-slice=0"]).unwrap_err(),
            "max-endpoints-per-slice must not be less than 1, but got 0"
        );
        assert_eq!(
            parse(&[
                "--max-endpoints-per-slice=1001",
                "--concurrent-service-endpoint-syncs=51"
            ])
            .unwrap_err(),
            "concurrent-service-endpoint-syncs must not be more than 50, but got 51, max-endpoints-per-slice must not be more than 1000, but got 1001"
        );
    }
}
