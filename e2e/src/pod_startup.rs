//! Pod startup as one watch on the benchmark's namespace sees it, shared by
//! `bench-controllers` (the burst) and `bench-scale` (the paced load), so
//! both report the same figures with the same meaning:
//!
//! - **SLO** (upstream's pod startup SLI, as cluster-loader2 measures it):
//!   from the pod's `metadata.creationTimestamp` to the watch event that
//!   first shows it `Running`. creationTimestamp has whole seconds, so a
//!   single pod's figure is up to 1 s too long (0.5 s on average);
//! - **watch**: from the event that first shows the pod (its creation, to
//!   the millisecond as this process sees it) to the event that first
//!   shows it Running, and Ready (scheduler, binding and kubelet);
//! - **from Deployment create**: from just before the Deployment's create
//!   request to Running and to Ready (adds the Deployment and ReplicaSet
//!   controllers).
//!
//! It also keeps a per-stage timeline (Deployments created, ReplicaSets
//! seen, pods seen, bound, Running, Ready over time) to show which stage a
//! run waits on.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::load::latency::{LatencySummary, Recorder};
use crate::load::watch_scan::Lines;

/// What one watch event says about a benchmark pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodEvent {
    pub name: String,
    /// Its Deployment's index (`app: d-<i>`).
    pub deployment: usize,
    /// `metadata.creationTimestamp` in Unix milliseconds.
    pub created_ms: Option<i64>,
    pub bound: bool,
    pub running: bool,
    pub ready: bool,
}

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    type_: String,
    object: PodView,
}

#[derive(Deserialize, Default)]
struct PodView {
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    spec: Spec,
    #[serde(default)]
    status: Status,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Meta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    creation_timestamp: Option<String>,
    #[serde(default)]
    labels: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Spec {
    #[serde(default)]
    node_name: Option<String>,
}

#[derive(Deserialize, Default)]
struct Status {
    #[serde(default)]
    phase: String,
    #[serde(default)]
    conditions: Vec<Condition>,
}

#[derive(Deserialize)]
struct Condition {
    #[serde(rename = "type")]
    type_: String,
    status: String,
}

/// Reads one pod watch event; deletions, bookmarks and pods not of a
/// benchmark Deployment are `None`.
pub fn pod_event(line: &[u8]) -> Option<PodEvent> {
    let ev: Event = serde_json::from_slice(line).ok()?;
    if ev.type_ == "DELETED" || ev.type_ == "BOOKMARK" {
        return None;
    }
    let pod = ev.object;
    let deployment = pod.metadata.labels.get("app")?.strip_prefix("d-")?.parse().ok()?;
    let created_ms = pod
        .metadata
        .creation_timestamp
        .as_deref()
        .and_then(|t| t.parse::<Timestamp>().ok())
        .map(|t| t.as_millisecond());
    Some(PodEvent {
        name: pod.metadata.name,
        deployment,
        created_ms,
        bound: pod.spec.node_name.is_some_and(|n| !n.is_empty()),
        running: pod.status.phase == "Running",
        ready: pod
            .status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True"),
    })
}

/// The stages of the timeline, in pipeline order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// A Deployment's create request was sent.
    DeploymentCreated,
    /// The watch first showed a ReplicaSet.
    ReplicaSetSeen,
    /// The watch first showed a pod.
    PodSeen,
    /// ... with a node name.
    Bound,
    /// ... Running.
    Running,
    /// ... with the Ready condition True.
    Ready,
}

const STAGES: [(Stage, &str); 6] = [
    (Stage::DeploymentCreated, "Deployments created"),
    (Stage::ReplicaSetSeen, "ReplicaSets seen"),
    (Stage::PodSeen, "pods seen"),
    (Stage::Bound, "bound"),
    (Stage::Running, "Running"),
    (Stage::Ready, "Ready"),
];

/// Events per stage per second since the start.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// Counts per second, one list per stage in [`Stage`] order.
    pub per_second: Vec<Vec<u32>>,
}

impl Timeline {
    fn add(&mut self, stage: Stage, secs: f64) {
        if self.per_second.len() < STAGES.len() {
            self.per_second.resize(STAGES.len(), Vec::new());
        }
        let row = &mut self.per_second[stage as usize];
        let i = secs.max(0.0) as usize;
        if row.len() <= i {
            row.resize(i + 1, 0);
        }
        row[i] += 1;
    }

    /// Cumulative counts per stage at the end of each interval, the
    /// interval chosen so the table has at most `max_rows` rows. A stage
    /// with no events at all (not followed by this run, or nothing reached
    /// it) gets no column, and a line below the table names it.
    pub fn markdown(&self, max_rows: usize) -> String {
        let secs = self.per_second.iter().map(Vec::len).max().unwrap_or(0);
        if secs == 0 {
            return String::new();
        }
        let row_of = |s: usize| self.per_second.get(s).map(Vec::as_slice).unwrap_or_default();
        let (shown, empty): (Vec<usize>, Vec<usize>) =
            (0..STAGES.len()).partition(|&s| row_of(s).iter().any(|&n| n > 0));
        let step = secs.div_ceil(max_rows.max(1)).max(1);
        let mut out = String::from("| s |");
        for &s in &shown {
            out.push_str(&format!(" {} |", STAGES[s].1));
        }
        out.push_str("\n|---:|");
        out.push_str(&"---:|".repeat(shown.len()));
        out.push('\n');
        let mut totals = vec![0u64; shown.len()];
        let mut end = 0;
        while end < secs {
            let next = (end + step).min(secs);
            out.push_str(&format!("| {next} |"));
            for (&s, total) in shown.iter().zip(totals.iter_mut()) {
                *total += row_of(s)
                    .iter()
                    .skip(end)
                    .take(next - end)
                    .map(|&n| u64::from(n))
                    .sum::<u64>();
                out.push_str(&format!(" {total} |"));
            }
            out.push('\n');
            end = next;
        }
        if !empty.is_empty() {
            let names: Vec<&str> = empty.iter().map(|&s| STAGES[s].1).collect();
            out.push_str(&format!(
                "\nNo events (not followed in this run, or none happened): {}.\n",
                names.join(", ")
            ));
        }
        out.trim_end().to_string()
    }
}

/// The latency figures of a run (see the module doc).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StartupFigures {
    /// creationTimestamp -> Running seen (the SLO).
    pub slo: LatencySummary,
    /// Pod first seen -> Running seen.
    pub watch_running: LatencySummary,
    /// Pod first seen -> Ready seen.
    pub watch_ready: LatencySummary,
    /// Deployment create request -> pod Running seen.
    pub deployment_running: LatencySummary,
    /// Deployment create request -> pod Ready seen.
    pub deployment_ready: LatencySummary,
}

impl StartupFigures {
    pub fn markdown(&self) -> String {
        let row = |what: &str, s: &LatencySummary| {
            format!("| {what} | {:.0} | {:.0} | {:.0} |\n", s.p50_ms, s.p99_ms, s.max_ms)
        };
        let mut out = String::from("| pod startup | p50 ms | p99 ms | max ms |\n|---|---:|---:|---:|\n");
        out.push_str(&row("SLO: creationTimestamp (whole s) -> Running seen", &self.slo));
        out.push_str(&row("watch: pod first seen -> Running seen", &self.watch_running));
        out.push_str(&row("watch: pod first seen -> Ready seen", &self.watch_ready));
        out.push_str(&row(
            "Deployment create request -> Running seen",
            &self.deployment_running,
        ));
        out.push_str(&row("Deployment create request -> Ready seen", &self.deployment_ready));
        out.trim_end().to_string()
    }
}

/// When the watch first showed a pod in each state.
#[derive(Debug, Clone, Copy)]
struct Seen {
    first: Instant,
    bound: bool,
    running: bool,
    ready: bool,
}

/// Follows the pods of a run through their watch events.
#[derive(Debug)]
pub struct PodStages {
    start: Instant,
    pods: HashMap<String, Seen>,
    running: usize,
    ready: usize,
    last_running: Instant,
    last_ready: Instant,
    slo: Recorder,
    watch_running: Recorder,
    watch_ready: Recorder,
    deployment_running: Recorder,
    deployment_ready: Recorder,
    timeline: Timeline,
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl PodStages {
    /// Starts following at `start` (the timeline's zero).
    pub fn new(start: Instant, expected_pods: usize) -> PodStages {
        PodStages {
            start,
            pods: HashMap::with_capacity(expected_pods),
            running: 0,
            ready: 0,
            last_running: start,
            last_ready: start,
            slo: Recorder::new(),
            watch_running: Recorder::new(),
            watch_ready: Recorder::new(),
            deployment_running: Recorder::new(),
            deployment_ready: Recorder::new(),
            timeline: Timeline::default(),
        }
    }

    /// Records a stage outside the pod watch (a Deployment create, a
    /// ReplicaSet first seen) at `at`.
    pub fn stage(&mut self, stage: Stage, at: Instant) {
        self.timeline
            .add(stage, at.saturating_duration_since(self.start).as_secs_f64());
    }

    /// Feeds one chunk of the pod watch's body (as the stream yields it)
    /// through `lines`: each whole event line is observed with its
    /// Deployment's create request time from `sent` (indexed by the
    /// Deployment's number). A watch error or end is an error.
    pub fn observe_chunk<E: std::fmt::Display>(
        &mut self,
        chunk: Option<Result<bytes::Bytes, E>>,
        lines: &mut Lines,
        sent: &std::sync::Mutex<Vec<Option<Instant>>>,
    ) -> anyhow::Result<()> {
        let chunk = match chunk {
            Some(Ok(c)) => c,
            Some(Err(e)) => anyhow::bail!("reading the pod watch: {e}"),
            None => anyhow::bail!(
                "the pod watch ended with {} pods Running, {} Ready",
                self.running,
                self.ready
            ),
        };
        let (at, now) = (Instant::now(), SystemTime::now());
        for line in lines.push(chunk) {
            let Some(ev) = pod_event(&line) else { continue };
            let sent_at = sent.lock().ok().and_then(|m| m.get(ev.deployment).copied().flatten());
            self.observe(&ev, at, now, sent_at);
        }
        Ok(())
    }

    /// One pod event read at `at` (`now` on the wall clock), its
    /// Deployment's create request sent at `sent`.
    pub fn observe(&mut self, ev: &PodEvent, at: Instant, now: SystemTime, sent: Option<Instant>) {
        let secs = at.saturating_duration_since(self.start).as_secs_f64();
        let seen = self.pods.entry(ev.name.clone()).or_insert_with(|| {
            self.timeline.add(Stage::PodSeen, secs);
            Seen {
                first: at,
                bound: false,
                running: false,
                ready: false,
            }
        });
        if ev.bound && !seen.bound {
            seen.bound = true;
            self.timeline.add(Stage::Bound, secs);
        }
        if ev.running && !seen.running {
            seen.running = true;
            self.running += 1;
            self.last_running = at;
            self.timeline.add(Stage::Running, secs);
            self.watch_running.success(at.duration_since(seen.first));
            if let Some(sent) = sent {
                self.deployment_running.success(at.saturating_duration_since(sent));
            }
            if let Some(created) = ev.created_ms {
                let ms = (unix_ms(now) - created).max(0);
                self.slo.success(Duration::from_millis(ms.unsigned_abs()));
            }
        }
        if ev.ready && !seen.ready {
            seen.ready = true;
            self.ready += 1;
            self.last_ready = at;
            self.timeline.add(Stage::Ready, secs);
            self.watch_ready.success(at.duration_since(seen.first));
            if let Some(sent) = sent {
                self.deployment_ready.success(at.saturating_duration_since(sent));
            }
        }
    }

    /// Pods seen so far.
    pub fn seen(&self) -> usize {
        self.pods.len()
    }

    pub fn running(&self) -> usize {
        self.running
    }

    pub fn ready(&self) -> usize {
        self.ready
    }

    /// From the start to the last pod first seen Running.
    pub fn last_running_secs(&self) -> f64 {
        self.last_running.duration_since(self.start).as_secs_f64()
    }

    /// From the start to the last pod first seen Ready.
    pub fn last_ready_secs(&self) -> f64 {
        self.last_ready.duration_since(self.start).as_secs_f64()
    }

    pub fn figures(&self) -> StartupFigures {
        StartupFigures {
            slo: self.slo.summary(),
            watch_running: self.watch_running.summary(),
            watch_ready: self.watch_ready.summary(),
            deployment_running: self.deployment_running.summary(),
            deployment_ready: self.deployment_ready.summary(),
        }
    }

    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn line(kind: &str, node: &str, phase: &str, ready: &str) -> Vec<u8> {
        format!(
            r#"{{"type":"{kind}","object":{{"metadata":{{"name":"d-3-abc","creationTimestamp":"2026-12-06T10:00:00Z","labels":{{"app":"d-3"}}}},"spec":{{"nodeName":"{node}"}},"status":{{"phase":"{phase}","conditions":[{{"type":"Ready","status":"{ready}"}}]}}}}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn pod_events_are_read() {
        let ev = pod_event(&line("MODIFIED", "n1", "Running", "True")).unwrap();
        assert_eq!(ev.name, "d-3-abc");
        assert_eq!(ev.deployment, 3);
        assert_eq!(ev.created_ms, Some(1_796_551_200_000));
        assert!(ev.bound && ev.running && ev.ready);
        let pending = pod_event(&line("ADDED", "", "Pending", "False")).unwrap();
        assert!(!pending.bound && !pending.running && !pending.ready);
        assert_eq!(pod_event(&line("DELETED", "n1", "Running", "True")), None);
        let other = br#"{"type":"ADDED","object":{"metadata":{"name":"x","labels":{"app":"web"}}}}"#;
        assert_eq!(pod_event(other), None);
        let bookmark = br#"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"12"}}}"#;
        assert_eq!(pod_event(bookmark), None);
        assert_eq!(pod_event(b"garbage"), None);
    }

    #[test]
    fn stages_are_timed_once_per_pod() {
        let t0 = Instant::now();
        let created = UNIX_EPOCH + Duration::from_secs(1_796_551_200);
        let mut s = PodStages::new(t0, 1);
        let pending = pod_event(&line("ADDED", "", "Pending", "False")).unwrap();
        let bound = pod_event(&line("MODIFIED", "n1", "Pending", "False")).unwrap();
        let running = pod_event(&line("MODIFIED", "n1", "Running", "False")).unwrap();
        let ready = pod_event(&line("MODIFIED", "n1", "Running", "True")).unwrap();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let wall = |ms: u64| created + Duration::from_millis(ms);
        s.stage(Stage::DeploymentCreated, at(0));
        s.observe(&pending, at(100), wall(100), Some(t0));
        s.observe(&bound, at(1200), wall(1200), Some(t0));
        s.observe(&running, at(1300), wall(1300), Some(t0));
        s.observe(&running, at(1350), wall(1350), Some(t0));
        s.observe(&ready, at(2500), wall(2500), Some(t0));
        assert_eq!((s.seen(), s.running(), s.ready()), (1, 1, 1));
        let f = s.figures();
        assert!((f.slo.p50_ms - 1300.0).abs() < 2.0, "{f:?}");
        assert!((f.watch_running.p50_ms - 1200.0).abs() < 2.0, "{f:?}");
        assert!((f.watch_ready.p50_ms - 2400.0).abs() < 3.0, "{f:?}");
        assert!((f.deployment_ready.p50_ms - 2500.0).abs() < 3.0, "{f:?}");
        assert!((s.last_ready_secs() - 2.5).abs() < 1e-9);
        let md = s.timeline().markdown(10);
        // No ReplicaSet was followed: its column gives way to a note.
        assert!(
            md.starts_with("| s | Deployments created | pods seen | bound |"),
            "{md}"
        );
        assert!(md.contains("| 1 | 1 | 1 | 0 | 0 | 0 |"), "{md}");
        assert!(md.contains("| 3 | 1 | 1 | 1 | 1 | 1 |"), "{md}");
        assert!(md.ends_with("none happened): ReplicaSets seen."), "{md}");
        s.stage(Stage::ReplicaSetSeen, at(50));
        let md = s.timeline().markdown(10);
        assert!(md.contains("| 3 | 1 | 1 | 1 | 1 | 1 | 1 |"), "{md}");
        assert!(!md.contains("No events"), "{md}");
        assert!(
            f.markdown()
                .contains("| watch: pod first seen -> Running seen | 1200 |")
        );
    }

    #[test]
    fn long_timelines_are_bucketed() {
        let mut t = Timeline::default();
        for s in 0..100 {
            t.add(Stage::PodSeen, f64::from(s));
        }
        let md = t.markdown(10);
        let table: Vec<&str> = md.lines().take_while(|l| l.starts_with('|')).collect();
        assert_eq!(table.len(), 12, "{md}");
        assert_eq!(table[0], "| s | pods seen |", "{md}");
        assert_eq!(table[11], "| 100 | 100 |", "{md}");
        assert_eq!(Timeline::default().markdown(10), "");
    }
}
