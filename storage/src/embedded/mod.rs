//! The embedded backend (placeholder while it is being written).
use std::path::{Path, PathBuf};

use crate::error::{Result, StorageError};

/// Options of the embedded backend.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    pub dir: PathBuf,
}

impl EmbeddedOptions {
    pub fn new(dir: &Path) -> Self {
        EmbeddedOptions { dir: dir.to_path_buf() }
    }
}

/// The embedded store.
pub struct EmbeddedStore;

impl EmbeddedStore {
    pub async fn open(_o: EmbeddedOptions) -> Result<crate::memory::MemoryStore> {
        Err(StorageError::Unavailable("not written yet".into()))
    }
}
