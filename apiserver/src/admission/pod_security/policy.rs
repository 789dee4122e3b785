//! A namespace's Pod Security policy (`k8s.io/pod-security-admission/api`):
//! the `pod-security.kubernetes.io/<mode>` and `<mode>-version` labels
//! resolved to a level and version per mode (enforce, audit, warn).

use std::fmt;

use serde_json::{Map, Value};

use crate::validation::{self, FieldError, FieldErrors};

pub const ENFORCE_LEVEL_LABEL: &str = "pod-security.kubernetes.io/enforce";
pub const ENFORCE_VERSION_LABEL: &str = "pod-security.kubernetes.io/enforce-version";
pub const AUDIT_LEVEL_LABEL: &str = "pod-security.kubernetes.io/audit";
pub const AUDIT_VERSION_LABEL: &str = "pod-security.kubernetes.io/audit-version";
pub const WARN_LEVEL_LABEL: &str = "pod-security.kubernetes.io/warn";
pub const WARN_VERSION_LABEL: &str = "pod-security.kubernetes.io/warn-version";

/// A Pod Security Standard, from least to most strict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    /// `api.ParseLevel`: an unknown level is an error and evaluates as
    /// restricted.
    pub fn parse(s: &str) -> Result<Level, Level> {
        match s {
            "privileged" => Ok(Level::Privileged),
            "baseline" => Ok(Level::Baseline),
            "restricted" => Ok(Level::Restricted),
            _ => Err(Level::Restricted),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

/// A policy version: `v1.<minor>` or `latest` (newer than every version).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    V1(u32),
    Latest,
}

impl Version {
    /// `api.ParseVersion`: `latest` or `v1.x`; anything else is an error
    /// and evaluates as latest.
    pub fn parse(s: &str) -> Result<Version, Version> {
        if s == "latest" {
            return Ok(Version::Latest);
        }
        let Some(minor) = s.strip_prefix("v1.") else {
            return Err(Version::Latest);
        };
        let well_formed =
            !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit()) && (minor == "0" || !minor.starts_with('0'));
        match minor.parse::<u32>() {
            Ok(n) if well_formed => Ok(Version::V1(n)),
            _ => Err(Version::Latest),
        }
    }

    /// Whether this version is at least `v1.minor` (latest always is).
    pub fn at_least(self, minor: u32) -> bool {
        match self {
            Version::Latest => true,
            Version::V1(n) => n >= minor,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Latest => f.write_str("latest"),
            Version::V1(n) => write!(f, "v1.{n}"),
        }
    }
}

/// A level at a version, shown as `restricted:latest` or `baseline:v1.23`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LevelVersion {
    pub level: Level,
    pub version: Version,
}

impl fmt::Display for LevelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.level.as_str(), self.version)
    }
}

/// The policy of each mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub enforce: LevelVersion,
    pub audit: LevelVersion,
    pub warn: LevelVersion,
}

impl Default for Policy {
    /// Upstream's default `PodSecurityConfiguration`: privileged:latest for
    /// every mode.
    fn default() -> Self {
        let lv = LevelVersion {
            level: Level::Privileged,
            version: Version::Latest,
        };
        Policy {
            enforce: lv,
            audit: lv,
            warn: lv,
        }
    }
}

impl Policy {
    /// Whether no mode checks anything.
    pub fn fully_privileged(&self) -> bool {
        [self.enforce, self.audit, self.warn]
            .iter()
            .all(|lv| lv.level == Level::Privileged)
    }
}

/// `api.PolicyToEvaluate`: the policy the labels ask for over the default,
/// with an error per bad label. A bad enforce label fails closed
/// (restricted, latest); bad audit and warn levels fail open (privileged).
pub fn policy_to_evaluate(labels: Option<&Map<String, Value>>) -> (Policy, FieldErrors) {
    let mut p = Policy::default();
    let mut errs = FieldErrors::new();
    let Some(labels) = labels else {
        return (p, errs);
    };
    let label = |k: &str| labels.get(k).and_then(Value::as_str);
    let mut invalid = |key: &str, value: &str, detail: &str| {
        errs.push(FieldError::invalid(
            validation::key("metadata.labels", key),
            value,
            detail,
        ));
    };
    const BAD_LEVEL: &str = "must be one of privileged, baseline, restricted";
    const BAD_VERSION: &str = "must be \"latest\" or \"v1.x\"";
    let mut level = |key: &str, target: &mut Level, fail_open: bool| {
        if let Some(v) = label(key) {
            *target = Level::parse(v).unwrap_or_else(|fallback| {
                invalid(key, v, BAD_LEVEL);
                if fail_open { Level::Privileged } else { fallback }
            });
        }
    };
    level(ENFORCE_LEVEL_LABEL, &mut p.enforce.level, false);
    level(AUDIT_LEVEL_LABEL, &mut p.audit.level, true);
    level(WARN_LEVEL_LABEL, &mut p.warn.level, true);
    for (key, target) in [
        (ENFORCE_VERSION_LABEL, &mut p.enforce.version),
        (AUDIT_VERSION_LABEL, &mut p.audit.version),
        (WARN_VERSION_LABEL, &mut p.warn.version),
    ] {
        if let Some(v) = label(key) {
            *target = Version::parse(v).unwrap_or_else(|fallback| {
                invalid(key, v, BAD_VERSION);
                fallback
            });
        }
    }
    // Upstream reports the errors in label order: enforce, enforce-version,
    // audit, audit-version, warn, warn-version.
    let order = [
        ENFORCE_LEVEL_LABEL,
        ENFORCE_VERSION_LABEL,
        AUDIT_LEVEL_LABEL,
        AUDIT_VERSION_LABEL,
        WARN_LEVEL_LABEL,
        WARN_VERSION_LABEL,
    ];
    errs.0.sort_by_key(|e| {
        order
            .iter()
            .position(|l| e.field == validation::key("metadata.labels", l))
            .unwrap_or(order.len())
    });
    (p, errs)
}
