//! The watch scenario: M watchers on the namespace's ConfigMaps, all from
//! the same resourceVersion, while ConfigMaps are created open-loop at R/s
//! (each create is sent on schedule, whether or not earlier ones were
//! answered). Every watcher must receive every created object once.
//!
//! Delivery latency is the receipt time minus the creation time the
//! creator wrote into the object (annotation `kube-load/created-ns`, taken
//! just before the POST; both clocks are this machine's), so it includes
//! the create request itself.
//!
//! A watch whose stream ends is started again from the last
//! resourceVersion it saw (counted as "ended"); one answered with 410
//! Expired starts again from the current state (counted as "410"; the
//! events in between are then missing). Bounds: setup, the creation
//! schedule, and `--drain-secs` after the last create; then every watcher
//! is stopped and what it has not received is counted missing.
//!
//! Between setup and the measured creates comes a warm-up: the creator's
//! connections are opened and one second of creates at the same rate is
//! sent under other names (watchers receive them but do not count them).
//! Without it the first second after 1,000 fresh watches carried a tail of
//! 250-600 ms, with no slow event in the seconds after, which measured the
//! start of the streams rather than steady-state delivery (as upstream's
//! watch-latency SLIs do in a running cluster).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use http::Method;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::Ctx;
use super::client::{self, OpError, collection, request, resource_version, send};
use super::config::Budget;
use super::cpu::CpuClock;
use super::latency::Recorder;
use super::objects::{self, now_ns};
use super::report::{WatchRow, WatchSecond};
use super::watch_scan::{self, Scanned};

/// Watches being established at once during setup.
const SETUP_CONCURRENCY: usize = 64;
/// How long setup may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(120);
/// Creates in flight at most (the schedule waits beyond this, and the
/// achieved rate shows it): well under kube-apiserver's default
/// `--max-mutating-requests-inflight` (200), so that a server behind
/// schedule slows the creator down instead of answering 429.
const MAX_IN_FLIGHT: usize = 64;
/// Pause before re-watching after a failed attempt.
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// How often the drain checks whether every watcher has everything.
const DRAIN_POLL: Duration = Duration::from_millis(20);

/// Distinct indices seen, as a bit set.
#[derive(Debug, Clone)]
struct Seen {
    bits: Vec<u64>,
    capacity: u64,
    count: u64,
}

impl Seen {
    fn new(capacity: u64) -> Seen {
        Seen {
            bits: vec![0; capacity.div_ceil(64) as usize],
            capacity,
            count: 0,
        }
    }

    /// Marks `i`; false if it was already marked (or out of range).
    fn insert(&mut self, i: u64) -> bool {
        if i >= self.capacity {
            return false;
        }
        let Some(word) = self.bits.get_mut((i / 64) as usize) else {
            return false;
        };
        let bit = 1u64 << (i % 64);
        if *word & bit != 0 {
            return false;
        }
        *word |= bit;
        self.count += 1;
        true
    }

    /// How many of `wanted`'s indices are not in `self`.
    fn missing_from(&self, wanted: &Seen) -> u64 {
        wanted
            .bits
            .iter()
            .zip(self.bits.iter().chain(std::iter::repeat(&0)))
            .map(|(w, s)| u64::from((w & !s).count_ones()))
            .sum()
    }
}

/// Deliveries counted against the second of the schedule their object
/// was created in.
#[derive(Debug, Clone, Default)]
struct Timeline {
    /// By second: deliveries, those over 100 ms, the slowest (µs).
    seconds: Vec<(u64, u64, u64)>,
}

impl Timeline {
    const SLOW: Duration = Duration::from_millis(100);

    fn new(seconds: usize) -> Timeline {
        Timeline {
            seconds: vec![(0, 0, 0); seconds.max(1)],
        }
    }

    /// Records a delivery of an object created `since_start` after the
    /// first create (later ones count in the last second).
    fn record(&mut self, since_start: Duration, took: Duration) {
        let last = self.seconds.len() - 1;
        let i = usize::try_from(since_start.as_secs()).unwrap_or(last).min(last);
        if let Some((n, slow, max)) = self.seconds.get_mut(i) {
            *n += 1;
            *slow += u64::from(took > Self::SLOW);
            *max = (*max).max(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
        }
    }

    fn merge(&mut self, other: &Timeline) {
        for (a, b) in self.seconds.iter_mut().zip(&other.seconds) {
            a.0 += b.0;
            a.1 += b.1;
            a.2 = a.2.max(b.2);
        }
    }
}

/// What one watcher saw.
#[derive(Debug)]
struct WatcherResult {
    seen: Seen,
    duplicates: u64,
    latency: Recorder,
    timeline: Timeline,
    stream_ends: u64,
    expired: u64,
    watch_errors: u64,
    errors: Recorder,
}

/// What every watcher shares.
struct Shared {
    client: kube::Client,
    uri: String,
    prefix: String,
    timeout_secs: u64,
    planned: u64,
    /// Seconds in the creation schedule.
    schedule_secs: usize,
    /// When the first create was sent (`now_ns`; 0 before).
    start_ns: AtomicU64,
    /// Distinct objects each watcher has received so far (by watcher).
    progress: Vec<AtomicU64>,
    stop: watch::Receiver<bool>,
}

impl Shared {
    fn watch_uri(&self, rv: &str) -> String {
        format!(
            "{}?watch=true&allowWatchBookmarks=true&resourceVersion={rv}&timeoutSeconds={}",
            self.uri, self.timeout_secs
        )
    }

    /// The current resourceVersion of the collection.
    async fn current_rv(&self) -> Result<String, OpError> {
        let req = request(Method::GET, &format!("{}?limit=1", self.uri), Vec::new())
            .map_err(|e| OpError(format!("{e:#}")))?;
        let body = send(&self.client, req).await.0?;
        resource_version(&body).ok_or_else(|| OpError("list without resourceVersion".into()))
    }

    /// Events delivered so far, summed over watchers, and the fewest one
    /// watcher has.
    fn delivered(&self) -> (u64, u64) {
        let counts = self.progress.iter().map(|p| p.load(Ordering::Relaxed));
        counts.fold((0, u64::MAX), |(sum, min), n| (sum + n, min.min(n)))
    }
}

/// Opens `n` pooled connections by sending `n` small reads at once (their
/// answers do not matter: a failed read still leaves its connection open).
async fn warm_connections(shared: &Arc<Shared>, n: usize) {
    let mut reads = JoinSet::new();
    for _ in 0..n {
        let shared = shared.clone();
        reads.spawn(async move { shared.current_rv().await });
    }
    while reads.join_next().await.is_some() {}
}

/// One second of creates at `rate` before the measured ones, named outside
/// the run's prefix so watchers deliver them without counting them.
async fn warm_up(ctx: &Ctx, uri: &str, rate: f64) {
    let n = rate.ceil() as usize;
    let start = tokio::time::Instant::now();
    let mut creates = JoinSet::new();
    for i in 0..n {
        tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
        let (c, u) = (ctx.client.clone(), uri.to_string());
        let body = objects::config_map(&format!("warm-{}-{i}", ctx.run), &ctx.run, now_ns());
        creates.spawn(async move { client::create(&c, &u, body, true).await });
    }
    while creates.join_next().await.is_some() {}
}

type EventStream = futures::stream::BoxStream<'static, Result<Vec<Scanned>, String>>;

/// Opens a watch from `rv`; its events are read with the light scanner
/// (see `watch_scan`). An error answer is `<code> <reason>: <message>`.
async fn open(shared: &Shared, rv: &str) -> Result<EventStream, OpError> {
    // Watch events are read as JSON lines whatever the run's encoding.
    let mut req =
        client::request_json(Method::GET, &shared.watch_uri(rv), Vec::new()).map_err(|e| OpError(format!("{e:#}")))?;
    req.headers_mut().insert(
        http::header::ACCEPT_ENCODING,
        http::HeaderValue::from_static("identity"),
    );
    let started = tokio::time::timeout(
        super::config::REQUEST_TIMEOUT,
        shared.client.send(req.map(kube::client::Body::from)),
    )
    .await;
    match started {
        Ok(Ok(resp)) if resp.status().is_success() => Ok(watch_scan::events(resp.into_body(), shared.prefix.clone())),
        Ok(Ok(resp)) => {
            let status = resp.status();
            let body = resp.into_body().collect_bytes().await.unwrap_or_default();
            Err(client::status_error(status, &body))
        }
        Ok(Err(e)) => Err(OpError::from(e)),
        Err(_) => Err(OpError("watch did not start in time".into())),
    }
}

/// One watcher, number `id`: `first` is the already-open stream from
/// setup. Runs until told to stop.
async fn watcher(shared: Arc<Shared>, id: usize, rv: String, first: EventStream) -> WatcherResult {
    // The last resourceVersion seen, as the server sent it.
    let mut rv = Bytes::from(rv);
    let mut r = WatcherResult {
        seen: Seen::new(shared.planned),
        duplicates: 0,
        latency: Recorder::coarse(),
        timeline: Timeline::new(shared.schedule_secs),
        stream_ends: 0,
        expired: 0,
        watch_errors: 0,
        errors: Recorder::new(),
    };
    let mut stop_rx = shared.stop.clone();
    // One future for the whole life of the watcher, not one per event.
    let stop = stop_rx.wait_for(|s| *s);
    tokio::pin!(stop);
    let progress = shared.progress.get(id);
    let mut next = Some(first);
    loop {
        if *shared.stop.borrow() {
            return r;
        }
        let mut stream = match next.take() {
            Some(s) => s,
            None => match open(&shared, &watch_scan::rv_string(&rv)).await {
                Ok(s) => s,
                Err(e) => {
                    r.watch_errors += 1;
                    if e.0.starts_with("410") {
                        r.expired += 1;
                        if let Ok(now) = shared.current_rv().await {
                            rv = Bytes::from(now);
                        }
                    }
                    r.errors.failure(&e);
                    tokio::time::sleep(RETRY_PAUSE).await;
                    continue;
                }
            },
        };
        'stream: loop {
            let chunk = tokio::select! {
                biased;
                chunk = stream.next() => chunk,
                _ = &mut stop => return r,
            };
            let events = match chunk {
                None => {
                    r.stream_ends += 1;
                    break;
                }
                Some(Ok(events)) => events,
                Some(Err(e)) => {
                    r.watch_errors += 1;
                    r.errors.failure(&OpError(e));
                    break;
                }
            };
            let received = now_ns();
            for ev in events {
                match ev {
                    Scanned::Changed {
                        rv: new_rv,
                        index,
                        created_ns,
                    } => {
                        rv = new_rv;
                        let Some(i) = index else {
                            continue;
                        };
                        if !r.seen.insert(i) {
                            r.duplicates += 1;
                            continue;
                        }
                        if let Some(p) = progress {
                            p.fetch_add(1, Ordering::Relaxed);
                        }
                        if let Some(created) = created_ns {
                            let took = Duration::from_nanos(received.saturating_sub(created));
                            r.latency.success(took);
                            let start = shared.start_ns.load(Ordering::Relaxed);
                            r.timeline
                                .record(Duration::from_nanos(created.saturating_sub(start)), took);
                        }
                    }
                    Scanned::Deleted { rv: new_rv } | Scanned::Bookmark { rv: new_rv } => rv = new_rv,
                    Scanned::Error { code, reason, message } => {
                        let e = OpError(format!("{code} {reason}: {message}"));
                        r.errors.failure(&e);
                        if code == 410 {
                            r.expired += 1;
                            if let Ok(now) = shared.current_rv().await {
                                rv = Bytes::from(now);
                            }
                        } else {
                            r.watch_errors += 1;
                        }
                        break 'stream;
                    }
                }
            }
        }
    }
}

/// Objects the creator will create.
fn planned(budget: Budget, rate: f64) -> u64 {
    match budget {
        Budget::Count(n) => n,
        Budget::Duration(d) => (rate * d.as_secs_f64()).ceil().max(1.0) as u64,
    }
}

pub async fn watch(ctx: &Ctx) -> anyhow::Result<WatchRow> {
    let uri = collection(&ctx.namespace, "configmaps");
    let rate = ctx.event_rate;
    let planned = planned(ctx.budget, rate);
    let schedule = Duration::from_secs_f64(planned as f64 / rate);
    let prefix = format!("w-{}-", ctx.run);
    let (stop_tx, stop_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        client: ctx.client.clone(),
        uri: uri.clone(),
        prefix: prefix.clone(),
        timeout_secs: schedule.as_secs() + ctx.drain.as_secs() + SETUP_TIMEOUT.as_secs() + 60,
        planned,
        schedule_secs: schedule.as_secs_f64().ceil() as usize,
        start_ns: AtomicU64::new(0),
        progress: (0..ctx.watchers).map(|_| AtomicU64::new(0)).collect(),
        stop: stop_rx,
    });
    let start_rv = shared
        .current_rv()
        .await
        .map_err(|e| anyhow::anyhow!("watch: reading the starting resourceVersion: {e}"))?;

    // Setup: every watch open before the first create.
    eprintln!(
        "kube-load: watch: opening {} watches from resourceVersion {start_rv}",
        ctx.watchers
    );
    let setup_start = Instant::now();
    let gate = Arc::new(Semaphore::new(SETUP_CONCURRENCY));
    let mut opening = JoinSet::new();
    for _ in 0..ctx.watchers {
        let (shared, gate, rv) = (shared.clone(), gate.clone(), start_rv.clone());
        opening.spawn(async move {
            let _permit = gate.acquire_owned().await.ok();
            open(&shared, &rv).await
        });
    }
    let mut streams = Vec::with_capacity(ctx.watchers);
    let setup = tokio::time::timeout(SETUP_TIMEOUT, async {
        while let Some(joined) = opening.join_next().await {
            match joined {
                Ok(Ok(s)) => streams.push(s),
                Ok(Err(e)) => return Err(anyhow::anyhow!("watch: opening a watch: {e}")),
                Err(e) => return Err(anyhow::anyhow!("watch: opening task failed: {e}")),
            }
        }
        Ok(())
    })
    .await;
    match setup {
        Ok(res) => res?,
        Err(_) => anyhow::bail!(
            "watch: only {} of {} watches opened in {} s",
            streams.len(),
            ctx.watchers,
            SETUP_TIMEOUT.as_secs()
        ),
    }
    let setup_secs = setup_start.elapsed().as_secs_f64();
    eprintln!("kube-load: watch: {} watches open in {setup_secs:.1} s", ctx.watchers);
    let mut watchers = JoinSet::new();
    for (id, s) in streams.into_iter().enumerate() {
        watchers.spawn(watcher(shared.clone(), id, start_rv.clone(), s));
    }

    // The creator's connections are opened before the clock starts: kube-rs
    // speaks HTTP/1.1, one connection per request in flight, and every
    // pooled connection is now held by a watch, so without this the first
    // second's creates each wait for a TLS handshake (client-go would
    // multiplex them over its one HTTP/2 connection).
    warm_connections(&shared, MAX_IN_FLIGHT).await;
    warm_up(ctx, &uri, rate).await;

    // Creation, open loop on schedule; CPU is measured from here to the
    // end of the drain.
    let cpu = CpuClock::start(ctx.server_pid);
    eprintln!("kube-load: watch: creating {planned} configmaps at {rate}/s");
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut creates = JoinSet::new();
    let start = tokio::time::Instant::now();
    shared.start_ns.store(now_ns(), Ordering::Relaxed);
    let mut last_progress = Instant::now();
    for i in 0..planned {
        tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let (c, u) = (ctx.client.clone(), uri.clone());
        let body = objects::config_map(&format!("{prefix}{i}"), &ctx.run, now_ns());
        creates.spawn(async move {
            let t = Instant::now();
            let res = client::create(&c, &u, body, false).await;
            drop(permit);
            (i, res, t.elapsed())
        });
        if last_progress.elapsed() >= Duration::from_secs(5) {
            last_progress = Instant::now();
            eprintln!(
                "kube-load: watch: {} sent, {} events delivered",
                i + 1,
                shared.delivered().0
            );
        }
    }
    let mut created = Seen::new(planned);
    let mut create_errors = Recorder::new();
    let mut create_latency = Recorder::new();
    let mut create_max = vec![Duration::ZERO; shared.schedule_secs.max(1)];
    while let Some(joined) = creates.join_next().await {
        match joined {
            Ok((i, Ok(()), took)) => {
                created.insert(i);
                create_latency.success(took);
                let second = ((i as f64 / rate) as usize).min(create_max.len() - 1);
                if let Some(m) = create_max.get_mut(second) {
                    *m = (*m).max(took);
                }
            }
            Ok((_, Err(e), _)) => create_errors.failure(&OpError(format!("create: {e}"))),
            Err(e) => create_errors.failure(&OpError(format!("create task failed: {e}"))),
        }
    }
    let creation_secs = start.elapsed().as_secs_f64();
    eprintln!(
        "kube-load: watch: {} created in {creation_secs:.1} s; waiting up to {} s for delivery",
        created.count,
        ctx.drain.as_secs()
    );

    // Drain: until every watcher has as many as were created, or the
    // deadline; then every watcher stops and reports.
    let drain_start = Instant::now();
    let deadline = drain_start + ctx.drain;
    while shared.delivered().1 < created.count && Instant::now() < deadline {
        tokio::time::sleep(DRAIN_POLL).await;
    }
    let drain_secs = drain_start.elapsed().as_secs_f64();
    let cpu = cpu.stop();
    let _ = stop_tx.send(true);
    let mut results = Vec::with_capacity(ctx.watchers);
    let joined = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(joined) = watchers.join_next().await {
            match joined {
                Ok(r) => results.push(r),
                Err(e) => eprintln!("kube-load: watch: a watcher task failed: {e}"),
            }
        }
    })
    .await;
    if joined.is_err() {
        watchers.abort_all();
    }

    let mut row = WatchRow {
        watchers: ctx.watchers,
        event_rate: rate,
        achieved_rate: if creation_secs > 0.0 {
            created.count as f64 / creation_secs
        } else {
            0.0
        },
        created: created.count,
        create_errors: create_errors.errors,
        create_latency: create_latency.summary(),
        expected: created.count * ctx.watchers as u64,
        delivered_min: u64::MAX,
        setup_secs,
        drain_secs,
        cpu,
        ..WatchRow::default()
    };
    let mut latency = Recorder::new();
    let mut timeline = Timeline::new(shared.schedule_secs);
    let mut errors = create_errors;
    for r in &results {
        timeline.merge(&r.timeline);
        let missing = r.seen.missing_from(&created);
        row.delivered += created.count - missing;
        row.delivered_min = row.delivered_min.min(created.count - missing);
        row.missing += missing;
        row.incomplete_watchers += usize::from(missing > 0);
        row.duplicates += r.duplicates;
        row.stream_ends += r.stream_ends;
        row.expired += r.expired;
        row.watch_errors += r.watch_errors;
        latency.merge(&r.latency);
        errors.merge(&r.errors);
    }
    // Watchers whose task died or never reported saw nothing we can count.
    let lost = ctx.watchers.saturating_sub(results.len());
    row.missing += created.count * lost as u64;
    row.incomplete_watchers += lost;
    if results.is_empty() {
        row.delivered_min = 0;
    }
    row.latency = latency.summary();
    row.error_kinds = errors.error_kinds();
    row.timeline = timeline
        .seconds
        .iter()
        .zip(&create_max)
        .enumerate()
        .map(|(second, (&(delivered, over_100ms, max_us), create))| WatchSecond {
            second: second as u64,
            delivered,
            over_100ms,
            max_ms: max_us as f64 / 1000.0,
            create_max_ms: create.as_secs_f64() * 1000.0,
        })
        .collect();
    for s in &row.timeline {
        eprintln!(
            "kube-load: watch: second {:>3}: {} delivered, {} over 100 ms, slowest {:.1} ms (slowest create {:.1} ms)",
            s.second, s.delivered, s.over_100ms, s.max_ms, s.create_max_ms
        );
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn seen_bits() {
        let mut wanted = Seen::new(130);
        for i in [0, 1, 64, 129] {
            assert!(wanted.insert(i));
        }
        assert!(!wanted.insert(1), "duplicate");
        assert!(!wanted.insert(130), "out of range");
        assert_eq!(wanted.count, 4);
        let mut got = Seen::new(130);
        got.insert(0);
        got.insert(129);
        got.insert(5); // seen but not wanted: not missing
        assert_eq!(got.missing_from(&wanted), 2);
        assert_eq!(wanted.missing_from(&wanted), 0);
    }

    #[test]
    fn timeline_by_second_of_creation() {
        let ms = Duration::from_millis;
        let mut a = Timeline::new(2);
        a.record(ms(300), ms(20));
        a.record(ms(1500), ms(150));
        a.record(ms(9000), ms(5)); // after the schedule: the last second
        let mut b = Timeline::new(2);
        b.record(ms(10), ms(120));
        a.merge(&b);
        assert_eq!(a.seconds, vec![(2, 1, 120_000), (2, 1, 150_000)]);
    }

    #[test]
    fn planned_objects() {
        assert_eq!(planned(Budget::Count(7), 500.0), 7);
        assert_eq!(planned(Budget::Duration(Duration::from_secs(10)), 500.0), 5000);
        assert_eq!(planned(Budget::Duration(Duration::from_millis(1)), 1.0), 1);
    }
}
