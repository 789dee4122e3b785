//! Reads: get, list, count and the current revision, all linearizable
//! ranges (etcd's default), retried through member failures.

use etcd_client::{GetOptions, GetResponse};

use super::Inner;
use super::retry::{Idempotence, with_retry};
use crate::error::{Result, StorageError};
use crate::store::{KeyValue, ListOptions, ListResult, Revision, validate_key};

impl Inner {
    /// One range request, retried; errors carry `revision` as the requested
    /// one and get their revisions filled in.
    pub(super) async fn range(
        &self,
        what: &'static str,
        key: Vec<u8>,
        options: GetOptions,
        revision: Option<Revision>,
    ) -> Result<GetResponse> {
        match self.range_once(what, key, options, revision).await {
            Ok(resp) => Ok(resp),
            Err(e) => Err(self.with_revisions(e).await),
        }
    }

    /// [`Inner::range`] without filling in the revisions of errors.
    async fn range_once(
        &self,
        what: &'static str,
        key: Vec<u8>,
        options: GetOptions,
        revision: Option<Revision>,
    ) -> Result<GetResponse> {
        let outcome = with_retry(&self.endpoints, what, Idempotence::Safe, |mut member| {
            let (key, options) = (key.clone(), options.clone());
            async move { member.kv.get(key, Some(options)).await }
        })
        .await;
        outcome.result.map_err(|failure| failure.into_storage_error(revision))
    }

    pub(super) async fn get(&self, key: &str, revision: Option<Revision>) -> Result<Option<KeyValue>> {
        if validate_key(key).is_err() {
            // No write accepts such a key, so it cannot exist.
            return Ok(None);
        }
        let mut options = GetOptions::new();
        if let Some(rev) = revision.filter(|r| *r > 0) {
            options = options.with_revision(rev);
        }
        let mut resp = self.range("get", self.keys.etcd_key(key), options, revision).await?;
        resp.take_kvs()
            .into_iter()
            .next()
            .map(|kv| self.keys.kv(kv))
            .transpose()
    }

    pub(super) async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResult> {
        let (prefix_start, end) = self.keys.range(prefix);
        let start = match &options.start {
            Some(s) if !s.starts_with(prefix) => {
                return Err(StorageError::InvalidArgument(format!(
                    "start key {s:?} is outside prefix {prefix:?}"
                )));
            }
            Some(s) => self.keys.etcd_key(s),
            None => prefix_start,
        };
        let revision = options.revision.filter(|r| *r > 0);
        let mut get = GetOptions::new().with_range(end);
        if let Some(rev) = revision {
            get = get.with_revision(rev);
        }
        if options.limit > 0 {
            get = get.with_limit(i64::try_from(options.limit).unwrap_or(i64::MAX));
        }
        let mut resp = self.range("list", start, get, revision).await?;
        let header_revision = resp.header().map_or(0, |h| h.revision());
        let (more, count) = (resp.more(), resp.count());
        let items = resp
            .take_kvs()
            .into_iter()
            .map(|kv| self.keys.kv(kv))
            .collect::<Result<Vec<_>>>()?;
        // `count` is every key in [start, end) at that revision, whatever
        // the limit, so what remains after this page is the difference (as
        // kube-apiserver computes remainingItemCount).
        let remaining = if more { (count - items.len() as i64).max(0) } else { 0 };
        Ok(ListResult {
            items,
            revision: revision.unwrap_or(header_revision),
            more,
            remaining,
        })
    }

    pub(super) async fn count(&self, prefix: &str) -> Result<i64> {
        let (start, end) = self.keys.range(prefix);
        let resp = self
            .range(
                "count",
                start,
                GetOptions::new().with_range(end).with_count_only(),
                None,
            )
            .await?;
        Ok(resp.count())
    }

    /// The cluster's revision, from the header of a linearizable count of
    /// one key.
    pub(super) async fn current_revision(&self) -> Result<Revision> {
        let resp = self
            .range_once(
                "current revision",
                self.keys.etcd_key(""),
                GetOptions::new().with_count_only(),
                None,
            )
            .await?;
        resp.header()
            .map(|h| h.revision())
            .ok_or_else(|| StorageError::Internal("etcd response without a header".into()))
    }

    /// Fails with `Compacted` if history at `revision` is gone (and with
    /// `FutureRevision` if it has not happened yet).
    pub(super) async fn check_revision(&self, revision: Revision) -> Result<()> {
        self.range(
            "check revision",
            self.keys.etcd_key(""),
            GetOptions::new().with_count_only().with_revision(revision),
            Some(revision),
        )
        .await
        .map(|_| ())
    }
}
