//! Reserve, Permit and Unreserve in a real scheduling cycle
//! ([`Scheduler::schedule_one`]): a plugin that rejects at Permit, or fails
//! at Reserve, or holds the pod at Permit until it is rejected or its wait
//! runs out, leaves the pod unbound, the assumed pod forgotten, every
//! Reserve plugin unreserved (in reverse order), and the pod back in the
//! queue. The client points at a closed port: the failure's event and
//! condition writes fail and are only logged, and no binding is attempted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use serde_json::json;

use super::*;
use crate::framework::{Code, Plugin, Point};
use crate::plugins::testing::pod;
use crate::queue::{Location, QueueConfig};

type Log = Arc<Mutex<Vec<String>>>;

/// How long a Gate that answers Wait holds the pod.
const HOLD: Duration = Duration::from_millis(300);

/// A Reserve and Permit plugin that logs its calls and answers `reserve`
/// and `permit` with the given codes.
struct Gate {
    name: &'static str,
    reserve: Code,
    permit: Code,
    log: Log,
}

impl Gate {
    fn record(&self, what: &str, node: &str) {
        self.log.lock().unwrap().push(format!("{} {what} {node}", self.name));
    }
}

fn verdict(code: Code, reason: &str) -> Status {
    if code == Code::Success {
        Status::success()
    } else {
        Status::with(code, reason)
    }
}

impl Plugin for Gate {
    fn name(&self) -> &'static str {
        self.name
    }
    fn points(&self) -> &'static [Point] {
        &[Point::Reserve, Point::Permit]
    }
    fn reserve(&self, _state: &CycleState, _pod: &PodInfo, node: &str) -> Status {
        self.record("reserve", node);
        verdict(self.reserve, "no room reserved")
    }
    fn unreserve(&self, _state: &CycleState, _pod: &PodInfo, node: &str) {
        self.record("unreserve", node);
    }
    fn permit(&self, _state: &CycleState, _pod: &PodInfo, node: &str) -> (Status, Duration) {
        self.record("permit", node);
        (verdict(self.permit, "not permitted"), HOLD)
    }
}

struct Run {
    log: Log,
    sched: Arc<Scheduler>,
    key: String,
    uid: String,
}

/// One cycle of pod `p` on the single node `n1` with plugins A (always
/// agrees) and B (answers `reserve` and `permit`).
async fn cycle(reserve: Code, permit: Code) -> Run {
    cycle_with(reserve, permit, |_| {}).await
}

/// [`cycle`], with `before` run on the queue before `p` is added.
async fn cycle_with(reserve: Code, permit: Code, before: impl FnOnce(&SchedulingQueue)) -> Run {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = kube::Config::new(format!("http://{closed}").parse().unwrap());
    let client = Client::try_from(config).unwrap();
    let log = Log::default();
    let gate = |name: &'static str, reserve: Code, permit: Code| -> (Arc<dyn Plugin>, i64) {
        let g = Gate {
            name,
            reserve,
            permit,
            log: log.clone(),
        };
        (Arc::new(g), 0)
    };
    let fw = Framework::new(
        "default-scheduler",
        vec![gate("A", Code::Success, Code::Success), gate("B", reserve, permit)],
    );
    let queue = Arc::new(SchedulingQueue::new(QueueConfig::default()));
    let sched = Arc::new(Scheduler::new(
        client,
        [("default-scheduler".to_string(), fw)].into_iter().collect(),
        queue.clone(),
        Arc::new(Metrics::default()),
        "test".into(),
    ));
    let node: Node = serde_json::from_value(json!({"metadata": {"name": "n1"},
        "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}))
    .unwrap();
    sched.cache().add_or_update_node(Arc::new(node));
    before(&queue);
    let p = Arc::new(pod("p", json!({}), json!({})));
    let (key, uid) = (p.key.clone(), p.uid.clone());
    let now = Instant::now();
    queue.add_or_update(p, &Status::success(), now);
    let qpi = queue.try_pop(now).expect("the pod is active");
    sched.schedule_one(qpi, &mut Snapshot::default(), &mut 0);
    Run { log, sched, key, uid }
}

impl Run {
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits (a few seconds at most) until the pod is back in the queue.
    async fn requeued(&self) -> Location {
        for _ in 0..500 {
            match self.sched.queue.location(&self.key) {
                Some(Location::InFlight) | None => tokio::time::sleep(Duration::from_millis(10)).await,
                Some(l) => return l,
            }
        }
        panic!("the pod was not re-queued")
    }
}

fn attempts(run: &Run, result: &str) -> bool {
    run.sched.metrics.encode().contains(&format!(
        "scheduler_schedule_attempts_total{{profile=\"default-scheduler\",result=\"{result}\"}} 1"
    ))
}

#[tokio::test]
async fn a_permit_rejection_unreserves_forgets_and_requeues() {
    let run = cycle(Code::Success, Code::Unschedulable).await;
    assert_eq!(
        run.log(),
        [
            "A reserve n1",
            "B reserve n1",
            "A permit n1",
            "B permit n1",
            "B unreserve n1",
            "A unreserve n1"
        ]
    );
    let cache = run.sched.cache();
    assert!(!cache.is_assumed(&run.uid), "the assumed pod is forgotten");
    assert_eq!(cache.pod_count(), 0);
    drop(cache);
    // Rejected: back in the unschedulable pool until B's events (none) or
    // the periodic flush; never bound.
    assert_eq!(run.sched.queue.location(&run.key), Some(Location::Unschedulable));
    assert!(attempts(&run, "unschedulable") && !attempts(&run, "scheduled"));
    let mut rejected = Status::with(Code::Unschedulable, "not permitted");
    rejected.plugin = "B";
    assert_eq!(
        rejection_message("n1", rejected),
        "0/1 nodes are available: 1 not permitted."
    );
}

#[tokio::test]
async fn a_reserve_failure_unreserves_every_plugin_and_backs_off() {
    let run = cycle(Code::Error, Code::Success).await;
    // Permit never runs; Unreserve runs once on each Reserve plugin, B's
    // too, in reverse order.
    assert_eq!(
        run.log(),
        ["A reserve n1", "B reserve n1", "B unreserve n1", "A unreserve n1"]
    );
    assert!(!run.sched.cache().is_assumed(&run.uid));
    assert_eq!(run.sched.cache().pod_count(), 0);
    // An error, not a rejection: the pod backs off and is retried.
    assert_eq!(run.sched.queue.location(&run.key), Some(Location::Backoff));
    assert!(attempts(&run, "error") && !attempts(&run, "scheduled"));
}

#[tokio::test]
async fn a_held_pod_stays_assumed_until_rejected_then_is_requeued() {
    let run = cycle(Code::Success, Code::Wait).await;
    let fw = &run.sched.profiles["default-scheduler"];
    let waiting = fw.waiting_pods().get(&run.uid).expect("the pod waits at Permit");
    assert_eq!(waiting.pending_plugins(), ["B"]);
    // While held, the pod keeps its room on the node.
    assert!(run.sched.cache().is_assumed(&run.uid));
    assert_eq!(run.sched.queue.location(&run.key), Some(Location::InFlight));
    waiting.reject("B", "the rest of the group is missing");
    assert_eq!(run.requeued().await, Location::Unschedulable);
    assert_eq!(
        run.log(),
        [
            "A reserve n1",
            "B reserve n1",
            "A permit n1",
            "B permit n1",
            "B unreserve n1",
            "A unreserve n1"
        ]
    );
    assert!(!run.sched.cache().is_assumed(&run.uid));
    assert!(fw.waiting_pods().get(&run.uid).is_none());
    assert!(attempts(&run, "unschedulable") && !attempts(&run, "scheduled"));
}

#[tokio::test]
async fn a_held_pod_is_rejected_when_its_wait_runs_out() {
    let run = cycle(Code::Success, Code::Wait).await;
    // Nobody allows it: after HOLD, B's wait runs out.
    assert_eq!(run.requeued().await, Location::Unschedulable);
    assert!(
        run.log()
            .ends_with(&["B unreserve n1".to_string(), "A unreserve n1".to_string()])
    );
    assert!(!run.sched.cache().is_assumed(&run.uid));
}

#[tokio::test]
async fn waiting_pods_need_every_plugin_to_allow_and_time_out_per_plugin() {
    use crate::framework::waiting::WaitingPods;
    let pods = WaitingPods::default();
    let now = Instant::now();
    let hour = Duration::from_secs(3600);
    pods.add("u1", "p1", "n1", [("A", hour), ("B", hour)].into_iter().collect(), now);
    let p1 = pods.get("u1").unwrap();
    p1.allow("A");
    assert_eq!(p1.pending_plugins(), ["B"]);
    p1.allow("B");
    assert!(pods.wait_on_permit("u1").await.is_success());
    assert!(pods.get("u1").is_none(), "forgotten once decided");
    // A pod that is not held passes at once.
    assert!(pods.wait_on_permit("nobody").await.is_success());
    // B allows nothing: its 20 ms run out first (A's would be capped at
    // 15 minutes).
    let waits = [("A", Duration::from_secs(86_400)), ("B", Duration::from_millis(20))];
    pods.add("u2", "p2", "n1", waits.into_iter().collect(), Instant::now());
    let s = pods.wait_on_permit("u2").await;
    assert_eq!(
        (s.code, s.plugin, s.message()),
        (
            Code::Unschedulable,
            "B",
            "rejected due to timeout after waiting 20ms at plugin B".to_string()
        )
    );
}

#[test]
fn reserve_and_permit_errors_name_the_plugin() {
    let log = Log::default();
    let broken: Arc<dyn Plugin> = Arc::new(Gate {
        name: "B",
        reserve: Code::Error,
        permit: Code::Error,
        log,
    });
    let fw = Framework::new("default-scheduler", vec![(broken, 0)]);
    let p = pod("p", json!({}), json!({}));
    let state = CycleState::default();
    let s = fw.run_reserve(&state, &p, "n1");
    assert_eq!(
        (s.code, s.plugin, s.message()),
        (
            Code::Error,
            "B",
            r#"running Reserve plugin "B": no room reserved"#.to_string()
        )
    );
    let s = fw.run_permit(&state, &p, "n1", Instant::now());
    assert_eq!(s.message(), r#"running Permit plugin "B": not permitted"#);
}

/// A binding cycle that fails after its pod was assumed frees the pod's
/// room, so pods waiting in the unschedulable pool for an assigned pod to
/// go are moved, as upstream's handleBindingCycleError does; the failed
/// pod itself backs off.
#[tokio::test]
async fn a_failed_binding_moves_pods_waiting_for_room() {
    let waiter = Arc::new(pod("waiter", json!({}), json!({})));
    let waiter_key = waiter.key.clone();
    let run = {
        // Park "waiter" in the unschedulable pool first (rejected by
        // NodeResourcesFit, which cares about assigned pods going), then
        // run `p`, whose binding fails: the client points at a closed port.
        let run = cycle_with(Code::Success, Code::Success, |queue| {
            let now = Instant::now();
            queue.add_or_update(waiter.clone(), &Status::success(), now);
            let qpi = queue.try_pop(now).expect("the waiter is active");
            queue.requeue(&qpi, ["NodeResourcesFit"].into_iter().collect(), true, now);
            assert_eq!(queue.location(&waiter_key), Some(Location::Unschedulable));
        })
        .await;
        assert_eq!(run.requeued().await, Location::Backoff);
        run
    };
    assert!(attempts(&run, "error") && !attempts(&run, "scheduled"));
    assert_ne!(
        run.sched.queue.location(&waiter_key),
        Some(Location::Unschedulable),
        "the freed room did not move the waiting pod"
    );
}
