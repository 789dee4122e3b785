//! `/healthz`, `/livez` and `/readyz` in kube-apiserver's format.
//!
//! Each endpoint runs a list of named checks. The plain endpoint answers
//! `ok`; with `?verbose` it lists `[+]name ok` / `[-]name failed: reason
//! withheld` lines and a closing `<endpoint> check passed|failed`; a failed
//! check makes it 500. `?exclude=name` skips a check, and `/<endpoint>/<name>`
//! runs one check. `/readyz` also fails once shutdown has begun, so load
//! balancers stop sending traffic before connections are drained.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use rkube_storage::Store;

/// How long the storage check may take.
const STORAGE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Which endpoint is being served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Healthz,
    Livez,
    Readyz,
}

impl Endpoint {
    fn name(self) -> &'static str {
        match self {
            Endpoint::Healthz => "healthz",
            Endpoint::Livez => "livez",
            Endpoint::Readyz => "readyz",
        }
    }

    fn checks(self) -> &'static [&'static str] {
        match self {
            Endpoint::Healthz | Endpoint::Livez => &["ping", "log", "etcd"],
            Endpoint::Readyz => &["ping", "log", "etcd", "watch-cache", "shutdown"],
        }
    }
}

/// Shared health state.
pub struct Health {
    store: Arc<dyn Store>,
    /// Ready once the watch cache has been filled.
    cache: std::sync::OnceLock<Arc<crate::registry::cache::Cache>>,
    shutting_down: AtomicBool,
    shutdown_tx: tokio::sync::watch::Sender<bool>,
}

impl Health {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Health {
            store,
            cache: std::sync::OnceLock::new(),
            shutting_down: AtomicBool::new(false),
            shutdown_tx: tokio::sync::watch::channel(false).0,
        }
    }

    /// Makes `/readyz` wait for `cache` to be filled.
    pub fn set_watch_cache(&self, cache: Arc<crate::registry::cache::Cache>) {
        let _ = self.cache.set(cache);
    }

    /// Marks the server as shutting down: `/readyz` fails from now on.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.shutdown_tx.send_replace(true);
    }

    /// Resolves once shutdown has begun (long-running requests end on it).
    pub fn shutdown_signal(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.shutdown_tx.subscribe();
        async move {
            let _ = rx.wait_for(|down| *down).await;
        }
    }

    /// Runs one check; `Err` carries the reason (logged, not shown).
    async fn check(&self, name: &str) -> Result<(), String> {
        match name {
            "ping" | "log" => Ok(()),
            // Named like upstream's storage check so probes and scripts carry over.
            "etcd" => match tokio::time::timeout(STORAGE_CHECK_TIMEOUT, self.store.current_revision()).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("storage did not answer within {STORAGE_CHECK_TIMEOUT:?}")),
            },
            "watch-cache" => match self.cache.get() {
                Some(c) if !c.is_ready() => Err("the watch cache is still being filled".into()),
                _ => Ok(()),
            },
            "shutdown" if self.shutting_down.load(Ordering::SeqCst) => Err("process is shutting down".into()),
            "shutdown" => Ok(()),
            _ => Err(format!("unknown check {name:?}")),
        }
    }

    /// Serves an endpoint: all checks (minus `exclude`), or only `only`.
    pub async fn serve(
        &self,
        endpoint: Endpoint,
        only: Option<&str>,
        verbose: bool,
        exclude: &[String],
    ) -> (StatusCode, String) {
        if let Some(name) = only {
            if !endpoint.checks().contains(&name) {
                return (StatusCode::NOT_FOUND, "404 page not found\n".into());
            }
            return match self.check(name).await {
                Ok(()) => (StatusCode::OK, "ok".into()),
                Err(why) => {
                    tracing::warn!(check = name, reason = %why, "health check failed");
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("internal server error: {name} check failed\n"),
                    )
                }
            };
        }
        let mut body = String::new();
        let mut failed = false;
        for &name in endpoint.checks() {
            if exclude.iter().any(|e| e == name) {
                body.push_str(&format!("[+]{name} excluded: ok\n"));
                continue;
            }
            match self.check(name).await {
                Ok(()) => body.push_str(&format!("[+]{name} ok\n")),
                Err(why) => {
                    tracing::warn!(endpoint = endpoint.name(), check = name, reason = %why, "health check failed");
                    failed = true;
                    body.push_str(&format!("[-]{name} failed: reason withheld\n"));
                }
            }
        }
        let what = endpoint.name();
        if failed {
            body.push_str(&format!("{what} check failed\n"));
            (StatusCode::INTERNAL_SERVER_ERROR, body)
        } else if verbose {
            body.push_str(&format!("{what} check passed\n"));
            (StatusCode::OK, body)
        } else {
            (StatusCode::OK, "ok".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rkube_storage::memory::MemoryStore;

    #[tokio::test]
    async fn verbose_lists_every_check_and_shutdown_fails_readyz() {
        let h = Health::new(Arc::new(MemoryStore::new()));
        let (code, body) = h.serve(Endpoint::Readyz, None, true, &[]).await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(
            body,
            "[+]ping ok\n[+]log ok\n[+]etcd ok\n[+]watch-cache ok\n[+]shutdown ok\nreadyz check passed\n"
        );
        assert_eq!(
            h.serve(Endpoint::Livez, None, false, &[]).await,
            (StatusCode::OK, "ok".into())
        );
        h.begin_shutdown();
        let (code, body) = h.serve(Endpoint::Readyz, None, false, &[]).await;
        assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(body.contains("[-]shutdown failed: reason withheld\n"), "{body}");
        assert_eq!(
            h.serve(Endpoint::Readyz, None, false, &["shutdown".into()]).await.0,
            StatusCode::OK
        );
        assert_eq!(h.serve(Endpoint::Healthz, None, false, &[]).await.0, StatusCode::OK);
        assert_eq!(
            h.serve(Endpoint::Readyz, Some("etcd"), false, &[]).await,
            (StatusCode::OK, "ok".into())
        );
        assert_eq!(
            h.serve(Endpoint::Readyz, Some("nope"), false, &[]).await.0,
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn readyz_waits_for_the_watch_cache() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let h = Health::new(store.clone());
        let cache = crate::registry::cache::Cache::new(store, Vec::new());
        h.set_watch_cache(cache.clone());
        let (code, body) = h.serve(Endpoint::Readyz, None, true, &[]).await;
        assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(body.contains("[-]watch-cache failed: reason withheld\n"), "{body}");
        assert_eq!(h.serve(Endpoint::Livez, None, false, &[]).await.0, StatusCode::OK);
        let task = cache.start();
        cache.wait_ready().await;
        assert_eq!(h.serve(Endpoint::Readyz, None, false, &[]).await.0, StatusCode::OK);
        task.abort();
    }
}
