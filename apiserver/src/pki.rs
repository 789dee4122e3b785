//! The cluster's PKI: a CA created on first start and a serving certificate
//! signed by it.
//!
//! Files in `<data-dir>/pki`: `ca.crt`, `ca.key` (created once, kept),
//! `apiserver.crt`, `apiserver.key` (re-issued at every start from the CA, so
//! new `--tls-san` names take effect without touching the CA clients trust),
//! and `admin.crt`, `admin.key`: a client certificate for user
//! `kubernetes-admin` in group `system:masters` (created once, kept), which
//! the admin kubeconfig of `hack/local-up.sh` uses. `sa.key` and `sa.pub`:
//! the ECDSA P-256 key pair service-account tokens are signed with when no
//! `--service-account-signing-key-file` is given (created once, kept).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Failure to create or load the PKI.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("generating certificates: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path}: not a valid PEM {what}")]
    Pem { path: PathBuf, what: &'static str },
    #[error("building the TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// The loaded PKI.
pub struct Pki {
    /// PEM of the cluster CA (what kubeconfigs trust).
    pub ca_pem: String,
    ca_key: KeyPair,
    serving_chain: Vec<CertificateDer<'static>>,
    serving_key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki").finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn write_private(path: &Path, contents: &str) -> Result<(), PkiError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(contents.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

impl Pki {
    /// Loads the CA from `dir` (creating it on first start) and issues a
    /// serving certificate for `names` (DNS names or IP addresses).
    pub fn load_or_create(dir: &Path, names: &[String]) -> Result<Pki, PkiError> {
        std::fs::create_dir_all(dir).map_err(|source| PkiError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let ca_crt = dir.join("ca.crt");
        let ca_key_path = dir.join("ca.key");
        if !ca_crt.exists() || !ca_key_path.exists() {
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, "rkube-ca");
            params.distinguished_name = dn;
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            params.not_before = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
            params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(3650);
            let cert = params.self_signed(&key)?;
            write_private(&ca_key_path, &key.serialize_pem())?;
            write_private(&ca_crt, &cert.pem())?;
            tracing::info!(path = %ca_crt.display(), "created the cluster CA");
        }
        let ca_pem = read(&ca_crt)?;
        let ca_key = KeyPair::from_pem(&read(&ca_key_path)?).map_err(|_| PkiError::Pem {
            path: ca_key_path.clone(),
            what: "private key",
        })?;

        let (chain, key_pem) = {
            let issuer = Issuer::from_ca_cert_pem(&ca_pem, &ca_key).map_err(|_| PkiError::Pem {
                path: ca_crt.clone(),
                what: "CA certificate",
            })?;
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, "kube-apiserver");
            params.distinguished_name = dn;
            params.subject_alt_names = names
                .iter()
                .map(|n| match n.parse::<std::net::IpAddr>() {
                    Ok(ip) => Ok(SanType::IpAddress(ip)),
                    Err(_) => n.clone().try_into().map(SanType::DnsName),
                })
                .collect::<Result<_, _>>()?;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            params.not_before = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
            params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(365);
            let cert = params.signed_by(&key, &issuer)?;
            write_private(&dir.join("apiserver.crt"), &cert.pem())?;
            write_private(&dir.join("apiserver.key"), &key.serialize_pem())?;
            (vec![cert.der().clone()], key.serialize_pem())
        };
        let admin_crt = dir.join("admin.crt");
        let admin_key = dir.join("admin.key");
        if !admin_crt.exists() || !admin_key.exists() {
            let (cert, key) = issue_client(&ca_pem, &ca_key, "kubernetes-admin", &["system:masters"])?;
            write_private(&admin_key, &key)?;
            write_private(&admin_crt, &cert)?;
        }
        let serving_key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|_| PkiError::Pem {
            path: dir.join("apiserver.key"),
            what: "private key",
        })?;
        Ok(Pki {
            ca_pem,
            ca_key,
            serving_chain: chain,
            serving_key,
        })
    }

    /// The CA's key pair, for signing further certificates.
    pub fn ca_key(&self) -> &KeyPair {
        &self.ca_key
    }

    /// The CA certificate (DER).
    pub fn ca_der(&self) -> Result<CertificateDer<'static>, PkiError> {
        CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).map_err(|_| PkiError::Pem {
            path: PathBuf::from("ca.crt"),
            what: "CA certificate",
        })
    }

    /// Issues a client certificate (PEM certificate and key) for user `cn`
    /// in groups `orgs`, signed by the cluster CA.
    pub fn issue_client_cert(&self, cn: &str, orgs: &[&str]) -> Result<(String, String), PkiError> {
        issue_client(&self.ca_pem, &self.ca_key, cn, orgs)
    }

    /// A rustls server configuration serving HTTP/2 and HTTP/1.1 (ALPN) that
    /// asks clients for a certificate through `client_verifier`.
    pub fn server_config(
        &self,
        client_verifier: Arc<dyn rustls::server::danger::ClientCertVerifier>,
    ) -> Result<Arc<rustls::ServerConfig>, PkiError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(self.serving_chain.clone(), self.serving_key.clone_key())?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// The service-account signing key `<dir>/sa.key` (with its public half in
/// `sa.pub`), created on first start.
pub fn service_account_key(dir: &Path) -> Result<PathBuf, PkiError> {
    std::fs::create_dir_all(dir).map_err(|source| PkiError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let key_path = dir.join("sa.key");
    if !key_path.exists() {
        let key = KeyPair::generate()?;
        write_private(&dir.join("sa.pub"), &key.public_key_pem())?;
        write_private(&key_path, &key.serialize_pem())?;
        tracing::info!(path = %key_path.display(), "created the service-account signing key");
    }
    Ok(key_path)
}

/// Issues a client certificate for `cn` in groups `orgs` (one O each).
fn issue_client(ca_pem: &str, ca_key: &KeyPair, cn: &str, orgs: &[&str]) -> Result<(String, String), PkiError> {
    let issuer = Issuer::from_ca_cert_pem(ca_pem, ca_key).map_err(|_| PkiError::Pem {
        path: PathBuf::from("ca.crt"),
        what: "CA certificate",
    })?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    for o in orgs {
        dn.push(DnType::OrganizationName, *o);
    }
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(365);
    let cert = params.signed_by(&key, &issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::authn::{ClientCertificate, X509Authenticator};

    #[test]
    fn client_certificates_authenticate_against_the_cluster_ca_only() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(dir.path(), &["localhost".into()]).unwrap();
        let auth = X509Authenticator::new(pki.ca_der().unwrap()).unwrap();
        let der = |pem: &str| CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        let admin = der(&std::fs::read_to_string(dir.path().join("admin.crt")).unwrap());
        let ClientCertificate::Verified(user) = auth.authenticate(&[admin]) else {
            panic!("admin.crt does not verify");
        };
        assert_eq!(user.name, "kubernetes-admin");
        assert_eq!(user.groups, ["system:masters", "system:authenticated"]);
        // A serving certificate is not for client authentication.
        let serving = der(&std::fs::read_to_string(dir.path().join("apiserver.crt")).unwrap());
        assert_eq!(auth.authenticate(&[serving]), ClientCertificate::Invalid);
        // A certificate from another CA does not verify.
        let other_dir = tempfile::tempdir().unwrap();
        let other = Pki::load_or_create(other_dir.path(), &[]).unwrap();
        let (cert, _) = other.issue_client_cert("mallory", &["system:masters"]).unwrap();
        assert_eq!(auth.authenticate(&[der(&cert)]), ClientCertificate::Invalid);
        assert_eq!(auth.authenticate(&[]), ClientCertificate::Invalid);
    }

    #[test]
    fn service_account_key_is_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = service_account_key(dir.path()).unwrap();
        let first = std::fs::read_to_string(&path).unwrap();
        assert_eq!(service_account_key(dir.path()).unwrap(), path);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), first);
        let signing = crate::authn::service_account::keys::load_signing_key(&path).unwrap();
        let public = crate::authn::service_account::keys::load_public_keys(&dir.path().join("sa.pub")).unwrap();
        assert_eq!(public[0].kid, signing.public.kid);
        assert_eq!(signing.public.alg, jsonwebtoken::Algorithm::ES256);
    }
}
