//! Warnings webhooks return, gathered per request: a handler runs its
//! work inside [`collect`] and turns what was added into `Warning` headers.
//! Outside [`collect`], [`add`] drops them.

use std::cell::RefCell;
use std::future::Future;

tokio::task_local! {
    static WARNINGS: RefCell<Vec<String>>;
}

/// Runs `fut`, returning its output and the warnings added while it ran.
pub async fn collect<F: Future>(fut: F) -> (F::Output, Vec<String>) {
    WARNINGS
        .scope(RefCell::new(Vec::new()), async move {
            let out = fut.await;
            let warnings = WARNINGS.with(|w| std::mem::take(&mut *w.borrow_mut()));
            (out, warnings)
        })
        .await
}

/// Adds warnings to the current request's, if it collects them.
pub fn add(warnings: impl IntoIterator<Item = String>) {
    let _ = WARNINGS.try_with(|w| w.borrow_mut().extend(warnings));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn collected_inside_dropped_outside() {
        add(["lost".to_string()]);
        let (out, warnings) = collect(async {
            add(["a".to_string()]);
            tokio::task::yield_now().await;
            add(["b".to_string()]);
            7
        })
        .await;
        assert_eq!(out, 7);
        assert_eq!(warnings, ["a", "b"]);
    }
}
