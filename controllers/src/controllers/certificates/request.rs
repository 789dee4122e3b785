//! A certificate request as the signer and approver see it (Go's
//! `x509.CertificateRequest` after `capihelper.ParseCSR`): the first PEM
//! block must be a `CERTIFICATE REQUEST`; its subject, public key and
//! subject alternative names are read with x509-parser.

use std::net::IpAddr;

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

/// Why a request could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("PEM block type must be CERTIFICATE REQUEST")]
    NotACertificateRequest,
    #[error("x509: malformed certificate request")]
    Malformed,
    #[error("unable to verify certificate request signature: {0}")]
    Signature(String),
}

/// The parts of a PKCS#10 request the controllers use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedRequest {
    /// The subject Name, DER, as the requester encoded it.
    pub subject_der: Vec<u8>,
    /// The SubjectPublicKeyInfo, DER.
    pub public_key_der: Vec<u8>,
    /// The last CN of the subject (Go keeps the last one).
    pub common_name: String,
    /// Every O of the subject, in order.
    pub organizations: Vec<String>,
    pub dns_names: Vec<String>,
    pub email_addresses: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    pub uris: Vec<String>,
}

/// The first PEM block of `pem`: its label and decoded bytes.
fn first_pem_block(pem: &[u8]) -> Option<(String, Vec<u8>)> {
    let mut iter = x509_parser::pem::Pem::iter_from_buffer(pem);
    let block = iter.next()?.ok()?;
    Some((block.label, block.contents))
}

/// Parses `spec.request` (PEM) and checks its signature.
pub fn parse(pem: &[u8]) -> Result<ParsedRequest, RequestError> {
    let Some((label, der)) = first_pem_block(pem) else {
        return Err(RequestError::NotACertificateRequest);
    };
    if label != "CERTIFICATE REQUEST" {
        return Err(RequestError::NotACertificateRequest);
    }
    parse_der(&der)
}

/// Parses a DER PKCS#10 request and checks its signature.
pub fn parse_der(der: &[u8]) -> Result<ParsedRequest, RequestError> {
    let (_, csr) = X509CertificationRequest::from_der(der).map_err(|_| RequestError::Malformed)?;
    csr.verify_signature()
        .map_err(|e| RequestError::Signature(e.to_string()))?;
    let info = &csr.certification_request_info;
    let text = |attr: &x509_parser::x509::AttributeTypeAndValue<'_>| attr.as_str().unwrap_or_default().to_string();
    let mut parsed = ParsedRequest {
        subject_der: info.subject.as_raw().to_vec(),
        public_key_der: info.subject_pki.raw.to_vec(),
        common_name: info.subject.iter_common_name().last().map(text).unwrap_or_default(),
        organizations: info.subject.iter_organization().map(text).collect(),
        dns_names: Vec::new(),
        email_addresses: Vec::new(),
        ip_addresses: Vec::new(),
        uris: Vec::new(),
    };
    for ext in csr.requested_extensions().into_iter().flatten() {
        let ParsedExtension::SubjectAlternativeName(san) = ext else {
            continue;
        };
        for name in &san.general_names {
            match name {
                GeneralName::DNSName(n) => parsed.dns_names.push((*n).to_string()),
                GeneralName::RFC822Name(n) => parsed.email_addresses.push((*n).to_string()),
                GeneralName::URI(n) => parsed.uris.push((*n).to_string()),
                GeneralName::IPAddress(bytes) => {
                    let ip = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                        _ => None,
                    };
                    parsed.ip_addresses.extend(ip);
                }
                _ => {}
            }
        }
    }
    Ok(parsed)
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};

    /// A signed request (PEM) for `cn` in `orgs` with `sans`.
    pub fn request_pem(cn: &str, orgs: &[&str], sans: Vec<SanType>) -> String {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        for o in orgs {
            dn.push(DnType::OrganizationName, *o);
        }
        dn.push(DnType::CommonName, cn);
        params.distinguished_name = dn;
        params.subject_alt_names = sans;
        params.serialize_request(&key).unwrap().pem().unwrap()
    }

    #[test]
    fn reads_subject_and_alternative_names() {
        let pem = request_pem(
            "system:node:n1",
            &["system:nodes"],
            vec![
                SanType::DnsName("n1.example".try_into().unwrap()),
                SanType::IpAddress("10.0.0.1".parse().unwrap()),
                SanType::Rfc822Name("a@example.com".try_into().unwrap()),
                SanType::URI("spiffe://x/y".try_into().unwrap()),
            ],
        );
        let r = parse(pem.as_bytes()).unwrap();
        assert_eq!(r.common_name, "system:node:n1");
        assert_eq!(r.organizations, vec!["system:nodes"]);
        assert_eq!(r.dns_names, vec!["n1.example"]);
        assert_eq!(r.ip_addresses, vec!["10.0.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(r.email_addresses, vec!["a@example.com"]);
        assert_eq!(r.uris, vec!["spiffe://x/y"]);
        assert!(!r.subject_der.is_empty() && !r.public_key_der.is_empty());
    }

    #[test]
    fn rejects_other_blocks_and_garbage() {
        assert_eq!(parse(b"nothing"), Err(RequestError::NotACertificateRequest));
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert_eq!(parse(cert.as_bytes()), Err(RequestError::NotACertificateRequest));
        let bad = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n";
        assert_eq!(parse(bad.as_bytes()), Err(RequestError::Malformed));
    }
}
