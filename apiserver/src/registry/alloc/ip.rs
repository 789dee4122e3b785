//! ClusterIP allocation recorded as IPAddress objects.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use bytes::Bytes;
use rkube_storage::{StorageError, Store};
use serde_json::{Value, json};

use super::Ipv4Cidr;
use super::records::{allocation_order, recorded, release_owned};
use crate::registry::object::{self, Object};

/// Storage prefix of IPAddress objects (the generic store's key scheme).
pub const IPADDRESS_PREFIX: &str = "/networking.k8s.io/ipaddresses/";
/// `networking.k8s.io/v1` `LabelManagedBy`.
pub const LABEL_MANAGED_BY: &str = "ipaddress.kubernetes.io/managed-by";
/// `networking.k8s.io/v1` `LabelIPAddressFamily`.
pub const LABEL_IP_FAMILY: &str = "ipaddress.kubernetes.io/ip-family";
/// The allocator's name in the managed-by label.
pub const CONTROLLER_NAME: &str = "ipallocator.k8s.io";

/// The Service an address is allocated to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceRef<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
}

/// Why an address could not be allocated (upstream's `ipallocator` errors).
#[derive(Debug, thiserror::Error)]
pub enum IpError {
    #[error("provided IP is not in the valid range. The range of valid IPs is {range}")]
    NotInRange { range: String },
    #[error("provided IP is already allocated")]
    Allocated,
    #[error("range is full")]
    Full,
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("encoding: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The storage key of an address's IPAddress object.
pub fn key(ip: Ipv4Addr) -> String {
    format!("{IPADDRESS_PREFIX}{ip}")
}

/// The IPAddress object recording that `ip` belongs to `svc`.
pub fn ipaddress_object(ip: Ipv4Addr, svc: ServiceRef<'_>) -> Object {
    let obj = json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IPAddress",
        "metadata": {
            "name": ip.to_string(),
            "uid": object::new_uid(),
            "creationTimestamp": object::now_rfc3339(),
            "labels": {LABEL_IP_FAMILY: "IPv4", LABEL_MANAGED_BY: CONTROLLER_NAME},
        },
        "spec": {"parentRef": {"group": "", "resource": "services", "namespace": svc.namespace, "name": svc.name}},
    });
    match obj {
        Value::Object(m) => m,
        _ => Object::new(),
    }
}

/// Allocates ClusterIPs from one range.
#[derive(Debug, Clone, Copy)]
pub struct IpAllocator {
    pub range: Ipv4Cidr,
}

impl IpAllocator {
    fn not_in_range(&self) -> IpError {
        IpError::NotInRange {
            range: self.range.to_string(),
        }
    }

    /// Reserves `ip` for `svc`; returns the storage key created (`None` on
    /// a dry run, which only checks the range, as upstream does).
    pub async fn allocate(
        &self,
        storage: &dyn Store,
        ip: Ipv4Addr,
        svc: ServiceRef<'_>,
        dry_run: bool,
    ) -> Result<Option<String>, IpError> {
        if !self.range.allocatable(ip) {
            return Err(self.not_in_range());
        }
        if dry_run {
            return Ok(None);
        }
        let key = key(ip);
        let value = serde_json::to_vec(&ipaddress_object(ip, svc))?;
        match storage.create(&key, Bytes::from(value)).await {
            Ok(_) => Ok(Some(key)),
            Err(StorageError::AlreadyExists { .. }) => Err(IpError::Allocated),
            Err(e) => Err(e.into()),
        }
    }

    /// Reserves a free address for `svc`: from a random point of the upper
    /// (dynamic) band, then of the lower (static) band, like upstream. A dry
    /// run reserves nothing and answers the network address, as upstream.
    pub async fn allocate_next(
        &self,
        storage: &dyn Store,
        svc: ServiceRef<'_>,
        dry_run: bool,
    ) -> Result<(Ipv4Addr, Option<String>), IpError> {
        if dry_run {
            return Ok((self.range.network, None));
        }
        let used: HashSet<Ipv4Addr> = recorded(storage, IPADDRESS_PREFIX).await?;
        let (first, last) = (self.range.first(), self.range.last());
        for ip in allocation_order(first, last, self.range.static_band()).map(Ipv4Addr::from) {
            if used.contains(&ip) {
                continue;
            }
            match self.allocate(storage, ip, svc, false).await {
                Ok(key) => return Ok((ip, key)),
                // Lost a race for this address: try the next one.
                Err(IpError::Allocated) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(IpError::Full)
    }

    /// Deletes the IPAddress object of `ip` if it still belongs to `svc`.
    pub async fn release(&self, storage: &dyn Store, ip: Ipv4Addr, svc: ServiceRef<'_>) {
        let owned = |v: &Value| {
            let r = &v["spec"]["parentRef"];
            r["resource"] == "services" && r["namespace"] == svc.namespace && r["name"] == svc.name
        };
        if let Err(e) = release_owned(storage, &key(ip), owned).await {
            tracing::info!(ip = %ip, error = %e, "releasing a ClusterIP");
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
    async fn allocates_every_address_once_then_is_full() {
        let store = MemoryStore::new();
        let a = IpAllocator {
            range: Ipv4Cidr::parse("192.168.0.0/29").unwrap(),
        };
        let mut got = HashSet::new();
        for _ in 0..6 {
            let (ip, key) = a.allocate_next(&store, SVC, false).await.unwrap();
            assert!(key.is_some());
            assert!(got.insert(ip), "{ip} twice");
        }
        assert!(matches!(a.allocate_next(&store, SVC, false).await, Err(IpError::Full)));
        assert!(!got.contains(&Ipv4Addr::new(192, 168, 0, 0)) && !got.contains(&Ipv4Addr::new(192, 168, 0, 7)));
        let taken = Ipv4Addr::new(192, 168, 0, 3);
        let err = a.allocate(&store, taken, SVC, false).await.unwrap_err();
        assert_eq!(err.to_string(), "provided IP is already allocated");
        let err = a
            .allocate(&store, Ipv4Addr::new(10, 0, 0, 1), SVC, true)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "provided IP is not in the valid range. The range of valid IPs is 192.168.0.0/29"
        );
        // Another service's release does not free it; the owner's does.
        a.release(
            &store,
            taken,
            ServiceRef {
                namespace: "default",
                name: "other",
            },
        )
        .await;
        assert!(store.get(&key(taken), None).await.unwrap().is_some());
        a.release(&store, taken, SVC).await;
        assert!(store.get(&key(taken), None).await.unwrap().is_none());
        assert_eq!(a.allocate_next(&store, SVC, false).await.unwrap().0, taken);
    }

    #[tokio::test]
    async fn concurrent_allocations_never_collide() {
        let store = std::sync::Arc::new(MemoryStore::new());
        let a = IpAllocator {
            range: Ipv4Cidr::parse("10.0.0.0/27").unwrap(),
        };
        let tasks: Vec<_> = (0..30)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { a.allocate_next(&*store, SVC, false).await.map(|r| r.0) })
            })
            .collect();
        let mut got = HashSet::new();
        for t in tasks {
            assert!(got.insert(t.await.unwrap().unwrap()));
        }
        assert_eq!(got.len(), 30);
    }
}
