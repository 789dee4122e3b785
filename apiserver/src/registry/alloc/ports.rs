//! NodePort allocation: one storage key per allocated port under
//! [`NODE_PORT_PREFIX`], whose value names the owning Service.

use std::collections::HashSet;

use bytes::Bytes;
use rkube_storage::{StorageError, Store};
use serde_json::{Value, json};

use super::ip::ServiceRef;
use super::records::{allocation_order, recorded, release_owned};
use super::{NODE_PORT_PREFIX, port_static_band};

/// Why a port could not be allocated (upstream's `portallocator` errors).
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("provided port is not in the valid range. The range of valid ports is {0}")]
    NotInRange(String),
    #[error("provided port is already allocated")]
    Allocated,
    #[error("range is full")]
    Full,
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
}

/// The storage key recording `port`.
pub fn key(port: u16) -> String {
    format!("{NODE_PORT_PREFIX}{port}")
}

/// Allocates node ports from one inclusive range.
#[derive(Debug, Clone, Copy)]
pub struct PortAllocator {
    pub range: (u16, u16),
}

impl PortAllocator {
    fn range_text(&self) -> String {
        format!("{}-{}", self.range.0, self.range.1)
    }

    /// Whether `port` lies in the range.
    pub fn contains(&self, port: i64) -> bool {
        (i64::from(self.range.0)..=i64::from(self.range.1)).contains(&port)
    }

    /// Reserves `port` for `svc`; returns the key created (`None` on a dry
    /// run, which checks the range and whether the port is taken).
    pub async fn allocate(
        &self,
        storage: &dyn Store,
        port: i64,
        svc: ServiceRef<'_>,
        dry_run: bool,
    ) -> Result<Option<String>, PortError> {
        if !self.contains(port) {
            return Err(PortError::NotInRange(self.range_text()));
        }
        let port = port as u16;
        let key = key(port);
        if dry_run {
            return match storage.get(&key, None).await? {
                Some(_) => Err(PortError::Allocated),
                None => Ok(None),
            };
        }
        let value = json!({"namespace": svc.namespace, "name": svc.name}).to_string();
        match storage.create(&key, Bytes::from(value)).await {
            Ok(_) => Ok(Some(key)),
            Err(StorageError::AlreadyExists { .. }) => Err(PortError::Allocated),
            Err(e) => Err(e.into()),
        }
    }

    /// Reserves a free port: from a random point of the upper (dynamic)
    /// band, then of the lower (static) band. `avoid` are ports this
    /// request already holds. A dry run reserves nothing.
    pub async fn allocate_next(
        &self,
        storage: &dyn Store,
        svc: ServiceRef<'_>,
        avoid: &HashSet<u16>,
        dry_run: bool,
    ) -> Result<(u16, Option<String>), PortError> {
        let used: HashSet<u16> = recorded(storage, NODE_PORT_PREFIX).await?;
        let (first, last) = (u32::from(self.range.0), u32::from(self.range.1));
        let band = port_static_band((last + 1).saturating_sub(first));
        for port in allocation_order(first, last, band) {
            let port = port as u16;
            if used.contains(&port) || avoid.contains(&port) {
                continue;
            }
            if dry_run {
                return Ok((port, None));
            }
            match self.allocate(storage, i64::from(port), svc, false).await {
                Ok(key) => return Ok((port, key)),
                Err(PortError::Allocated) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(PortError::Full)
    }

    /// Frees `port` if it still belongs to `svc`.
    pub async fn release(&self, storage: &dyn Store, port: u16, svc: ServiceRef<'_>) {
        let owned = |v: &Value| v["namespace"] == svc.namespace && v["name"] == svc.name;
        if let Err(e) = release_owned(storage, &key(port), owned).await {
            tracing::info!(port, error = %e, "releasing a node port");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use rkube_storage::memory::MemoryStore;

    const SVC: ServiceRef<'static> = ServiceRef {
        namespace: "default",
        name: "web",
    };

    #[tokio::test]
    async fn ports_are_unique_in_range_and_released() {
        let store = MemoryStore::new();
        let a = PortAllocator { range: (30000, 30009) };
        let mut got = HashSet::new();
        for _ in 0..10 {
            let (p, _) = a.allocate_next(&store, SVC, &HashSet::new(), false).await.unwrap();
            assert!((30000..=30009).contains(&p));
            assert!(got.insert(p));
        }
        assert!(matches!(
            a.allocate_next(&store, SVC, &HashSet::new(), false).await,
            Err(PortError::Full)
        ));
        assert_eq!(
            a.allocate(&store, 30001, SVC, true).await.unwrap_err().to_string(),
            "provided port is already allocated"
        );
        assert_eq!(
            a.allocate(&store, 80, SVC, false).await.unwrap_err().to_string(),
            "provided port is not in the valid range. The range of valid ports is 30000-30009"
        );
        a.release(
            &store,
            30001,
            ServiceRef {
                namespace: "x",
                name: "web",
            },
        )
        .await;
        assert!(a.allocate(&store, 30001, SVC, true).await.is_err());
        a.release(&store, 30001, SVC).await;
        assert_eq!(a.allocate(&store, 30001, SVC, false).await.unwrap(), Some(key(30001)));
    }
}
