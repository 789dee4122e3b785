//! Reserve, Permit and Unreserve in a real scheduling cycle
//! ([`Scheduler::schedule_one`]): a plugin that rejects at Permit, or fails
//! at Reserve, leaves the pod unbound, the assumed pod forgotten, every
//! Reserve plugin unreserved (in reverse order), and the pod back in the
//! queue. The client points at a closed port: the failure's event and
//! condition writes fail and are only logged, and no binding is attempted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Mutex;

use k8s_openapi::api::core::v1::Node;
use serde_json::json;

use super::*;
use crate::framework::{Code, Plugin, Point};
use crate::plugins::testing::pod;
use crate::queue::{Location, QueueConfig};

type Log = Arc<Mutex<Vec<String>>>;

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
    fn permit(&self, _state: &CycleState, _pod: &PodInfo, node: &str) -> Status {
        self.record("permit", node);
        verdict(self.permit, "not permitted")
    }
}

struct Run {
    log: Vec<String>,
    sched: Arc<Scheduler>,
    key: String,
    uid: String,
}

/// One cycle of pod `p` on the single node `n1` with plugins A (always
/// agrees) and B (answers `reserve` and `permit`).
async fn cycle(reserve: Code, permit: Code) -> Run {
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
    let p = Arc::new(pod("p", json!({}), json!({})));
    let (key, uid) = (p.key.clone(), p.uid.clone());
    let now = Instant::now();
    queue.add_or_update(p, &Status::success(), now);
    let qpi = queue.try_pop(now).expect("the pod is active");
    sched.schedule_one(qpi, &mut Snapshot::default(), &mut 0);
    let log = log.lock().unwrap().clone();
    Run { log, sched, key, uid }
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
        run.log,
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
        run.log,
        ["A reserve n1", "B reserve n1", "B unreserve n1", "A unreserve n1"]
    );
    assert!(!run.sched.cache().is_assumed(&run.uid));
    assert_eq!(run.sched.cache().pod_count(), 0);
    // An error, not a rejection: the pod backs off and is retried.
    assert_eq!(run.sched.queue.location(&run.key), Some(Location::Backoff));
    assert!(attempts(&run, "error") && !attempts(&run, "scheduled"));
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
    let s = fw.run_permit(&state, &p, "n1");
    assert_eq!(s.message(), r#"running Permit plugin "B": not permitted"#);
}
