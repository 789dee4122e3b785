//! The embedded backend across restarts, and how it fails to open.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use rkube_storage::embedded::{DATABASE_FILE_NAME, EmbeddedOptions, EmbeddedStore};
use rkube_storage::{Event, ListOptions, Revision, StorageError, Store, WatchStream};

async fn open(dir: &std::path::Path) -> EmbeddedStore {
    EmbeddedStore::open(EmbeddedOptions::new(dir))
        .await
        .expect("open the embedded store")
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

async fn next_events(w: &mut WatchStream, n: usize) -> Vec<Event> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        match tokio::time::timeout(Duration::from_secs(20), w.next()).await {
            Ok(Some(Ok(ev))) => out.push(ev),
            other => panic!("expected an event, got {other:?}"),
        }
    }
    out
}

async fn everything(s: &dyn Store, revision: Option<Revision>) -> Vec<(String, Bytes, Revision, Revision)> {
    s.list(
        "",
        ListOptions {
            revision,
            ..Default::default()
        },
    )
    .await
    .expect("list")
    .items
    .into_iter()
    .map(|kv| (kv.key, kv.value, kv.create_revision, kv.mod_revision))
    .collect()
}

/// Writes, drops the store, reopens: same revision, same contents, same
/// history (reads at old revisions, watch replay), and writing goes on from
/// the next revision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_revision_contents_and_history() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let s = open(dir.path()).await;
    assert_eq!(s.current_revision().await.expect("revision"), 1);

    let mut revs = Vec::new();
    for i in 0..50 {
        revs.push(
            s.create(&format!("/r/{i:02}"), b(&format!("v{i}")))
                .await
                .expect("create"),
        );
    }
    let mid = s.current_revision().await.expect("revision");
    for i in (0..50).step_by(3) {
        let key = format!("/r/{i:02}");
        let kv = s.get(&key, None).await.expect("get").expect("exists");
        s.update(&key, b("updated"), kv.mod_revision).await.expect("update");
    }
    for i in (0..50).step_by(7) {
        s.delete(&format!("/r/{i:02}"), None).await.expect("delete");
    }
    let revision = s.current_revision().await.expect("revision");
    let total = usize::try_from(revision - 1).expect("positive");
    let latest = everything(&s, None).await;
    let at_mid = everything(&s, Some(mid)).await;
    let mut w = s.watch("/r/", Some(1)).await.expect("watch");
    let events = next_events(&mut w, total).await;
    drop(w);
    drop(s);

    let s = open(dir.path()).await;
    assert_eq!(s.current_revision().await.expect("revision"), revision);
    assert_eq!(everything(&s, None).await, latest);
    assert_eq!(everything(&s, Some(mid)).await, at_mid);
    assert_eq!(s.count("/r/").await.expect("count"), latest.len() as i64);
    let mut w = s.watch("/r/", Some(1)).await.expect("watch after restart");
    assert_eq!(next_events(&mut w, total).await, events);

    // Writing goes on where it stopped, and the replaying watch sees it.
    let next = s.create("/r/new", b("new")).await.expect("create after restart");
    assert_eq!(next, revision + 1);
    let live = next_events(&mut w, 1).await;
    assert_eq!((live[0].kv.key.as_str(), live[0].revision()), ("/r/new", next));
}

/// A compaction is remembered across a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_compaction() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let s = open(dir.path()).await;
    let r1 = s.create("/c/k", b("1")).await.expect("create");
    let r2 = s.update("/c/k", b("2"), r1).await.expect("update");
    let r3 = s.update("/c/k", b("3"), r2).await.expect("update");
    s.compact(r2).await.expect("compact");
    drop(s);

    let s = open(dir.path()).await;
    assert!(matches!(
        s.get("/c/k", Some(r1)).await,
        Err(StorageError::Compacted { .. })
    ));
    assert!(matches!(
        s.watch("/c/", Some(r1)).await,
        Err(StorageError::Compacted { .. })
    ));
    assert_eq!(
        s.get("/c/k", Some(r2)).await.expect("get").expect("exists").value,
        b("2")
    );
    let mut w = s.watch("/c/", Some(r2)).await.expect("watch");
    let e = next_events(&mut w, 1).await;
    assert_eq!(
        (e[0].revision(), e[0].prev.as_ref().map(|p| p.mod_revision)),
        (r3, Some(r2))
    );
}

/// Concurrent writes to one key land in one or a few batches; each
/// precondition sees the writes queued before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_of_one_key_admit_exactly_one() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let s: Arc<dyn Store> = Arc::new(open(dir.path()).await);
    let mut tasks = Vec::new();
    for i in 0..64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move { s.create("/one", b(&i.to_string())).await }));
    }
    let mut created = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) => created += 1,
            Err(StorageError::AlreadyExists { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(s.current_revision().await.expect("revision"), 2);
}

/// A second open of the same directory is refused with a clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_open_of_a_directory_is_refused() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let _s = open(dir.path()).await;
    match EmbeddedStore::open(EmbeddedOptions::new(dir.path())).await {
        Err(StorageError::Unavailable(msg)) => assert!(msg.contains("locked"), "{msg}"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a locked database opened twice"),
    }
}

/// A data directory that cannot be created or a database file that is not a
/// database is an error, not a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_directory_or_file_is_an_error() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"not a directory").expect("write file");
    match EmbeddedStore::open(EmbeddedOptions::new(&file.join("data"))).await {
        Err(StorageError::Internal(msg)) => assert!(msg.contains("unusable"), "{msg}"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened a store under a file"),
    }

    let garbage = dir.path().join("garbage");
    std::fs::create_dir(&garbage).expect("mkdir");
    std::fs::write(garbage.join(DATABASE_FILE_NAME), vec![0x5a; 8192]).expect("write garbage");
    match EmbeddedStore::open(EmbeddedOptions::new(&garbage)).await {
        Err(StorageError::Internal(_)) => {}
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened garbage as a database"),
    }
}
