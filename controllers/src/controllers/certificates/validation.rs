//! The per-signer rules (upstream `pkg/apis/certificates/helpers.go` and
//! the signer's `isRequestForSignerFunc`s): what a request for each
//! `kubernetes.io/*` signer must look like. The error texts are
//! upstream's: they become the Failed condition's message.

use std::collections::BTreeSet;

use super::request::ParsedRequest;
use super::{
    KUBE_APISERVER_CLIENT_KUBELET_SIGNER, KUBE_APISERVER_CLIENT_SIGNER, KUBELET_SERVING_SIGNER, LEGACY_UNKNOWN_SIGNER,
};

/// Why a request does not fit its signer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("subject organization is not system:nodes")]
    OrganizationNotSystemNodes,
    #[error("subject common name does not begin with system:node:")]
    CommonNameNotSystemNode,
    #[error("DNS or IP subjectAltName is required")]
    DnsOrIpSanRequired,
    #[error("DNS subjectAltNames are not allowed")]
    DnsSanNotAllowed,
    #[error("Email subjectAltNames are not allowed")]
    EmailSanNotAllowed,
    #[error("IP subjectAltNames are not allowed")]
    IpSanNotAllowed,
    #[error("URI subjectAltNames are not allowed")]
    UriSanNotAllowed,
    /// The usages are not one of the allowed sets; holds the full set.
    #[error("usages did not match [{}]", .0.join(" "))]
    UsagesDidNotMatch(Vec<&'static str>),
    #[error("invalid usage for client certificate: {0}")]
    InvalidClientUsage(String),
    #[error("missing required usage for client certificate: client auth")]
    MissingClientAuth,
}

const KUBELET_CLIENT_USAGES: &[&str] = &["client auth", "digital signature", "key encipherment"];
const KUBELET_CLIENT_USAGES_NO_RSA: &[&str] = &["client auth", "digital signature"];
const KUBELET_SERVING_USAGES: &[&str] = &["digital signature", "key encipherment", "server auth"];
const KUBELET_SERVING_USAGES_NO_RSA: &[&str] = &["digital signature", "server auth"];

fn usage_set<'a>(usages: &[&'a str]) -> BTreeSet<&'a str> {
    usages.iter().copied().collect()
}

fn is_system_nodes(req: &ParsedRequest) -> bool {
    req.organizations.len() == 1 && req.organizations[0] == "system:nodes"
}

/// `ValidateKubeletClientCSR`: a node's client certificate.
pub fn validate_kubelet_client(req: &ParsedRequest, usages: &[&str]) -> Result<(), ValidationError> {
    if !is_system_nodes(req) {
        return Err(ValidationError::OrganizationNotSystemNodes);
    }
    if !req.dns_names.is_empty() {
        return Err(ValidationError::DnsSanNotAllowed);
    }
    if !req.email_addresses.is_empty() {
        return Err(ValidationError::EmailSanNotAllowed);
    }
    if !req.ip_addresses.is_empty() {
        return Err(ValidationError::IpSanNotAllowed);
    }
    if !req.uris.is_empty() {
        return Err(ValidationError::UriSanNotAllowed);
    }
    if !req.common_name.starts_with("system:node:") {
        return Err(ValidationError::CommonNameNotSystemNode);
    }
    let set = usage_set(usages);
    if set != usage_set(KUBELET_CLIENT_USAGES) && set != usage_set(KUBELET_CLIENT_USAGES_NO_RSA) {
        return Err(ValidationError::UsagesDidNotMatch(KUBELET_CLIENT_USAGES.to_vec()));
    }
    Ok(())
}

/// `ValidateKubeletServingCSR`: a node's serving certificate.
pub fn validate_kubelet_serving(req: &ParsedRequest, usages: &[&str]) -> Result<(), ValidationError> {
    if !is_system_nodes(req) {
        return Err(ValidationError::OrganizationNotSystemNodes);
    }
    if req.dns_names.is_empty() && req.ip_addresses.is_empty() {
        return Err(ValidationError::DnsOrIpSanRequired);
    }
    if !req.email_addresses.is_empty() {
        return Err(ValidationError::EmailSanNotAllowed);
    }
    if !req.uris.is_empty() {
        return Err(ValidationError::UriSanNotAllowed);
    }
    let set = usage_set(usages);
    if set != usage_set(KUBELET_SERVING_USAGES) && set != usage_set(KUBELET_SERVING_USAGES_NO_RSA) {
        return Err(ValidationError::UsagesDidNotMatch(KUBELET_SERVING_USAGES.to_vec()));
    }
    if !req.common_name.starts_with("system:node:") {
        return Err(ValidationError::CommonNameNotSystemNode);
    }
    Ok(())
}

/// `validAPIServerClientUsages`: client auth required, digital signature
/// and key encipherment allowed, nothing else.
pub fn validate_apiserver_client_usages(usages: &[&str]) -> Result<(), ValidationError> {
    let mut has_client_auth = false;
    for u in usages {
        match *u {
            "digital signature" | "key encipherment" => {}
            "client auth" => has_client_auth = true,
            other => return Err(ValidationError::InvalidClientUsage(other.to_string())),
        }
    }
    if !has_client_auth {
        return Err(ValidationError::MissingClientAuth);
    }
    Ok(())
}

/// Whether the request fits `signer_name`'s rules; `Err` is a request for
/// a known signer that breaks them (it gets the Failed condition). Unknown
/// signers are not ours: `Ok(false)`.
pub fn check_for_signer(req: &ParsedRequest, usages: &[&str], signer_name: &str) -> Result<bool, ValidationError> {
    match signer_name {
        KUBELET_SERVING_SIGNER => validate_kubelet_serving(req, usages).map(|()| true),
        KUBE_APISERVER_CLIENT_KUBELET_SIGNER => validate_kubelet_client(req, usages).map(|()| true),
        KUBE_APISERVER_CLIENT_SIGNER => validate_apiserver_client_usages(usages).map(|()| true),
        // No restrictions, for compatibility with certificates/v1beta1.
        LEGACY_UNKNOWN_SIGNER => Ok(true),
        _ => Ok(false),
    }
}

/// `IsKubeletClientCSR`: what the approver recognizes as a node client
/// certificate request.
pub fn is_kubelet_client(req: &ParsedRequest, usages: &[&str]) -> bool {
    validate_kubelet_client(req, usages).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(cn: &str, orgs: &[&str]) -> ParsedRequest {
        ParsedRequest {
            subject_der: Vec::new(),
            public_key_der: Vec::new(),
            common_name: cn.into(),
            organizations: orgs.iter().map(|s| s.to_string()).collect(),
            dns_names: Vec::new(),
            email_addresses: Vec::new(),
            ip_addresses: Vec::new(),
            uris: Vec::new(),
        }
    }

    fn check(r: &ParsedRequest, usages: &[&str], signer: &str, expected: Result<bool, &str>) {
        let got = check_for_signer(r, usages, signer).map_err(|e| e.to_string());
        assert_eq!(got, expected.map_err(str::to_string), "{signer} {usages:?} {r:?}");
    }

    const CLIENT: &[&str] = &["digital signature", "key encipherment", "client auth"];

    #[test]
    fn kubelet_client_rules() {
        let s = KUBE_APISERVER_CLIENT_KUBELET_SIGNER;
        let good = req("system:node:n1", &["system:nodes"]);
        check(&good, CLIENT, s, Ok(true));
        check(&good, &["client auth", "digital signature"], s, Ok(true));
        check(
            &good,
            &["client auth"],
            s,
            Err("usages did not match [client auth digital signature key encipherment]"),
        );
        check(
            &good,
            &["client auth", "digital signature", "server auth"],
            s,
            Err("usages did not match [client auth digital signature key encipherment]"),
        );
        check(
            &req("alice", &["system:nodes"]),
            CLIENT,
            s,
            Err("subject common name does not begin with system:node:"),
        );
        check(
            &req("system:node:n1", &["system:nodes", "extra"]),
            CLIENT,
            s,
            Err("subject organization is not system:nodes"),
        );
        check(
            &req("system:node:n1", &[]),
            CLIENT,
            s,
            Err("subject organization is not system:nodes"),
        );
        let mut with_dns = good.clone();
        with_dns.dns_names.push("n1".into());
        check(&with_dns, CLIENT, s, Err("DNS subjectAltNames are not allowed"));
        let mut with_ip = good.clone();
        with_ip
            .ip_addresses
            .push("10.0.0.1".parse().unwrap_or(std::net::IpAddr::from([0, 0, 0, 0])));
        check(&with_ip, CLIENT, s, Err("IP subjectAltNames are not allowed"));
        let mut with_email = good.clone();
        with_email.email_addresses.push("a@b".into());
        check(&with_email, CLIENT, s, Err("Email subjectAltNames are not allowed"));
        let mut with_uri = good;
        with_uri.uris.push("spiffe://a".into());
        check(&with_uri, CLIENT, s, Err("URI subjectAltNames are not allowed"));
    }

    #[test]
    fn kubelet_serving_rules() {
        let s = KUBELET_SERVING_SIGNER;
        let serving = &["digital signature", "key encipherment", "server auth"];
        let mut good = req("system:node:n1", &["system:nodes"]);
        check(&good, serving, s, Err("DNS or IP subjectAltName is required"));
        good.dns_names.push("n1.example".into());
        check(&good, serving, s, Ok(true));
        check(&good, &["digital signature", "server auth"], s, Ok(true));
        check(
            &good,
            CLIENT,
            s,
            Err("usages did not match [digital signature key encipherment server auth]"),
        );
        let mut bad_cn = good.clone();
        bad_cn.common_name = "n1".into();
        check(
            &bad_cn,
            serving,
            s,
            Err("subject common name does not begin with system:node:"),
        );
        let mut with_email = good;
        with_email.email_addresses.push("a@b".into());
        check(&with_email, serving, s, Err("Email subjectAltNames are not allowed"));
    }

    #[test]
    fn apiserver_client_and_other_signers() {
        let s = KUBE_APISERVER_CLIENT_SIGNER;
        let anyone = req("alice", &["devs", "ops"]);
        check(&anyone, &["client auth"], s, Ok(true));
        check(&anyone, CLIENT, s, Ok(true));
        check(
            &anyone,
            &["client auth", "server auth"],
            s,
            Err("invalid usage for client certificate: server auth"),
        );
        check(
            &anyone,
            &["digital signature"],
            s,
            Err("missing required usage for client certificate: client auth"),
        );
        check(&anyone, &["server auth", "cert sign"], LEGACY_UNKNOWN_SIGNER, Ok(true));
        check(&anyone, &["client auth"], "example.com/other", Ok(false));
        assert!(is_kubelet_client(&req("system:node:n1", &["system:nodes"]), CLIENT));
        assert!(!is_kubelet_client(&req("n1", &["system:nodes"]), CLIENT));
    }
}
