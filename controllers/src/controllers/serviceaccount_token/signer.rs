//! Legacy service-account tokens: JWTs with issuer
//! `kubernetes/serviceaccount` and the four `kubernetes.io/serviceaccount/…`
//! claims, no audience and no expiry, signed with
//! `--service-account-private-key-file` (RSA → RS256, ECDSA P-256/P-384 →
//! ES256/ES384) and carrying upstream's key ID (the unpadded base64url
//! SHA-256 of the public key's SubjectPublicKeyInfo), which the
//! apiserver's authenticator verifies.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rcgen::PublicKeyData;
use serde_json::json;
use sha2::{Digest, Sha256};

/// The issuer of legacy tokens.
pub const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";

/// Why a signing key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("reading {0}: {1}")]
    Read(String, std::io::Error),
    #[error("parsing private key: {0}")]
    Parse(String),
    #[error("unsupported private key type, must be RSA or ECDSA P-256/P-384")]
    Unsupported,
    #[error("signing token: {0}")]
    Sign(String),
}

/// A loaded private key with its algorithm and key ID.
pub struct TokenSigner {
    key: EncodingKey,
    alg: Algorithm,
    kid: String,
}

/// The service account and Secret a token is for.
pub struct TokenSubject<'a> {
    pub namespace: &'a str,
    pub service_account: &'a str,
    pub service_account_uid: &'a str,
    pub secret: &'a str,
}

impl TokenSigner {
    /// Parses a PEM PKCS#8 private key (as `<data-dir>/pki/sa.key`).
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let pair = rcgen::KeyPair::from_pem(pem).map_err(|e| KeyError::Parse(e.to_string()))?;
        let algo = pair.algorithm();
        let (alg, key) = if algo == &rcgen::PKCS_ECDSA_P256_SHA256 {
            (Algorithm::ES256, EncodingKey::from_ec_pem(pem.as_bytes()))
        } else if algo == &rcgen::PKCS_ECDSA_P384_SHA384 {
            (Algorithm::ES384, EncodingKey::from_ec_pem(pem.as_bytes()))
        } else if algo == &rcgen::PKCS_RSA_SHA256 {
            (Algorithm::RS256, EncodingKey::from_rsa_pem(pem.as_bytes()))
        } else {
            return Err(KeyError::Unsupported);
        };
        let key = key.map_err(|e| KeyError::Parse(e.to_string()))?;
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(pair.subject_public_key_info()));
        Ok(TokenSigner { key, alg, kid })
    }

    /// Reads and parses `path`.
    pub fn from_file(path: &std::path::Path) -> Result<Self, KeyError> {
        let pem = std::fs::read_to_string(path).map_err(|e| KeyError::Read(path.display().to_string(), e))?;
        Self::from_pem(&pem)
    }

    /// The key ID in every token's header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// A legacy token for `subject`.
    pub fn legacy_token(&self, subject: &TokenSubject<'_>) -> Result<String, KeyError> {
        let claims = json!({
            "iss": LEGACY_ISSUER,
            "kubernetes.io/serviceaccount/namespace": subject.namespace,
            "kubernetes.io/serviceaccount/secret.name": subject.secret,
            "kubernetes.io/serviceaccount/service-account.name": subject.service_account,
            "kubernetes.io/serviceaccount/service-account.uid": subject.service_account_uid,
            "sub": format!("system:serviceaccount:{}:{}", subject.namespace, subject.service_account),
        });
        let mut header = Header::new(self.alg);
        header.typ = None;
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| KeyError::Sign(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    #[test]
    fn legacy_tokens_verify_with_the_public_key() {
        let pair = rcgen::KeyPair::generate().unwrap();
        let signer = TokenSigner::from_pem(&pair.serialize_pem()).unwrap();
        let token = signer
            .legacy_token(&TokenSubject {
                namespace: "ns",
                service_account: "robot",
                service_account_uid: "u-1",
                secret: "robot-token",
            })
            .unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.kid.as_deref(), Some(signer.kid()));
        assert_eq!(
            signer.kid(),
            URL_SAFE_NO_PAD.encode(Sha256::digest(pair.subject_public_key_info()))
        );
        let mut v = Validation::new(Algorithm::ES256);
        v.required_spec_claims.clear();
        v.validate_exp = false;
        v.validate_aud = false;
        let key = DecodingKey::from_ec_pem(pair.public_key_pem().as_bytes()).unwrap();
        let claims = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &v)
            .unwrap()
            .claims;
        assert_eq!(claims["iss"], "kubernetes/serviceaccount");
        assert_eq!(claims["sub"], "system:serviceaccount:ns:robot");
        assert_eq!(claims["kubernetes.io/serviceaccount/secret.name"], "robot-token");
        assert_eq!(claims["kubernetes.io/serviceaccount/service-account.uid"], "u-1");
        assert!(claims.get("exp").is_none() && claims.get("aud").is_none());
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(matches!(TokenSigner::from_pem("nope"), Err(KeyError::Parse(_))));
        let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        assert!(matches!(
            TokenSigner::from_pem(&ed.serialize_pem()),
            Err(KeyError::Unsupported)
        ));
    }
}
