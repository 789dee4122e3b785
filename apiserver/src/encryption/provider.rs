//! The value transformers of `EncryptionConfiguration` providers, each
//! writing upstream's stored layout after its prefix
//! `k8s:enc:<provider>:v1:<key name>:`:
//!
//! - `aesgcm`: a random 12-byte nonce, then the AES-GCM ciphertext with its
//!   16-byte tag; the storage key is the authenticated data, so a value
//!   copied under another key does not decrypt;
//! - `aescbc`: a random 16-byte IV, then the AES-CBC ciphertext of the
//!   PKCS#7-padded value;
//! - `secretbox`: a random 24-byte nonce, then NaCl's `secretbox.Seal`
//!   output (the 16-byte Poly1305 tag, then the XSalsa20 ciphertext);
//! - `identity`: the value itself, with no prefix.

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use aes_gcm::aead::{Aead, AeadInPlace, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm, Nonce};
use crypto_secretbox::XSalsa20Poly1305;
use rand::RngCore;

/// AES-192 in GCM mode with the standard 12-byte nonce.
type Aes192Gcm = AesGcm<aes::Aes192, aes_gcm::aead::consts::U12>;

/// The prefix every encrypted value starts with.
pub const ENCRYPTED_PREFIX: &[u8] = b"k8s:enc:";

/// Why a stored value could not be read or a value could not be written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TransformError {
    #[error("identity transformer tried to read encrypted data")]
    EncryptedDataForIdentity,
    #[error("no matching prefix found")]
    NoMatchingPrefix,
    #[error("the stored data was shorter than the required size")]
    TooShort,
    #[error("the stored data is not a multiple of the block size")]
    NotBlockAligned,
    #[error("invalid PKCS7 data (empty or not padded)")]
    BadPadding,
    #[error("cipher: message authentication failed")]
    Authentication,
}

/// One key's cipher.
pub enum Cipher {
    Aes128Gcm(Box<Aes128Gcm>),
    Aes192Gcm(Box<Aes192Gcm>),
    Aes256Gcm(Box<Aes256Gcm>),
    AesCbc(Vec<u8>),
    Secretbox(Box<XSalsa20Poly1305>),
    Identity,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.write_str(match self {
            Cipher::Aes128Gcm(_) | Cipher::Aes192Gcm(_) | Cipher::Aes256Gcm(_) => "aesgcm",
            Cipher::AesCbc(_) => "aescbc",
            Cipher::Secretbox(_) => "secretbox",
            Cipher::Identity => "identity",
        })
    }
}

impl Cipher {
    /// An AES-GCM cipher; `None` unless the key is 16, 24 or 32 bytes.
    pub fn aes_gcm(key: &[u8]) -> Option<Cipher> {
        Some(match key.len() {
            16 => Cipher::Aes128Gcm(Box::new(Aes128Gcm::new_from_slice(key).ok()?)),
            24 => Cipher::Aes192Gcm(Box::new(Aes192Gcm::new_from_slice(key).ok()?)),
            32 => Cipher::Aes256Gcm(Box::new(Aes256Gcm::new_from_slice(key).ok()?)),
            _ => return None,
        })
    }

    /// An AES-CBC cipher; `None` unless the key is 16, 24 or 32 bytes.
    pub fn aes_cbc(key: &[u8]) -> Option<Cipher> {
        matches!(key.len(), 16 | 24 | 32).then(|| Cipher::AesCbc(key.to_vec()))
    }

    /// A secretbox cipher; `None` unless the key is 32 bytes.
    pub fn secretbox(key: &[u8]) -> Option<Cipher> {
        Some(Cipher::Secretbox(Box::new(XSalsa20Poly1305::new_from_slice(key).ok()?)))
    }

    /// Encrypts `plain`, stored under `key` (GCM's authenticated data).
    fn seal(&self, plain: &[u8], key: &[u8]) -> Vec<u8> {
        match self {
            Cipher::Aes128Gcm(c) => gcm_seal(c.as_ref(), plain, key),
            Cipher::Aes192Gcm(c) => gcm_seal(c.as_ref(), plain, key),
            Cipher::Aes256Gcm(c) => gcm_seal(c.as_ref(), plain, key),
            Cipher::AesCbc(k) => {
                let mut iv = [0u8; 16];
                rand::rng().fill_bytes(&mut iv);
                let ct = match k.len() {
                    16 => cbc::Encryptor::<aes::Aes128>::new(k.as_slice().into(), &iv.into())
                        .encrypt_padded_vec_mut::<Pkcs7>(plain),
                    24 => cbc::Encryptor::<aes::Aes192>::new(k.as_slice().into(), &iv.into())
                        .encrypt_padded_vec_mut::<Pkcs7>(plain),
                    _ => cbc::Encryptor::<aes::Aes256>::new(k.as_slice().into(), &iv.into())
                        .encrypt_padded_vec_mut::<Pkcs7>(plain),
                };
                let mut out = iv.to_vec();
                out.extend_from_slice(&ct);
                out
            }
            Cipher::Secretbox(c) => {
                let mut nonce = [0u8; 24];
                rand::rng().fill_bytes(&mut nonce);
                let mut body = plain.to_vec();
                // Detached, so the tag can go first as in NaCl's layout.
                let tag = match c.encrypt_in_place_detached(&nonce.into(), b"", &mut body) {
                    Ok(tag) => tag,
                    // Only fails past the cipher's length limit (256 GiB).
                    Err(_) => return Vec::new(),
                };
                let mut out = Vec::with_capacity(24 + 16 + body.len());
                out.extend_from_slice(&nonce);
                out.extend_from_slice(&tag);
                out.extend_from_slice(&body);
                out
            }
            Cipher::Identity => plain.to_vec(),
        }
    }

    /// Decrypts `data` (the stored value after the prefix).
    fn open(&self, data: &[u8], key: &[u8]) -> Result<Vec<u8>, TransformError> {
        match self {
            Cipher::Aes128Gcm(c) => gcm_open(c.as_ref(), data, key),
            Cipher::Aes192Gcm(c) => gcm_open(c.as_ref(), data, key),
            Cipher::Aes256Gcm(c) => gcm_open(c.as_ref(), data, key),
            Cipher::AesCbc(k) => {
                if data.len() < 16 {
                    return Err(TransformError::TooShort);
                }
                let (iv, ct) = data.split_at(16);
                if ct.len() % 16 != 0 {
                    return Err(TransformError::NotBlockAligned);
                }
                let iv: [u8; 16] = iv.try_into().map_err(|_| TransformError::TooShort)?;
                let plain = match k.len() {
                    16 => cbc::Decryptor::<aes::Aes128>::new(k.as_slice().into(), &iv.into())
                        .decrypt_padded_vec_mut::<Pkcs7>(ct),
                    24 => cbc::Decryptor::<aes::Aes192>::new(k.as_slice().into(), &iv.into())
                        .decrypt_padded_vec_mut::<Pkcs7>(ct),
                    _ => cbc::Decryptor::<aes::Aes256>::new(k.as_slice().into(), &iv.into())
                        .decrypt_padded_vec_mut::<Pkcs7>(ct),
                };
                plain.map_err(|_| TransformError::BadPadding)
            }
            Cipher::Secretbox(c) => {
                if data.len() < 24 + 16 {
                    return Err(TransformError::TooShort);
                }
                let (nonce, rest) = data.split_at(24);
                let (tag, ct) = rest.split_at(16);
                let mut body = ct.to_vec();
                c.decrypt_in_place_detached(nonce.into(), b"", &mut body, tag.into())
                    .map_err(|_| TransformError::Authentication)?;
                Ok(body)
            }
            Cipher::Identity => {
                if data.starts_with(ENCRYPTED_PREFIX) {
                    return Err(TransformError::EncryptedDataForIdentity);
                }
                Ok(data.to_vec())
            }
        }
    }
}

fn gcm_seal<C: Aead>(cipher: &C, plain: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; 12];
    rand::rng().fill_bytes(&mut nonce);
    let nonce_ga = Nonce::from_slice(&nonce);
    let mut out = nonce.to_vec();
    // Only fails past GCM's length limit (64 GiB).
    if let Ok(ct) = cipher.encrypt(nonce_ga, Payload { msg: plain, aad }) {
        out.extend_from_slice(&ct);
    }
    out
}

fn gcm_open<C: Aead>(cipher: &C, data: &[u8], aad: &[u8]) -> Result<Vec<u8>, TransformError> {
    if data.len() < 12 {
        return Err(TransformError::TooShort);
    }
    let (nonce, ct) = data.split_at(12);
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .map_err(|_| TransformError::Authentication)
}

/// A key with its stored prefix (`k8s:enc:aesgcm:v1:key1:`, or empty for identity).
#[derive(Debug)]
pub struct PrefixedCipher {
    pub prefix: Vec<u8>,
    pub cipher: Cipher,
}

impl PrefixedCipher {
    pub fn new(provider: &str, key_name: &str, cipher: Cipher) -> Self {
        let prefix = match cipher {
            Cipher::Identity => Vec::new(),
            _ => format!("k8s:enc:{provider}:v1:{key_name}:").into_bytes(),
        };
        PrefixedCipher { prefix, cipher }
    }
}

/// The ordered keys of one resource's providers (upstream's prefix
/// transformers): the first writes, every one reads values with its prefix.
#[derive(Debug)]
pub struct Transformer {
    pub keys: Vec<PrefixedCipher>,
}

impl Transformer {
    /// The stored form of `plain` under storage key `key`.
    pub fn to_storage(&self, plain: &[u8], key: &str) -> Vec<u8> {
        match self.keys.first() {
            Some(k) => {
                let mut out = k.prefix.clone();
                out.extend_from_slice(&k.cipher.seal(plain, key.as_bytes()));
                out
            }
            None => plain.to_vec(),
        }
    }

    /// The plain value of `stored`, read with the first key whose prefix it
    /// has. Identity matches everything but steps aside for encrypted data,
    /// so putting it first migrates away from encryption.
    pub fn from_storage(&self, stored: &[u8], key: &str) -> Result<Vec<u8>, TransformError> {
        for k in &self.keys {
            if let Some(rest) = stored.strip_prefix(k.prefix.as_slice()) {
                match k.cipher.open(rest, key.as_bytes()) {
                    Err(_) if k.prefix.is_empty() => continue,
                    other => return other,
                }
            }
        }
        Err(TransformError::NoMatchingPrefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(provider: &str, cipher: Cipher) -> Transformer {
        Transformer {
            keys: vec![PrefixedCipher::new(provider, "key1", cipher)],
        }
    }

    fn ciphers() -> Vec<(&'static str, Transformer)> {
        vec![
            ("aesgcm", one("aesgcm", Cipher::aes_gcm(&[7; 16]).unwrap())),
            ("aesgcm", one("aesgcm", Cipher::aes_gcm(&[7; 24]).unwrap())),
            ("aesgcm", one("aesgcm", Cipher::aes_gcm(&[7; 32]).unwrap())),
            ("aescbc", one("aescbc", Cipher::aes_cbc(&[7; 16]).unwrap())),
            ("aescbc", one("aescbc", Cipher::aes_cbc(&[7; 32]).unwrap())),
            ("secretbox", one("secretbox", Cipher::secretbox(&[7; 32]).unwrap())),
        ]
    }

    #[test]
    fn round_trip_with_upstream_layout() {
        let plain = br#"{"kind":"Secret","data":{"password":"aHVudGVyMg=="}}"#;
        for (name, t) in ciphers() {
            let stored = t.to_storage(plain, "/core/secrets/default/s");
            let prefix = format!("k8s:enc:{name}:v1:key1:");
            assert!(stored.starts_with(prefix.as_bytes()), "{name}");
            let body = &stored[prefix.len()..];
            let want_len = match name {
                "aesgcm" => 12 + plain.len() + 16,
                "aescbc" => 16 + (plain.len() / 16 + 1) * 16,
                _ => 24 + 16 + plain.len(),
            };
            assert_eq!(body.len(), want_len, "{name}");
            assert!(!stored.windows(8).any(|w| w == b"password"), "{name}");
            assert_eq!(
                t.from_storage(&stored, "/core/secrets/default/s").unwrap(),
                plain,
                "{name}"
            );
            // Two writes of the same value differ (random nonce or IV).
            assert_ne!(stored, t.to_storage(plain, "/core/secrets/default/s"), "{name}");
        }
    }

    #[test]
    fn tampering_and_wrong_keys_fail() {
        let plain = b"value";
        for (name, t) in ciphers() {
            let mut stored = t.to_storage(plain, "/core/secrets/a/b");
            let last = stored.len() - 1;
            stored[last] ^= 1;
            assert!(t.from_storage(&stored, "/core/secrets/a/b").is_err(), "{name}");
        }
        let gcm = one("aesgcm", Cipher::aes_gcm(&[1; 32]).unwrap());
        let stored = gcm.to_storage(plain, "/core/secrets/a/b");
        // GCM binds the value to its key.
        assert_eq!(
            gcm.from_storage(&stored, "/core/secrets/a/c"),
            Err(TransformError::Authentication)
        );
        let other = one("aesgcm", Cipher::aes_gcm(&[2; 32]).unwrap());
        assert_eq!(
            other.from_storage(&stored, "/core/secrets/a/b"),
            Err(TransformError::Authentication)
        );
        assert_eq!(
            gcm.from_storage(b"k8s:enc:aesgcm:v1:key1:0123456789abcdefghijklmnop", "/k"),
            Err(TransformError::Authentication)
        );
        assert_eq!(
            gcm.from_storage(b"k8s:enc:aesgcm:v1:key1:", "/k"),
            Err(TransformError::TooShort)
        );
        assert_eq!(gcm.from_storage(b"{}", "/k"), Err(TransformError::NoMatchingPrefix));
    }

    #[test]
    fn identity_first_reads_plain_and_encrypted() {
        let gcm = PrefixedCipher::new("aesgcm", "k", Cipher::aes_gcm(&[3; 32]).unwrap());
        let stored = Transformer { keys: vec![gcm] }.to_storage(b"x", "/k");
        let t = Transformer {
            keys: vec![
                PrefixedCipher::new("identity", "", Cipher::Identity),
                PrefixedCipher::new("aesgcm", "k", Cipher::aes_gcm(&[3; 32]).unwrap()),
            ],
        };
        assert_eq!(t.to_storage(b"plain", "/k"), b"plain");
        assert_eq!(t.from_storage(b"plain", "/k").unwrap(), b"plain");
        assert_eq!(t.from_storage(&stored, "/k").unwrap(), b"x");
        let only_identity = Transformer {
            keys: vec![PrefixedCipher::new("identity", "", Cipher::Identity)],
        };
        assert_eq!(
            only_identity.from_storage(&stored, "/k"),
            Err(TransformError::NoMatchingPrefix)
        );
    }
}
