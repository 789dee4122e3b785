//! The signing CA (upstream `pkg/controller/certificates/authority`): a CA
//! certificate and key from PEM files, and `sign`, which issues a
//! certificate for a request under upstream's permissive signing policy:
//! the request's subject, public key and subject alternative names are
//! kept; key usages come from the CSR's `spec.usages`; every other
//! extension is dropped; the certificate is not a CA; it is backdated
//! by `backdate` and lives `ttl` (less the backdate unless it is
//! shorter than `short`), never past the CA's own expiry.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use rcgen::{KeyPair, SigningKey};
use x509_parser::extensions::ParsedExtension;

use super::der;
use super::request::ParsedRequest;

/// Why a CA could not be loaded or a certificate not issued.
#[derive(Debug, thiserror::Error)]
pub enum AuthorityError {
    #[error("reading {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("parsing the CA certificate: {0}")]
    Certificate(String),
    #[error("parsing the CA key: {0}")]
    Key(String),
    #[error("unsupported CA key algorithm")]
    UnsupportedAlgorithm,
    #[error("unrecognized usage values: [{}]", .0.iter().map(|u| format!("{u:?}")).collect::<Vec<_>>().join(" "))]
    UnrecognizedUsages(Vec<String>),
    #[error("the signer has expired: NotAfter={0}")]
    SignerExpired(Timestamp),
    #[error("refusing to sign a certificate that expired in the past: NotAfter={0}")]
    ExpiredInThePast(Timestamp),
    #[error("failed to sign certificate: {0}")]
    Sign(String),
}

/// A CA certificate and its key.
pub struct CertificateAuthority {
    subject_der: Vec<u8>,
    subject_key_id: Option<Vec<u8>>,
    not_after: Timestamp,
    key: KeyPair,
    /// The signature AlgorithmIdentifier of `key`, DER.
    signature_algorithm: Vec<u8>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// The signing policy of one request.
#[derive(Debug, Clone)]
pub struct SigningPolicy {
    pub ttl: Duration,
    pub usages: Vec<String>,
    pub backdate: Duration,
    pub short: Duration,
}

impl SigningPolicy {
    /// Upstream's signer: 5 minutes of backdating, short below 8 hours.
    pub fn new(ttl: Duration, usages: Vec<String>) -> Self {
        SigningPolicy {
            ttl,
            usages,
            backdate: Duration::from_secs(5 * 60),
            short: Duration::from_secs(8 * 3600),
        }
    }
}

/// The lower bound of a requested duration (twice the backdate).
pub const MIN_DURATION: Duration = Duration::from_secs(10 * 60);

/// How long a certificate lives: `spec.expirationSeconds` when given,
/// capped by the signer's `--cluster-signing-duration` and at least 10
/// minutes.
pub fn duration(cert_ttl: Duration, expiration_seconds: Option<i32>) -> Duration {
    let Some(seconds) = expiration_seconds else {
        return cert_ttl;
    };
    let requested = Duration::from_secs(u64::try_from(seconds).unwrap_or(0));
    if requested > cert_ttl {
        cert_ttl
    } else if requested < MIN_DURATION {
        MIN_DURATION
    } else {
        requested
    }
}

/// Key usage bits (RFC 5280 order) of the API's usage names.
fn key_usage_bit(usage: &str) -> Option<u16> {
    let bit = match usage {
        "signing" | "digital signature" => 0,
        "content commitment" => 1,
        "key encipherment" => 2,
        "data encipherment" => 3,
        "key agreement" => 4,
        "cert sign" => 5,
        "crl sign" => 6,
        "encipher only" => 7,
        "decipher only" => 8,
        _ => return None,
    };
    Some(1 << bit)
}

/// Extended key usages: (Go's `x509.ExtKeyUsage` order, OID).
fn ext_key_usage(usage: &str) -> Option<(u8, &'static [u64])> {
    Some(match usage {
        "any" => (0, &[2, 5, 29, 37, 0]),
        "server auth" => (1, &[1, 3, 6, 1, 5, 5, 7, 3, 1]),
        "client auth" => (2, &[1, 3, 6, 1, 5, 5, 7, 3, 2]),
        "code signing" => (3, &[1, 3, 6, 1, 5, 5, 7, 3, 3]),
        "email protection" | "s/mime" => (4, &[1, 3, 6, 1, 5, 5, 7, 3, 4]),
        "ipsec end system" => (5, &[1, 3, 6, 1, 5, 5, 7, 3, 5]),
        "ipsec tunnel" => (6, &[1, 3, 6, 1, 5, 5, 7, 3, 6]),
        "ipsec user" => (7, &[1, 3, 6, 1, 5, 5, 7, 3, 7]),
        "timestamping" => (8, &[1, 3, 6, 1, 5, 5, 7, 3, 8]),
        "ocsp signing" => (9, &[1, 3, 6, 1, 5, 5, 7, 3, 9]),
        "microsoft sgc" => (10, &[1, 3, 6, 1, 4, 1, 311, 10, 3, 3]),
        "netscape sgc" => (11, &[2, 16, 840, 1, 113730, 4, 1]),
        _ => return None,
    })
}

/// `keyUsagesFromStrings`: the key usage bits and the sorted, distinct
/// extended key usage OIDs.
pub fn key_usages(usages: &[String]) -> Result<(u16, Vec<&'static [u64]>), AuthorityError> {
    let mut bits = 0u16;
    let mut ext = std::collections::BTreeMap::new();
    let mut unrecognized = Vec::new();
    for u in usages {
        if let Some(b) = key_usage_bit(u) {
            bits |= b;
        } else if let Some((order, oid)) = ext_key_usage(u) {
            ext.insert(order, oid);
        } else {
            unrecognized.push(u.clone());
        }
    }
    if !unrecognized.is_empty() {
        return Err(AuthorityError::UnrecognizedUsages(unrecognized));
    }
    Ok((bits, ext.into_values().collect()))
}

fn signature_algorithm_der(key: &KeyPair) -> Result<Vec<u8>, AuthorityError> {
    let alg = key.algorithm();
    let ecdsa = |arcs: &[u64]| der::sequence(&[&der::oid(arcs)]);
    let rsa = |last: u64| der::sequence(&[&der::oid(&[1, 2, 840, 113549, 1, 1, last]), &der::tlv(der::NULL, &[])]);
    if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
        Ok(ecdsa(&[1, 2, 840, 10045, 4, 3, 2]))
    } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
        Ok(ecdsa(&[1, 2, 840, 10045, 4, 3, 3]))
    } else if alg == &rcgen::PKCS_ED25519 {
        Ok(ecdsa(&[1, 3, 101, 112]))
    } else if alg == &rcgen::PKCS_RSA_SHA256 {
        Ok(rsa(11))
    } else if alg == &rcgen::PKCS_RSA_SHA384 {
        Ok(rsa(12))
    } else if alg == &rcgen::PKCS_RSA_SHA512 {
        Ok(rsa(13))
    } else {
        Err(AuthorityError::UnsupportedAlgorithm)
    }
}

/// UTCTime before 2050, GeneralizedTime from then on (RFC 5280 4.1.2.5).
fn time_der(t: Timestamp) -> Vec<u8> {
    let dt = k8s_openapi::jiff::tz::Offset::UTC.to_datetime(t);
    let rest = format!(
        "{:02}{:02}{:02}{:02}{:02}Z",
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    if (1950..2050).contains(&dt.year()) {
        der::tlv(der::UTC_TIME, format!("{:02}{rest}", dt.year() % 100).as_bytes())
    } else {
        der::tlv(der::GENERALIZED_TIME, format!("{:04}{rest}", dt.year()).as_bytes())
    }
}

fn extension(oid: &[u64], critical: bool, value: &[u8]) -> Vec<u8> {
    let oid = der::oid(oid);
    let value = der::tlv(der::OCTET_STRING, value);
    if critical {
        der::sequence(&[&oid, &der::tlv(der::BOOLEAN, &[0xff]), &value])
    } else {
        der::sequence(&[&oid, &value])
    }
}

/// The subjectAltName value: DNS names, emails, IPs, URIs (Go's order).
fn subject_alt_names(req: &ParsedRequest) -> Option<Vec<u8>> {
    let mut names = Vec::new();
    for n in &req.dns_names {
        names.push(der::tlv(der::context_primitive(2), n.as_bytes()));
    }
    for n in &req.email_addresses {
        names.push(der::tlv(der::context_primitive(1), n.as_bytes()));
    }
    for ip in &req.ip_addresses {
        let bytes = match ip {
            std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
            std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        names.push(der::tlv(der::context_primitive(7), &bytes));
    }
    for n in &req.uris {
        names.push(der::tlv(der::context_primitive(6), n.as_bytes()));
    }
    if names.is_empty() {
        return None;
    }
    let refs: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
    Some(der::sequence(&refs))
}

/// PEM "CERTIFICATE" of `der_bytes`.
pub fn certificate_pem(der_bytes: &[u8]) -> String {
    let b64 = STANDARD.encode(der_bytes);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

fn read(path: &Path) -> Result<String, AuthorityError> {
    std::fs::read_to_string(path).map_err(|source| AuthorityError::Read {
        path: path.display().to_string(),
        source,
    })
}

impl CertificateAuthority {
    /// Loads the CA from a PEM certificate file and a PEM key file.
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<Self, AuthorityError> {
        Self::from_pem(&read(cert_file)?, &read(key_file)?)
    }

    /// The CA from a PEM certificate and a PEM (PKCS#8) key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, AuthorityError> {
        let mut blocks = x509_parser::pem::Pem::iter_from_buffer(cert_pem.as_bytes());
        let block = blocks
            .next()
            .ok_or_else(|| AuthorityError::Certificate("no PEM block".into()))?
            .map_err(|e| AuthorityError::Certificate(e.to_string()))?;
        let cert = block
            .parse_x509()
            .map_err(|e| AuthorityError::Certificate(e.to_string()))?;
        let subject_key_id = cert
            .tbs_certificate
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
                _ => None,
            });
        let not_after = Timestamp::from_second(cert.validity().not_after.timestamp())
            .map_err(|e| AuthorityError::Certificate(e.to_string()))?;
        let key = KeyPair::from_pem(key_pem).map_err(|e| AuthorityError::Key(e.to_string()))?;
        let signature_algorithm = signature_algorithm_der(&key)?;
        Ok(CertificateAuthority {
            subject_der: cert.tbs_certificate.subject.as_raw().to_vec(),
            subject_key_id,
            not_after,
            key,
            signature_algorithm,
        })
    }

    /// When the CA certificate expires.
    pub fn not_after(&self) -> Timestamp {
        self.not_after
    }

    /// Issues a certificate (DER) for `req` under `policy` at `now`.
    pub fn sign(&self, req: &ParsedRequest, policy: &SigningPolicy, now: Timestamp) -> Result<Vec<u8>, AuthorityError> {
        let (bits, ext_usages) = key_usages(&policy.usages)?;
        let now = Timestamp::from_second(now.as_second()).unwrap_or(now);
        let signed = |d: Duration| SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX);
        let not_before = now.saturating_sub(signed(policy.backdate)).unwrap_or(now);
        let mut not_after = if policy.ttl < policy.short {
            now.saturating_add(signed(policy.ttl)).unwrap_or(now)
        } else {
            now.saturating_add(signed(policy.ttl))
                .unwrap_or(now)
                .saturating_sub(signed(policy.backdate))
                .unwrap_or(now)
        };
        if not_after >= self.not_after {
            not_after = self.not_after;
        }
        if not_before >= self.not_after {
            return Err(AuthorityError::SignerExpired(self.not_after));
        }
        if now >= self.not_after {
            return Err(AuthorityError::ExpiredInThePast(self.not_after));
        }

        let mut extensions = Vec::new();
        if bits != 0 {
            extensions.push(extension(&[2, 5, 29, 15], true, &der::named_bits(bits)));
        }
        if !ext_usages.is_empty() {
            let oids: Vec<Vec<u8>> = ext_usages.iter().map(|o| der::oid(o)).collect();
            let refs: Vec<&[u8]> = oids.iter().map(Vec::as_slice).collect();
            extensions.push(extension(&[2, 5, 29, 37], false, &der::sequence(&refs)));
        }
        // Basic constraints, valid, not a CA: an empty SEQUENCE.
        extensions.push(extension(&[2, 5, 29, 19], true, &der::sequence(&[])));
        if let Some(ski) = &self.subject_key_id {
            let aki = der::sequence(&[&der::tlv(der::context_primitive(0), ski)]);
            extensions.push(extension(&[2, 5, 29, 35], false, &aki));
        }
        if let Some(sans) = subject_alt_names(req) {
            // An empty subject makes the names critical (RFC 5280 4.2.1.6).
            let empty_subject = req.subject_der.len() <= 2;
            extensions.push(extension(&[2, 5, 29, 17], empty_subject, &sans));
        }
        let ext_refs: Vec<&[u8]> = extensions.iter().map(Vec::as_slice).collect();

        let serial: [u8; 16] = rand::random();
        let tbs = der::sequence(&[
            &der::tlv(der::context_constructed(0), &der::unsigned_integer(&[2])),
            &der::unsigned_integer(&serial),
            &self.signature_algorithm,
            &self.subject_der,
            &der::sequence(&[&time_der(not_before), &time_der(not_after)]),
            &req.subject_der,
            &req.public_key_der,
            &der::tlv(der::context_constructed(3), &der::sequence(&ext_refs)),
        ]);
        let signature = self.key.sign(&tbs).map_err(|e| AuthorityError::Sign(e.to_string()))?;
        Ok(der::sequence(&[
            &tbs,
            &self.signature_algorithm,
            &der::bit_string_bytes(&signature),
        ]))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::controllers::certificates::request::{self, tests::request_pem};
    use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyUsagePurpose, SanType};
    use x509_parser::prelude::{FromDer, X509Certificate};

    /// A CA (certificate PEM, key PEM) valid from 2020 until the start of
    /// `until_year`.
    pub fn test_ca(until_year: i32) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "test-ca");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(until_year, 1, 1);
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn usages(u: &[&str]) -> Vec<String> {
        u.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn durations_follow_expiration_seconds_within_bounds() {
        let year = Duration::from_secs(8760 * 3600);
        assert_eq!(duration(year, None), year);
        assert_eq!(duration(year, Some(3600)), Duration::from_secs(3600));
        assert_eq!(duration(year, Some(600)), Duration::from_secs(600));
        assert_eq!(duration(year, Some(60)), MIN_DURATION);
        assert_eq!(duration(year, Some(-5)), MIN_DURATION);
        assert_eq!(
            duration(Duration::from_secs(7200), Some(86400)),
            Duration::from_secs(7200)
        );
    }

    #[test]
    fn usages_map_to_key_usage_and_sorted_extended_usages() {
        let (bits, ext) = key_usages(&usages(&[
            "client auth",
            "key encipherment",
            "digital signature",
            "server auth",
        ]))
        .unwrap();
        assert_eq!(bits, 0b101);
        assert_eq!(
            ext,
            vec![&[1, 3, 6, 1, 5, 5, 7, 3, 1][..], &[1, 3, 6, 1, 5, 5, 7, 3, 2][..]]
        );
        let (bits, ext) = key_usages(&usages(&["signing", "s/mime", "email protection", "decipher only"])).unwrap();
        assert_eq!(bits, 1 | 1 << 8);
        assert_eq!(ext.len(), 1);
        let err = key_usages(&usages(&["bogus", "client auth", "nope"])).unwrap_err();
        assert_eq!(err.to_string(), r#"unrecognized usage values: ["bogus" "nope"]"#);
    }

    #[test]
    fn signs_with_the_request_subject_and_key_and_the_policy_usages() {
        let (ca_pem, ca_key) = test_ca(2030);
        let ca = CertificateAuthority::from_pem(&ca_pem, &ca_key).unwrap();
        let pem = request_pem(
            "alice",
            &["devs"],
            vec![
                SanType::DnsName("a.example".try_into().unwrap()),
                SanType::IpAddress("10.1.2.3".parse().unwrap()),
            ],
        );
        let req = request::parse(pem.as_bytes()).unwrap();
        let policy = SigningPolicy::new(
            Duration::from_secs(24 * 3600),
            usages(&["digital signature", "key encipherment", "client auth"]),
        );
        let der_bytes = ca.sign(&req, &policy, at("2025-06-01T12:00:00.5Z")).unwrap();
        let (rest, cert) = X509Certificate::from_der(&der_bytes).unwrap();
        assert!(rest.is_empty());
        let ca_block = x509_parser::pem::parse_x509_pem(ca_pem.as_bytes()).unwrap().1;
        let ca_cert = ca_block.parse_x509().unwrap();
        cert.verify_signature(Some(ca_cert.public_key())).unwrap();
        assert_eq!(cert.version().0, 2);
        assert_eq!(cert.subject().as_raw(), req.subject_der.as_slice());
        assert_eq!(cert.issuer().as_raw(), ca_cert.subject().as_raw());
        assert_eq!(cert.public_key().raw, req.public_key_der.as_slice());
        assert_eq!(
            cert.validity().not_before.to_datetime().unix_timestamp(),
            at("2025-06-01T11:55:00Z").as_second()
        );
        // Long-lived: the backdate comes off the end too.
        assert_eq!(
            cert.validity().not_after.to_datetime().unix_timestamp(),
            at("2025-06-02T11:55:00Z").as_second()
        );
        let ku = cert.key_usage().unwrap().unwrap();
        assert!(ku.critical);
        assert!(ku.value.digital_signature() && ku.value.key_encipherment() && !ku.value.key_cert_sign());
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        let bc = cert.basic_constraints().unwrap().unwrap();
        assert!(bc.critical && !bc.value.ca);
        let san = cert.subject_alternative_name().unwrap().unwrap();
        assert!(!san.critical);
        assert_eq!(san.value.general_names.len(), 2);
        assert!(
            cert.get_extension_unique(&x509_parser::oid_registry::OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn validity_is_short_unbackdated_and_capped_by_the_ca() {
        let (ca_pem, ca_key) = test_ca(2030);
        let ca = CertificateAuthority::from_pem(&ca_pem, &ca_key).unwrap();
        let req = request::parse(request_pem("bob", &[], vec![]).as_bytes()).unwrap();
        let not_after = |ttl: u64, now: &str| {
            let policy = SigningPolicy::new(Duration::from_secs(ttl), usages(&["client auth"]));
            let d = ca.sign(&req, &policy, at(now)).map_err(|e| e.to_string())?;
            let (_, cert) = X509Certificate::from_der(&d).unwrap();
            Ok::<_, String>(cert.validity().not_after.to_datetime().unix_timestamp())
        };
        // Short (under 8 hours): the full TTL from now.
        assert_eq!(
            not_after(3600, "2025-01-01T00:00:00Z"),
            Ok(at("2025-01-01T01:00:00Z").as_second())
        );
        // Past the CA's expiry: capped at it.
        assert_eq!(
            not_after(8760 * 3600, "2029-12-01T00:00:00Z"),
            Ok(at("2030-01-01T00:00:00Z").as_second())
        );
        assert_eq!(
            not_after(3600, "2030-01-01T00:02:00Z"),
            Err("refusing to sign a certificate that expired in the past: NotAfter=2030-01-01T00:00:00Z".into())
        );
        assert_eq!(
            not_after(3600, "2030-02-01T00:00:00Z"),
            Err("the signer has expired: NotAfter=2030-01-01T00:00:00Z".into())
        );
        // A year from 2050 on is a GeneralizedTime.
        let (ca_pem, ca_key) = test_ca(2100);
        let ca = CertificateAuthority::from_pem(&ca_pem, &ca_key).unwrap();
        let policy = SigningPolicy::new(Duration::from_secs(3600), usages(&["client auth"]));
        let d = ca.sign(&req, &policy, at("2060-01-01T00:00:00Z")).unwrap();
        let (_, cert) = X509Certificate::from_der(&d).unwrap();
        assert_eq!(
            cert.validity().not_before.to_datetime().unix_timestamp(),
            at("2059-12-31T23:55:00Z").as_second()
        );
    }

    #[test]
    fn bad_ca_material_is_an_error() {
        let (ca_pem, ca_key) = test_ca(2030);
        assert!(CertificateAuthority::from_pem("junk", &ca_key).is_err());
        assert!(CertificateAuthority::from_pem(&ca_pem, "junk").is_err());
        let pem = certificate_pem(&[1, 2, 3]);
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\nAQID\n"));
    }
}
