//! The etcd backend through member failures, on a real 3-member cluster.
//!
//! Writers keep creating and updating keys through one store connected to
//! all three endpoints, recording every acknowledged write, while a watcher
//! follows the prefix (watching again from its last revision whenever its
//! stream ends). Then a member is SIGKILLed: a follower in one test, the
//! leader in the other. Writes must keep succeeding (after at most a short
//! election), and afterwards every acknowledged write must be readable at
//! its revision and must have reached the watcher, in order and once.

// A test fails by panicking; unwrapping is how it says so.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use rkube_storage::etcd::{EtcdOptions, EtcdStore};
use rkube_storage::testing::etcd_harness::EtcdCluster;
use rkube_storage::{Event, Revision, StorageError, Store};

const WRITERS: usize = 6;
const KEYS_PER_WRITER: usize = 8;
/// How long the writers run before and after the kill.
const BEFORE_KILL: Duration = Duration::from_millis(1500);
const AFTER_KILL: Duration = Duration::from_secs(4);
/// The longest time without any acknowledged write that is acceptable: a
/// leader election (500 ms election timeout) plus etcd giving up on
/// proposals sent to the dead leader.
const MAX_STALL: Duration = Duration::from_secs(10);
const PREFIX: &str = "/fail/";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Victim {
    Follower,
    Leader,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_survive_a_killed_follower() {
    writes_survive(Victim::Follower).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_survive_a_killed_leader() {
    writes_survive(Victim::Leader).await;
}

/// One acknowledged write.
#[derive(Debug, Clone)]
struct Ack {
    key: String,
    value: Bytes,
    revision: Revision,
    at: Instant,
}

/// What one writer did.
#[derive(Debug, Default)]
struct WriterLog {
    acks: Vec<Ack>,
    /// Errors the store returned (after its own retries).
    errors: Vec<String>,
}

async fn writes_survive(victim: Victim) {
    let test_started = Instant::now();
    let mut cluster = EtcdCluster::start(3).await.expect("start a 3-member etcd cluster");
    let started_in = test_started.elapsed();
    let store: Arc<dyn Store> = Arc::new(
        EtcdStore::connect(EtcdOptions::new(cluster.client_urls()))
            .await
            .expect("connect to etcd"),
    );
    let start_revision = store.current_revision().await.unwrap();

    let leader = cluster.leader().await.expect("find the leader");
    let member = match victim {
        Victim::Leader => leader,
        Victim::Follower => (leader + 1) % cluster.len(),
    };
    // The watcher's first stream is on the member to be killed, so it must
    // end with an error and be resumed, through the other members, from the
    // last revision it saw.
    let pinned: Arc<dyn Store> = Arc::new(
        EtcdStore::connect(EtcdOptions::new(vec![cluster.client_urls()[member].clone()]))
            .await
            .expect("connect to the member to be killed"),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(follow(pinned, store.clone(), start_revision, stop.clone()));
    let writers: Vec<_> = (0..WRITERS)
        .map(|id| tokio::spawn(write_loop(store.clone(), id, stop.clone())))
        .collect();

    tokio::time::sleep(BEFORE_KILL).await;
    if victim == Victim::Leader {
        assert_eq!(
            cluster.leader().await.unwrap(),
            member,
            "the leader changed before the kill"
        );
    }
    let killed_at = Instant::now();
    cluster.kill(member);
    assert!(!cluster.is_running(member));
    cluster.kill(member); // idempotent
    tokio::time::sleep(AFTER_KILL).await;
    stop.store(true, Ordering::SeqCst);

    let mut logs = Vec::new();
    for w in writers {
        logs.push(w.await.unwrap());
    }
    let mut acks: Vec<Ack> = logs.iter().flat_map(|l| l.acks.iter().cloned()).collect();
    acks.sort_by_key(|a| a.revision);
    let errors: Vec<&String> = logs.iter().flat_map(|l| &l.errors).collect();

    // Writes kept succeeding: every writer made progress after the kill, and
    // the cluster as a whole never stalled for long.
    for (id, log) in logs.iter().enumerate() {
        let after = log.acks.iter().filter(|a| a.at > killed_at).count();
        assert!(
            after > 0,
            "writer {id} acknowledged nothing after the kill; errors: {:?}",
            log.errors
        );
    }
    let mut times: Vec<Instant> = acks.iter().map(|a| a.at).collect();
    times.sort();
    let stall = times.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default();
    let first_after_kill = times.iter().find(|t| **t > killed_at).map(|t| *t - killed_at);
    assert!(stall < MAX_STALL, "no write was acknowledged for {stall:?}");

    // Every acknowledged write is readable, at its own revision, from the
    // surviving members.
    futures::stream::iter(acks.iter())
        .for_each_concurrent(16, |ack| {
            let store = store.clone();
            async move {
                let kv = store
                    .get(&ack.key, Some(ack.revision))
                    .await
                    .unwrap()
                    .unwrap_or_else(|| panic!("acknowledged write {ack:?} is missing"));
                assert_eq!((&kv.value, kv.mod_revision), (&ack.value, ack.revision), "{ack:?}");
            }
        })
        .await;
    // And the latest value of each key is at least as new as its last ack.
    let mut last: HashMap<&str, &Ack> = HashMap::new();
    for ack in &acks {
        last.insert(&ack.key, ack);
    }
    for (key, ack) in &last {
        let kv = store.get(key, None).await.unwrap().expect("acknowledged key exists");
        assert!(kv.mod_revision >= ack.revision, "{key}: {kv:?} is older than {ack:?}");
    }

    // The watcher saw every acknowledged write once, in revision order.
    let max_revision = acks.last().map_or(start_revision, |a| a.revision);
    let (events, rewatches) = watcher.await.unwrap();
    assert!(rewatches >= 1, "the watch on the killed member did not end");
    let deadline = Instant::now() + Duration::from_secs(10);
    let events = events.wait_for(max_revision, deadline).await;
    let revisions: Vec<Revision> = events.iter().map(|e| e.revision()).collect();
    assert!(
        revisions.windows(2).all(|w| w[0] < w[1]),
        "watch events out of order or repeated"
    );
    let seen: BTreeMap<Revision, &Event> = events.iter().map(|e| (e.revision(), e)).collect();
    for ack in &acks {
        let event = seen
            .get(&ack.revision)
            .unwrap_or_else(|| panic!("the watcher missed {ack:?}"));
        assert_eq!((&event.kv.key, &event.kv.value), (&ack.key, &ack.value));
    }

    eprintln!(
        "killed the {victim:?} (member {member}): cluster up in {started_in:?}; {} writes acknowledged, \
         {} errors returned ({:?}); first write after the kill {first_after_kill:?}, longest stall \
         {stall:?}; watcher saw {} events with {rewatches} re-watches; test took {:?}",
        acks.len(),
        errors.len(),
        errors.iter().take(3).collect::<Vec<_>>(),
        events.len(),
        test_started.elapsed(),
    );
}

/// Creates and updates this writer's keys until `stop`, recording acks.
async fn write_loop(store: Arc<dyn Store>, id: usize, stop: Arc<AtomicBool>) -> WriterLog {
    let mut log = WriterLog::default();
    // The mod revision of each key as last seen; `None`: absent.
    let mut known: HashMap<String, Option<Revision>> = HashMap::new();
    let mut n = 0usize;
    while !stop.load(Ordering::SeqCst) {
        let key = format!("{PREFIX}w{id}/k{}", n % KEYS_PER_WRITER);
        let value = Bytes::from(format!("writer {id} write {n}"));
        n += 1;
        let result = match known.get(&key).copied().flatten() {
            None => store.create(&key, value.clone()).await,
            Some(rev) => store.update(&key, value.clone(), rev).await,
        };
        match result {
            Ok(revision) => {
                known.insert(key.clone(), Some(revision));
                log.acks.push(Ack {
                    key,
                    value,
                    revision,
                    at: Instant::now(),
                });
            }
            Err(e) => {
                log.errors.push(e.to_string());
                // This writer owns the key, so whatever it holds now is the
                // base of the next write (the failed one may have landed).
                match store.get(&key, None).await {
                    Ok(kv) => {
                        known.insert(key, kv.map(|kv| kv.mod_revision));
                    }
                    Err(e) => log.errors.push(format!("re-reading after an error: {e}")),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    log
}

/// Events the watcher collected, and how to wait for it to catch up.
struct Followed {
    events: Vec<Event>,
    store: Arc<dyn Store>,
    last: Revision,
}

impl Followed {
    /// Keeps watching until an event at or past `revision` arrived.
    async fn wait_for(mut self, revision: Revision, deadline: Instant) -> Vec<Event> {
        while self.last < revision {
            assert!(
                Instant::now() < deadline,
                "the watcher never reached revision {revision}"
            );
            let Ok(mut w) = self.store.watch(PREFIX, Some(self.last)).await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            while self.last < revision {
                match tokio::time::timeout_at(deadline.into(), w.next()).await {
                    Ok(Some(Ok(e))) => {
                        self.last = e.revision();
                        self.events.push(e);
                    }
                    Ok(Some(Err(_)) | None) => break,
                    Err(_) => panic!("the watcher never reached revision {revision}"),
                }
            }
        }
        self.events
    }
}

/// Watches the prefix from `after` until `stop`: first through `first`,
/// then, whenever the stream ends with an error, through `rest` from the
/// last revision seen.
async fn follow(
    first: Arc<dyn Store>,
    rest: Arc<dyn Store>,
    after: Revision,
    stop: Arc<AtomicBool>,
) -> (Followed, usize) {
    let mut events = Vec::new();
    let mut last = after;
    let mut rewatches = 0;
    let mut store = first;
    while !stop.load(Ordering::SeqCst) {
        let mut w = match store.watch(PREFIX, Some(last)).await {
            Ok(w) => w,
            Err(StorageError::Compacted { .. }) => panic!("nothing compacts in this test"),
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        while !stop.load(Ordering::SeqCst) {
            match tokio::time::timeout(Duration::from_millis(200), w.next()).await {
                Ok(Some(Ok(e))) => {
                    last = e.revision();
                    events.push(e);
                }
                Ok(Some(Err(_)) | None) => {
                    rewatches += 1;
                    store = rest.clone();
                    break;
                }
                Err(_) => {}
            }
        }
    }
    (
        Followed {
            events,
            store: rest,
            last,
        },
        rewatches,
    )
}
