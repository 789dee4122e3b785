//! The CSR cleaner (upstream `pkg/controller/certificates/cleaner`,
//! `csrcleaner`): every hour it deletes requests that are done with: an
//! issued request approved over an hour ago, one denied or failed over an
//! hour ago, one pending for a day, and one whose certificate expired.

use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams};

use super::{APPROVED, DENIED, FAILED, is_issued};
use crate::error::{Error, is_not_found};
use crate::manager::ControllerContext;

/// Upstream's name.
pub const CONTROLLER_NAME: &str = "certificatesigningrequest-cleaner-controller";
/// How often every request is checked.
pub const POLLING_INTERVAL: Duration = Duration::from_secs(3600);
/// How long an issued request is kept after approval.
pub const APPROVED_EXPIRATION: Duration = Duration::from_secs(3600);
/// How long a denied request is kept.
pub const DENIED_EXPIRATION: Duration = Duration::from_secs(3600);
/// How long a failed request is kept.
pub const FAILED_EXPIRATION: Duration = Duration::from_secs(3600);
/// How long a request may stay pending.
pub const PENDING_EXPIRATION: Duration = Duration::from_secs(24 * 3600);

/// Why a request is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleanup {
    /// Issued, and approved longer ago than [`APPROVED_EXPIRATION`].
    IssuedPastDeadline,
    /// Denied longer ago than [`DENIED_EXPIRATION`].
    DeniedPastDeadline,
    /// Failed longer ago than [`FAILED_EXPIRATION`].
    FailedPastDeadline,
    /// Without conditions for longer than [`PENDING_EXPIRATION`].
    PendingPastDeadline,
    /// Approved and issued, and the certificate has expired.
    IssuedExpired,
}

/// `isOlderThan`: set, and more than `d` before `now`.
fn is_older_than(t: Option<&Time>, d: Duration, now: Timestamp) -> bool {
    t.is_some_and(|t| now.as_millisecond() - t.0.as_millisecond() > i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Whether the issued certificate's first block has expired at `now`.
fn is_expired(csr: &CertificateSigningRequest, now: Timestamp) -> bool {
    let Some(pem) = csr.status.as_ref().and_then(|s| s.certificate.as_ref()) else {
        return false;
    };
    let Some(Ok(block)) = x509_parser::pem::Pem::iter_from_buffer(&pem.0).next() else {
        return false;
    };
    let Ok(cert) = block.parse_x509() else {
        return false;
    };
    now.as_second() > cert.validity().not_after.timestamp()
}

/// Whether `csr` is deleted at `now`, and why.
pub fn cleanup(csr: &CertificateSigningRequest, now: Timestamp) -> Option<Cleanup> {
    let conditions = csr
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    let issued = is_issued(csr);
    let past = |ty: &str, d: Duration| {
        conditions
            .iter()
            .any(|c| c.type_ == ty && is_older_than(c.last_update_time.as_ref(), d, now))
    };
    if issued && past(APPROVED, APPROVED_EXPIRATION) {
        return Some(Cleanup::IssuedPastDeadline);
    }
    if past(DENIED, DENIED_EXPIRATION) {
        return Some(Cleanup::DeniedPastDeadline);
    }
    if past(FAILED, FAILED_EXPIRATION) {
        return Some(Cleanup::FailedPastDeadline);
    }
    if conditions.is_empty() && is_older_than(csr.metadata.creation_timestamp.as_ref(), PENDING_EXPIRATION, now) {
        return Some(Cleanup::PendingPastDeadline);
    }
    if issued && conditions.iter().any(|c| c.type_ == APPROVED) && is_expired(csr, now) {
        return Some(Cleanup::IssuedExpired);
    }
    None
}

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, Result<(), Error>> {
    run(ctx).boxed()
}

async fn run(ctx: ControllerContext) -> Result<(), Error> {
    let csrs = ctx.informers.get::<CertificateSigningRequest>();
    csrs.wait_synced().await;
    let api: Api<CertificateSigningRequest> = Api::all(ctx.client.clone());
    loop {
        for csr in csrs.list_all() {
            let Some(reason) = cleanup(&csr, Timestamp::now()) else {
                continue;
            };
            let name = csr.metadata.name.as_deref().unwrap_or_default();
            tracing::info!(controller = CONTROLLER_NAME, csr = name, ?reason, "cleaning up CSR");
            match api.delete(name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => tracing::warn!(controller = CONTROLLER_NAME, csr = name, error = %e, "unable to delete CSR"),
            }
        }
        tokio::time::sleep(POLLING_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::controllers::certificates::authority::tests::test_ca;
    use crate::controllers::certificates::authority::{self, CertificateAuthority, SigningPolicy};
    use crate::controllers::certificates::request::{self, tests::request_pem};
    use crate::controllers::certificates::tests::csr;
    use serde_json::json;

    const NOW: &str = "2025-01-02T12:00:00Z";

    fn check(conditions: serde_json::Value, certificate: Option<&str>, expected: Option<Cleanup>) {
        let c = csr(conditions.clone(), certificate);
        assert_eq!(cleanup(&c, NOW.parse().unwrap()), expected, "{conditions}");
    }

    fn approved_at(t: &str) -> serde_json::Value {
        json!([{"type": "Approved", "status": "True", "lastUpdateTime": t}])
    }

    /// A certificate valid for `ttl` seconds from `now`.
    fn cert(now: &str, ttl: u64) -> String {
        let (ca_pem, ca_key) = test_ca(2100);
        let ca = CertificateAuthority::from_pem(&ca_pem, &ca_key).unwrap();
        let req = request::parse(request_pem("a", &[], vec![]).as_bytes()).unwrap();
        let policy = SigningPolicy::new(Duration::from_secs(ttl), vec!["client auth".into()]);
        authority::certificate_pem(&ca.sign(&req, &policy, now.parse().unwrap()).unwrap())
    }

    #[test]
    fn ages_per_state() {
        let fresh_cert = cert("2025-01-02T11:00:00Z", 86400);
        // Issued: kept an hour after approval.
        check(approved_at("2025-01-02T11:30:00Z"), Some(&fresh_cert), None);
        check(
            approved_at("2025-01-02T10:30:00Z"),
            Some(&fresh_cert),
            Some(Cleanup::IssuedPastDeadline),
        );
        // Approved but not issued yet: kept.
        check(approved_at("2025-01-01T00:00:00Z"), None, None);
        // Denied and failed: an hour.
        let denied = |t: &str| json!([{"type": "Denied", "status": "True", "lastUpdateTime": t}]);
        check(denied("2025-01-02T11:30:00Z"), None, None);
        check(denied("2025-01-02T10:59:00Z"), None, Some(Cleanup::DeniedPastDeadline));
        let failed = |t: &str| json!([{"type": "Approved", "status": "True"}, {"type": "Failed", "status": "True", "lastUpdateTime": t}]);
        check(failed("2025-01-02T11:30:00Z"), None, None);
        check(failed("2025-01-02T10:00:00Z"), None, Some(Cleanup::FailedPastDeadline));
        // A condition without a time never ages.
        check(json!([{"type": "Denied", "status": "True"}]), None, None);
        // Pending: a day from creation (the helper creates at 2025-01-01T00:00).
        check(json!([]), None, Some(Cleanup::PendingPastDeadline));
        let mut young = csr(json!([]), None);
        young.metadata.creation_timestamp = Some(Time("2025-01-02T00:00:00Z".parse().unwrap()));
        assert_eq!(cleanup(&young, NOW.parse().unwrap()), None);
        // Issued and expired, approval time unknown.
        let expired = cert("2025-01-02T10:00:00Z", 600);
        check(
            json!([{"type": "Approved", "status": "True"}]),
            Some(&expired),
            Some(Cleanup::IssuedExpired),
        );
        check(json!([{"type": "Approved", "status": "True"}]), Some(&fresh_cert), None);
        check(json!([{"type": "Approved", "status": "True"}]), Some("not pem"), None);
    }
}
