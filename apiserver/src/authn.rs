//! Authentication: who is making a request.
//!
//! x509 client certificates signed by the cluster CA (CN = user, O =
//! groups; verified by [`X509Authenticator`] once per connection), bearer
//! tokens from a static token file in kube-apiserver's `--token-auth-file`
//! format, and anonymous requests (`system:anonymous`, group
//! `system:unauthenticated`). Every authenticated user is in
//! `system:authenticated`. A request with a token that matches nothing, or
//! over a connection whose certificate does not verify, is rejected with 401
//! and no detail.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::CertificateDer;

/// An authenticated (or anonymous) user.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    /// The anonymous user.
    pub fn anonymous() -> Self {
        UserInfo {
            name: "system:anonymous".into(),
            uid: String::new(),
            groups: vec!["system:unauthenticated".into()],
        }
    }

    /// Adds `system:authenticated` unless the user already has it.
    pub fn authenticated(mut self) -> Self {
        if !self.groups.iter().any(|g| g == AUTHENTICATED) {
            self.groups.push(AUTHENTICATED.into());
        }
        self
    }
}

/// The group of every authenticated user.
pub const AUTHENTICATED: &str = "system:authenticated";

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
        uid: String::new(),
        groups,
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

/// A malformed token file.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}: {why}")]
    Invalid { path: PathBuf, line: usize, why: String },
}

/// Tokens loaded from a token file.
#[derive(Debug, Clone, Default)]
pub struct TokenFile {
    tokens: HashMap<String, UserInfo>,
}

impl TokenFile {
    /// Reads `token,user,uid[,"group1,group2,..."]` lines (CSV; blank lines
    /// and lines starting with `#` are skipped).
    pub fn load(path: &Path) -> Result<TokenFile, TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Io {
            path: path.into(),
            source,
        })?;
        Self::parse(&text).map_err(|(line, why)| TokenFileError::Invalid {
            path: path.into(),
            line,
            why,
        })
    }

    /// Parses the text of a token file; errors carry the 1-based line.
    pub fn parse(text: &str) -> Result<TokenFile, (usize, String)> {
        let mut tokens = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields = split_csv(line).map_err(|why| (i + 1, why))?;
            if fields.len() < 3 {
                return Err((
                    i + 1,
                    format!("expected token,user,uid[,groups], found {} fields", fields.len()),
                ));
            }
            if fields[0].is_empty() || fields[1].is_empty() {
                return Err((i + 1, "token and user must not be empty".into()));
            }
            let groups = fields
                .get(3)
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            tokens.insert(
                fields[0].clone(),
                UserInfo {
                    name: fields[1].clone(),
                    uid: fields[2].clone(),
                    groups,
                },
            );
        }
        Ok(TokenFile { tokens })
    }

    /// The user a token belongs to.
    pub fn authenticate(&self, token: &str) -> Option<UserInfo> {
        Some(self.tokens.get(token)?.clone().authenticated())
    }
}

/// Splits one CSV line with `"` quoting (`""` is a literal quote).
fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', false) if cur.is_empty() => quoted = true,
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            ('"', true) => quoted = false,
            (',', false) => fields.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    fields.push(cur);
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upstream_format() {
        let f = TokenFile::parse("# admins\nt1,admin,uid-1,\"system:masters,devs\"\n\nt2,bob,2\n").unwrap();
        let admin = f.authenticate("t1").unwrap();
        assert_eq!(admin.name, "admin");
        assert_eq!(admin.groups, ["system:masters", "devs", "system:authenticated"]);
        assert_eq!(f.authenticate("t2").unwrap().groups, ["system:authenticated"]);
        assert_eq!(f.authenticate("t3"), None);
    }

    #[test]
    fn rejects_bad_lines_with_their_number() {
        assert_eq!(TokenFile::parse("ok,a,1\nshort,a\n").unwrap_err().0, 2);
        assert_eq!(TokenFile::parse("t,\"unterminated,1").unwrap_err().0, 1);
        assert_eq!(TokenFile::parse(",user,1").unwrap_err().0, 1);
    }
}
