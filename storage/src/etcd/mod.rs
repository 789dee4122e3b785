//! The etcd backend (placeholder while it is being written).
use crate::error::{Result, StorageError};

/// Options of the etcd backend.
#[derive(Debug, Clone)]
pub struct EtcdOptions {
    pub endpoints: Vec<String>,
    pub prefix: String,
}

/// The etcd store.
pub struct EtcdStore;

impl EtcdStore {
    pub async fn connect(_o: EtcdOptions) -> Result<crate::memory::MemoryStore> {
        Err(StorageError::Unavailable("not written yet".into()))
    }
}
