//! The errors every backend returns; the apiserver maps each to one
//! `metav1.Status` (AlreadyExists -> 409, Conflict -> 409, NotFound -> 404,
//! Compacted -> 410 Expired, ...).

use crate::store::{KeyValue, Revision};

/// Result of a storage operation.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// A storage failure. Messages are lowercase and keep their source.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    /// `create` found the key already present.
    #[error("key {key:?} already exists")]
    AlreadyExists { key: String },

    /// The key does not exist (get with `must exist`, update, delete).
    #[error("key {key:?} not found")]
    NotFound { key: String },

    /// A guarded write found another `mod_revision` than it expected.
    /// `current` is the value the key holds now (`None` if it is gone), so a
    /// caller can retry without another read.
    #[error("conflict on key {key:?}: expected mod revision {expected}, found {}", current.as_ref().map_or(0, |kv| kv.mod_revision))]
    Conflict {
        key: String,
        expected: Revision,
        current: Option<Box<KeyValue>>,
    },

    /// The requested revision is older than the oldest one kept.
    #[error("required revision {requested} has been compacted (compacted revision {compacted})")]
    Compacted { requested: Revision, compacted: Revision },

    /// The requested revision has not happened yet.
    #[error("required revision {requested} is a future revision (current revision {current})")]
    FutureRevision { requested: Revision, current: Revision },

    /// The caller passed something the store cannot act on (an empty key, a
    /// malformed continue token, a start key outside the prefix, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The backend cannot be reached right now (etcd down, no quorum, store
    /// shutting down). Retrying later may succeed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),

    /// A fault inside the backend (I/O error, corrupt record).
    #[error("internal storage error: {0}")]
    Internal(String),
}

impl StorageError {
    /// Shorthand for [`StorageError::Internal`] from anything displayable.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        StorageError::Internal(e.to_string())
    }
}
