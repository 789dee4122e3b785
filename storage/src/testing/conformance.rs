//! The conformance suite every backend runs unchanged.
//!
//! Each case is an `async fn(Arc<dyn Store>)`; [`crate::conformance_suite!`]
//! expands to one `#[tokio::test]` per case for a backend, given an async
//! factory returning a fixture that derefs to the store (and keeps whatever
//! the backend needs alive: a temp dir, an etcd process).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use crate::continue_token::list_page;
use crate::error::StorageError;
use crate::store::{Event, EventType, ListOptions, Revision, Store, WatchStream};

/// How long a test waits for an event before it fails.
const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

/// Expands to one test per conformance case. `$factory` is an expression
/// evaluating to a future of a fixture `F` with `F: AsRef<Arc<dyn Store>>`.
#[macro_export]
macro_rules! conformance_suite {
    ($factory:expr) => {
        $crate::conformance_suite!(@cases $factory;
            create_get_update_delete,
            revisions_increase_in_order,
            get_at_revision,
            conflicts_carry_current_value,
            no_lost_update_under_32_writers,
            list_and_count_by_prefix,
            paginated_list_is_consistent_during_writes,
            watch_replays_missed_events_exactly,
            watch_from_now_sees_only_new_events,
            watch_many_watchers_and_prefixes,
            compaction,
            large_values,
            unusual_keys,
            delete_missing_key,
            invalid_arguments,
        );
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let fixture = $factory.await;
                let store: std::sync::Arc<dyn $crate::Store> = ::std::convert::AsRef::<std::sync::Arc<dyn $crate::Store>>::as_ref(&fixture).clone();
                $crate::testing::conformance::$case(store).await;
            }
        )*
    };
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

async fn next_event(w: &mut WatchStream) -> Event {
    match tokio::time::timeout(EVENT_TIMEOUT, w.next()).await {
        Ok(Some(Ok(ev))) => ev,
        Ok(Some(Err(e))) => panic!("watch failed: {e}"),
        Ok(None) => panic!("watch ended"),
        Err(_) => panic!("no event within {EVENT_TIMEOUT:?}"),
    }
}

async fn assert_quiet(w: &mut WatchStream) {
    if let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(300), w.next()).await {
        panic!("unexpected event {ev:?}");
    }
}

/// Create, get, update (guarded), delete (guarded), and their errors.
pub async fn create_get_update_delete(s: Arc<dyn Store>) {
    let r1 = s.create("/c/a", b("one")).await.unwrap();
    let kv = s.get("/c/a", None).await.unwrap().expect("created key");
    assert_eq!(
        (kv.value.as_ref(), kv.create_revision, kv.mod_revision),
        (&b"one"[..], r1, r1)
    );

    match s.create("/c/a", b("again")).await {
        Err(StorageError::AlreadyExists { key }) => assert_eq!(key, "/c/a"),
        other => panic!("create of an existing key: {other:?}"),
    }

    let r2 = s.update("/c/a", b("two"), r1).await.unwrap();
    assert!(r2 > r1);
    let kv = s.get("/c/a", None).await.unwrap().unwrap();
    assert_eq!(
        (kv.value.as_ref(), kv.create_revision, kv.mod_revision),
        (&b"two"[..], r1, r2)
    );

    assert!(matches!(
        s.update("/c/a", b("x"), r1).await,
        Err(StorageError::Conflict { .. })
    ));
    assert!(matches!(
        s.update("/c/none", b("x"), r1).await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(matches!(
        s.delete("/c/a", Some(r1)).await,
        Err(StorageError::Conflict { .. })
    ));
    assert_eq!(
        s.get("/c/a", None).await.unwrap().unwrap().value,
        b("two"),
        "failed writes change nothing"
    );

    let (r3, prev) = s.delete("/c/a", Some(r2)).await.unwrap();
    assert!(r3 > r2);
    assert_eq!((prev.value, prev.mod_revision), (b("two"), r2));
    assert_eq!(s.get("/c/a", None).await.unwrap(), None);

    // Re-creating a deleted key starts a new life.
    let r4 = s.create("/c/a", b("three")).await.unwrap();
    let kv = s.get("/c/a", None).await.unwrap().unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision), (r4, r4));
    let (_, prev) = s.delete("/c/a", None).await.unwrap();
    assert_eq!(prev.value, b("three"));
}

/// Every write gets a strictly larger revision, and the store's revision is
/// the last one handed out.
pub async fn revisions_increase_in_order(s: Arc<dyn Store>) {
    let mut last = s.current_revision().await.unwrap();
    for i in 0..50 {
        let key = format!("/o/{i}");
        let r = s.create(&key, b("v")).await.unwrap();
        assert!(r > last, "revision {r} after {last}");
        last = r;
        let r = s.update(&key, b("w"), r).await.unwrap();
        assert!(r > last);
        last = r;
    }
    assert_eq!(s.current_revision().await.unwrap(), last);
    let (r, _) = s.delete("/o/0", None).await.unwrap();
    assert!(r > last);
    assert_eq!(s.current_revision().await.unwrap(), r);
}

/// Reads at an older revision see the value of then; future revisions fail.
pub async fn get_at_revision(s: Arc<dyn Store>) {
    let r1 = s.create("/g/k", b("v1")).await.unwrap();
    let r2 = s.update("/g/k", b("v2"), r1).await.unwrap();
    let (r3, _) = s.delete("/g/k", None).await.unwrap();
    assert_eq!(s.get("/g/k", Some(r1)).await.unwrap().unwrap().value, b("v1"));
    assert_eq!(s.get("/g/k", Some(r2)).await.unwrap().unwrap().value, b("v2"));
    assert_eq!(s.get("/g/k", Some(r3)).await.unwrap(), None);
    assert_eq!(s.get("/g/k", Some(r1 - 1)).await.unwrap(), None);
    assert_eq!(s.get("/g/k", None).await.unwrap(), None);

    let list = s
        .list(
            "/g/",
            ListOptions {
                revision: Some(r2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(list.revision, r2);
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].value, b("v2"));

    let future = s.current_revision().await.unwrap() + 1000;
    assert!(matches!(
        s.get("/g/k", Some(future)).await,
        Err(StorageError::FutureRevision { .. })
    ));
}

/// A Conflict carries the current value so callers can retry at once.
pub async fn conflicts_carry_current_value(s: Arc<dyn Store>) {
    let r1 = s.create("/cf/k", b("v1")).await.unwrap();
    let r2 = s.update("/cf/k", b("v2"), r1).await.unwrap();
    match s.update("/cf/k", b("v3"), r1).await {
        Err(StorageError::Conflict {
            current: Some(kv),
            expected,
            ..
        }) => {
            assert_eq!((kv.value, kv.mod_revision, expected), (b("v2"), r2, r1));
        }
        other => panic!("{other:?}"),
    }
}

/// 32 tasks increment one counter with compare-and-swap retries; no
/// increment is lost.
pub async fn no_lost_update_under_32_writers(s: Arc<dyn Store>) {
    const WRITERS: usize = 32;
    const INCREMENTS: usize = 20;
    s.create("/cas/counter", b("0")).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..INCREMENTS {
                let mut kv = s.get("/cas/counter", None).await.unwrap().unwrap();
                loop {
                    let n: u64 = std::str::from_utf8(&kv.value).unwrap().parse().unwrap();
                    match s.update("/cas/counter", b(&(n + 1).to_string()), kv.mod_revision).await {
                        Ok(_) => break,
                        Err(StorageError::Conflict { current: Some(cur), .. }) => kv = *cur,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let kv = s.get("/cas/counter", None).await.unwrap().unwrap();
    assert_eq!(kv.value, b(&(WRITERS * INCREMENTS).to_string()));
}

/// Prefix lists are in key order, do not leak neighbours, honour limits and
/// report what remains; counts agree.
pub async fn list_and_count_by_prefix(s: Arc<dyn Store>) {
    for k in ["/l/a/1", "/l/a/2", "/l/a/3", "/l/ab/1", "/l/b/1", "/l/a"] {
        s.create(k, b(k)).await.unwrap();
    }
    s.delete("/l/a/2", None).await.unwrap();
    let list = s.list("/l/a/", ListOptions::default()).await.unwrap();
    let keys: Vec<_> = list.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/l/a/1", "/l/a/3"]);
    assert!(!list.more);
    assert_eq!(list.remaining, 0);
    assert_eq!(list.revision, s.current_revision().await.unwrap());
    assert_eq!(s.count("/l/a/").await.unwrap(), 2);
    assert_eq!(s.count("/l/").await.unwrap(), 5);
    assert_eq!(s.count("/nothing/").await.unwrap(), 0);

    let page = s
        .list(
            "/l/",
            ListOptions {
                limit: 2,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let keys: Vec<_> = page.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/l/a", "/l/a/1"]);
    assert!(page.more);
    assert_eq!(page.remaining, 3);
    let next = s
        .list(
            "/l/",
            ListOptions {
                limit: 2,
                start: page.next_start(),
                revision: Some(page.revision),
            },
        )
        .await
        .unwrap();
    let keys: Vec<_> = next.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/l/a/3", "/l/ab/1"]);
    assert_eq!(next.remaining, 1);
}

/// Paging through a list with continue tokens sees exactly the keys of the
/// first page's revision while other writers keep changing the prefix.
pub async fn paginated_list_is_consistent_during_writes(s: Arc<dyn Store>) {
    for i in 0..200 {
        s.create(&format!("/p/{i:04}"), b(&format!("v{i}"))).await.unwrap();
    }
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            for i in 0..200 {
                let key = format!("/p/{i:04}");
                if i % 3 == 0 {
                    s.delete(&key, None).await.unwrap();
                } else {
                    let kv = s.get(&key, None).await.unwrap().unwrap();
                    s.update(&key, b("changed"), kv.mod_revision).await.unwrap();
                }
                s.create(&format!("/p/{i:04}x"), b("new")).await.unwrap();
            }
        })
    };

    let first = list_page(s.as_ref(), "/p/", 7, None, None).await.unwrap();
    let revision = first.list.revision;
    // The first page was served at a revision of its own; compare against the
    // state of that revision.
    let expected_at_rev: BTreeMap<String, Bytes> = s
        .list(
            "/p/",
            ListOptions {
                revision: Some(revision),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|kv| (kv.key, kv.value))
        .collect();
    let mut seen: BTreeMap<String, Bytes> = first.list.items.into_iter().map(|kv| (kv.key, kv.value)).collect();
    let mut token = first.continue_token;
    let mut pages = 1;
    let mut total_remaining_checked = false;
    while let Some(t) = token {
        let page = list_page(s.as_ref(), "/p/", 7, None, Some(&t)).await.unwrap();
        assert_eq!(
            page.list.revision, revision,
            "every page is served at the first page's revision"
        );
        if !total_remaining_checked {
            let remaining_after = expected_at_rev.len() as i64 - seen.len() as i64 - page.list.items.len() as i64;
            assert_eq!(page.list.remaining, remaining_after);
            total_remaining_checked = true;
        }
        for kv in page.list.items {
            assert!(seen.insert(kv.key, kv.value).is_none(), "a key appeared twice");
        }
        token = page.continue_token;
        pages += 1;
    }
    writer.await.unwrap();
    assert!(pages >= 29);
    assert_eq!(seen, expected_at_rev);
}

/// A watch from an old revision replays exactly the events after it, in
/// order, with previous values, then follows live writes.
pub async fn watch_replays_missed_events_exactly(s: Arc<dyn Store>) {
    let r0 = s.create("/w/a", b("a1")).await.unwrap();
    let r1 = s.update("/w/a", b("a2"), r0).await.unwrap();
    let r2 = s.create("/w/b", b("b1")).await.unwrap();
    s.create("/other/x", b("x")).await.unwrap();
    let (r3, _) = s.delete("/w/a", Some(r1)).await.unwrap();

    let mut w = s.watch("/w/", Some(r0)).await.unwrap();
    let e = next_event(&mut w).await;
    assert_eq!(
        (e.event_type, e.kv.key.as_str(), e.kv.value.clone(), e.revision()),
        (EventType::Modified, "/w/a", b("a2"), r1)
    );
    assert_eq!(e.prev.as_ref().map(|p| p.value.clone()), Some(b("a1")));
    let e = next_event(&mut w).await;
    assert_eq!(
        (e.event_type, e.kv.key.as_str(), e.revision()),
        (EventType::Added, "/w/b", r2)
    );
    assert_eq!(e.prev, None);
    let e = next_event(&mut w).await;
    assert_eq!(
        (e.event_type, e.kv.key.as_str(), e.revision()),
        (EventType::Deleted, "/w/a", r3)
    );
    assert_eq!(
        e.prev.as_ref().map(|p| (p.value.clone(), p.mod_revision)),
        Some((b("a2"), r1))
    );

    // Then live events, with no duplicate of the replayed ones.
    let r4 = s.update("/w/b", b("b2"), r2).await.unwrap();
    let e = next_event(&mut w).await;
    assert_eq!(
        (e.event_type, e.revision(), e.kv.create_revision),
        (EventType::Modified, r4, r2)
    );
    assert_quiet(&mut w).await;

    // Many writes while a watcher lags: all arrive, once, in order.
    let mut w2 = s.watch("/w/", Some(r4)).await.unwrap();
    let mut revs = Vec::new();
    for i in 0..300 {
        revs.push(s.create(&format!("/w/n{i}"), b("n")).await.unwrap());
    }
    for want in revs {
        assert_eq!(next_event(&mut w2).await.revision(), want);
    }
    assert_quiet(&mut w2).await;
}

/// A watch with no start revision sees only later events.
pub async fn watch_from_now_sees_only_new_events(s: Arc<dyn Store>) {
    s.create("/wn/old", b("o")).await.unwrap();
    let mut w = s.watch("/wn/", None).await.unwrap();
    assert_quiet(&mut w).await;
    let r = s.create("/wn/new", b("n")).await.unwrap();
    let e = next_event(&mut w).await;
    assert_eq!((e.kv.key.as_str(), e.revision()), ("/wn/new", r));
}

/// Several watchers on overlapping prefixes each get exactly their events.
pub async fn watch_many_watchers_and_prefixes(s: Arc<dyn Store>) {
    let start = s.current_revision().await.unwrap();
    let mut all = Vec::new();
    for _ in 0..10 {
        all.push(s.watch("/m/", Some(start)).await.unwrap());
    }
    let mut only_a = s.watch("/m/a/", Some(start)).await.unwrap();
    let mut writes = Vec::new();
    for i in 0..40 {
        let key = if i % 2 == 0 {
            format!("/m/a/{i}")
        } else {
            format!("/m/b/{i}")
        };
        writes.push((key.clone(), s.create(&key, b("v")).await.unwrap()));
    }
    for w in &mut all {
        for (key, rev) in &writes {
            let e = next_event(w).await;
            assert_eq!((&e.kv.key, e.revision()), (key, *rev));
        }
    }
    for (key, rev) in writes.iter().filter(|(k, _)| k.starts_with("/m/a/")) {
        let e = next_event(&mut only_a).await;
        assert_eq!((&e.kv.key, e.revision()), (key, *rev));
    }
    assert_quiet(&mut only_a).await;
}

/// After compaction, reads and watches from before the compacted revision
/// fail with Compacted; later ones still work.
pub async fn compaction(s: Arc<dyn Store>) {
    let r1 = s.create("/cp/k", b("v1")).await.unwrap();
    let r2 = s.update("/cp/k", b("v2"), r1).await.unwrap();
    let r3 = s.update("/cp/k", b("v3"), r2).await.unwrap();
    s.create("/cp/gone", b("g")).await.unwrap();
    s.delete("/cp/gone", None).await.unwrap();
    let r4 = s.create("/cp/j", b("j")).await.unwrap();
    s.compact(r3).await.unwrap();

    assert!(matches!(
        s.get("/cp/k", Some(r1)).await,
        Err(StorageError::Compacted { .. })
    ));
    assert!(matches!(
        s.list(
            "/cp/",
            ListOptions {
                revision: Some(r2),
                ..Default::default()
            }
        )
        .await,
        Err(StorageError::Compacted { .. })
    ));
    assert!(matches!(
        s.watch("/cp/", Some(r1)).await,
        Err(StorageError::Compacted { .. })
    ));
    assert_eq!(s.get("/cp/k", Some(r3)).await.unwrap().unwrap().value, b("v3"));
    assert_eq!(s.get("/cp/k", None).await.unwrap().unwrap().value, b("v3"));
    assert_eq!(s.get("/cp/gone", None).await.unwrap(), None);
    let list = s
        .list(
            "/cp/",
            ListOptions {
                revision: Some(r3),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);

    let mut w = s.watch("/cp/", Some(r3)).await.unwrap();
    let e = next_event(&mut w).await;
    assert_eq!(e.kv.key, "/cp/gone");
    assert_eq!(e.event_type, EventType::Added);
    let e = next_event(&mut w).await;
    assert_eq!(e.event_type, EventType::Deleted);
    let e = next_event(&mut w).await;
    assert_eq!((e.kv.key.as_str(), e.revision()), ("/cp/j", r4));

    // Compacting again to an older revision is harmless.
    s.compact(r2).await.ok();
    assert_eq!(s.count("/cp/").await.unwrap(), 2);
}

/// Values of 1.5 MiB round-trip intact, through get, list and watch.
pub async fn large_values(s: Arc<dyn Store>) {
    let size = 3 * 512 * 1024;
    let value: Bytes = (0..size).map(|i| (i * 31 % 251) as u8).collect::<Vec<u8>>().into();
    let start = s.current_revision().await.unwrap();
    let r = s.create("/big/v", value.clone()).await.unwrap();
    assert_eq!(s.get("/big/v", None).await.unwrap().unwrap().value, value);
    let r2 = s.update("/big/v", value.slice(1..), r).await.unwrap();
    assert_eq!(s.get("/big/v", Some(r)).await.unwrap().unwrap().value, value);
    assert_eq!(
        s.list("/big/", ListOptions::default()).await.unwrap().items[0].value,
        value.slice(1..)
    );
    let mut w = s.watch("/big/", Some(start)).await.unwrap();
    assert_eq!(next_event(&mut w).await.kv.value, value);
    let e = next_event(&mut w).await;
    assert_eq!((e.revision(), e.kv.value.len()), (r2, size - 1));
}

/// Keys with spaces, unicode, percent signs, newlines, control characters and
/// great length are stored and listed exactly.
pub async fn unusual_keys(s: Arc<dyn Store>) {
    let long = format!("/u/{}", "x".repeat(4000));
    let keys = [
        "/u/with space".to_string(),
        "/u/ünïcødé/名前/🚀".to_string(),
        "/u/%2F%00encoded".to_string(),
        "/u/new\nline\ttab".to_string(),
        "/u/\u{1}\u{7f}control".to_string(),
        "/u/trailing/".to_string(),
        "/u//double".to_string(),
        "/u/..".to_string(),
        long,
    ];
    for k in &keys {
        s.create(k, b(k)).await.unwrap();
    }
    for k in &keys {
        assert_eq!(s.get(k, None).await.unwrap().unwrap().value, b(k), "{k:?}");
    }
    let listed: Vec<String> = s
        .list("/u/", ListOptions::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|kv| kv.key)
        .collect();
    let mut sorted = keys.to_vec();
    sorted.sort();
    assert_eq!(listed, sorted);
    // A prefix ending in a high code point does not over-match.
    s.create("/v\u{10FFFF}/a", b("edge")).await.unwrap();
    s.create("/v\u{10FFFF}b", b("edge")).await.unwrap();
    assert_eq!(s.count("/v\u{10FFFF}/").await.unwrap(), 1);
}

/// Deleting a key that does not exist is NotFound and changes nothing.
pub async fn delete_missing_key(s: Arc<dyn Store>) {
    let before = s.current_revision().await.unwrap();
    match s.delete("/d/missing", None).await {
        Err(StorageError::NotFound { key }) => assert_eq!(key, "/d/missing"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        s.delete("/d/missing", Some(5)).await,
        Err(StorageError::NotFound { .. })
    ));
    assert_eq!(s.current_revision().await.unwrap(), before);
}

/// Bad arguments are InvalidArgument errors, never panics or writes.
pub async fn invalid_arguments(s: Arc<dyn Store>) {
    let before = s.current_revision().await.unwrap();
    assert!(matches!(
        s.create("", b("v")).await,
        Err(StorageError::InvalidArgument(_))
    ));
    assert!(matches!(
        s.create("/nul/\0", b("v")).await,
        Err(StorageError::InvalidArgument(_))
    ));
    assert!(matches!(
        s.list(
            "/a/",
            ListOptions {
                start: Some("/b/x".into()),
                ..Default::default()
            }
        )
        .await,
        Err(StorageError::InvalidArgument(_))
    ));
    assert!(matches!(
        list_page(s.as_ref(), "/a/", 5, None, Some("not-a-token")).await,
        Err(StorageError::InvalidArgument(_))
    ));
    assert_eq!(s.current_revision().await.unwrap(), before);
}

/// Collects `n` events from a watch (for harnesses and benchmarks).
pub async fn collect_events(w: &mut WatchStream, n: usize) -> Vec<Event> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(next_event(w).await);
    }
    out
}

/// The revision type re-exported for callers of the suite.
pub type Rev = Revision;
