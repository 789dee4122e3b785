//! The watch fan-out measurement: W watchers on one prefix while writers
//! create E keys under it as fast as they can.
//!
//! Each value starts with a header: the send time (nanoseconds since the
//! measurement's epoch, taken just before the `create` call) and the key's
//! index, both little-endian `u64`. A watcher decodes it to get the delivery
//! latency (write sent -> event received, so it includes the write's own
//! commit) and to tick the event off. At the end every watcher must have seen
//! every created key exactly once, in revision order; anything else is
//! counted (missing, duplicate, out of order, unexpected) and reported.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream;
use hdrhistogram::Histogram;
use rkube_storage::{EventType, Revision, Store, WatchStream};
use tokio::task::JoinSet;

use crate::storage_bench::load::{filler, micros, new_histogram, per_second};

/// Bytes at the start of each value: send time and index.
pub const HEADER_LEN: usize = 16;
/// The watched prefix.
const PREFIX: &str = "/bench/watch/";
/// Size of each written value.
const VALUE_SIZE: usize = 256;
/// Watches opened at the same time during setup.
const OPEN_CONCURRENCY: usize = 64;
/// How long watchers get to hand in their tallies once told to stop.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The outcome of the fan-out measurement.
#[derive(Debug)]
pub struct WatchResult {
    /// Watchers asked for.
    pub watchers: usize,
    /// Watchers that were opened.
    pub watchers_opened: usize,
    /// Keys the writers were asked to create.
    pub events: usize,
    /// Keys actually created.
    pub written: u64,
    /// Time to open all watchers.
    pub setup: Duration,
    /// From the first write to the last successful one.
    pub write_elapsed: Duration,
    /// From the first write to the last event delivered to any watcher.
    pub elapsed: Duration,
    /// Distinct events received, summed over all watchers.
    pub delivered: u64,
    /// `watchers_opened * written - delivered`, plus `written` for each
    /// watcher that could not be opened.
    pub missing: u64,
    /// Events a watcher received more than once.
    pub duplicates: u64,
    /// Events whose revision was not above the watcher's previous one.
    pub out_of_order: u64,
    /// Events that were not this measurement's creates.
    pub unexpected: u64,
    /// Failed writes, failed watch opens, and watch streams that ended with
    /// an error or early.
    pub errors: u64,
    /// The first of those failures.
    pub first_error: Option<String>,
    /// Delivery latency in microseconds, over every delivered event.
    pub latency: Histogram<u64>,
}

impl WatchResult {
    /// Events delivered per second, across all watchers.
    pub fn events_per_sec(&self) -> f64 {
        per_second(self.delivered, self.elapsed)
    }

    /// Whether every watcher saw every event exactly once, in order.
    pub fn is_clean(&self) -> bool {
        self.missing == 0 && self.duplicates == 0 && self.out_of_order == 0 && self.unexpected == 0 && self.errors == 0
    }

    fn add_error(&mut self, message: String) {
        self.errors += 1;
        self.first_error.get_or_insert(message);
    }
}

/// One watcher's tally.
struct WatcherTally {
    seen: Vec<bool>,
    distinct: u64,
    duplicates: u64,
    out_of_order: u64,
    unexpected: u64,
    latencies: Vec<u64>,
    last_delivery: Option<Instant>,
    error: Option<String>,
}

/// Opens `watchers` watchers on one prefix, then `writers` writers create
/// `events` keys under it; waits until every watcher has every event or
/// `timeout` has passed since the last write.
pub async fn measure_fan_out(
    store: &Arc<dyn Store>,
    watchers: usize,
    events: usize,
    writers: usize,
    timeout: Duration,
) -> WatchResult {
    let mut result = WatchResult {
        watchers,
        watchers_opened: 0,
        events,
        written: 0,
        setup: Duration::ZERO,
        write_elapsed: Duration::ZERO,
        elapsed: Duration::ZERO,
        delivered: 0,
        missing: 0,
        duplicates: 0,
        out_of_order: 0,
        unexpected: 0,
        errors: 0,
        first_error: None,
        latency: new_histogram(),
    };

    // Watch from a fixed revision so no write can slip in before a watch is
    // registered: every event after `start_rev` is owed to every watcher.
    let start_rev: Revision = match store.current_revision().await {
        Ok(rev) => rev,
        Err(e) => {
            result.add_error(format!("current revision: {e}"));
            result.missing = (watchers * events) as u64;
            return result;
        }
    };
    let setup_started = Instant::now();
    let opened: Vec<_> = stream::iter(0..watchers)
        .map(|_| {
            let store = store.clone();
            async move { store.watch(PREFIX, Some(start_rev)).await }
        })
        .buffer_unordered(OPEN_CONCURRENCY)
        .collect()
        .await;
    result.setup = setup_started.elapsed();
    let mut streams = Vec::with_capacity(watchers);
    for open in opened {
        match open {
            Ok(s) => streams.push(s),
            Err(e) => result.add_error(format!("open watch on {PREFIX}: {e}")),
        }
    }
    result.watchers_opened = streams.len();

    let epoch = Instant::now();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut watcher_set = JoinSet::new();
    for s in streams {
        watcher_set.spawn(run_watcher(s, events, epoch, stop_rx.clone()));
    }

    // The writers.
    let next = Arc::new(AtomicUsize::new(0));
    let mut writer_set = JoinSet::new();
    for _ in 0..writers {
        let (store, next, stop) = (store.clone(), next.clone(), stop_rx.clone());
        writer_set.spawn(async move {
            let pad = filler(VALUE_SIZE - HEADER_LEN, 0xfa11);
            let (mut ok, mut failures, mut first_error) = (0u64, 0u64, None);
            let mut last_ok = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= events || *stop.borrow() {
                    break;
                }
                let mut value = Vec::with_capacity(VALUE_SIZE);
                value.extend_from_slice(&nanos_since(epoch).to_le_bytes());
                value.extend_from_slice(&(i as u64).to_le_bytes());
                value.extend_from_slice(&pad);
                let key = format!("{PREFIX}{i:06}");
                match store.create(&key, value.into()).await {
                    Ok(_) => {
                        ok += 1;
                        last_ok = Some(Instant::now());
                    }
                    Err(e) => {
                        failures += 1;
                        first_error.get_or_insert(format!("create {key}: {e}"));
                    }
                }
            }
            (ok, failures, first_error, last_ok)
        });
    }
    let mut last_write = None;
    let writers_done = async {
        while let Some(joined) = writer_set.join_next().await {
            match joined {
                Ok((ok, failures, first_error, last_ok)) => {
                    result.written += ok;
                    result.errors += failures;
                    if let Some(e) = first_error {
                        result.first_error.get_or_insert(e);
                    }
                    last_write = last_write.max(last_ok);
                }
                Err(e) => result.add_error(format!("writer task failed: {e}")),
            }
        }
    };
    if tokio::time::timeout(timeout, writers_done).await.is_err() {
        let _ = stop_tx.send(true);
        writer_set.abort_all();
        result.add_error(format!("writers did not finish {events} creates within {timeout:?}"));
    }
    result.write_elapsed = last_write.map_or(Duration::ZERO, |t| t.duration_since(epoch));

    // Wait for the watchers, then tell the stragglers to stop and hand in
    // what they have.
    let mut tallies = Vec::with_capacity(result.watchers_opened);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut stopping = false;
    loop {
        let limit = if stopping {
            tokio::time::Instant::now() + STOP_GRACE
        } else {
            deadline
        };
        match tokio::time::timeout_at(limit, watcher_set.join_next()).await {
            Ok(None) => break,
            Ok(Some(Ok(tally))) => tallies.push(tally),
            Ok(Some(Err(e))) => result.add_error(format!("watcher task failed: {e}")),
            Err(_) if !stopping => {
                let _ = stop_tx.send(true);
                stopping = true;
            }
            Err(_) => {
                result.add_error(format!("{} watchers did not stop; aborted", watcher_set.len()));
                watcher_set.abort_all();
                break;
            }
        }
    }

    // Index `i` is owed only if it was created; count what each watcher saw.
    let mut last_delivery: Option<Instant> = None;
    for tally in &tallies {
        result.delivered += tally.distinct;
        result.duplicates += tally.duplicates;
        result.out_of_order += tally.out_of_order;
        result.unexpected += tally.unexpected;
        for &l in &tally.latencies {
            result.latency.saturating_record(l);
        }
        last_delivery = last_delivery.max(tally.last_delivery);
        if let Some(e) = &tally.error {
            result.add_error(e.clone());
        }
    }
    let owed = result.written * result.watchers_opened as u64;
    result.missing = owed.saturating_sub(result.delivered) + (watchers - result.watchers_opened) as u64 * events as u64;
    result.elapsed = last_delivery.map_or(Duration::ZERO, |t| t.duration_since(epoch));
    result
}

/// Reads one watch stream until it has all `events` events, it ends, or it
/// is told to stop.
async fn run_watcher(
    mut stream: WatchStream,
    events: usize,
    epoch: Instant,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> WatcherTally {
    let mut tally = WatcherTally {
        seen: vec![false; events],
        distinct: 0,
        duplicates: 0,
        out_of_order: 0,
        unexpected: 0,
        latencies: Vec::with_capacity(events),
        last_delivery: None,
        error: None,
    };
    let mut last_rev: Revision = 0;
    while tally.distinct < events as u64 {
        let item = tokio::select! {
            item = stream.next() => item,
            _ = stop.wait_for(|stop| *stop) => break,
        };
        let event = match item {
            Some(Ok(event)) => event,
            Some(Err(e)) => {
                tally.error = Some(format!("watch ended with an error: {e}"));
                break;
            }
            None => {
                tally.error = Some(format!("watch ended after {} of {events} events", tally.distinct));
                break;
            }
        };
        let now = Instant::now();
        if event.revision() <= last_rev {
            tally.out_of_order += 1;
        }
        last_rev = last_rev.max(event.revision());
        let Some((sent_nanos, index)) = decode_header(&event.kv.value) else {
            tally.unexpected += 1;
            continue;
        };
        if event.event_type != EventType::Added || index >= events {
            tally.unexpected += 1;
            continue;
        }
        if std::mem::replace(&mut tally.seen[index], true) {
            tally.duplicates += 1;
            continue;
        }
        tally.distinct += 1;
        tally.last_delivery = Some(now);
        let received_nanos = u64::try_from(now.duration_since(epoch).as_nanos()).unwrap_or(u64::MAX);
        tally
            .latencies
            .push(micros(Duration::from_nanos(received_nanos.saturating_sub(sent_nanos))));
    }
    tally
}

/// Nanoseconds since `epoch`.
fn nanos_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The send time (nanoseconds since the epoch) and index at the start of a
/// value, or `None` if the value is too short.
fn decode_header(value: &[u8]) -> Option<(u64, usize)> {
    let sent = u64::from_le_bytes(value.get(0..8)?.try_into().ok()?);
    let index = u64::from_le_bytes(value.get(8..16)?.try_into().ok()?);
    Some((sent, usize::try_from(index).ok()?))
}

#[cfg(test)]
mod tests {
    use rkube_storage::memory::MemoryStore;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_watcher_gets_every_event() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let r = measure_fan_out(&store, 20, 300, 4, Duration::from_secs(20)).await;
        assert!(r.is_clean(), "{r:?}");
        assert_eq!(r.written, 300);
        assert_eq!(r.delivered, 20 * 300);
        assert_eq!(r.latency.len(), 20 * 300);
        assert!(r.events_per_sec() > 0.0);
    }

    fn event(rev: Revision, key: &str, value: Vec<u8>) -> rkube_storage::Result<rkube_storage::Event> {
        Ok(rkube_storage::Event {
            event_type: EventType::Added,
            kv: rkube_storage::KeyValue {
                key: key.to_string(),
                value: value.into(),
                create_revision: rev,
                mod_revision: rev,
            },
            prev: None,
        })
    }

    fn header(index: u64) -> Vec<u8> {
        let mut v = 0u64.to_le_bytes().to_vec();
        v.extend_from_slice(&index.to_le_bytes());
        v
    }

    #[tokio::test]
    async fn anomalies_are_counted_not_hidden() {
        let events = vec![
            event(2, "/bench/watch/000000", header(0)),
            event(3, "/bench/watch/stray", b"x".to_vec()),
            event(4, "/bench/watch/000000", header(0)),
            event(4, "/bench/watch/000002", header(2)),
        ];
        let s: WatchStream = Box::pin(stream::iter(events));
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let t = run_watcher(s, 3, Instant::now(), rx).await;
        assert_eq!(t.distinct, 2);
        assert_eq!(t.unexpected, 1);
        assert_eq!(t.duplicates, 1);
        assert_eq!(t.out_of_order, 1);
        assert_eq!(t.error.as_deref(), Some("watch ended after 2 of 3 events"));
    }

    #[test]
    fn header_round_trip() {
        let mut v = 42u64.to_le_bytes().to_vec();
        v.extend_from_slice(&7u64.to_le_bytes());
        assert_eq!(decode_header(&v), Some((42, 7)));
        assert_eq!(decode_header(b"short"), None);
    }
}
