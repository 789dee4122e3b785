//! The conformance suite on the embedded (redb) backend, each case in a
//! fresh data directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use rkube_storage::Store;
use rkube_storage::embedded::{EmbeddedOptions, EmbeddedStore};

/// A store and the temporary directory holding its database. The store is
/// declared first so it is dropped (and the file closed) before the
/// directory is removed.
struct Fixture {
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

impl AsRef<Arc<dyn Store>> for Fixture {
    fn as_ref(&self) -> &Arc<dyn Store> {
        &self.store
    }
}

async fn embedded() -> Fixture {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = EmbeddedStore::open(EmbeddedOptions::new(dir.path()))
        .await
        .expect("open the embedded store");
    Fixture {
        store: Arc::new(store),
        _dir: dir,
    }
}

rkube_storage::conformance_suite!(embedded());
