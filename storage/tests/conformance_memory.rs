//! The conformance suite on the in-memory backend.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use rkube_storage::Store;
use rkube_storage::memory::MemoryStore;

struct Fixture(Arc<dyn Store>);

impl AsRef<Arc<dyn Store>> for Fixture {
    fn as_ref(&self) -> &Arc<dyn Store> {
        &self.0
    }
}

async fn memory() -> Fixture {
    Fixture(Arc::new(MemoryStore::new()))
}

rkube_storage::conformance_suite!(memory());
