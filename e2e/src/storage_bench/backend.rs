//! Opening each measured backend through [`StorageConfig::open`], the same
//! path the apiserver takes, and cleaning up after it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rkube_storage::testing::etcd_harness::EtcdCluster;
use rkube_storage::{StorageBackend, StorageConfig, Store};

use crate::storage_bench::config::BackendKind;

/// Key prefix inside etcd: the apiserver's default.
const ETCD_PREFIX: &str = "/registry";

/// A backend opened for the benchmark and whatever keeps it alive.
pub struct OpenBackend {
    pub store: Arc<dyn Store>,
    /// One line for the progress output: where the data lives.
    pub description: String,
    resources: Resources,
}

/// What has to be cleaned up after a backend.
enum Resources {
    /// The embedded backend's data directory.
    Directory(PathBuf),
    /// The etcd members; dropping them kills them and removes their data.
    Etcd(EtcdCluster),
    /// Nothing (the memory backend).
    None,
}

impl OpenBackend {
    /// Opens `kind`: the embedded backend in a fresh directory under
    /// `scratch`, etcd as a new 1-member cluster on loopback.
    pub async fn open(kind: BackendKind, scratch: &Path) -> anyhow::Result<OpenBackend> {
        let mut config = StorageConfig {
            // Nothing compacts during the benchmark: etcd has no automatic
            // compaction by default either.
            compaction_interval: std::time::Duration::ZERO,
            ..StorageConfig::default()
        };
        let (resources, description) = match kind {
            BackendKind::Embedded => {
                let dir = scratch.join("embedded");
                std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
                config.backend = StorageBackend::Embedded;
                config.data_dir = dir.clone();
                let description = format!("data in {}", dir.display());
                (Resources::Directory(dir), description)
            }
            BackendKind::Etcd => {
                let cluster = EtcdCluster::start(1).await.context("starting a 1-member etcd")?;
                config.backend = StorageBackend::Etcd;
                config.etcd_servers = cluster.client_urls();
                config.etcd_prefix = ETCD_PREFIX.to_string();
                let description = format!("1 member at {}", config.etcd_servers.join(","));
                (Resources::Etcd(cluster), description)
            }
            BackendKind::Memory => {
                config.backend = StorageBackend::Memory;
                (Resources::None, "in memory".to_string())
            }
        };
        let store = config.open().await.with_context(|| format!("opening {kind}"))?;
        Ok(OpenBackend {
            store,
            description,
            resources,
        })
    }

    /// Drops the store, then stops etcd or removes the data directory.
    pub async fn close(self) {
        let OpenBackend { store, resources, .. } = self;
        drop(store);
        match resources {
            Resources::Directory(dir) => {
                // Give the backend's background tasks a moment to let go of
                // their files before they are removed.
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                if let Err(e) = std::fs::remove_dir_all(&dir) {
                    eprintln!("bench-storage: could not remove {}: {e}", dir.display());
                }
            }
            Resources::Etcd(cluster) => drop(cluster),
            Resources::None => {}
        }
    }
}
