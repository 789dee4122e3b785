//! Auditing (`--audit-policy-file`, `--audit-log-*`): who did what, as
//! upstream's `audit.k8s.io/v1` Events, one JSON object per line.
//! `policy.rs` decides each request's level; `middleware.rs` builds and
//! writes the events at each stage (and the one event of a request
//! authentication refused); `annotations.rs` collects the annotations
//! authorization and admission add; `backend.rs` is the rotated log file.
//!
//! *Architecture Invariant:* auditing is one middleware on the request
//! path; handlers know nothing of it. Without both a policy and a log path
//! it is off and costs one branch per request.

mod annotations;
mod backend;
mod middleware;
mod policy;

use std::path::PathBuf;

pub use annotations::{annotate, annotate_at, is_audited, is_audited_at};
pub use backend::LogBackend;
pub use middleware::{AUDIT_ID_HEADER, ImpersonatedUser, audit, failed_authentication};
pub use policy::{Decision, Level, Policy, PolicyError, Stage};

/// The policy and where its events go.
#[derive(Debug)]
pub struct Auditor {
    pub policy: Policy,
    pub backend: LogBackend,
}

/// Flags of auditing, as kube-apiserver's.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AuditOptions {
    /// Path to the file that defines the audit policy configuration.
    #[arg(long)]
    pub audit_policy_file: Option<PathBuf>,
    /// If set, all requests coming to the apiserver will be logged to this
    /// file; '-' means standard out.
    #[arg(long)]
    pub audit_log_path: Option<PathBuf>,
    /// Maximum size in megabytes of the audit log file before it gets rotated.
    #[arg(long, default_value_t = 0)]
    pub audit_log_maxsize: u64,
    /// Maximum number of old audit log files to retain (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub audit_log_maxbackup: usize,
    /// Maximum number of days to retain old audit log files (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub audit_log_maxage: u64,
    /// Format of saved audits: json (legacy is not supported).
    #[arg(long, default_value = "json", value_parser = ["json"])]
    pub audit_log_format: String,
    /// Strategy for sending audit events; every mode writes synchronously here.
    #[arg(long, default_value = "blocking", value_parser = ["batch", "blocking", "blocking-strict"])]
    pub audit_log_mode: String,
    /// Accepted for compatibility: rotated files are not compressed.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub audit_log_compress: bool,
}

/// Why auditing could not start.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("failed to open audit log {path:?}: {source}")]
    Log { path: String, source: std::io::Error },
}

impl AuditOptions {
    /// The auditor these flags describe; `None` unless both a policy and a
    /// log path are given (upstream's log backend needs both).
    pub fn build(&self) -> Result<Option<Auditor>, AuditError> {
        let (Some(policy), Some(path)) = (&self.audit_policy_file, &self.audit_log_path) else {
            return Ok(None);
        };
        let policy = Policy::load(policy)?;
        let backend = LogBackend::open(
            path,
            self.audit_log_maxsize,
            self.audit_log_maxbackup,
            self.audit_log_maxage,
        )
        .map_err(|source| AuditError::Log {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Some(Auditor { policy, backend }))
    }
}
