//! How a failed etcd request becomes a [`StorageError`], and whether it may
//! be retried.
//!
//! etcd reports most errors as a gRPC status whose message names the cause
//! (`etcdserver: mvcc: required revision has been compacted`, `etcdserver:
//! no leader`, ...); the client library reports transport failures as
//! `Unavailable` with a [`tonic::ConnectError`] in the source chain when the
//! connection could not even be opened.

use std::time::Duration;

use tonic::Code;

use crate::error::StorageError;
use crate::store::Revision;

/// Whether a failed request may have taken effect, which decides if it can
/// be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Retry {
    /// The request never reached etcd (no connection) or etcd refused it
    /// before acting on it (no leader, too many requests): sending it again
    /// is always safe.
    NotApplied,
    /// The request may or may not have been applied (connection lost
    /// mid-request, timeout, leader change): only requests that cannot
    /// apply twice (reads, compare-and-swap writes) may be sent again.
    MaybeApplied,
    /// Sending it again cannot help (compacted revision, invalid request).
    Never,
}

/// A failed attempt of one etcd request.
#[derive(Debug)]
pub(super) enum Failure {
    /// The client library or etcd returned an error.
    Etcd(etcd_client::Error),
    /// No answer within the attempt timeout.
    TimedOut(Duration),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Etcd(etcd_client::Error::GRpcStatus(status)) => f.write_str(&describe_status(status)),
            Failure::Etcd(e) => write!(f, "etcd: {e}"),
            Failure::TimedOut(after) => write!(f, "etcd did not answer within {after:?}"),
        }
    }
}

impl From<etcd_client::Error> for Failure {
    fn from(e: etcd_client::Error) -> Self {
        Failure::Etcd(e)
    }
}

/// etcd's messages for the errors that get their own [`StorageError`].
const COMPACTED: &str = "required revision has been compacted";
const FUTURE_REVISION: &str = "required revision is a future revision";
/// Unavailable errors that etcd returns before it proposes anything.
const REFUSED_BEFORE_APPLY: [&str; 3] = [
    "etcdserver: no leader",
    "etcdserver: too many requests",
    "etcdserver: not capable",
];

impl Failure {
    /// Whether and when the request may be sent again.
    pub(super) fn retry(&self) -> Retry {
        match self {
            Failure::TimedOut(_) => Retry::MaybeApplied,
            Failure::Etcd(etcd_client::Error::GRpcStatus(status)) => classify_status(status),
            // Building a connection (only at connect time) sends nothing.
            Failure::Etcd(etcd_client::Error::TransportError(_)) => Retry::NotApplied,
            Failure::Etcd(etcd_client::Error::IoError(_) | etcd_client::Error::WatchError(_)) => Retry::MaybeApplied,
            Failure::Etcd(_) => Retry::Never,
        }
    }

    /// The storage error for this failure. `requested` is the revision the
    /// request asked for, if any; the `compacted` and `current` revisions
    /// of `Compacted` and `FutureRevision` are left at 0 for the caller to
    /// fill in (etcd's error does not carry them).
    pub(super) fn into_storage_error(self, requested: Option<Revision>) -> StorageError {
        let retry = self.retry();
        match self {
            Failure::TimedOut(after) => StorageError::Unavailable(format!("etcd did not answer within {after:?}")),
            Failure::Etcd(etcd_client::Error::GRpcStatus(status)) => {
                let message = status.message();
                if message.contains(COMPACTED) {
                    return StorageError::Compacted {
                        requested: requested.unwrap_or(0),
                        compacted: 0,
                    };
                }
                if message.contains(FUTURE_REVISION) {
                    return StorageError::FutureRevision {
                        requested: requested.unwrap_or(0),
                        current: 0,
                    };
                }
                let text = describe_status(&status);
                match (retry, status.code()) {
                    (Retry::NotApplied | Retry::MaybeApplied, _) => StorageError::Unavailable(text),
                    (Retry::Never, Code::InvalidArgument | Code::OutOfRange) => StorageError::InvalidArgument(text),
                    (Retry::Never, _) => StorageError::Internal(text),
                }
            }
            Failure::Etcd(e @ (etcd_client::Error::InvalidArgs(_) | etcd_client::Error::InvalidUri(_))) => {
                StorageError::InvalidArgument(format!("etcd client: {e}"))
            }
            Failure::Etcd(e) => match retry {
                Retry::NotApplied | Retry::MaybeApplied => StorageError::Unavailable(format!("etcd: {e}")),
                Retry::Never => StorageError::Internal(format!("etcd: {e}")),
            },
        }
    }
}

fn classify_status(status: &tonic::Status) -> Retry {
    let message = status.message();
    if message.contains(COMPACTED) || message.contains(FUTURE_REVISION) {
        return Retry::Never;
    }
    if REFUSED_BEFORE_APPLY.iter().any(|m| message.contains(m)) || is_connect_error(status) {
        return Retry::NotApplied;
    }
    match status.code() {
        Code::Unavailable | Code::Unknown | Code::Cancelled | Code::DeadlineExceeded | Code::Aborted => {
            Retry::MaybeApplied
        }
        _ => Retry::Never,
    }
}

/// Whether the status comes from failing to open a connection, so the
/// request was never sent.
fn is_connect_error(status: &tonic::Status) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(e) = source {
        if e.is::<tonic::ConnectError>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// `etcd: <message> (<code>)`, with the sources of transport errors.
fn describe_status(status: &tonic::Status) -> String {
    let mut text = format!("etcd: {} ({:?})", status.message(), status.code());
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(e) = source {
        let s = e.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: Code, message: &str) -> Failure {
        Failure::Etcd(etcd_client::Error::GRpcStatus(tonic::Status::new(code, message)))
    }

    #[test]
    fn classification() {
        let cases = [
            (
                status(
                    Code::OutOfRange,
                    "etcdserver: mvcc: required revision has been compacted",
                ),
                Retry::Never,
            ),
            (
                status(
                    Code::OutOfRange,
                    "etcdserver: mvcc: required revision is a future revision",
                ),
                Retry::Never,
            ),
            (status(Code::Unavailable, "etcdserver: no leader"), Retry::NotApplied),
            (
                status(Code::ResourceExhausted, "etcdserver: too many requests"),
                Retry::NotApplied,
            ),
            (
                status(Code::Unavailable, "etcdserver: request timed out"),
                Retry::MaybeApplied,
            ),
            (
                status(Code::Unavailable, "etcdserver: leader changed"),
                Retry::MaybeApplied,
            ),
            (status(Code::Unknown, "transport error"), Retry::MaybeApplied),
            (
                status(Code::InvalidArgument, "etcdserver: request is too large"),
                Retry::Never,
            ),
            (
                Failure::Etcd(etcd_client::Error::GRpcStatus(tonic::Status::from_error(Box::new(
                    tonic::ConnectError("connection refused".into()),
                )))),
                Retry::NotApplied,
            ),
            (Failure::TimedOut(Duration::from_secs(1)), Retry::MaybeApplied),
        ];
        for (failure, want) in cases {
            assert_eq!(failure.retry(), want, "{failure:?}");
        }
    }

    #[test]
    fn storage_errors() {
        assert!(matches!(
            status(
                Code::OutOfRange,
                "etcdserver: mvcc: required revision has been compacted"
            )
            .into_storage_error(Some(7)),
            StorageError::Compacted { requested: 7, .. }
        ));
        assert!(matches!(
            status(
                Code::OutOfRange,
                "etcdserver: mvcc: required revision is a future revision"
            )
            .into_storage_error(Some(9)),
            StorageError::FutureRevision { requested: 9, .. }
        ));
        assert!(matches!(
            status(Code::Unavailable, "etcdserver: no leader").into_storage_error(None),
            StorageError::Unavailable(_)
        ));
        assert!(matches!(
            status(Code::InvalidArgument, "etcdserver: request is too large").into_storage_error(None),
            StorageError::InvalidArgument(_)
        ));
        assert!(matches!(
            status(Code::PermissionDenied, "etcdserver: permission denied").into_storage_error(None),
            StorageError::Internal(_)
        ));
        assert!(matches!(
            Failure::TimedOut(Duration::from_secs(1)).into_storage_error(None),
            StorageError::Unavailable(_)
        ));
    }
}
