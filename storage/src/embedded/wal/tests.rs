//! The write-ahead log through the store: restarts that replay it, torn and
//! damaged frames, compaction of values only logged, segment rotation, and
//! checkpoints racing reads.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use redb::{ReadableDatabase, ReadableTableMetadata};

use super::frame::{BLOCK, SegmentHeader, decode_frame};
use super::parse_segment_name;
use crate::embedded::schema::LOG;
use crate::embedded::{DATABASE_FILE_NAME, EmbeddedOptions, EmbeddedStore};
use crate::error::StorageError;
use crate::store::{EventType, ListOptions, Revision, Store};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Options that leave every write in the log: no checkpoint before close,
/// none at close.
fn log_only(dir: &Path) -> EmbeddedOptions {
    let mut options = EmbeddedOptions::new(dir);
    options.checkpoint_interval = Duration::from_secs(3600);
    options.checkpoint_bytes = 1 << 30;
    options.checkpoint_on_close = false;
    options
}

/// `LOG` rows in redb (the store must be closed).
fn redb_rows(dir: &Path) -> u64 {
    let db = redb::Database::create(dir.join(DATABASE_FILE_NAME)).unwrap();
    let txn = db.begin_read().unwrap();
    txn.open_table(LOG).unwrap().len().unwrap()
}

/// The segment files, oldest first.
fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<(Revision, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            parse_segment_name(e.file_name().to_str()?).map(|base| (base, e.path()))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, p)| p).collect()
}

/// The offsets and first revisions of the frames of a segment.
fn frames(path: &Path) -> Vec<(usize, Revision)> {
    let bytes = std::fs::read(path).unwrap();
    let header = SegmentHeader::decode(&bytes).expect("segment header");
    let mut out = Vec::new();
    let mut offset = BLOCK;
    while let Some(frame) = bytes.get(offset..).and_then(|rest| decode_frame(rest, header.salt)) {
        out.push((offset, frame.first));
        offset += frame.len;
    }
    out
}

fn flip_byte(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= 0x55;
    std::fs::write(path, bytes).unwrap();
}

/// Three creates, one frame each (the writes are sequential); returns
/// their revisions.
async fn three_frames(dir: &Path) -> Vec<Revision> {
    let s = EmbeddedStore::open(log_only(dir)).await.unwrap();
    let mut revs = Vec::new();
    for key in ["/t/a", "/t/b", "/t/c"] {
        revs.push(s.create(key, b(&format!("value of {key}"))).await.unwrap());
    }
    drop(s);
    let segs = segments(dir);
    assert_eq!(segs.len(), 1);
    assert_eq!(frames(&segs[0]).len(), 3);
    revs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_replays_writes_only_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let s = EmbeddedStore::open(log_only(dir.path())).await.unwrap();
    let r1 = s.create("/w/a", b("a1")).await.unwrap();
    let r2 = s.update("/w/a", b("a2"), r1).await.unwrap();
    s.create("/w/b", b("b1")).await.unwrap();
    let (r4, _) = s.delete("/w/b", None).await.unwrap();
    let mut w = s.watch("/w/", Some(1)).await.unwrap();
    let mut events = Vec::new();
    for _ in 0..4 {
        events.push(w.next().await.unwrap().unwrap());
    }
    drop(w);
    drop(s);
    assert_eq!(redb_rows(dir.path()), 0, "nothing was checkpointed");

    let s = EmbeddedStore::open(log_only(dir.path())).await.unwrap();
    assert_eq!(s.current_revision().await.unwrap(), r4);
    assert_eq!(s.get("/w/a", None).await.unwrap().unwrap().value, b("a2"));
    assert_eq!(s.get("/w/a", Some(r1)).await.unwrap().unwrap().value, b("a1"));
    assert_eq!(s.get("/w/b", None).await.unwrap(), None);
    let mut w = s.watch("/w/", Some(1)).await.unwrap();
    for expected in &events {
        assert_eq!(&w.next().await.unwrap().unwrap(), expected);
    }
    let r5 = s.update("/w/a", b("a3"), r2).await.unwrap();
    assert_eq!(r5, r4 + 1);
    drop(w);
    drop(s);
    // Open checkpointed the replayed writes and started a new segment.
    assert_eq!(redb_rows(dir.path()), 4);
    assert_eq!(segments(dir.path()).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_last_frame_is_discarded() {
    for tear in ["flip", "truncate"] {
        let dir = tempfile::tempdir().unwrap();
        let revs = three_frames(dir.path()).await;
        let seg = &segments(dir.path())[0];
        let (last, _) = frames(seg)[2];
        match tear {
            "flip" => flip_byte(seg, last + 40),
            _ => std::fs::File::options()
                .write(true)
                .open(seg)
                .unwrap()
                .set_len((last + 20) as u64)
                .unwrap(),
        }
        let s = EmbeddedStore::open(log_only(dir.path())).await.unwrap();
        assert_eq!(s.current_revision().await.unwrap(), revs[1], "{tear}");
        assert_eq!(s.get("/t/c", None).await.unwrap(), None, "{tear}");
        assert_eq!(s.get("/t/b", None).await.unwrap().unwrap().value, b("value of /t/b"));
        // The revision of the discarded write is handed out again.
        assert_eq!(s.create("/t/d", b("d")).await.unwrap(), revs[2], "{tear}");
        drop(s);
        let s = EmbeddedStore::open(log_only(dir.path())).await.unwrap();
        assert_eq!(s.get("/t/d", None).await.unwrap().unwrap().mod_revision, revs[2]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_frame_before_acknowledged_ones_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    three_frames(dir.path()).await;
    let seg = &segments(dir.path())[0];
    let (middle, _) = frames(seg)[1];
    flip_byte(seg, middle + 40);
    match EmbeddedStore::open(log_only(dir.path())).await {
        Err(StorageError::Internal(msg)) => assert!(msg.contains("acknowledged writes after it"), "{msg}"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened a log that lost an acknowledged write"),
    }
    // Nothing was touched: the log is still there for an operator.
    assert_eq!(segments(dir.path()).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_segment_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = log_only(dir.path());
    options.wal_segment_size = 2 * BLOCK as u64;
    let s = EmbeddedStore::open(options.clone()).await.unwrap();
    for i in 0..6 {
        s.create(&format!("/m/{i}"), b("v")).await.unwrap();
    }
    drop(s);
    let segs = segments(dir.path());
    assert!(segs.len() >= 3, "{segs:?}");
    std::fs::remove_file(&segs[1]).unwrap();
    match EmbeddedStore::open(options).await {
        Err(StorageError::Internal(msg)) => assert!(msg.contains("are missing"), "{msg}"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened a log with a gap"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_of_values_only_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let s = EmbeddedStore::open(log_only(dir.path())).await.unwrap();
    let a = s.create("/a", b("a1")).await.unwrap();
    let a = s.update("/a", b("a2"), a).await.unwrap();
    let a3 = s.update("/a", b("a3"), a).await.unwrap();
    s.create("/b", b("b1")).await.unwrap();
    s.delete("/b", None).await.unwrap();
    let c = s.create("/c", b("c1")).await.unwrap();
    let a4 = s.update("/a", b("a4"), a3).await.unwrap();
    // Nothing is in redb yet; compacting checkpoints first.
    s.compact(c).await.unwrap();
    assert!(matches!(
        s.get("/a", Some(c - 1)).await,
        Err(StorageError::Compacted { .. })
    ));
    assert_eq!(s.get("/a", Some(c)).await.unwrap().unwrap().value, b("a3"));
    assert_eq!(s.get("/b", Some(c)).await.unwrap(), None);
    let mut w = s.watch("/", Some(c)).await.unwrap();
    let e = w.next().await.unwrap().unwrap();
    assert_eq!((e.revision(), e.prev.map(|p| p.value)), (a4, Some(b("a3"))));
    drop(w);
    drop(s);
    // Kept: /a at 4 and 8, /c at 7.
    assert_eq!(redb_rows(dir.path()), 3);
    let s = EmbeddedStore::open(log_only(dir.path())).await.unwrap();
    assert_eq!(s.get("/a", None).await.unwrap().unwrap().mod_revision, a4);
    assert!(matches!(
        s.get("/a", Some(c - 1)).await,
        Err(StorageError::Compacted { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_rotate_and_retire() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = EmbeddedOptions::new(dir.path());
    options.wal_segment_size = 16 * BLOCK as u64;
    options.checkpoint_interval = Duration::from_millis(5);
    let s = EmbeddedStore::open(options.clone()).await.unwrap();
    let value = Bytes::from(vec![b'v'; 3000]);
    let mut last = 0;
    for i in 0..400 {
        last = s.create(&format!("/r/{i:03}"), value.clone()).await.unwrap();
    }
    // Checkpoints retire the old segments; a retired one becomes the spare.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while segments(dir.path()).len() > 1 || !dir.path().join(super::SPARE_NAME).exists() {
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(std::time::Instant::now() < deadline, "{files:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(s);

    // Across many segments without checkpoints, replay finds everything.
    let mut options = log_only(dir.path());
    options.wal_segment_size = 16 * BLOCK as u64;
    let s = EmbeddedStore::open(options.clone()).await.unwrap();
    for i in 400..600 {
        last = s.create(&format!("/r/{i:03}"), value.clone()).await.unwrap();
    }
    drop(s);
    assert!(segments(dir.path()).len() > 4, "{:?}", segments(dir.path()));
    let s = EmbeddedStore::open(options).await.unwrap();
    assert_eq!(s.current_revision().await.unwrap(), last);
    let list = s.list("/r/", ListOptions::default()).await.unwrap();
    assert_eq!(list.items.len(), 600);
    assert!(list.items.iter().all(|kv| kv.value == value));
}

/// Reads, lists and watches while checkpoints move values from memory to
/// redb under them: every value read is the one written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_racing_reads() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = EmbeddedOptions::new(dir.path());
    options.checkpoint_interval = Duration::from_millis(1);
    let s: Arc<dyn Store> = Arc::new(EmbeddedStore::open(options).await.unwrap());
    let value = |i: usize, n: usize| b(&format!("{i}:{n}"));
    let mut watch = s.watch("/x/", None).await.unwrap();
    let writers: Vec<_> = (0..4)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let key = format!("/x/{i}");
                let mut rev = s.create(&key, value(i, 0)).await.unwrap();
                for n in 1..300 {
                    rev = s.update(&key, value(i, n), rev).await.unwrap();
                }
            })
        })
        .collect();
    let reader = {
        let s = s.clone();
        tokio::spawn(async move {
            for _ in 0..300 {
                let list = s.list("/x/", ListOptions::default()).await.unwrap();
                for kv in list.items {
                    let i: usize = kv.key[3..].parse().unwrap();
                    let n: usize = std::str::from_utf8(&kv.value).unwrap()[2..].parse().unwrap();
                    assert_eq!(kv.value, value(i, n));
                    let at = s.get(&kv.key, Some(kv.mod_revision)).await.unwrap().unwrap();
                    assert_eq!(at.value, kv.value);
                }
            }
        })
    };
    for w in writers {
        w.await.unwrap();
    }
    reader.await.unwrap();
    let mut seen = 0;
    while seen < 1200 {
        let e = watch.next().await.unwrap().unwrap();
        let i: usize = e.kv.key[3..].parse().unwrap();
        let n: usize = std::str::from_utf8(&e.kv.value).unwrap()[2..].parse().unwrap();
        assert_eq!(e.kv.value, value(i, n));
        if e.event_type == EventType::Modified {
            assert_eq!(e.prev.unwrap().value, value(i, n - 1));
        }
        seen += 1;
    }
    // A watch replaying all of it, from redb and memory.
    let mut replay = s.watch("/x/", Some(1)).await.unwrap();
    for _ in 0..1200 {
        replay.next().await.unwrap().unwrap();
    }
}

/// A segment renamed into place whose header never reached the disk (the
/// process died during a rotation) holds nothing acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_without_header_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let revs = three_frames(dir.path()).await;
    let next = dir.path().join(super::segment_name(revs[2] + 1));
    std::fs::write(&next, vec![0x33; 4 * BLOCK]).unwrap();
    let s = EmbeddedStore::open(log_only(dir.path())).await.unwrap();
    assert_eq!(s.current_revision().await.unwrap(), revs[2]);
    assert_eq!(s.create("/t/d", b("d")).await.unwrap(), revs[2] + 1);
    assert_eq!(s.get("/t/c", None).await.unwrap().unwrap().value, b("value of /t/c"));
}

/// A segment holding, after its own frames, a frame of an earlier life of
/// the file (another salt) that continues the revisions without a gap.
/// Only the salt tells it apart: replay must stop before it.
#[test]
fn frames_of_a_recycled_files_earlier_life_never_replay() {
    use crate::embedded::pending::PendingWrite;

    let dir = tempfile::tempdir().unwrap();
    let create = |revision: Revision| PendingWrite {
        event_type: EventType::Added,
        create_revision: revision,
        prev_revision: 0,
        key: format!("/s/{revision}").into(),
        value: b("v"),
    };
    let frame = |revision: Revision, salt: u64| {
        let mut builder = super::FrameBuilder::default();
        builder.start(revision);
        builder.push(&create(revision));
        builder.finish(salt).to_vec()
    };
    let (old_salt, new_salt) = (7, 8);
    let mut bytes = SegmentHeader {
        salt: new_salt,
        base: 5,
    }
    .encode();
    bytes.extend(frame(5, new_salt));
    let stale_at = bytes.len();
    bytes.extend(frame(6, old_salt));
    bytes.extend(vec![0; 4 * BLOCK]);
    std::fs::write(dir.path().join(super::segment_name(5)), &bytes).unwrap();
    assert!(
        decode_frame(&bytes[stale_at..], old_salt).is_some(),
        "the stale frame is valid for its own salt"
    );

    let replayed = super::replay(dir.path(), 4).unwrap();
    let revisions: Vec<_> = replayed.writes.iter().map(|w| w.create_revision).collect();
    assert_eq!(revisions, [5]);
}

/// A retired segment kept as the spare, its old frames still in it,
/// becomes the next run's first segment. The new life's writes, fewer than
/// the old one's, replay exactly; nothing of the old life does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recycled_segments_replay_only_their_new_frames() {
    let dir = tempfile::tempdir().unwrap();
    let segment_size = 16 * BLOCK as u64;
    let mut options = log_only(dir.path());
    options.wal_segment_size = segment_size;
    let value = Bytes::from(vec![b'o'; 3000]);
    let s = EmbeddedStore::open(options.clone()).await.unwrap();
    for i in 0..40 {
        s.create(&format!("/old/{i:02}"), value.clone()).await.unwrap();
    }
    drop(s);
    let old_segments = segments(dir.path());
    assert!(old_segments.len() > 2, "{old_segments:?}");
    let old_life = std::fs::read(old_segments.last().unwrap()).unwrap();
    assert_eq!(old_life.len() as u64, segment_size);
    let old_salt = SegmentHeader::decode(&old_life).unwrap().salt;
    // Open checkpoints the old writes and removes their segments; then the
    // newest comes back as the spare, as `retire_segments` keeps one.
    drop(EmbeddedStore::open(options.clone()).await.unwrap());
    assert_eq!(segments(dir.path()).len(), 1);
    std::fs::write(dir.path().join(super::SPARE_NAME), &old_life).unwrap();

    let s = EmbeddedStore::open(options.clone()).await.unwrap();
    let mut last = 0;
    for i in 0..3 {
        last = s.create(&format!("/new/{i}"), b("n")).await.unwrap();
    }
    drop(s);
    assert!(!dir.path().join(super::SPARE_NAME).exists(), "the spare was taken");
    let segs = segments(dir.path());
    assert_eq!(segs.len(), 1, "{segs:?}");
    let recycled = std::fs::read(&segs[0]).unwrap();
    assert_eq!(recycled.len() as u64, segment_size);
    assert_ne!(SegmentHeader::decode(&recycled).unwrap().salt, old_salt);
    let new_frames = frames(&segs[0]);
    assert_eq!(new_frames.len(), 3);
    let end = new_frames.last().map(|&(at, _)| at + BLOCK).unwrap();
    assert!(
        decode_frame(&recycled[end..], old_salt).is_some(),
        "frames of the old life follow the new ones"
    );

    let s = EmbeddedStore::open(options).await.unwrap();
    assert_eq!(s.current_revision().await.unwrap(), last);
    let new = s.list("/new/", ListOptions::default()).await.unwrap();
    assert_eq!(new.items.len(), 3);
    let old = s.list("/old/", ListOptions::default()).await.unwrap();
    assert_eq!(old.items.len(), 40);
    assert!(old.items.iter().all(|kv| kv.value == value));
    assert_eq!(s.create("/next", b("x")).await.unwrap(), last + 1);
}
