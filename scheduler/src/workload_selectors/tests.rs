#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{ReplicaSetSpec, StatefulSetSpec};
use k8s_openapi::api::core::v1::{Pod, ReplicationControllerSpec, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde_json::{Value, json};

use super::*;

fn meta(ns: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(ns.into()),
        ..ObjectMeta::default()
    }
}

fn labels(v: &Value) -> Labels {
    serde_json::from_value(v.clone()).unwrap()
}

fn service(ns: &str, name: &str, selector: &Value) -> Service {
    Service {
        metadata: meta(ns, name),
        spec: Some(ServiceSpec {
            selector: (!selector.is_null()).then(|| labels(selector)),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn controller(ns: &str, name: &str, selector: &Value) -> ReplicationController {
    ReplicationController {
        metadata: meta(ns, name),
        spec: Some(ReplicationControllerSpec {
            selector: (!selector.is_null()).then(|| labels(selector)),
            ..ReplicationControllerSpec::default()
        }),
        ..ReplicationController::default()
    }
}

fn label_selector(v: &Value) -> LabelSelector {
    serde_json::from_value(v.clone()).unwrap()
}

fn replica_set(ns: &str, name: &str, selector: &Value) -> ReplicaSet {
    ReplicaSet {
        metadata: meta(ns, name),
        spec: Some(ReplicaSetSpec {
            selector: label_selector(selector),
            ..ReplicaSetSpec::default()
        }),
        ..ReplicaSet::default()
    }
}

fn stateful_set(ns: &str, name: &str, selector: &Value) -> StatefulSet {
    StatefulSet {
        metadata: meta(ns, name),
        spec: Some(StatefulSetSpec {
            selector: label_selector(selector),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

fn pod(ns: &str, l: &Value, owners: Value) -> PodInfo {
    let p: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": ns, "uid": "u", "labels": l, "ownerReferences": owners},
        "spec": {"containers": [{"name": "c"}]},
    }))
    .unwrap();
    PodInfo::new(p)
}

fn owner(api_version: &str, kind: &str, name: &str, controller: bool) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "name": name, "uid": "x", "controller": controller})
}

/// Every object of the four kinds as the API holds them, by (namespace,
/// name).
#[derive(Default)]
struct Truth {
    services: BTreeMap<(String, String), Service>,
    controllers: BTreeMap<(String, String), ReplicationController>,
    replica_sets: BTreeMap<(String, String), ReplicaSet>,
    stateful_sets: BTreeMap<(String, String), StatefulSet>,
}

/// Upstream's DefaultSelector as a full scan: every Service of the
/// namespace checked against the pod, its controller looked up among all
/// objects of the kind its owner reference names.
fn scan(t: &Truth, pod: &PodInfo) -> Option<Selector> {
    let mut pairs = Labels::new();
    for ((ns, _), svc) in &t.services {
        let Some(sel) = svc.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
            continue;
        };
        if *ns == pod.namespace && sel.iter().all(|(k, v)| pod.labels.get(k) == Some(v)) {
            pairs.extend(sel.clone());
        }
    }
    let mut extra = None;
    let key = |name: &str| (pod.namespace.clone(), name.to_string());
    let owner = pod
        .pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true));
    if let Some(o) = owner {
        match (o.api_version.as_str(), o.kind.as_str()) {
            ("v1", "ReplicationController") => {
                if let Some(rc) = t.controllers.get(&key(&o.name)) {
                    pairs.extend(rc.spec.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default());
                }
            }
            ("apps/v1", "ReplicaSet") => {
                extra = t
                    .replica_sets
                    .get(&key(&o.name))
                    .and_then(|rs| Selector::try_from_label_selector(&rs.spec.as_ref()?.selector));
            }
            ("apps/v1", "StatefulSet") => {
                extra = t
                    .stateful_sets
                    .get(&key(&o.name))
                    .and_then(|ss| Selector::try_from_label_selector(&ss.spec.as_ref()?.selector));
            }
            _ => {}
        }
    }
    let mut selector = Selector::everything();
    for (k, v) in &pairs {
        selector = selector.with_equals(k, v);
    }
    if let Some(e) = &extra {
        selector = selector.and(e);
    }
    let selector = selector.canonical();
    (!selector.is_everything()).then_some(selector)
}

/// A small deterministic generator (the test must fail the same way
/// every run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

fn pods() -> Vec<PodInfo> {
    let label_sets = [
        json!({}),
        json!({"app": "web"}),
        json!({"app": "web", "tier": "fe"}),
        json!({"app": "web", "tier": "fe", "hash": "h1"}),
        json!({"app": "db", "tier": "be"}),
    ];
    let owners = [
        Value::Null,
        json!([owner("v1", "ReplicationController", "w0", true)]),
        json!([owner("apps/v1", "ReplicaSet", "w1", true)]),
        json!([owner("apps/v1", "StatefulSet", "w2", true)]),
        json!([
            owner("apps/v1", "ReplicaSet", "w3", false),
            owner("apps/v1", "ReplicaSet", "w0", true)
        ]),
        json!([owner("apps/v1", "ReplicaSet", "w3", false)]),
        json!([owner("extensions/v1beta1", "ReplicaSet", "w1", true)]),
        json!([owner("apps/v1", "Deployment", "w1", true)]),
    ];
    let mut out = Vec::new();
    for ns in ["a", "b"] {
        for l in &label_sets {
            for o in &owners {
                out.push(pod(ns, l, o.clone()));
            }
        }
    }
    out
}

fn check(index: &WorkloadIndex, truth: &Truth, pods: &[PodInfo], step: &str) {
    for p in pods {
        assert_eq!(
            index.default_selector(p),
            scan(truth, p),
            "{step}: pod in {} with {:?}, owners {:?}",
            p.namespace,
            p.labels,
            p.pod.metadata.owner_references
        );
    }
}

#[test]
fn index_gives_the_selector_of_a_full_scan_through_adds_updates_deletes_and_relists() {
    let service_selectors = [
        Value::Null,
        json!({}),
        json!({"app": "web"}),
        json!({"app": "web", "tier": "fe"}),
        json!({"tier": "fe"}),
        json!({"app": "db"}),
        json!({"app": "web", "hash": "h1"}),
    ];
    let map_selectors = [
        Value::Null,
        json!({}),
        json!({"app": "web"}),
        json!({"app": "db", "x": "y"}),
    ];
    let label_selectors = [
        json!({"matchLabels": {"app": "web", "hash": "h1"}}),
        json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}]}),
        json!({}),
        json!({"matchExpressions": [{"key": "x", "operator": "Gt", "values": ["1"]}]}),
        json!({"matchLabels": {"app": "web"},
               "matchExpressions": [{"key": "hash", "operator": "NotIn", "values": ["h0"]}]}),
    ];
    let pods = pods();
    let mut index = WorkloadIndex::default();
    let mut truth = Truth::default();
    let mut rng = Lcg(7);
    check(&index, &truth, &pods, "empty");
    for step in 0..600 {
        let ns = ["a", "b"][rng.below(2)];
        let name = ["w0", "w1", "w2", "w3"][rng.below(4)];
        let key = (ns.to_string(), name.to_string());
        let delete = rng.below(4) == 0;
        let what = match rng.below(5) {
            4 => {
                // A relist of one kind: some objects are gone (deleted
                // while the watch was down), the rest listed, maybe changed.
                let kind = rng.below(4);
                match kind {
                    0 => relist(&mut index, &mut truth.services, &mut rng, |o, r| {
                        let sel = &service_selectors[r % service_selectors.len()];
                        o.spec.as_mut().unwrap().selector = (!sel.is_null()).then(|| labels(sel));
                    }),
                    1 => relist(&mut index, &mut truth.controllers, &mut rng, |o, r| {
                        let sel = &map_selectors[r % map_selectors.len()];
                        o.spec.as_mut().unwrap().selector = (!sel.is_null()).then(|| labels(sel));
                    }),
                    2 => relist(&mut index, &mut truth.replica_sets, &mut rng, |o, r| {
                        o.spec.as_mut().unwrap().selector = label_selector(&label_selectors[r % label_selectors.len()]);
                    }),
                    _ => relist(&mut index, &mut truth.stateful_sets, &mut rng, |o, r| {
                        o.spec.as_mut().unwrap().selector = label_selector(&label_selectors[r % label_selectors.len()]);
                    }),
                }
                format!("relist of kind {kind}")
            }
            0 => {
                let o = service(ns, name, &service_selectors[rng.below(service_selectors.len())]);
                apply_or_delete(&mut index, &mut truth.services, key, o, delete)
            }
            1 => {
                let o = controller(ns, name, &map_selectors[rng.below(map_selectors.len())]);
                apply_or_delete(&mut index, &mut truth.controllers, key, o, delete)
            }
            2 => {
                let o = replica_set(ns, name, &label_selectors[rng.below(label_selectors.len())]);
                apply_or_delete(&mut index, &mut truth.replica_sets, key, o, delete)
            }
            _ => {
                let o = stateful_set(ns, name, &label_selectors[rng.below(label_selectors.len())]);
                apply_or_delete(&mut index, &mut truth.stateful_sets, key, o, delete)
            }
        };
        check(&index, &truth, &pods, &format!("step {step}: {what}"));
    }
    // Everything deleted: nothing is left behind.
    for (ns, name) in truth.services.keys() {
        index.delete(Kind::Service, ns, name);
    }
    for (ns, name) in truth.controllers.keys() {
        index.delete(Kind::ReplicationController, ns, name);
    }
    for (ns, name) in truth.replica_sets.keys() {
        index.delete(Kind::ReplicaSet, ns, name);
    }
    for (ns, name) in truth.stateful_sets.keys() {
        index.delete(Kind::StatefulSet, ns, name);
    }
    assert!(index.namespaces.is_empty(), "{:?}", index.namespaces);
}

fn apply_or_delete<K: Workload>(
    index: &mut WorkloadIndex,
    truth: &mut BTreeMap<(String, String), K>,
    key: (String, String),
    o: K,
    delete: bool,
) -> String {
    let what = format!(
        "{} {:?} {key:?} {:?}",
        if delete { "delete" } else { "apply" },
        K::KIND,
        o.kept()
    );
    if delete {
        truth.remove(&key);
        index.on_event(Event::Delete(o));
    } else {
        truth.insert(key, o.clone());
        index.on_event(Event::Apply(o));
    }
    what
}

fn relist<K: Workload>(
    index: &mut WorkloadIndex,
    truth: &mut BTreeMap<(String, String), K>,
    rng: &mut Lcg,
    change: impl Fn(&mut K, usize),
) {
    index.on_event::<K>(Event::Init);
    let keys: Vec<(String, String)> = truth.keys().cloned().collect();
    for key in keys {
        match rng.below(3) {
            0 => {
                truth.remove(&key);
            }
            r => {
                let o = truth.get_mut(&key).unwrap();
                if r == 2 {
                    change(o, rng.below(35));
                }
                index.on_event(Event::InitApply(o.clone()));
            }
        }
    }
    index.on_event::<K>(Event::InitDone);
}

#[test]
fn services_and_the_controller_make_the_selector() {
    let mut index = WorkloadIndex::default();
    let svc = |name: &str, sel: Value| Event::Apply(service("a", name, &sel));
    index.on_event(svc("web", json!({"app": "web"})));
    index.on_event(svc("fe", json!({"app": "web", "tier": "fe"})));
    index.on_event(svc("other", json!({"app": "db"})));
    index.on_event(svc("no-selector", Value::Null));
    index.on_event(Event::Apply(replica_set(
        "a",
        "rs",
        &json!({"matchLabels": {"app": "web", "hash": "h1"}}),
    )));
    index.on_event(Event::Apply(controller("a", "rc", &json!({"app": "other"}))));
    let l = json!({"app": "web", "tier": "fe", "hash": "h1"});
    let equals = |pairs: &[(&str, &str)]| {
        let mut s = Selector::everything();
        for (k, v) in pairs {
            s = s.with_equals(k, v);
        }
        s.canonical()
    };
    // Both matching Services and the owning ReplicaSet.
    let p = pod("a", &l, json!([owner("apps/v1", "ReplicaSet", "rs", true)]));
    assert_eq!(
        index.default_selector(&p),
        Some(equals(&[("app", "web"), ("tier", "fe"), ("hash", "h1")]))
    );
    // A ReplicationController's pairs win over the Services' (it is not
    // checked against the pod, as upstream).
    let p = pod("a", &l, json!([owner("v1", "ReplicationController", "rc", true)]));
    assert_eq!(
        index.default_selector(&p),
        Some(equals(&[("app", "other"), ("tier", "fe")]))
    );
    // A ReplicaSet that selects the pod but does not own it adds nothing.
    let p = pod("a", &json!({"hash": "h1"}), Value::Null);
    assert_eq!(index.default_selector(&p), None);
    // Another namespace sees none of these.
    let p = pod("b", &l, json!([owner("apps/v1", "ReplicaSet", "rs", true)]));
    assert_eq!(index.default_selector(&p), None);
}
