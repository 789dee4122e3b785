//! Test tool for `tests/crash_embedded.rs`: opens the embedded store in a
//! directory and writes to it from many concurrent writers until killed.
//!
//! Usage: `rkube-storage-crash-writer <dir> [writers] [keys-per-writer]`.
//!
//! Writer `w` owns the keys `/crash/w<w>/k<n>` and creates or updates a
//! random one at a time with a self-checking value (see `value.rs`; a value
//! read back that does not verify stops the writer with an error). After
//! each acknowledged write it prints `<key> <revision> <checksum>` on stdout
//! and flushes, so the parent knows exactly which writes the store promised
//! to keep. A background task compacts now and then, so kills also land
//! during compaction. The process exits by itself after a minute, in case
//! its parent died without killing it.

mod value;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rkube_storage::embedded::{EmbeddedOptions, EmbeddedStore};
use rkube_storage::{StorageError, Store};

const DEFAULT_WRITERS: usize = 16;
const DEFAULT_KEYS_PER_WRITER: u64 = 8;
/// History kept by the background compaction, in revisions.
const KEEP_REVISIONS: i64 = 500;
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: rkube-storage-crash-writer <dir> [writers] [keys-per-writer]");
        return ExitCode::from(2);
    };
    let writers = args.next().and_then(|a| a.parse().ok()).unwrap_or(DEFAULT_WRITERS);
    let keys = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(DEFAULT_KEYS_PER_WRITER);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("crash-writer: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(dir, writers, keys)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("crash-writer: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(dir: PathBuf, writers: usize, keys: u64) -> Result<(), StorageError> {
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(EmbeddedOptions::new(&dir)).await?);
    let seed = u64::from(std::process::id())
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..writers {
        let store = store.clone();
        let rng = value::Rng::new(seed.wrapping_add((writer as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)));
        tasks.spawn(write_forever(store, writer, keys, rng));
    }
    tasks.spawn(compact_forever(store.clone()));
    tokio::select! {
        Some(result) = tasks.join_next() => match result {
            Ok(result) => result,
            Err(e) => Err(StorageError::internal(e)),
        },
        () = tokio::time::sleep(GIVE_UP_AFTER) => Ok(()),
    }
}

/// Creates or updates random keys of this writer, reporting each write the
/// store acknowledged.
async fn write_forever(
    store: Arc<dyn Store>,
    writer: usize,
    keys: u64,
    mut rng: value::Rng,
) -> Result<(), StorageError> {
    let mut sequence = rng.next_u64() >> 16;
    loop {
        let key = format!("/crash/w{writer}/k{}", rng.below(keys));
        sequence += 1;
        let (bytes, checksum) = value::make(&key, writer, sequence, rng.below(3000) as usize);
        let value = Bytes::from(bytes);
        let written = match store.get(&key, None).await? {
            None => store.create(&key, value).await,
            Some(kv) => {
                value::verify(&key, &kv.value).map_err(StorageError::Internal)?;
                store.update(&key, value, kv.mod_revision).await
            }
        };
        match written {
            Ok(revision) => {
                let mut out = std::io::stdout().lock();
                let line = format!("{key} {revision} {checksum:016x}\n");
                if out.write_all(line.as_bytes()).and_then(|()| out.flush()).is_err() {
                    // The parent is gone.
                    return Ok(());
                }
            }
            // Only this writer writes its keys; anything else is a bug.
            Err(e) => return Err(e),
        }
    }
}

/// Keeps the last [`KEEP_REVISIONS`] revisions of history.
async fn compact_forever(store: Arc<dyn Store>) -> Result<(), StorageError> {
    loop {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let revision = store.current_revision().await? - KEEP_REVISIONS;
        if revision > 1 {
            store.compact(revision).await?;
        }
    }
}
