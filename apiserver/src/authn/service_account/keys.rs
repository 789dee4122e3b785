//! Service-account token keys: the private key tokens are signed with
//! (`--service-account-signing-key-file`) and the public keys they are
//! verified with (`--service-account-key-file`, plus the signing key's).
//!
//! Keys are PEM: RSA (`RSA PRIVATE KEY`, `PRIVATE KEY`, `PUBLIC KEY`,
//! `RSA PUBLIC KEY`), ECDSA P-256 and P-384 (`EC PRIVATE KEY`,
//! `PRIVATE KEY`, `PUBLIC KEY`) and certificates, as kube-apiserver reads
//! them. RSA keys sign RS256, P-256 ES256, P-384 ES384. A key's ID is
//! upstream's: the unpadded base64url SHA-256 of its DER
//! SubjectPublicKeyInfo.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use rustls_pki_types::pem::{PemObject, SectionKind};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey as ParsedKey;
use x509_parser::x509::SubjectPublicKeyInfo;

/// A key file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {why}")]
    Invalid { path: PathBuf, why: String },
}

const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// A verification key.
#[derive(Clone)]
pub struct PublicKey {
    pub kid: String,
    pub alg: Algorithm,
    pub key: DecodingKey,
    /// The key as a JSON Web Key (`use: sig`).
    pub jwk: Value,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish()
    }
}

/// The signing key.
#[derive(Clone)]
pub struct SigningKey {
    pub public: PublicKey,
    pub key: EncodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("public", &self.public).finish()
    }
}

/// The public key of a DER SubjectPublicKeyInfo.
pub fn public_key_from_spki(spki_der: &[u8]) -> Result<PublicKey, String> {
    let (_, spki) = SubjectPublicKeyInfo::from_der(spki_der).map_err(|e| format!("not a public key: {e}"))?;
    let kid = B64.encode(Sha256::digest(spki_der));
    let parsed = spki.parsed().map_err(|e| format!("not a public key: {e}"))?;
    match parsed {
        ParsedKey::RSA(rsa) => {
            let n = B64.encode(trim_zeros(rsa.modulus));
            let e = B64.encode(trim_zeros(rsa.exponent));
            Ok(PublicKey {
                key: DecodingKey::from_rsa_raw_components(trim_zeros(rsa.modulus), trim_zeros(rsa.exponent)),
                jwk: json!({"use": "sig", "kty": "RSA", "kid": kid, "alg": "RS256", "n": n, "e": e}),
                alg: Algorithm::RS256,
                kid,
            })
        }
        ParsedKey::EC(point) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| oid.as_bytes().to_vec())
                .unwrap_or_default();
            let (alg, crv, name, size) = if curve == OID_P256 {
                (Algorithm::ES256, "P-256", "ES256", 32)
            } else if curve == OID_P384 {
                (Algorithm::ES384, "P-384", "ES384", 48)
            } else {
                return Err("unsupported elliptic curve, must be P-256 or P-384".into());
            };
            let data = point.data();
            if data.len() != 1 + 2 * size || data[0] != 4 {
                return Err("not an uncompressed elliptic curve point".into());
            }
            let (x, y) = data[1..].split_at(size);
            Ok(PublicKey {
                key: DecodingKey::from_ec_der(data),
                jwk: json!({"use": "sig", "kty": "EC", "kid": kid, "crv": crv, "alg": name,
                    "x": B64.encode(x), "y": B64.encode(y)}),
                alg,
                kid,
            })
        }
        _ => Err("unsupported public key type, must be RSA or ECDSA".into()),
    }
}

fn trim_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len().saturating_sub(1));
    &b[start..]
}

/// DER: a tag with its content.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|&b| b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// A PKCS#8 document around a PKCS#1 RSA key or a SEC1 EC key.
fn pkcs8(algorithm_oid: &[u8], parameters: &[u8], key: &[u8]) -> Vec<u8> {
    let mut algorithm = der(0x06, algorithm_oid);
    algorithm.extend_from_slice(parameters);
    let mut body = der(0x02, &[0]);
    body.extend(der(0x30, &algorithm));
    body.extend(der(0x04, key));
    der(0x30, &body)
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A signing key from a PKCS#8 private key.
fn signing_key_from_pkcs8(der: &[u8]) -> Result<SigningKey, String> {
    let pair = rcgen::KeyPair::try_from(der).map_err(|e| format!("not a usable private key: {e}"))?;
    let public = public_key_from_spki(&rcgen::PublicKeyData::subject_public_key_info(&pair))?;
    let key = match public.alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(pem("PRIVATE KEY", der).as_bytes())
            .map_err(|e| format!("not a usable RSA key: {e}"))?,
        _ => EncodingKey::from_ec_der(der),
    };
    Ok(SigningKey { public, key })
}

/// The signing key of one PEM private-key section (`None` for other kinds).
fn signing_key_from_section(kind: SectionKind, body: Vec<u8>) -> Option<Result<SigningKey, String>> {
    let pkcs8_der = match kind {
        SectionKind::PrivateKey => body,
        SectionKind::RsaPrivateKey => pkcs8(OID_RSA, &[0x05, 0x00], &body),
        SectionKind::EcPrivateKey => {
            // The curve is in the SEC1 key's parameters; try both we sign with.
            let p256 = pkcs8(OID_EC_PUBLIC_KEY, &der(0x06, OID_P256), &body);
            if rcgen::KeyPair::try_from(p256.as_slice()).is_ok() {
                p256
            } else {
                pkcs8(OID_EC_PUBLIC_KEY, &der(0x06, OID_P384), &body)
            }
        }
        _ => return None,
    };
    Some(signing_key_from_pkcs8(&pkcs8_der))
}

/// Reads the first private key of a PEM file.
pub fn load_signing_key(path: &Path) -> Result<SigningKey, KeyError> {
    let invalid = |why: String| KeyError::Invalid { path: path.into(), why };
    let text = std::fs::read(path).map_err(|source| KeyError::Io {
        path: path.into(),
        source,
    })?;
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(&text) {
        let (kind, body) = section.map_err(|e| invalid(format!("reading PEM: {e}")))?;
        if let Some(key) = signing_key_from_section(kind, body) {
            return key.map_err(invalid);
        }
    }
    Err(invalid("no private key found".into()))
}

/// Reads every public key of a PEM file: public keys, certificates'
/// keys and the public halves of private keys.
pub fn load_public_keys(path: &Path) -> Result<Vec<PublicKey>, KeyError> {
    let invalid = |why: String| KeyError::Invalid { path: path.into(), why };
    let text = std::fs::read(path).map_err(|source| KeyError::Io {
        path: path.into(),
        source,
    })?;
    let mut keys = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(&text) {
        let (kind, body) = section.map_err(|e| invalid(format!("reading PEM: {e}")))?;
        match kind {
            SectionKind::PublicKey => keys.push(public_key_from_spki(&body).map_err(invalid)?),
            SectionKind::Certificate => {
                let (_, cert) = x509_parser::parse_x509_certificate(&body)
                    .map_err(|e| invalid(format!("not a certificate: {e}")))?;
                keys.push(public_key_from_spki(cert.public_key().raw).map_err(invalid)?);
            }
            kind => {
                if let Some(key) = signing_key_from_section(kind, body) {
                    keys.push(key.map_err(invalid)?.public);
                }
            }
        }
    }
    // "RSA PUBLIC KEY" (PKCS#1) is not a section rustls knows.
    let text = String::from_utf8_lossy(&text);
    for block in text.split("-----BEGIN RSA PUBLIC KEY-----").skip(1) {
        let body = block.split("-----END").next().unwrap_or("");
        let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let pkcs1 = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| invalid(format!("reading PEM: {e}")))?;
        let mut algorithm = der(0x06, OID_RSA);
        algorithm.extend_from_slice(&[0x05, 0x00]);
        let mut bits = vec![0];
        bits.extend(pkcs1);
        let mut spki = der(0x30, &algorithm);
        spki.extend(der(0x03, &bits));
        keys.push(public_key_from_spki(&der(0x30, &spki)).map_err(invalid)?);
    }
    if keys.is_empty() {
        return Err(invalid("no public key found".into()));
    }
    Ok(keys)
}

/// A fresh ECDSA P-256 signing key (PKCS#8 PEM), as `pki` generates on
/// first start.
pub fn generate_pem() -> Result<String, rcgen::Error> {
    Ok(rcgen::KeyPair::generate()?.serialize_pem())
}

/// A signing key from PKCS#8 PEM text.
pub fn signing_key_from_pem(text: &str) -> Result<SigningKey, String> {
    let der = rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(text.as_bytes()).map_err(|e| e.to_string())?;
    signing_key_from_pkcs8(der.secret_pkcs8_der())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn generated_keys_sign_es256_with_upstreams_key_id() {
        let pem_text = generate_pem().unwrap();
        let key = signing_key_from_pem(&pem_text).unwrap();
        assert_eq!(key.public.alg, Algorithm::ES256);
        let pair = rcgen::KeyPair::from_pem(&pem_text).unwrap();
        assert_eq!(
            key.public.kid,
            B64.encode(Sha256::digest(rcgen::PublicKeyData::subject_public_key_info(&pair)))
        );
        assert_eq!(key.public.jwk["kty"], "EC");
        assert_eq!(key.public.jwk["crv"], "P-256");
        assert_eq!(B64.decode(key.public.jwk["x"].as_str().unwrap()).unwrap().len(), 32);
        // The public key file form gives the same key.
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "sa.pub", &pair.public_key_pem());
        let keys = load_public_keys(&p).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid, key.public.kid);
        // A private key file also gives its public key.
        let p = write(dir.path(), "sa.key", &pem_text);
        assert_eq!(load_public_keys(&p).unwrap()[0].kid, key.public.kid);
        assert_eq!(load_signing_key(&p).unwrap().public.kid, key.public.kid);
    }

    #[test]
    fn rejects_files_without_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "empty", "nothing here\n");
        assert!(matches!(load_public_keys(&p), Err(KeyError::Invalid { .. })));
        assert!(matches!(load_signing_key(&p), Err(KeyError::Invalid { .. })));
        assert!(matches!(
            load_signing_key(&dir.path().join("missing")),
            Err(KeyError::Io { .. })
        ));
    }
}
