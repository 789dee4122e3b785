//! Client certificates: upstream's x509 authenticator. The subject's CN is
//! the user and its O values the groups; a certificate is verified once per
//! connection against the cluster CA.

use std::sync::Arc;

use rustls_pki_types::CertificateDer;

use super::UserInfo;

/// What a connection's client certificate says, attached to every request
/// of that connection by the accept loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCertificate {
    /// A certificate signed by the cluster CA for client authentication.
    Verified(UserInfo),
    /// A certificate that does not verify (wrong CA, expired, wrong usage).
    Invalid,
}

/// Verifies client certificates against the cluster CA, like upstream's
/// x509 authenticator: the subject's CN is the user, its O values the groups.
pub struct X509Authenticator {
    verifier: Arc<dyn rustls::server::danger::ClientCertVerifier>,
}

impl std::fmt::Debug for X509Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X509Authenticator").finish_non_exhaustive()
    }
}

impl X509Authenticator {
    /// An authenticator trusting `ca` (DER).
    pub fn new(ca: CertificateDer<'static>) -> Result<Self, rustls::Error> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca).map_err(|e| rustls::Error::General(e.to_string()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        Ok(X509Authenticator { verifier })
    }

    /// The TLS-level verifier: asks for a certificate without requiring one
    /// and checks the handshake signature (proof of the private key), but
    /// leaves the chain to [`X509Authenticator::authenticate`], so that a
    /// certificate from another CA gets a 401 rather than a failed handshake.
    pub fn tls_verifier(&self) -> Arc<dyn rustls::server::danger::ClientCertVerifier> {
        Arc::new(RequestClientCert(self.verifier.clone()))
    }

    /// Verifies a connection's certificate chain (leaf first).
    pub fn authenticate(&self, chain: &[CertificateDer<'_>]) -> ClientCertificate {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return ClientCertificate::Invalid;
        };
        let now = rustls_pki_types::UnixTime::now();
        if self.verifier.verify_client_cert(leaf, intermediates, now).is_err() {
            return ClientCertificate::Invalid;
        }
        match subject_user(leaf) {
            Some(user) => ClientCertificate::Verified(user.authenticated()),
            None => ClientCertificate::Invalid,
        }
    }
}

/// The user named by a certificate's subject (`None` without a CN).
pub fn subject_user(der: &[u8]) -> Option<UserInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let name = subject.iter_common_name().next()?.as_str().ok()?.to_string();
    if name.is_empty() {
        return None;
    }
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .map(String::from)
        .collect();
    Some(UserInfo {
        name,
        groups,
        ..Default::default()
    })
}

#[derive(Debug)]
struct RequestClientCert(Arc<dyn rustls::server::danger::ClientCertVerifier>);

impl rustls::server::danger::ClientCertVerifier for RequestClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
