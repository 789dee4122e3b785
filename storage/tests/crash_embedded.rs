//! Crash safety of the embedded backend: a writer process is killed with
//! SIGKILL at random moments, over and over on the same data directory, and
//! after every kill the store must hold every write it acknowledged, intact.
//!
//! The child (`rkube-storage-crash-writer`) prints one line per acknowledged
//! write. After each kill the test reopens the store and checks that:
//!
//! - the revision never goes backwards and is at least the highest
//!   acknowledged revision;
//! - every key holds its last acknowledged value or a later one (a write can
//!   be committed and not yet reported when the kill lands);
//! - every acknowledged write of the round is readable at its revision
//!   (unless compacted) with the value that was acknowledged;
//! - every value verifies its checksum (nothing torn or mixed up), through
//!   `get`, `list` and a watch replay.
//!
//! `RKUBE_CRASH_SEED` replays a run (the seed is printed).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../src/bin/rkube-storage-crash-writer/value.rs"]
#[allow(dead_code)]
mod value;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rkube_storage::embedded::{EmbeddedOptions, EmbeddedStore};
use rkube_storage::{ListOptions, Revision, StorageError, Store};

const KILLS: usize = 24;
const WRITER: &str = env!("CARGO_BIN_EXE_rkube-storage-crash-writer");

/// One acknowledged write.
#[derive(Debug, Clone, Copy)]
struct Ack {
    revision: Revision,
    checksum: u64,
}

/// Runs the writer on `dir` for about `run_for`, kills it, and returns the
/// writes it acknowledged.
fn run_and_kill(dir: &Path, run_for: Duration) -> Vec<(String, Ack)> {
    let mut child = Command::new(WRITER)
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the crash writer");
    let stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut acks = Vec::new();
        let mut stdout = BufReader::new(stdout);
        let mut line = Vec::new();
        loop {
            line.clear();
            match stdout.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                // A line cut by the kill was never fully reported.
                Ok(_) if !line.ends_with(b"\n") => break,
                Ok(_) => acks.push(parse_ack(&line)),
            }
        }
        acks
    });
    std::thread::sleep(run_for);
    if let Ok(Some(status)) = child.try_wait() {
        panic!("the crash writer exited by itself: {status}");
    }
    child.kill().expect("SIGKILL the crash writer");
    child.wait().expect("reap the crash writer");
    reader.join().expect("stdout reader")
}

fn parse_ack(line: &[u8]) -> (String, Ack) {
    let line = std::str::from_utf8(line).expect("UTF-8 ack line");
    let mut parts = line.split_whitespace();
    let (Some(key), Some(revision), Some(checksum), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        panic!("malformed ack line {line:?}");
    };
    let ack = Ack {
        revision: revision.parse().expect("revision"),
        checksum: u64::from_str_radix(checksum, 16).expect("checksum"),
    };
    (key.to_string(), ack)
}

/// Checks the store against everything acknowledged so far; returns its
/// revision.
async fn verify(
    dir: &Path,
    latest: &HashMap<String, Ack>,
    round: &[(String, Ack)],
    max_acked: Revision,
    previous_revision: Revision,
) -> Revision {
    let store = EmbeddedStore::open(EmbeddedOptions::new(dir))
        .await
        .expect("reopen after the kill");
    let revision = store.current_revision().await.expect("revision");
    assert!(
        revision >= previous_revision,
        "revision went backwards: {revision} < {previous_revision}"
    );
    assert!(
        revision >= max_acked,
        "revision {revision} is below the acknowledged revision {max_acked}"
    );

    for (key, ack) in latest {
        let kv = store
            .get(key, None)
            .await
            .expect("get")
            .unwrap_or_else(|| panic!("acknowledged key {key} is missing"));
        let checksum = value::verify(key, &kv.value).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            kv.mod_revision >= ack.revision,
            "{key} went back from acknowledged revision {} to {}",
            ack.revision,
            kv.mod_revision
        );
        if kv.mod_revision == ack.revision {
            assert_eq!(checksum, ack.checksum, "{key} holds another value than acknowledged");
        }
    }

    for (key, ack) in round {
        match store.get(key, Some(ack.revision)).await {
            Ok(Some(kv)) => {
                assert_eq!(kv.mod_revision, ack.revision, "{key} at {}", ack.revision);
                let checksum = value::verify(key, &kv.value).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(checksum, ack.checksum, "{key} at {}", ack.revision);
            }
            Ok(None) => panic!("acknowledged write of {key} at {} is missing", ack.revision),
            Err(StorageError::Compacted { .. }) => {}
            Err(e) => panic!("get {key} at {}: {e}", ack.revision),
        }
    }

    let list = store.list("/crash/", ListOptions::default()).await.expect("list");
    assert_eq!(list.items.len(), latest.len(), "listed keys");
    for kv in &list.items {
        value::verify(&kv.key, &kv.value).unwrap_or_else(|e| panic!("listed {e}"));
    }

    // The last stretch of history replays intact.
    let from = (revision - 50).max(1);
    match store.watch("/crash/", Some(from)).await {
        Ok(mut watch) => {
            let mut at = from;
            while at < revision {
                let event = tokio::time::timeout(Duration::from_secs(10), watch.next())
                    .await
                    .expect("replayed event in time")
                    .expect("watch open")
                    .expect("replayed event");
                assert!(event.revision() > at, "events out of order");
                at = event.revision();
                value::verify(&event.kv.key, &event.kv.value).unwrap_or_else(|e| panic!("replayed {e}"));
            }
        }
        Err(StorageError::Compacted { .. }) => {}
        Err(e) => panic!("watch: {e}"),
    }
    revision
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let seed: u64 = std::env::var("RKUBE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("crash test seed {seed} (RKUBE_CRASH_SEED={seed} replays the kill timing)");
    let mut rng = value::Rng::new(seed);
    let dir = tempfile::tempdir().expect("temporary directory");
    let started = Instant::now();

    let mut latest: HashMap<String, Ack> = HashMap::new();
    let mut max_acked = 0;
    let mut revision = 0;
    let mut total = 0;
    for kill in 0..KILLS {
        // Mostly mid-write, sometimes while the store is still opening.
        let run_for = Duration::from_millis(if kill % 6 == 5 {
            rng.below(60)
        } else {
            150 + rng.below(500)
        });
        let round = tokio::task::spawn_blocking({
            let dir = dir.path().to_path_buf();
            move || run_and_kill(&dir, run_for)
        })
        .await
        .expect("writer round");
        total += round.len();
        for (key, ack) in &round {
            max_acked = max_acked.max(ack.revision);
            let entry = latest.entry(key.clone()).or_insert(*ack);
            if ack.revision >= entry.revision {
                *entry = *ack;
            }
        }
        revision = verify(dir.path(), &latest, &round, max_acked, revision).await;
        println!(
            "kill {kill}: after {run_for:?}, {} writes acknowledged, store at revision {revision}",
            round.len()
        );
    }
    println!(
        "{KILLS} kills, {total} acknowledged writes, all present, in {:.1?}",
        started.elapsed()
    );
    assert!(total >= 500, "too few writes to mean anything: {total}");
}
