//! Choosing and opening a backend from flags.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;
use crate::store::Store;

/// Which backend to use (`--storage-backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StorageBackend {
    /// The embedded store (write-ahead log + redb) in `--data-dir`, the
    /// default.
    #[default]
    Embedded,
    /// A real etcd cluster at `--etcd-servers`.
    Etcd,
    /// In memory, for tests only.
    Memory,
}

impl std::str::FromStr for StorageBackend {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "embedded" => Ok(StorageBackend::Embedded),
            "etcd" | "etcd3" => Ok(StorageBackend::Etcd),
            "memory" => Ok(StorageBackend::Memory),
            other => Err(format!(
                "unknown storage backend {other:?}: expected one of embedded, etcd, memory"
            )),
        }
    }
}

impl std::fmt::Display for StorageBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StorageBackend::Embedded => "embedded",
            StorageBackend::Etcd => "etcd",
            StorageBackend::Memory => "memory",
        })
    }
}

/// Everything needed to open a store.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub backend: StorageBackend,
    /// Data directory of the embedded backend.
    pub data_dir: PathBuf,
    /// etcd client URLs (`http://127.0.0.1:2379`).
    pub etcd_servers: Vec<String>,
    /// Key prefix inside etcd (upstream default `/registry`).
    pub etcd_prefix: String,
    /// How much history the background compactor keeps.
    pub compaction_interval: Duration,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            backend: StorageBackend::Embedded,
            data_dir: PathBuf::from("/var/lib/rkube"),
            etcd_servers: vec!["http://127.0.0.1:2379".into()],
            etcd_prefix: "/registry".into(),
            compaction_interval: Duration::from_secs(300),
        }
    }
}

impl StorageConfig {
    /// Opens the configured backend.
    pub async fn open(&self) -> Result<Arc<dyn Store>> {
        Ok(match self.backend {
            StorageBackend::Embedded => Arc::new(
                crate::embedded::EmbeddedStore::open(crate::embedded::EmbeddedOptions::new(&self.data_dir)).await?,
            ),
            StorageBackend::Etcd => Arc::new(
                crate::etcd::EtcdStore::connect(crate::etcd::EtcdOptions {
                    endpoints: self.etcd_servers.clone(),
                    prefix: self.etcd_prefix.clone(),
                })
                .await?,
            ),
            StorageBackend::Memory => Arc::new(crate::memory::MemoryStore::new()),
        })
    }
}
