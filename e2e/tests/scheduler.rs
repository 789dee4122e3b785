//! The scheduler (run in-process) against the real apiserver binary, with
//! simulated nodes (`rkube_e2e::simnodes`) playing the kubelets: pods land
//! where nodeSelector and taints say, required anti-affinity spreads
//! replicas one per node, topology spread keeps zones within maxSkew from
//! an uneven start (and leaves a pod that would break it Pending), an
//! unschedulable pod shows upstream's FailedScheduling message and
//! condition and is scheduled once a fitting node appears, and a
//! high-priority pod preempts a lower-priority one (nominated first; the
//! victim gets DisruptionTarget and a Preempted event). The binary: health,
//! metrics, and two instances on one Lease, of which only the leader binds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, ResourceExt};
use rkube_e2e::cluster::{Backend, TestCluster, free_port};
use rkube_e2e::simnodes::{SimConfig, SimNodes, parse_taint};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(15);

/// A cluster with a scheduler running in-process; stops it on drop.
struct Env {
    _cluster: TestCluster,
    client: Client,
    scheduler: tokio::task::JoinHandle<()>,
    sims: Vec<SimNodes>,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.scheduler.abort();
    }
}

async fn env(sims: Vec<SimConfig>) -> Env {
    let cluster = TestCluster::start(Backend::Embedded).await.expect("cluster starts");
    let kubeconfig = Kubeconfig::read_from(cluster.kubeconfig()).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    let client = Client::try_from(config).unwrap();
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "sched"}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let mut started = Vec::new();
    for cfg in sims {
        started.push(
            SimNodes::start(client.clone(), cfg)
                .await
                .expect("simulated nodes start"),
        );
    }
    let scheduler = start_scheduler(&client);
    Env {
        _cluster: cluster,
        client,
        scheduler,
        sims: started,
    }
}

fn start_scheduler(client: &Client) -> tokio::task::JoinHandle<()> {
    let client = client.clone();
    tokio::spawn(async move {
        let cfg = rkube_scheduler::KubeSchedulerConfiguration::default();
        let metrics = Arc::new(rkube_scheduler::Metrics::default());
        if let Err(e) = rkube_scheduler::run_with_client(client, cfg, metrics).await {
            panic!("scheduler stopped: {e}");
        }
    })
}

fn sim(prefix: &str, first_index: usize, count: usize) -> SimConfig {
    SimConfig {
        count,
        name_prefix: prefix.into(),
        first_index,
        lease_interval: Duration::from_secs(5),
        ..SimConfig::default()
    }
}

fn pod(name: &str, labels: Value, spec: Value) -> Pod {
    let mut spec = spec;
    if spec.get("containers").is_none() {
        spec["containers"] = json!([{"name": "app", "image": "registry.k8s.io/pause:3.10",
                                      "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]);
    }
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}, "spec": spec})).unwrap()
}

async fn create(client: &Client, pods: Vec<Pod>) {
    let api: Api<Pod> = Api::namespaced(client.clone(), "sched");
    for p in pods {
        api.create(&PostParams::default(), &p).await.unwrap();
    }
}

/// Polls until `f` returns `Some`, or fails after `WAIT` with `what`.
async fn wait_for<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Node of each pod, once all `names` are bound.
async fn placements(client: &Client, names: &[&str]) -> BTreeMap<String, String> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "sched");
    wait_for("pods to be bound", || {
        let api = api.clone();
        async move {
            let list = api.list(&ListParams::default()).await.ok()?;
            let bound: BTreeMap<String, String> = list
                .items
                .iter()
                .filter_map(|p| Some((p.name_any(), p.spec.as_ref()?.node_name.clone()?)))
                .collect();
            names.iter().all(|n| bound.contains_key(*n)).then_some(bound)
        }
    })
    .await
}

/// Waits until there are events with `reason` about pod `pod` (namespace
/// `sched`), and returns them in list order.
async fn events_about(client: &Client, reason: &str, pod: &str) -> Vec<Event> {
    let events: Api<Event> = Api::namespaced(client.clone(), "sched");
    wait_for(&format!("a {reason} event about {pod}"), || {
        let events = events.clone();
        async move {
            let list = events.list(&ListParams::default()).await.ok()?;
            let found: Vec<Event> = list
                .items
                .into_iter()
                .filter(|e| {
                    e.reason.as_deref() == Some(reason)
                        && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(pod)
                })
                .collect();
            (!found.is_empty()).then_some(found)
        }
    })
    .await
}

/// The message of the pod's latest FailedScheduling event.
async fn failed_scheduling(client: &Client, pod: &str) -> String {
    let mut notes = events_about(client, "FailedScheduling", pod)
        .await
        .into_iter()
        .filter_map(|e| e.note);
    notes.next_back().expect("a FailedScheduling event with a message")
}

#[tokio::test]
async fn node_selector_and_taints_decide_placement() {
    let mut ssd = sim("ssd-", 0, 1);
    ssd.labels.insert("disk".into(), "ssd".into());
    let mut gpu = sim("gpu-", 10, 1);
    gpu.taints.push(parse_taint("dedicated=gpu:NoSchedule").unwrap());
    let e = env(vec![ssd, gpu, sim("plain-", 20, 1)]).await;

    let mut pods = vec![pod("wants-ssd", json!({}), json!({"nodeSelector": {"disk": "ssd"}}))];
    for i in 0..4 {
        pods.push(pod(&format!("plain-{i}"), json!({}), json!({})));
    }
    pods.push(pod(
        "gpu-job",
        json!({}),
        json!({
            "nodeSelector": {"kubernetes.io/hostname": "gpu-10"},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}],
        }),
    ));
    create(&e.client, pods).await;
    let names = ["wants-ssd", "plain-0", "plain-1", "plain-2", "plain-3", "gpu-job"];
    let placed = placements(&e.client, &names).await;
    assert_eq!(placed["wants-ssd"], "ssd-0");
    assert_eq!(placed["gpu-job"], "gpu-10");
    for i in 0..4 {
        assert_ne!(placed[&format!("plain-{i}")], "gpu-10", "{placed:?}");
    }

    // The simulated kubelet runs it: Running, Ready, an IP from the node's
    // podCIDR (gpu-10 owns 10.64.10.0/24).
    let api: Api<Pod> = Api::namespaced(e.client.clone(), "sched");
    let running = wait_for("gpu-job to run", || {
        let api = api.clone();
        async move {
            let p = api.get("gpu-job").await.ok()?;
            (p.status.as_ref()?.phase.as_deref() == Some("Running")).then_some(p)
        }
    })
    .await;
    let status = running.status.unwrap();
    assert!(status.pod_ip.as_deref().unwrap().starts_with("10.64.10."), "{status:?}");
    let ready = status
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "True");
    assert_eq!(e.sims.len(), 3);
    let scheduled = events_about(&e.client, "Scheduled", "gpu-job").await.remove(0);
    assert_eq!(
        scheduled.note.as_deref(),
        Some("Successfully assigned sched/gpu-job to gpu-10")
    );
    assert_eq!(scheduled.reporting_controller.as_deref(), Some("default-scheduler"));
}

#[tokio::test]
async fn required_anti_affinity_spreads_replicas_one_per_node() {
    let e = env(vec![sim("n-", 0, 3)]).await;
    let anti = json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}
    ]}}});
    let pods = (0..4)
        .map(|i| pod(&format!("web-{i}"), json!({"app": "web"}), anti.clone()))
        .collect();
    create(&e.client, pods).await;
    // Three land, on three different nodes; the fourth cannot.
    let api: Api<Pod> = Api::namespaced(e.client.clone(), "sched");
    let (bound, pending) = wait_for("three replicas bound", || {
        let api = api.clone();
        async move {
            let list = api.list(&ListParams::default()).await.ok()?;
            let (bound, pending): (Vec<Pod>, Vec<Pod>) = list
                .items
                .into_iter()
                .partition(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some());
            (bound.len() == 3).then_some((bound, pending))
        }
    })
    .await;
    let mut nodes: Vec<String> = bound
        .iter()
        .map(|p| p.spec.as_ref().unwrap().node_name.clone().unwrap())
        .collect();
    nodes.sort();
    nodes.dedup();
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    let last = pending[0].name_any();
    assert_eq!(
        failed_scheduling(&e.client, &last).await,
        "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. \
         preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
    );
}

#[tokio::test]
async fn topology_spread_keeps_zones_within_max_skew() {
    // zone-a: two big nodes (LeastAllocated alone would pile pods there);
    // zone-b and zone-c: one small node each (room for two pods).
    let mut big = sim("big-", 0, 2);
    big.zones = vec!["zone-a".into()];
    big.cpu = "16".into();
    let mut small = sim("small-", 10, 2);
    small.zones = vec!["zone-b".into(), "zone-c".into()];
    small.cpu = "2".into();
    let e = env(vec![big, small]).await;
    let zone_of = |node: &str| match node {
        "big-0" | "big-1" => "zone-a",
        "small-10" => "zone-b",
        "small-11" => "zone-c",
        other => panic!("unknown node {other}"),
    };
    // An uneven start: two matching pods already run in zone-a (placed
    // by name, without the constraint).
    let pinned: Vec<Pod> = (0..2)
        .map(|i| {
            pod(
                &format!("pinned-{i}"),
                json!({"app": "spread"}),
                json!({"nodeName": "big-0"}),
            )
        })
        .collect();
    create(&e.client, pinned).await;
    let spread = json!({
        "topologySpreadConstraints": [{
            "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "spread"}},
        }],
        "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
                        "resources": {"requests": {"cpu": "1", "memory": "64Mi"}}}],
    });
    // Zones (a, b, c) go (2, 0, 0) -> (2, 2, 2) -> (3, 2, 2); the sixth
    // pod fits only in zone-a, where it would make the skew 2.
    let names: Vec<String> = (0..6).map(|i| format!("s-{i}")).collect();
    let pods = names
        .iter()
        .map(|n| pod(n, json!({"app": "spread"}), spread.clone()))
        .collect();
    create(&e.client, pods).await;
    let api: Api<Pod> = Api::namespaced(e.client.clone(), "sched");
    let (bound, pending) = wait_for("seven matching pods bound", || {
        let api = api.clone();
        async move {
            let list = api.list(&ListParams::default().labels("app=spread")).await.ok()?;
            let (bound, pending): (Vec<Pod>, Vec<Pod>) = list
                .items
                .into_iter()
                .partition(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some());
            (bound.len() == 7).then_some((bound, pending))
        }
    })
    .await;
    let mut per_zone: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &bound {
        *per_zone
            .entry(zone_of(p.spec.as_ref().unwrap().node_name.as_deref().unwrap()))
            .or_default() += 1;
    }
    assert_eq!(
        per_zone,
        BTreeMap::from([("zone-a", 3), ("zone-b", 2), ("zone-c", 2)]),
        "skew <= maxSkew from an uneven start"
    );
    assert_eq!(pending.len(), 1);
    let last = pending[0].name_any();
    let message = failed_scheduling(&e.client, &last).await;
    assert!(
        message.starts_with(
            "0/4 nodes are available: 2 Insufficient cpu, 2 node(s) didn't match pod topology spread constraints. \
             preemption: "
        ),
        "{message}"
    );
    // It stays Pending: nothing changes that could let it in.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let still = api.get(&last).await.unwrap();
    assert_eq!(still.spec.unwrap().node_name, None);
}

#[tokio::test]
async fn unschedulable_pod_reports_why_and_runs_once_a_node_fits() {
    let mut small = sim("small-", 0, 1);
    small.cpu = "1".into();
    let mut tainted = sim("tainted-", 10, 2);
    tainted.taints.push(parse_taint("key=value:NoSchedule").unwrap());
    let mut e = env(vec![small, tainted]).await;
    let big = json!({"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
                                     "resources": {"requests": {"cpu": "2"}}}]});
    create(&e.client, vec![pod("big", json!({}), big)]).await;
    let message = failed_scheduling(&e.client, "big").await;
    assert_eq!(
        message,
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {key: value}. \
         preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    );
    // kubectl describe reads the same event through core/v1.
    let core: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(e.client.clone(), "sched");
    let listed = core
        .list(&ListParams::default().fields("involvedObject.name=big,involvedObject.kind=Pod"))
        .await
        .unwrap();
    let failed = listed
        .items
        .iter()
        .find(|ev| ev.reason.as_deref() == Some("FailedScheduling"))
        .unwrap();
    assert_eq!(failed.message.as_deref(), Some(message.as_str()));
    assert_eq!(failed.type_.as_deref(), Some("Warning"));
    let api: Api<Pod> = Api::namespaced(e.client.clone(), "sched");
    let cond = wait_for("PodScheduled=False", || {
        let api = api.clone();
        async move {
            let p = api.get("big").await.ok()?;
            let c = p.status?.conditions?.into_iter().find(|c| c.type_ == "PodScheduled")?;
            (c.status == "False").then_some(c)
        }
    })
    .await;
    assert_eq!(cond.reason.as_deref(), Some("Unschedulable"));
    assert_eq!(cond.message.as_deref(), Some(message.as_str()));

    // An update of the pod retries it; the same failure continues the
    // event as a series (client-go's isomorphic events).
    api.patch(
        "big",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"metadata": {"labels": {"retry": "1"}}})),
    )
    .await
    .unwrap();
    let events: Api<Event> = Api::namespaced(e.client.clone(), "sched");
    wait_for("a FailedScheduling series", || {
        let events = events.clone();
        async move {
            let list = events.list(&ListParams::default()).await.ok()?;
            let failed: Vec<&Event> = list
                .items
                .iter()
                .filter(|ev| ev.reason.as_deref() == Some("FailedScheduling"))
                .collect();
            assert_eq!(failed.len(), 1, "one event, continued as a series");
            (failed[0].series.as_ref()?.count == 2).then_some(())
        }
    })
    .await;
    // A node that fits appears: the node-add event moves the pod back.
    let mut large = sim("large-", 20, 1);
    large.cpu = "8".into();
    e.sims.push(SimNodes::start(e.client.clone(), large).await.unwrap());
    let placed = placements(&e.client, &["big"]).await;
    assert_eq!(placed["big"], "large-20");
    // Binding turns the condition True.
    wait_for("PodScheduled=True", || {
        let api = api.clone();
        async move {
            let p = api.get("big").await.ok()?;
            let c = p.status?.conditions?.into_iter().find(|c| c.type_ == "PodScheduled")?;
            (c.status == "True").then_some(())
        }
    })
    .await;
}

#[tokio::test]
async fn high_priority_pod_preempts_a_lower_priority_one() {
    let mut one = sim("p-", 0, 1);
    one.cpu = "2".into();
    let e = env(vec![one]).await;
    // Priority comes from PriorityClasses through the apiserver's Priority
    // admission, as upstream (a pod may not set spec.priority itself).
    let classes: Api<k8s_openapi::api::scheduling::v1::PriorityClass> = Api::all(e.client.clone());
    for (name, value) in [("low-prio", 1), ("high-prio", 1000)] {
        let class = serde_json::from_value(json!({"metadata": {"name": name}, "value": value})).unwrap();
        classes.create(&Default::default(), &class).await.unwrap();
    }
    let with = |cpu: &str, class: &str| {
        json!({"priorityClassName": class, "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
               "resources": {"requests": {"cpu": cpu}}}]})
    };
    create(&e.client, vec![pod("low", json!({}), with("1500m", "low-prio"))]).await;
    placements(&e.client, &["low"]).await;
    // Watch every change from here on, in order, until the preemptor is
    // bound.
    let api: Api<Pod> = Api::namespaced(e.client.clone(), "sched");
    let from = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let watching = {
        use futures::TryStreamExt;
        use kube::api::{WatchEvent, WatchParams};
        let api = api.clone();
        tokio::spawn(async move {
            // From `from`: nothing after it is missed, whenever this runs.
            let stream = api.watch(&WatchParams::default().timeout(60), &from).await.unwrap();
            futures::pin_mut!(stream);
            let mut seen: Vec<Pod> = Vec::new();
            while let Some(ev) = stream.try_next().await.unwrap() {
                let p = match ev {
                    WatchEvent::Added(p) | WatchEvent::Modified(p) | WatchEvent::Deleted(p) => p,
                    _ => continue,
                };
                let bound = p.name_any() == "high" && p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
                seen.push(p);
                if bound {
                    break;
                }
            }
            seen
        })
    };
    create(&e.client, vec![pod("high", json!({}), with("1", "high-prio"))]).await;
    let placed = placements(&e.client, &["high"]).await;
    assert_eq!(placed["high"], "p-0");
    assert!(api.get_opt("low").await.unwrap().is_none(), "the victim is gone");
    let seen = tokio::time::timeout(WAIT, watching).await.unwrap().unwrap();
    // The preemptor was nominated to the victim's node before it was bound.
    let high: Vec<&Pod> = seen.iter().filter(|p| p.name_any() == "high").collect();
    let bound_at = high
        .iter()
        .position(|p| p.spec.as_ref().unwrap().node_name.is_some())
        .unwrap();
    assert!(
        high[..bound_at]
            .iter()
            .any(|p| p.status.as_ref().and_then(|s| s.nominated_node_name.as_deref()) == Some("p-0")),
        "status.nominatedNodeName=p-0 before the binding: {:?}",
        high.iter()
            .map(|p| p.status.as_ref().map(|s| &s.nominated_node_name))
            .collect::<Vec<_>>()
    );
    // The victim was marked with upstream's DisruptionTarget condition
    // before it went.
    let target = seen
        .iter()
        .filter(|p| p.name_any() == "low")
        .filter_map(|p| p.status.as_ref()?.conditions.as_ref())
        .flatten()
        .find(|c| c.type_ == "DisruptionTarget")
        .expect("a DisruptionTarget condition on the victim");
    assert_eq!(
        (target.status.as_str(), target.reason.as_deref()),
        ("True", Some("PreemptionByScheduler"))
    );
    assert_eq!(
        target.message.as_deref(),
        Some("default-scheduler: preempting to accommodate a higher priority pod")
    );
    // And a Preempted event names the preemptor and the node.
    let high_uid = high[0].metadata.uid.clone().unwrap();
    let preempted = events_about(&e.client, "Preempted", "low").await.remove(0);
    assert_eq!(
        preempted.note.as_deref(),
        Some(format!("Preempted by pod {high_uid} on node p-0").as_str())
    );
    assert_eq!(preempted.type_.as_deref(), Some("Normal"));
}

#[tokio::test]
async fn leader_election_lets_one_instance_lead() {
    use rkube_scheduler::leader_election::LeaderElection;
    let e = env(vec![]).await;
    let elector = |id: &str| LeaderElection {
        lease_duration: Duration::from_secs(1),
        ..LeaderElection::new(id.into())
    };
    let (a, b) = (elector("a"), elector("b"));
    assert!(a.try_acquire_or_renew(&e.client).await.unwrap());
    assert!(
        !b.try_acquire_or_renew(&e.client).await.unwrap(),
        "a holds a fresh lease"
    );
    assert!(a.try_acquire_or_renew(&e.client).await.unwrap(), "a renews");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(b.try_acquire_or_renew(&e.client).await.unwrap(), "a's lease expired");
    let lease = Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(e.client.clone(), "kube-system")
        .get("kube-scheduler")
        .await
        .unwrap();
    let spec = lease.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("b"));
    assert_eq!(spec.lease_transitions, Some(1));
}

/// scheduler_perf-style run end to end (not a timed test):
/// `RKUBE_BENCH_NODES` simulated nodes (default 1000), `RKUBE_BENCH_PODS`
/// pending pods (default 5000) created before the scheduler starts, shaped
/// by `RKUBE_BENCH_WORKLOAD`: `basic` (SchedulingBasic), `anti-affinity`
/// (preferred anti-affinity by hostname within groups of 10 pods) or
/// `spread` (DoNotSchedule zone spread, maxSkew 1, over 3 zones); prints
/// pods/s from the scheduler's start to the last bind seen. Run with
/// `cargo nextest run -p rkube-e2e --test scheduler --run-ignored only --no-capture`
/// (after `cargo build -p rkube-apiserver`; `--release` builds for real
/// numbers).
#[tokio::test]
#[ignore]
async fn scheduling_basic_end_to_end() {
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, watcher};
    let var = |k: &str, d: usize| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let (nodes, pods) = (var("RKUBE_BENCH_NODES", 1000), var("RKUBE_BENCH_PODS", 5000));
    let workload = std::env::var("RKUBE_BENCH_WORKLOAD").unwrap_or_else(|_| "basic".into());
    let shape = move |i: usize| -> (Value, Value) {
        let group = format!("g{}", i / 10);
        match workload.as_str() {
            "anti-affinity" => (
                json!({"group": group}),
                json!({"affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {"group": group}},
                                                        "topologyKey": "kubernetes.io/hostname"}}
                ]}}}),
            ),
            "spread" => (
                json!({"app": "spread"}),
                json!({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "spread"}}}]}),
            ),
            _ => (json!({}), json!({})),
        }
    };
    let mut cfg = sim("bench-", 0, nodes);
    cfg.zones = vec!["zone-a".into(), "zone-b".into(), "zone-c".into()];
    cfg.lease_interval = Duration::from_secs(3600);
    cfg.status_interval = Duration::from_secs(3600);
    cfg.cpu = "32".into();
    cfg.memory = "128Gi".into();
    let mut e = env(vec![cfg]).await;
    e.scheduler.abort();
    let api: Api<Pod> = Api::namespaced(e.client.clone(), "sched");
    let created = Instant::now();
    futures::stream::iter(0..pods)
        .map(|i| {
            let api = api.clone();
            let (labels, spec) = shape(i);
            async move {
                api.create(&PostParams::default(), &pod(&format!("p-{i}"), labels, spec))
                    .await
            }
        })
        .buffer_unordered(32)
        .for_each(|r| async move {
            r.unwrap();
        })
        .await;
    println!("created {pods} pods in {:.1}s", created.elapsed().as_secs_f64());
    let start = Instant::now();
    e.scheduler = start_scheduler(&e.client);
    let stream = watcher(api, watcher::Config::default()).applied_objects();
    futures::pin_mut!(stream);
    let mut bound = std::collections::HashSet::new();
    while let Some(Ok(p)) = stream.next().await {
        if p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some() {
            bound.insert(p.name_any());
            if bound.len() == pods {
                break;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{nodes} nodes: bound {pods} pods in {secs:.1}s = {:.0} pods/s",
        pods as f64 / secs
    );
}

#[tokio::test]
async fn simulated_nodes_keep_leases_and_inject_failures() {
    use k8s_openapi::api::coordination::v1::Lease;
    use kube::api::DeleteParams;
    use rkube_e2e::simnodes::pods::{EXIT_AFTER_ANNOTATION, EXIT_CODE_ANNOTATION, START_FAILURE_ANNOTATION};
    let mut cfg = sim("f-", 0, 1);
    cfg.lease_interval = Duration::from_millis(300);
    let e = env(vec![cfg]).await;
    let leases: Api<Lease> = Api::namespaced(e.client.clone(), "kube-node-lease");
    let renew = || async {
        let l = leases.get("f-0").await.unwrap();
        let spec = l.spec.unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("f-0"));
        assert_eq!(l.metadata.owner_references.unwrap()[0].kind, "Node");
        spec.renew_time.unwrap().0
    };
    let first = renew().await;
    wait_for("a lease renewal", || async { (renew().await > first).then_some(()) }).await;
    e.sims[0].set_down("f-0", true);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let stopped = renew().await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(renew().await, stopped, "a down node does not renew");
    e.sims[0].set_down("f-0", false);

    let annotated = |name: &str, annotations: Value| {
        let mut p = pod(name, json!({}), json!({"restartPolicy": "Never"}));
        p.metadata.annotations = serde_json::from_value(annotations).unwrap();
        p
    };
    create(
        &e.client,
        vec![
            annotated(
                "crash",
                json!({EXIT_AFTER_ANNOTATION: "0.2", EXIT_CODE_ANNOTATION: "3"}),
            ),
            annotated("stuck", json!({START_FAILURE_ANNOTATION: "ImagePullBackOff"})),
            pod("doomed", json!({}), json!({})),
        ],
    )
    .await;
    let api: Api<Pod> = Api::namespaced(e.client.clone(), "sched");
    let phase_of = |name: &'static str, want: &'static str| {
        let api = api.clone();
        async move {
            wait_for(&format!("{name} to be {want}"), || {
                let api = api.clone();
                async move {
                    let p = api.get(name).await.ok()?;
                    (p.status.as_ref()?.phase.as_deref() == Some(want)).then_some(p)
                }
            })
            .await
        }
    };
    let crashed = phase_of("crash", "Failed").await;
    let state = crashed.status.unwrap().container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap();
    assert_eq!(state.terminated.unwrap().exit_code, 3);
    let stuck = wait_for("stuck to report its waiting reason", || {
        let api = api.clone();
        async move {
            let p = api.get("stuck").await.ok()?;
            let cs = p.status?.container_statuses?;
            cs[0].state.as_ref()?.waiting.as_ref()?.reason.clone()
        }
    })
    .await;
    assert_eq!(stuck, "ImagePullBackOff");
    phase_of("doomed", "Running").await;
    api.delete("doomed", &DeleteParams::default()).await.unwrap();
    wait_for("doomed to be gone", || {
        let api = api.clone();
        async move { api.get_opt("doomed").await.ok()?.is_none().then_some(()) }
    })
    .await;
}

/// The `rkube-scheduler` binary `cargo build` left beside the tests.
fn scheduler_bin() -> std::path::PathBuf {
    let bin = rkube_e2e::cluster::target_dir().unwrap().join("rkube-scheduler");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p rkube-scheduler`",
        bin.display()
    );
    bin
}

#[tokio::test]
async fn the_binary_schedules_and_serves_health_and_metrics() {
    let e = env(vec![sim("bin-", 0, 1)]).await;
    e.scheduler.abort();
    let bin = scheduler_bin();
    let config = e._cluster.data_dir().join("scheduler.yaml");
    std::fs::write(
        &config,
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles:\n- schedulerName: default-scheduler\n- schedulerName: other-scheduler\n",
    )
    .unwrap();
    let port = free_port().unwrap();
    let mut child = std::process::Command::new(&bin)
        .arg("--kubeconfig")
        .arg(e._cluster.kubeconfig())
        .arg("--config")
        .arg(&config)
        .args([
            "--bind-address",
            "127.0.0.1",
            "--secure-port",
            &port.to_string(),
            "--leader-elect=true",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    create(
        &e.client,
        vec![pod("by-binary", json!({}), json!({"schedulerName": "other-scheduler"}))],
    )
    .await;
    let placed = placements(&e.client, &["by-binary"]).await;
    let curl = |path: &str| {
        let out = std::process::Command::new("curl")
            .args(["-sf", "--max-time", "2", &format!("http://127.0.0.1:{port}{path}")])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let health = curl("/healthz");
    // The bind's metrics are recorded once its response is in: poll.
    let deadline = Instant::now() + WAIT;
    let metrics = loop {
        let m = curl("/metrics");
        if m.contains("scheduler_pod_scheduling_sli_duration_seconds_count") || Instant::now() > deadline {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(placed["by-binary"], "bin-0");
    assert_eq!(health, "ok");
    for line in [
        r#"scheduler_schedule_attempts_total{profile="other-scheduler",result="scheduled"} 1"#,
        // Upstream's SLI latency, by the attempts the pod took.
        r#"scheduler_pod_scheduling_sli_duration_seconds_count{attempts="1"} 1"#,
        "scheduler_pod_scheduling_attempts_count 1",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    let lease = Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(e.client.clone(), "kube-system")
        .get("kube-scheduler")
        .await
        .unwrap();
    assert!(lease.spec.unwrap().holder_identity.is_some());
}

/// A child process killed (and reaped) on drop, so a failing test leaves
/// no scheduler behind.
struct Process(std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_get(port: u16, path: &str) -> String {
    let out = std::process::Command::new("curl")
        .args(["-sf", "--max-time", "2", &format!("http://127.0.0.1:{port}{path}")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The instance that reported the pod's Scheduled event.
async fn scheduled_by(client: &Client, pod: &str) -> String {
    let events = events_about(client, "Scheduled", pod).await;
    events
        .into_iter()
        .find_map(|e| e.reporting_instance)
        .expect("a Scheduled event with a reporting instance")
}

#[tokio::test]
async fn a_standby_scheduler_binds_nothing_until_the_leader_stops() {
    let e = env(vec![sim("le-", 0, 1)]).await;
    e.scheduler.abort();
    let bin = scheduler_bin();
    // Two scheduler processes on one Lease, with short lease timings.
    let start = |port: u16| {
        let child = std::process::Command::new(&bin)
            .arg("--kubeconfig")
            .arg(e._cluster.kubeconfig())
            .args([
                "--bind-address",
                "127.0.0.1",
                "--secure-port",
                &port.to_string(),
                "--leader-elect=true",
                "--leader-elect-lease-duration=2s",
                "--leader-elect-renew-deadline=1500ms",
                "--leader-elect-retry-period=200ms",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        Process(child)
    };
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(e.client.clone(), "kube-system");
    let holder = || async {
        let lease = leases.get_opt("kube-scheduler").await.ok()??;
        lease.spec?.holder_identity
    };
    let (port_a, port_b) = (free_port().unwrap(), free_port().unwrap());
    let mut a = start(port_a);
    let a_suffix = format!("_{}", a.0.id());
    let a_id = wait_for("the first instance to lead", || async {
        holder().await.filter(|h| h.ends_with(&a_suffix))
    })
    .await;
    let b = start(port_b);
    let b_suffix = format!("_{}", b.0.id());
    wait_for("the standby to serve /healthz", || async {
        (http_get(port_b, "/healthz") == "ok").then_some(())
    })
    .await;

    // While the leader holds the Lease, it binds and the standby does not.
    create(&e.client, vec![pod("first", json!({}), json!({}))]).await;
    assert_eq!(placements(&e.client, &["first"]).await["first"], "le-0");
    assert_eq!(scheduled_by(&e.client, "first").await, a_id);
    let standby = http_get(port_b, "/metrics");
    assert!(
        standby.contains("scheduler_pod_scheduling_attempts_count 0"),
        "the standby bound nothing: {standby}"
    );
    assert!(
        !standby.contains("scheduler_schedule_attempts_total{"),
        "the standby attempted nothing: {standby}"
    );
    assert_eq!(holder().await.as_deref(), Some(a_id.as_str()));

    // The leader dies without releasing the Lease: once it expires, the
    // standby takes over and schedules.
    let _ = a.0.kill();
    let _ = a.0.wait();
    create(&e.client, vec![pod("second", json!({}), json!({}))]).await;
    assert_eq!(placements(&e.client, &["second"]).await["second"], "le-0");
    let b_id = scheduled_by(&e.client, "second").await;
    assert!(b_id.ends_with(&b_suffix), "{b_id}");
    let lease = leases.get("kube-scheduler").await.unwrap().spec.unwrap();
    assert_eq!(lease.holder_identity.as_deref(), Some(b_id.as_str()));
    assert_eq!(lease.lease_transitions, Some(1));
    let metrics = http_get(port_b, "/metrics");
    assert!(
        metrics.contains(r#"scheduler_schedule_attempts_total{profile="default-scheduler",result="scheduled"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn pods_wait_for_their_persistent_volume_claims() {
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    let e = env(vec![sim("v-", 0, 1)]).await;
    create(
        &e.client,
        vec![pod(
            "needs-data",
            json!({}),
            json!({"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]}),
        )],
    )
    .await;
    assert_eq!(
        failed_scheduling(&e.client, "needs-data").await,
        "0/1 nodes are available: persistentvolumeclaim \"data\" not found. \
         preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
    );
    // The claim appears, bound (as the PV controller leaves it): the
    // storage event moves the pod and it lands.
    let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": "data", "annotations": {"pv.kubernetes.io/bind-completed": "yes"}},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "volumeName": "pv-1"},
    }))
    .unwrap();
    Api::<PersistentVolumeClaim>::namespaced(e.client.clone(), "sched")
        .create(&PostParams::default(), &pvc)
        .await
        .unwrap();
    let pv: k8s_openapi::api::core::v1::PersistentVolume = serde_json::from_value(json!({
        "metadata": {"name": "pv-1"},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/tmp/pv-1"},
                 "claimRef": {"namespace": "sched", "name": "data"}},
    }))
    .unwrap();
    Api::<k8s_openapi::api::core::v1::PersistentVolume>::all(e.client.clone())
        .create(&PostParams::default(), &pv)
        .await
        .unwrap();
    let placed = placements(&e.client, &["needs-data"]).await;
    assert_eq!(placed["needs-data"], "v-0");
}

#[tokio::test]
async fn a_pod_waiting_on_affinity_runs_once_its_peer_lands() {
    let e = env(vec![sim("a-", 0, 2)]).await;
    // The follower needs a leader on its node; it is created first, fails,
    // and must be retried when the leader is bound.
    let follower = json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"role": "leader"}}, "topologyKey": "kubernetes.io/hostname"}
    ]}}});
    create(&e.client, vec![pod("follower", json!({"role": "follower"}), follower)]).await;
    assert_eq!(
        failed_scheduling(&e.client, "follower").await,
        "0/2 nodes are available: 2 node(s) didn't match pod affinity rules. \
         preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    );
    create(&e.client, vec![pod("leader", json!({"role": "leader"}), json!({}))]).await;
    let placed = placements(&e.client, &["leader", "follower"]).await;
    assert_eq!(placed["leader"], placed["follower"]);
}

#[tokio::test]
async fn csi_attach_limits_spread_volumes_and_turn_away_the_extra_pod() {
    use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
    use k8s_openapi::api::storage::v1::{CSIDriver, CSINode};
    let e = env(vec![sim("l-", 0, 2)]).await;
    let driver = "csi.example.com";
    let drivers: Api<CSIDriver> = Api::all(e.client.clone());
    let d: CSIDriver =
        serde_json::from_value(json!({"metadata": {"name": driver}, "spec": {"attachRequired": true}})).unwrap();
    drivers.create(&PostParams::default(), &d).await.unwrap();
    assert_eq!(drivers.get(driver).await.unwrap().spec.attach_required, Some(true));
    // Each node's kubelet would publish this: one attachable volume.
    let csi_nodes: Api<CSINode> = Api::all(e.client.clone());
    for n in ["l-0", "l-1"] {
        let cn: CSINode = serde_json::from_value(json!({"metadata": {"name": n},
            "spec": {"drivers": [{"name": driver, "nodeID": n, "allocatable": {"count": 1}}]}}))
        .unwrap();
        csi_nodes.create(&PostParams::default(), &cn).await.unwrap();
    }
    let read = csi_nodes.get("l-0").await.unwrap();
    assert_eq!(read.spec.drivers[0].allocatable.as_ref().and_then(|a| a.count), Some(1));
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(e.client.clone(), "sched");
    let volumes: Api<PersistentVolume> = Api::all(e.client.clone());
    for i in 1..=3 {
        let pv: PersistentVolume = serde_json::from_value(json!({
            "metadata": {"name": format!("csi-pv-{i}")},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                     "csi": {"driver": driver, "volumeHandle": format!("vol-{i}")},
                     "claimRef": {"namespace": "sched", "name": format!("c-{i}")}},
        }))
        .unwrap();
        volumes.create(&PostParams::default(), &pv).await.unwrap();
        let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {"name": format!("c-{i}"), "annotations": {"pv.kubernetes.io/bind-completed": "yes"}},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                     "volumeName": format!("csi-pv-{i}")},
        }))
        .unwrap();
        claims.create(&PostParams::default(), &pvc).await.unwrap();
    }
    let using = |name: &str, claim: &str| {
        pod(
            name,
            json!({}),
            json!({"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]}),
        )
    };
    create(&e.client, vec![using("v1", "c-1")]).await;
    placements(&e.client, &["v1"]).await;
    create(&e.client, vec![using("v2", "c-2")]).await;
    let first = placements(&e.client, &["v1", "v2"]).await;
    assert_ne!(first["v1"], first["v2"], "one attachable volume per node");
    create(&e.client, vec![using("v3", "c-3")]).await;
    let message = failed_scheduling(&e.client, "v3").await;
    assert!(
        message.starts_with("0/2 nodes are available: 2 node(s) exceed max volume count. preemption: "),
        "{message}"
    );
    // Freeing a node's attach slot lets the third pod land there.
    Api::<Pod>::namespaced(e.client.clone(), "sched")
        .delete("v1", &kube::api::DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    let placed = placements(&e.client, &["v3"]).await;
    assert_eq!(placed["v3"], first["v1"]);
}
