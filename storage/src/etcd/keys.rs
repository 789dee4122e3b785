//! How store keys map to etcd keys: the store key appended to a fixed
//! prefix (upstream's `--etcd-prefix`, default `/registry`), and back.

use bytes::Bytes;

use crate::error::{Result, StorageError};
use crate::store::{KeyValue, prefix_end};

/// The key prefix of one store inside etcd.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    prefix: String,
}

impl Keys {
    /// `prefix` without its trailing slashes: store keys start with `/`
    /// already, so `/registry` and `/registry/` both give `/registry/pods/..`.
    pub(super) fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.trim_end_matches('/').to_string(),
        }
    }

    /// The etcd key of store key `key`.
    pub(super) fn etcd_key(&self, key: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.prefix.len() + key.len());
        out.extend_from_slice(self.prefix.as_bytes());
        out.extend_from_slice(key.as_bytes());
        if out.is_empty() {
            // etcd rejects empty keys; "\0" is the smallest key there is.
            out.push(0);
        }
        out
    }

    /// The etcd range `[start, end)` of every store key starting with
    /// `prefix`.
    pub(super) fn range(&self, prefix: &str) -> (Vec<u8>, Vec<u8>) {
        let full = format!("{}{prefix}", self.prefix);
        let end = prefix_end(&full);
        (self.etcd_key(prefix), end)
    }

    /// The store key of etcd key `key`.
    pub(super) fn store_key(&self, key: &[u8]) -> Result<String> {
        let rest = key.strip_prefix(self.prefix.as_bytes()).ok_or_else(|| {
            StorageError::Internal(format!(
                "etcd returned key {:?} outside prefix {:?}",
                String::from_utf8_lossy(key),
                self.prefix
            ))
        })?;
        String::from_utf8(rest.to_vec()).map_err(|_| {
            StorageError::Internal(format!(
                "etcd key {:?} is not valid UTF-8",
                String::from_utf8_lossy(key)
            ))
        })
    }

    /// A store [`KeyValue`] from an etcd one.
    pub(super) fn kv(&self, kv: etcd_client::KeyValue) -> Result<KeyValue> {
        let (create_revision, mod_revision) = (kv.create_revision(), kv.mod_revision());
        let (key, value) = kv.into_key_value();
        Ok(KeyValue {
            key: self.store_key(&key)?,
            value: Bytes::from(value),
            create_revision,
            mod_revision,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_appended_to_the_prefix_and_stripped_back() {
        for (prefix, key, etcd) in [
            ("/registry", "/pods/a", "/registry/pods/a"),
            ("/registry/", "/pods/a", "/registry/pods/a"),
            ("", "/pods/a", "/pods/a"),
            ("/", "/x", "/x"),
        ] {
            let keys = Keys::new(prefix);
            assert_eq!(keys.etcd_key(key), etcd.as_bytes(), "{prefix:?} {key:?}");
            assert_eq!(keys.store_key(etcd.as_bytes()).unwrap(), key);
        }
    }

    #[test]
    fn ranges_cover_exactly_the_prefix() {
        let keys = Keys::new("/registry");
        assert_eq!(
            keys.range("/pods/"),
            (b"/registry/pods/".to_vec(), b"/registry/pods0".to_vec())
        );
        // The whole store: every key after the store prefix.
        assert_eq!(keys.range(""), (b"/registry".to_vec(), b"/registrz".to_vec()));
        // No prefix at all: the whole key space.
        assert_eq!(Keys::new("").range(""), (vec![0], vec![0]));
    }

    #[test]
    fn foreign_keys_are_errors_not_panics() {
        let keys = Keys::new("/registry");
        assert!(matches!(keys.store_key(b"/other/x"), Err(StorageError::Internal(_))));
        assert!(matches!(
            keys.store_key(b"/registry/\xff"),
            Err(StorageError::Internal(_))
        ));
    }
}
