//! The CertificateSigningRequest controllers (upstream
//! `pkg/controller/certificates`):
//!
//! - [`signer`] (`csrsigning`): issues certificates for approved requests
//!   to the `kubernetes.io/*` signers with the cluster CA, or marks a
//!   request that breaks its signer's rules ([`validation`]) Failed;
//! - [`approver`] (`csrapproving`): approves kubelet client certificate
//!   requests whose requester a SubjectAccessReview allows to;
//! - [`cleaner`] (`csrcleaner`): deletes old requests.
//!
//! Requests are read with x509-parser ([`request`]); certificates are
//! written by [`authority`] over a small DER writer ([`der`]).

pub mod approver;
pub mod authority;
pub mod cleaner;
pub mod der;
pub mod request;
mod settings;
pub mod signer;
pub mod validation;

pub use settings::{ALL_SIGNERS, DEFAULT_DURATION, Settings, SettingsFlags, SigningFiles};

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;

/// Client certificates for the apiserver, any subject.
pub const KUBE_APISERVER_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client";
/// Kubelets' client certificates for the apiserver.
pub const KUBE_APISERVER_CLIENT_KUBELET_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// Kubelets' serving certificates.
pub const KUBELET_SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";
/// The certificates/v1beta1 default, with no rules.
pub const LEGACY_UNKNOWN_SIGNER: &str = "kubernetes.io/legacy-unknown";

/// Condition types.
pub const APPROVED: &str = "Approved";
pub const DENIED: &str = "Denied";
pub const FAILED: &str = "Failed";

fn conditions(
    csr: &CertificateSigningRequest,
) -> &[k8s_openapi::api::certificates::v1::CertificateSigningRequestCondition] {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default()
}

/// `GetCertApprovalCondition`: (approved, denied).
pub fn approval(csr: &CertificateSigningRequest) -> (bool, bool) {
    let mut approved = false;
    let mut denied = false;
    for c in conditions(csr) {
        match c.type_.as_str() {
            APPROVED => approved = true,
            DENIED => denied = true,
            _ => {}
        }
    }
    (approved, denied)
}

/// Approved and not denied.
pub fn is_approved(csr: &CertificateSigningRequest) -> bool {
    approval(csr) == (true, false)
}

/// Whether a condition of `type_` is True (or has no status).
pub fn has_true_condition(csr: &CertificateSigningRequest, type_: &str) -> bool {
    conditions(csr)
        .iter()
        .any(|c| c.type_ == type_ && (c.status.is_empty() || c.status == "True"))
}

/// Whether a certificate was issued.
pub fn is_issued(csr: &CertificateSigningRequest) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .is_some_and(|c| !c.0.is_empty())
}

/// The request's usages as strings.
pub fn usages(csr: &CertificateSigningRequest) -> Vec<&str> {
    csr.spec
        .usages
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(String::as_str)
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::{Value, json};

    /// A CSR with `conditions` and, when `certificate` is given, that
    /// certificate (PEM).
    pub fn csr(conditions: Value, certificate: Option<&str>) -> CertificateSigningRequest {
        use base64::Engine;
        let mut status = json!({"conditions": conditions});
        if let Some(c) = certificate {
            status["certificate"] = json!(base64::engine::general_purpose::STANDARD.encode(c));
        }
        serde_json::from_value(json!({
            "metadata": {"name": "c", "creationTimestamp": "2025-01-01T00:00:00Z"},
            "spec": {"request": "", "signerName": KUBE_APISERVER_CLIENT_SIGNER, "usages": ["client auth"]},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn approval_state_reads_the_conditions() {
        let approved = csr(json!([{"type": "Approved", "status": "True"}]), None);
        assert!(is_approved(&approved));
        let both = csr(
            json!([{"type": "Approved", "status": "True"}, {"type": "Denied", "status": "True"}]),
            None,
        );
        assert!(!is_approved(&both));
        assert_eq!(approval(&both), (true, true));
        let failed = csr(json!([{"type": "Failed", "status": "True"}]), None);
        assert!(has_true_condition(&failed, FAILED));
        let not_failed = csr(json!([{"type": "Failed", "status": "False"}]), None);
        assert!(!has_true_condition(&not_failed, FAILED));
        assert!(!is_issued(&approved));
        assert!(is_issued(&csr(json!([]), Some("x"))));
        assert_eq!(usages(&approved), vec!["client auth"]);
    }
}
