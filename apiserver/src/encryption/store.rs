//! [`EncryptingStore`]: a [`Store`] that encrypts the values of configured
//! resources on write and decrypts them on every read and watch event.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use rkube_storage::{Event, KeyValue, ListOptions, ListResult, Result, Revision, StorageError, Store, WatchStream};

use super::config::EncryptionConfig;
use super::provider::Transformer;

/// Transforms values of the resources `config` names; passes others through.
pub struct EncryptingStore {
    inner: Arc<dyn Store>,
    config: Arc<EncryptionConfig>,
}

impl EncryptingStore {
    pub fn new(inner: Arc<dyn Store>, config: EncryptionConfig) -> Self {
        EncryptingStore {
            inner,
            config: Arc::new(config),
        }
    }
}

/// The transformer for a storage key (`/core/secrets/ns/name` is `secrets`
/// in the core group, `/apps/deployments/...` is `deployments.apps`).
fn transformer_for<'a>(config: &'a EncryptionConfig, key: &str) -> Option<&'a Arc<Transformer>> {
    let mut parts = key.trim_start_matches('/').splitn(3, '/');
    let (group, resource) = (parts.next()?, parts.next()?);
    if group.is_empty() || resource.is_empty() {
        return None;
    }
    config.transformer(resource, if group == "core" { "" } else { group })
}

fn decrypt(config: &EncryptionConfig, mut kv: KeyValue) -> Result<KeyValue> {
    // Deleted keys in watch events carry no value.
    if kv.value.is_empty() {
        return Ok(kv);
    }
    if let Some(t) = transformer_for(config, &kv.key) {
        let plain = t
            .from_storage(&kv.value, &kv.key)
            .map_err(|e| StorageError::Internal(format!("failed to decrypt data for {}: {e}", kv.key)))?;
        kv.value = Bytes::from(plain);
    }
    Ok(kv)
}

fn decrypt_error(config: &EncryptionConfig, e: StorageError) -> StorageError {
    match e {
        StorageError::Conflict { key, expected, current } => {
            let current = match current.map(|kv| decrypt(config, *kv)).transpose() {
                Ok(c) => c.map(Box::new),
                Err(e) => return e,
            };
            StorageError::Conflict { key, expected, current }
        }
        other => other,
    }
}

impl EncryptingStore {
    fn encrypt(&self, key: &str, value: Bytes) -> Bytes {
        match transformer_for(&self.config, key) {
            Some(t) => Bytes::from(t.to_storage(&value, key)),
            None => value,
        }
    }
}

#[async_trait]
impl Store for EncryptingStore {
    fn backend_name(&self) -> &'static str {
        self.inner.backend_name()
    }

    async fn get(&self, key: &str, revision: Option<Revision>) -> Result<Option<KeyValue>> {
        self.inner
            .get(key, revision)
            .await?
            .map(|kv| decrypt(&self.config, kv))
            .transpose()
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResult> {
        let mut list = self.inner.list(prefix, options).await?;
        list.items = list
            .items
            .into_iter()
            .map(|kv| decrypt(&self.config, kv))
            .collect::<Result<_>>()?;
        Ok(list)
    }

    async fn count(&self, prefix: &str) -> Result<i64> {
        self.inner.count(prefix).await
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<Revision> {
        let value = self.encrypt(key, value);
        self.inner.create(key, value).await
    }

    async fn update(&self, key: &str, value: Bytes, expected_mod_revision: Revision) -> Result<Revision> {
        let value = self.encrypt(key, value);
        self.inner
            .update(key, value, expected_mod_revision)
            .await
            .map_err(|e| decrypt_error(&self.config, e))
    }

    async fn delete(&self, key: &str, expected_mod_revision: Option<Revision>) -> Result<(Revision, KeyValue)> {
        let (rev, kv) = self
            .inner
            .delete(key, expected_mod_revision)
            .await
            .map_err(|e| decrypt_error(&self.config, e))?;
        Ok((rev, decrypt(&self.config, kv)?))
    }

    async fn watch(&self, prefix: &str, after: Option<Revision>) -> Result<WatchStream> {
        let config = self.config.clone();
        let stream = self.inner.watch(prefix, after).await?;
        Ok(Box::pin(stream.map(move |item| {
            let ev = item?;
            Ok(Event {
                event_type: ev.event_type,
                kv: decrypt(&config, ev.kv)?,
                prev: ev.prev.map(|kv| decrypt(&config, kv)).transpose()?,
            })
        })))
    }

    async fn current_revision(&self) -> Result<Revision> {
        self.inner.current_revision().await
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.inner.compact(revision).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rkube_storage::memory::MemoryStore;

    const KEY_A: &str = "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE="; // 32 x 'a'
    const KEY_B: &str = "YmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmI="; // 32 x 'b'

    fn config(providers: &str) -> EncryptionConfig {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("enc.yaml");
        std::fs::write(
            &path,
            format!(
                "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n\
                 - resources: [secrets]\n  providers:\n{providers}"
            ),
        )
        .unwrap();
        EncryptionConfig::load(&path).unwrap()
    }

    #[tokio::test]
    async fn encrypts_configured_resources_and_reads_after_rotation() {
        let raw: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let one = EncryptingStore::new(
            raw.clone(),
            config(&format!("  - aesgcm: {{keys: [{{name: a, secret: {KEY_A}}}]}}\n")),
        );
        let key = "/core/secrets/default/s";
        let mut watch = one.watch("/core/", None).await.unwrap();
        one.create(key, Bytes::from_static(b"{\"data\":\"hunter2\"}"))
            .await
            .unwrap();
        one.create("/core/configmaps/default/c", Bytes::from_static(b"plain"))
            .await
            .unwrap();
        let stored = raw.get(key, None).await.unwrap().unwrap().value;
        assert!(stored.starts_with(b"k8s:enc:aesgcm:v1:a:"));
        assert!(!stored.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(
            raw.get("/core/configmaps/default/c", None)
                .await
                .unwrap()
                .unwrap()
                .value,
            "plain"
        );
        assert_eq!(
            one.get(key, None).await.unwrap().unwrap().value,
            "{\"data\":\"hunter2\"}"
        );
        let ev = watch.next().await.unwrap().unwrap();
        assert_eq!(ev.kv.value, "{\"data\":\"hunter2\"}");

        // Rotation: key b first, a still listed.
        let two = EncryptingStore::new(
            raw.clone(),
            config(&format!(
                "  - aesgcm: {{keys: [{{name: b, secret: {KEY_B}}}, {{name: a, secret: {KEY_A}}}]}}\n"
            )),
        );
        let old = two.get(key, None).await.unwrap().unwrap();
        assert_eq!(old.value, "{\"data\":\"hunter2\"}");
        two.update(key, Bytes::from_static(b"new"), old.mod_revision)
            .await
            .unwrap();
        assert!(
            raw.get(key, None)
                .await
                .unwrap()
                .unwrap()
                .value
                .starts_with(b"k8s:enc:aesgcm:v1:b:")
        );
        let list = two.list("/core/secrets/", ListOptions::default()).await.unwrap();
        assert_eq!(list.items[0].value, "new");
        // A conflict carries the decrypted current value.
        match two.update(key, Bytes::from_static(b"x"), 1).await {
            Err(StorageError::Conflict { current: Some(kv), .. }) => assert_eq!(kv.value, "new"),
            other => panic!("want conflict, got {other:?}"),
        }
        // Without key b, the new value cannot be read: an internal error, not garbage.
        assert!(matches!(one.get(key, None).await, Err(StorageError::Internal(_))));
        let (_, deleted) = two.delete(key, None).await.unwrap();
        assert_eq!(deleted.value, "new");
    }
}
