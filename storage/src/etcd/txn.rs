//! Writes: guarded transactions, as kube-apiserver's etcd3 store does them.
//!
//! | operation       | compare                                 | then          | else |
//! |-----------------|-----------------------------------------|---------------|------|
//! | create          | `create_revision == 0`                  | put           | get  |
//! | update          | `version > 0`, `mod_revision == expected` | put         | get  |
//! | guarded delete  | `mod_revision == expected`              | delete, prev  | get  |
//!
//! Because every guarded write compares a revision that the write itself
//! changes, sending it again after a failure that may have applied it
//! cannot apply it twice. What such a retry cannot always tell is whether a
//! failed compare is another writer's doing or the earlier attempt's own
//! success: when the key holds exactly the value written, it is taken as
//! this write's success; otherwise the outcome is reported as unknown
//! (`Unavailable`) rather than guessed. An unguarded delete is sent once
//! more only when it provably did not reach etcd.

use bytes::Bytes;
use etcd_client::{Compare, CompareOp, DeleteOptions, Txn, TxnOp, TxnOpResponse, TxnResponse};

use super::Inner;
use super::retry::{Idempotence, Outcome, with_retry};
use crate::error::{Result, StorageError};
use crate::store::{KeyValue, Revision, validate_key};

/// What a guarded transaction found.
enum Guarded {
    /// The compare held and the write was applied at this revision; for a
    /// delete, with the deleted value.
    Applied(Revision, Option<KeyValue>),
    /// The compare failed; the key's current value (`None`: absent).
    Refused(Option<KeyValue>),
}

impl Inner {
    pub(super) async fn create(&self, key: &str, value: Bytes) -> Result<Revision> {
        validate_key(key)?;
        let k = self.keys.etcd_key(key);
        let txn = Txn::new()
            .when([Compare::create_revision(k.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(k.clone(), value.to_vec(), None)])
            .or_else([TxnOp::get(k, None)]);
        let outcome = self.guarded("create", txn).await;
        let maybe_applied = outcome.maybe_applied;
        match self.guarded_result(outcome)? {
            Guarded::Applied(rev, _) => Ok(rev),
            Guarded::Refused(Some(current)) if maybe_applied && current.value == value => {
                tracing::info!(key, "create was applied by an earlier attempt that failed");
                Ok(current.create_revision)
            }
            Guarded::Refused(_) if maybe_applied => Err(outcome_unknown("create", key)),
            Guarded::Refused(_) => Err(StorageError::AlreadyExists { key: key.to_string() }),
        }
    }

    pub(super) async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<Revision> {
        validate_key(key)?;
        let k = self.keys.etcd_key(key);
        let txn = Txn::new()
            .when([
                // Without it, `mod_revision == 0` would hold for a missing key.
                Compare::version(k.clone(), CompareOp::Greater, 0),
                Compare::mod_revision(k.clone(), CompareOp::Equal, expected),
            ])
            .and_then([TxnOp::put(k.clone(), value.to_vec(), None)])
            .or_else([TxnOp::get(k, None)]);
        let outcome = self.guarded("update", txn).await;
        let maybe_applied = outcome.maybe_applied;
        match self.guarded_result(outcome)? {
            Guarded::Applied(rev, _) => Ok(rev),
            Guarded::Refused(Some(current)) if maybe_applied && current.value == value => {
                tracing::info!(key, "update was applied by an earlier attempt that failed");
                Ok(current.mod_revision)
            }
            Guarded::Refused(_) if maybe_applied => Err(outcome_unknown("update", key)),
            Guarded::Refused(None) => Err(StorageError::NotFound { key: key.to_string() }),
            Guarded::Refused(Some(current)) => Err(StorageError::Conflict {
                key: key.to_string(),
                expected,
                current: Some(Box::new(current)),
            }),
        }
    }

    pub(super) async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(Revision, KeyValue)> {
        validate_key(key)?;
        match expected {
            Some(expected) => self.delete_guarded(key, expected).await,
            None => self.delete_unguarded(key).await,
        }
    }

    async fn delete_guarded(&self, key: &str, expected: Revision) -> Result<(Revision, KeyValue)> {
        let k = self.keys.etcd_key(key);
        let txn = Txn::new()
            .when([Compare::mod_revision(k.clone(), CompareOp::Equal, expected)])
            .and_then([TxnOp::delete(k.clone(), Some(DeleteOptions::new().with_prev_key()))])
            .or_else([TxnOp::get(k, None)]);
        let outcome = self.guarded("delete", txn).await;
        let maybe_applied = outcome.maybe_applied;
        match self.guarded_result(outcome)? {
            Guarded::Applied(rev, Some(prev)) => Ok((rev, prev)),
            // `mod_revision == 0` held: the key does not exist.
            Guarded::Applied(_, None) | Guarded::Refused(None) if !maybe_applied => {
                Err(StorageError::NotFound { key: key.to_string() })
            }
            Guarded::Refused(Some(current)) if !maybe_applied => Err(StorageError::Conflict {
                key: key.to_string(),
                expected,
                current: Some(Box::new(current)),
            }),
            Guarded::Applied(..) | Guarded::Refused(_) => Err(outcome_unknown("delete", key)),
        }
    }

    async fn delete_unguarded(&self, key: &str) -> Result<(Revision, KeyValue)> {
        let k = self.keys.etcd_key(key);
        let outcome = with_retry(&self.endpoints, "delete", Idempotence::Unsafe, |mut member| {
            let k = k.clone();
            async move { member.kv.delete(k, Some(DeleteOptions::new().with_prev_key())).await }
        })
        .await;
        let mut resp = match outcome.result {
            Ok(resp) => resp,
            Err(failure) => {
                let e = failure.into_storage_error(None);
                return Err(match e {
                    StorageError::Unavailable(msg) if outcome.maybe_applied => StorageError::Unavailable(format!(
                        "delete of key {key:?} may or may not have been applied: {msg}"
                    )),
                    e => e,
                });
            }
        };
        let rev = revision_of(resp.header())?;
        match resp.take_prev_kvs().into_iter().next() {
            Some(prev) => Ok((rev, self.keys.kv(prev)?)),
            None => Err(StorageError::NotFound { key: key.to_string() }),
        }
    }

    pub(super) async fn compact(&self, revision: Revision) -> Result<()> {
        let outcome = with_retry(&self.endpoints, "compact", Idempotence::Safe, |mut member| async move {
            member.kv.compact(revision, None).await
        })
        .await;
        match outcome.result.map_err(|f| f.into_storage_error(Some(revision))) {
            Ok(_) => {
                tracing::debug!(revision, "compacted etcd");
                self.note_compacted(revision);
                Ok(())
            }
            // Already compacted at or past `revision`: nothing to do.
            Err(StorageError::Compacted { .. }) => Ok(()),
            Err(e) => Err(self.with_revisions(e).await),
        }
    }

    /// Sends a guarded transaction, retrying through failures.
    async fn guarded(&self, what: &'static str, txn: Txn) -> Outcome<TxnResponse> {
        with_retry(&self.endpoints, what, Idempotence::Safe, |mut member| {
            let txn = txn.clone();
            async move { member.kv.txn(txn).await }
        })
        .await
    }

    /// What a guarded transaction's response says.
    fn guarded_result(&self, outcome: Outcome<TxnResponse>) -> Result<Guarded> {
        let resp = outcome.result.map_err(|failure| {
            let e = failure.into_storage_error(None);
            match e {
                StorageError::Unavailable(msg) if outcome.maybe_applied => {
                    StorageError::Unavailable(format!("write may or may not have been applied: {msg}"))
                }
                e => e,
            }
        })?;
        let op = resp.op_responses().into_iter().next();
        if resp.succeeded() {
            let rev = revision_of(resp.header())?;
            let prev = match op {
                Some(TxnOpResponse::Delete(mut d)) => d.take_prev_kvs().into_iter().next(),
                _ => None,
            };
            return Ok(Guarded::Applied(rev, prev.map(|kv| self.keys.kv(kv)).transpose()?));
        }
        match op {
            Some(TxnOpResponse::Get(mut g)) => Ok(Guarded::Refused(
                g.take_kvs().into_iter().next().map(|kv| self.keys.kv(kv)).transpose()?,
            )),
            other => Err(StorageError::Internal(format!(
                "etcd transaction failed its compare but answered {other:?} instead of a range"
            ))),
        }
    }
}

/// The revision in a response header.
fn revision_of(header: Option<&etcd_client::ResponseHeader>) -> Result<Revision> {
    header
        .map(|h| h.revision())
        .ok_or_else(|| StorageError::Internal("etcd response without a header".into()))
}

/// An earlier attempt may have been applied, and the key's state does not
/// show whether it was.
fn outcome_unknown(op: &str, key: &str) -> StorageError {
    StorageError::Unavailable(format!(
        "{op} of key {key:?}: an attempt failed after it may have reached etcd, and the key's \
         current state does not show whether it was applied"
    ))
}
