//! Encryption at rest (`--encryption-provider-config`): values of the
//! configured resources are transformed on their way to storage and back,
//! in upstream's `EncryptionConfiguration` format and stored layout
//! (`config.rs`, `provider.rs`).
//!
//! [`EncryptingStore`] wraps the opened [`rkube_storage::Store`], so every
//! path to storage (the generic store, the watch cache's storage watch,
//! consistent reads, conflicts) sees plain values, and the backends (the
//! embedded database file, etcd) only ever hold ciphertext for the
//! configured resources. The first provider's first key writes; every key
//! reads the values bearing its prefix, so data written before a key
//! rotation stays readable.
//!
//! *Architecture Invariant:* nothing above this layer knows values are
//! encrypted; nothing below it sees a plain value of a configured resource.

mod config;
mod provider;
mod store;

pub use config::{ConfigError, EncryptionConfig};
pub use provider::{TransformError, Transformer};
pub use store::EncryptingStore;

use std::path::PathBuf;

/// Flags of encryption at rest, as kube-apiserver's.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EncryptionOptions {
    /// File with an EncryptionConfiguration (apiserver.config.k8s.io/v1)
    /// saying how to encrypt resources in storage.
    #[arg(long)]
    pub encryption_provider_config: Option<PathBuf>,
    /// Accepted for compatibility; the file is read at start.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub encryption_provider_config_automatic_reload: bool,
}

impl EncryptionOptions {
    /// Wraps `store` in an [`EncryptingStore`] when a configuration is given.
    pub fn wrap(
        &self,
        store: std::sync::Arc<dyn rkube_storage::Store>,
    ) -> Result<std::sync::Arc<dyn rkube_storage::Store>, ConfigError> {
        Ok(match &self.encryption_provider_config {
            Some(path) => std::sync::Arc::new(EncryptingStore::new(store, EncryptionConfig::load(path)?)),
            None => store,
        })
    }
}
