//! The etcd backend: a [`Store`] on a real etcd v3 cluster, the way
//! kube-apiserver's `etcd3` storage uses it.
//!
//! - **Keys** live under a prefix (`--etcd-prefix`, default `/registry`):
//!   the store key is appended to it, and results strip it ([`keys`]).
//! - **Revisions** are etcd's own: the header revision of a write, and each
//!   key's `create_revision` and `mod_revision`.
//! - **Writes** are transactions guarded like upstream's: create only if the
//!   key's `create_revision` is 0, update and guarded delete only if its
//!   `mod_revision` is the expected one, reading the current value in the
//!   same transaction when the guard fails ([`txn`]).
//! - **Reads** are linearizable ranges, at a revision when asked ([`read`]).
//! - **Watches** are etcd watches on the prefix with previous values
//!   ([`watch`]).
//! - **Failures**: requests go to the members in turn, skipping one that
//!   failed recently ([`endpoints`]), and require the member to have a
//!   leader; requests that fail because a member died or an election is
//!   under way are sent again when that cannot apply them twice ([`retry`],
//!   [`failure`]).

mod endpoints;
mod failure;
mod keys;
mod read;
mod retry;
mod txn;
mod watch;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::ConnectOptions;

use crate::error::{Result, StorageError};
use crate::store::{KeyValue, ListOptions, ListResult, Revision, Store, WatchStream};

use self::endpoints::Endpoints;
use self::failure::Failure;
use self::keys::Keys;

/// Upstream's default key prefix.
pub const DEFAULT_PREFIX: &str = "/registry";
/// Largest gRPC message the client accepts, as kube-apiserver's client
/// (`math.MaxInt32`): lists and watch batches of large objects get big.
const MAX_MESSAGE_SIZE: usize = i32::MAX as usize;
/// How long opening a connection to one member may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// HTTP/2 keep-alive, as kube-apiserver's etcd client: notices a member
/// that vanished without closing its connections (network partition).
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Options of the etcd backend.
#[derive(Debug, Clone)]
pub struct EtcdOptions {
    /// Client URLs of the members (`http://127.0.0.1:2379`). Requests are
    /// balanced over all of them and fail over when one dies.
    pub endpoints: Vec<String>,
    /// Prefix of every key in etcd (upstream `--etcd-prefix`); a trailing
    /// `/` is ignored, since store keys start with `/`.
    pub prefix: String,
}

impl EtcdOptions {
    /// Options for `endpoints` with the default prefix `/registry`.
    pub fn new(endpoints: Vec<String>) -> Self {
        EtcdOptions {
            endpoints,
            prefix: DEFAULT_PREFIX.to_string(),
        }
    }
}

/// A [`Store`] on an etcd cluster. Cheap to clone; clones share one
/// connection pool.
#[derive(Clone)]
pub struct EtcdStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.inner.endpoints.urls())
            .field("keys", &self.inner.keys)
            .finish()
    }
}

/// What every operation shares.
struct Inner {
    endpoints: Endpoints,
    keys: Keys,
    /// The highest revision this store knows to be compacted (its own
    /// compactions); a lower bound for [`StorageError::Compacted`].
    compacted: AtomicI64,
}

impl EtcdStore {
    /// Connects to the cluster at `options.endpoints` and checks that it
    /// answers (retrying for a while, like every request). Fails with
    /// `InvalidArgument` for bad options and `Unavailable` when no member
    /// answers.
    pub async fn connect(options: EtcdOptions) -> Result<EtcdStore> {
        if options.endpoints.is_empty() {
            return Err(StorageError::InvalidArgument("no etcd endpoints given".into()));
        }
        let connect_options = ConnectOptions::new()
            .with_require_leader(true)
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_keep_alive(KEEP_ALIVE_INTERVAL, KEEP_ALIVE_TIMEOUT);
        let endpoints = Endpoints::connect(&options.endpoints, &connect_options, MAX_MESSAGE_SIZE)
            .await
            .map_err(|e| Failure::Etcd(e).into_storage_error(None))?;
        let inner = Inner {
            endpoints,
            keys: Keys::new(&options.prefix),
            compacted: AtomicI64::new(0),
        };
        let revision = inner.current_revision().await?;
        tracing::info!(endpoints = ?options.endpoints, prefix = %options.prefix, revision, "connected to etcd");
        Ok(EtcdStore { inner: Arc::new(inner) })
    }
}

impl Inner {
    /// Fills in the revisions etcd's errors do not carry: a lower bound of
    /// the compacted revision, and the current revision.
    async fn with_revisions(&self, error: StorageError) -> StorageError {
        match error {
            StorageError::Compacted { requested, compacted } => StorageError::Compacted {
                requested,
                // etcd refuses revisions below the compacted one, so it is
                // at least requested + 1.
                compacted: compacted
                    .max(self.compacted.load(Ordering::Relaxed))
                    .max(requested.saturating_add(1)),
            },
            StorageError::FutureRevision { requested, current: 0 } => StorageError::FutureRevision {
                requested,
                current: self
                    .current_revision()
                    .await
                    .unwrap_or_else(|_| requested.saturating_sub(1)),
            },
            other => other,
        }
    }

    /// Records that history up to `revision` is compacted.
    fn note_compacted(&self, revision: Revision) {
        self.compacted.fetch_max(revision, Ordering::Relaxed);
    }
}

#[async_trait]
impl Store for EtcdStore {
    fn backend_name(&self) -> &'static str {
        "etcd"
    }

    async fn get(&self, key: &str, revision: Option<Revision>) -> Result<Option<KeyValue>> {
        self.inner.get(key, revision).await
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResult> {
        self.inner.list(prefix, options).await
    }

    async fn count(&self, prefix: &str) -> Result<i64> {
        self.inner.count(prefix).await
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<Revision> {
        self.inner.create(key, value).await
    }

    async fn update(&self, key: &str, value: Bytes, expected_mod_revision: Revision) -> Result<Revision> {
        self.inner.update(key, value, expected_mod_revision).await
    }

    async fn delete(&self, key: &str, expected_mod_revision: Option<Revision>) -> Result<(Revision, KeyValue)> {
        self.inner.delete(key, expected_mod_revision).await
    }

    async fn watch(&self, prefix: &str, after: Option<Revision>) -> Result<WatchStream> {
        watch::watch(&self.inner, prefix, after).await
    }

    async fn current_revision(&self) -> Result<Revision> {
        self.inner.current_revision().await
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.inner.compact(revision).await
    }
}
