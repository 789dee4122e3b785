//! Audit annotations (upstream's `audit.AddAuditAnnotation`): key/value
//! pairs that the filters and admission plugins a request passes through
//! (authorization, PodSecurity, ValidatingAdmissionPolicy) attach to its
//! audit event.
//!
//! The audit middleware opens a scope for each audited request and runs
//! the rest of the request inside it; [`annotate`] adds to the current
//! request's annotations, and does nothing when the request is not audited
//! (auditing off, or level `None`), so callers need not know.
//!
//! As upstream, the first value set for a key wins: a later, different
//! value for the same key is dropped with a log line. An annotation may ask
//! for a least level ([`annotate_at`], upstream's `AddAnnotationWithLevel`):
//! a mutating webhook's patch is kept only in events that log the request
//! body.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::policy::Level;

tokio::task_local! {
    static CURRENT: Annotations;
}

/// One request's annotations, shared by the middleware and the code that
/// adds them, with the level of the request's event.
#[derive(Debug, Clone)]
pub struct Annotations(Arc<Mutex<BTreeMap<String, String>>>, Level);

impl Annotations {
    /// No annotations yet, for an event at `level`.
    pub fn at(level: Level) -> Self {
        Annotations(Default::default(), level)
    }

    fn add(&self, key: &str, value: &str) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(key) {
            Some(v) if v != value => {
                tracing::warn!(key, value, existing = %v, "audit annotation already set; keeping the first value");
            }
            Some(_) => {}
            None => {
                map.insert(key.to_string(), value.to_string());
            }
        }
    }

    /// The annotations so far, as the event's `annotations` field.
    pub fn snapshot(&self) -> BTreeMap<String, String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Runs `fut` with these as the current request's annotations.
    pub async fn scope<F: std::future::Future>(self, fut: F) -> F::Output {
        CURRENT.scope(self, fut).await
    }
}

/// Adds `key: value` to the current request's audit event, if it is
/// audited.
pub fn annotate(key: &str, value: &str) {
    let _ = CURRENT.try_with(|a| a.add(key, value));
}

/// Adds `key: value` to the current request's audit event if it is
/// audited at `level` or above.
pub fn annotate_at(level: Level, key: &str, value: &str) {
    let _ = CURRENT.try_with(|a| {
        if a.1 >= level {
            a.add(key, value)
        }
    });
}

/// Whether the current request is audited at `level` or above (so callers
/// can skip building annotation values that would be dropped).
pub fn is_audited_at(level: Level) -> bool {
    CURRENT.try_with(|a| a.1 >= level).unwrap_or(false)
}

/// Whether the current request is audited (so callers can skip building
/// costly annotation values).
pub fn is_audited() -> bool {
    CURRENT.try_with(|_| ()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn first_value_wins_and_outside_a_scope_nothing_is_kept() {
        annotate("a", "outside");
        assert!(!is_audited());
        let notes = Annotations::at(Level::Metadata);
        notes
            .clone()
            .scope(async {
                assert!(is_audited());
                annotate("authorization.k8s.io/decision", "allow");
                annotate("authorization.k8s.io/decision", "forbid");
                annotate("b", "1");
                annotate("b", "1");
            })
            .await;
        let got = notes.snapshot();
        assert_eq!(
            got.into_iter().collect::<Vec<_>>(),
            vec![
                ("authorization.k8s.io/decision".to_string(), "allow".to_string()),
                ("b".to_string(), "1".to_string()),
            ]
        );
    }

    #[tokio::test]
    async fn levelled_annotations_need_that_level() {
        for (level, kept) in [
            (Level::Metadata, false),
            (Level::Request, true),
            (Level::RequestResponse, true),
        ] {
            let notes = Annotations::at(level);
            notes
                .clone()
                .scope(async {
                    assert_eq!(is_audited_at(Level::Request), kept);
                    annotate_at(Level::Request, "patch", "p");
                    annotate_at(Level::Metadata, "mutation", "m");
                })
                .await;
            let got = notes.snapshot();
            assert_eq!(got.contains_key("patch"), kept, "{level:?}");
            assert!(got.contains_key("mutation"), "{level:?}");
        }
        assert!(!is_audited_at(Level::Metadata));
    }
}
