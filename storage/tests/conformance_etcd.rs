//! The conformance suite on the etcd backend, against a real one-member
//! etcd cluster per test (nextest runs every test in its own process).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use rkube_storage::Store;
use rkube_storage::etcd::{EtcdOptions, EtcdStore};
use rkube_storage::testing::etcd_harness::EtcdCluster;

struct Fixture {
    store: Arc<dyn Store>,
    /// Dropped after the store: kills the member and removes its data.
    _cluster: EtcdCluster,
}

impl AsRef<Arc<dyn Store>> for Fixture {
    fn as_ref(&self) -> &Arc<dyn Store> {
        &self.store
    }
}

async fn etcd() -> Fixture {
    let cluster = EtcdCluster::start(1).await.expect("start etcd");
    let store = EtcdStore::connect(EtcdOptions::new(cluster.client_urls()))
        .await
        .expect("connect to etcd");
    Fixture {
        store: Arc::new(store),
        _cluster: cluster,
    }
}

rkube_storage::conformance_suite!(etcd());
