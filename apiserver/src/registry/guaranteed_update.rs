//! Read-modify-write of a stored object that bypasses the kind's strategy,
//! for server-internal writers that change fields clients may not (the
//! `pods/binding` subresource sets `spec.nodeName`), like upstream's direct
//! `GuaranteedUpdate` on the storage.

use bytes::Bytes;
use rkube_storage::StorageError;
use serde_json::Value;

use crate::status::ApiError;

use super::object::{self, Object};
use super::store::GenericStore;

/// How often a conflicting write is retried.
const MAX_RETRIES: usize = 16;

impl GenericStore {
    /// Applies `mutate` to the stored object and writes the result when it
    /// changed, retrying on conflicts. `mutate` errors end the update.
    /// With `dry_run` nothing is written. Returns the object as stored.
    pub async fn guaranteed_update<F>(
        &self,
        namespace: &str,
        name: &str,
        dry_run: bool,
        mut mutate: F,
    ) -> Result<Object, ApiError>
    where
        F: FnMut(&mut Object) -> Result<(), ApiError>,
    {
        let key = self.key(namespace, name);
        let mut current = match self.storage().get(&key, None).await {
            Ok(Some(kv)) => kv,
            Ok(None) => return Err(ApiError::not_found(self.gr(), name)),
            Err(e) => return Err(ApiError::from_storage(e, self.gr(), name)),
        };
        for _ in 0..MAX_RETRIES {
            let mut new = self.decode(&current)?;
            mutate(&mut new)?;
            if dry_run {
                return Ok(new);
            }
            let value = super::stored_form::to_vec(&new).map_err(ApiError::internal)?;
            // Unchanged when it encodes as stored: the stored value is this
            // encoding of the object it decodes to, so equal bytes are an
            // equal object (and no copy of the old one is needed to tell).
            if value[..] == current.value[..] {
                return Ok(new);
            }
            match self
                .storage()
                .update(&key, Bytes::from(value), current.mod_revision)
                .await
            {
                Ok(rev) => {
                    object::set_meta(&mut new, "resourceVersion", Some(Value::String(rev.to_string())));
                    return Ok(new);
                }
                Err(StorageError::Conflict { current: Some(kv), .. }) => current = *kv,
                Err(StorageError::Conflict { current: None, .. } | StorageError::NotFound { .. }) => {
                    return Err(ApiError::not_found(self.gr(), name));
                }
                Err(e) => return Err(ApiError::from_storage(e, self.gr(), name)),
            }
        }
        Err(ApiError::conflict(
            self.gr(),
            name,
            "too many concurrent updates; please try again",
        ))
    }
}
