//! Which nodes a DaemonSet runs on, and the pods it puts there (upstream
//! `NodeShouldRunDaemonPod`, `util.CreatePodTemplate`): a node fits when
//! the pod's `nodeName` (if any), `nodeSelector` and required node
//! affinity match it and the pod tolerates its NoSchedule and NoExecute
//! taints, counting the tolerations every daemon pod gets. A pod already
//! there keeps running unless a NoExecute taint is not tolerated. Each pod
//! is pinned to its node by required node affinity on `metadata.name`.

use std::collections::BTreeMap;

use crate::cached_pod::CachedPod;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PodSpec, PodTemplateSpec,
    Taint, Toleration,
};

/// The label recording the DaemonSet's template generation.
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";
/// The annotation the apiserver keeps the template generation in.
pub const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";

/// Adds the tolerations every daemon pod gets (unless present): it
/// survives not-ready and unreachable nodes, node pressure and
/// cordoning, and with host networking an unavailable network.
pub fn add_daemon_tolerations(spec: &mut PodSpec) {
    let mut wanted = vec![
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if spec.host_network == Some(true) {
        wanted.push(("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for (key, effect) in wanted {
        let t = Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some(effect.into()),
            ..Toleration::default()
        };
        if !tolerations.contains(&t) {
            tolerations.push(t);
        }
    }
}

/// The pod the DaemonSet would run on `node` (for the fit checks).
fn pod_for_node(ds: &DaemonSet, node: &str) -> PodSpec {
    let mut spec = ds
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .unwrap_or_default();
    spec.node_name = Some(node.into());
    add_daemon_tolerations(&mut spec);
    spec
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    let contains = |v: &str| values.iter().any(|x| x == v);
    match r.operator.as_str() {
        "In" => value.is_some_and(contains),
        "NotIn" => value.is_none_or(|v| !contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        op @ ("Gt" | "Lt") => match (value.map(str::parse::<i64>), values) {
            (Some(Ok(v)), [bound]) => bound
                .parse::<i64>()
                .is_ok_and(|b| if op == "Gt" { v > b } else { v < b }),
            _ => false,
        },
        _ => false,
    }
}

fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = node.metadata.labels.as_ref();
    exprs
        .iter()
        .all(|r| requirement_matches(r, labels.and_then(|l| l.get(&r.key)).map(String::as_str)))
        && fields
            .iter()
            .all(|r| r.key == "metadata.name" && requirement_matches(r, node.metadata.name.as_deref()))
}

/// `nodeSelector` and required node affinity.
fn required_affinity_matches(spec: &PodSpec, node: &Node) -> bool {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let selector_ok = spec
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let terms = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| n.required_during_scheduling_ignored_during_execution.as_ref())
        .map(|s| s.node_selector_terms.as_slice());
    selector_ok && terms.is_none_or(|t| t.iter().any(|t| term_matches(t, node)))
}

/// Whether `t` tolerates `taint` (`Toleration.ToleratesTaint`).
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if t.effect.as_deref().is_some_and(|e| !e.is_empty() && e != taint.effect) {
        return false;
    }
    if t.key.as_deref().is_some_and(|k| !k.is_empty() && k != taint.key) {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        _ => false,
    }
}

fn has_untolerated(taints: &[Taint], tolerations: &[Toleration], effects: &[&str]) -> bool {
    taints
        .iter()
        .filter(|t| effects.contains(&t.effect.as_str()))
        .any(|t| !tolerations.iter().any(|tol| tolerates(tol, t)))
}

/// `(should run, should continue running)` for the DaemonSet on `node`.
pub fn should_run(node: &Node, ds: &DaemonSet) -> (bool, bool) {
    let name = node.metadata.name.as_deref().unwrap_or_default();
    let template_node = ds
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("");
    if !template_node.is_empty() && template_node != name {
        return (false, false);
    }
    let spec = pod_for_node(ds, name);
    if !required_affinity_matches(&spec, node) {
        return (false, false);
    }
    let taints = node.spec.as_ref().and_then(|s| s.taints.as_deref()).unwrap_or_default();
    let tolerations = spec.tolerations.as_deref().unwrap_or_default();
    if has_untolerated(taints, tolerations, &["NoSchedule", "NoExecute"]) {
        return (false, !has_untolerated(taints, tolerations, &["NoExecute"]));
    }
    (true, true)
}

/// `affinity` with its required node affinity replaced by one term
/// selecting `node` by `metadata.name` (upstream
/// `ReplaceDaemonSetPodNodeNameNodeAffinity`).
pub fn pin_to_node(affinity: Option<Affinity>, node: &str) -> Affinity {
    let mut affinity = affinity.unwrap_or_default();
    let na = affinity.node_affinity.get_or_insert_with(NodeAffinity::default);
    na.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_fields: Some(vec![NodeSelectorRequirement {
                key: "metadata.name".into(),
                operator: "In".into(),
                values: Some(vec![node.into()]),
            }]),
            match_expressions: None,
        }],
    });
    affinity
}

/// The node a daemon pod is for: its `nodeName`, else the node its
/// affinity pins it to.
pub fn target_node(pod: &CachedPod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        return Some(n.into());
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|r| r.key == "metadata.name" && r.operator == "In")
        .and_then(|r| match r.values.as_deref() {
            Some([one]) => Some(one.clone()),
            _ => None,
        })
}

/// The template new pods are made from: the daemon tolerations, and the
/// template generation and revision hash labels.
pub fn pod_template(ds: &DaemonSet, hash: &str) -> PodTemplateSpec {
    let mut t = ds.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    add_daemon_tolerations(t.spec.get_or_insert_with(Default::default));
    let meta = t.metadata.get_or_insert_with(Default::default);
    let labels = meta.labels.get_or_insert_with(BTreeMap::new);
    if let Some(generation) = template_generation(ds) {
        labels.insert(TEMPLATE_GENERATION_LABEL.into(), generation.to_string());
    }
    if !hash.is_empty() {
        labels.insert(
            crate::controllers::history::CONTROLLER_REVISION_HASH_LABEL.into(),
            hash.into(),
        );
    }
    t
}

/// The template generation the apiserver recorded, if it parses.
pub fn template_generation(ds: &DaemonSet) -> Option<i64> {
    ds.metadata
        .annotations
        .as_ref()?
        .get(TEMPLATE_GENERATION_ANNOTATION)?
        .parse()
        .ok()
}

/// Whether the pod is of the current template (same revision hash, or
/// same template generation).
pub fn is_updated(pod: &CachedPod, hash: &str, generation: Option<i64>) -> bool {
    let labels = pod.metadata.labels.as_ref();
    let get = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    let by_hash = !hash.is_empty() && get(crate::controllers::history::CONTROLLER_REVISION_HASH_LABEL) == Some(hash);
    let by_generation = generation.is_some_and(|g| get(TEMPLATE_GENERATION_LABEL) == Some(g.to_string().as_str()));
    by_hash || by_generation
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::{Value, json};

    fn ds(template_spec: Value) -> DaemonSet {
        let mut spec = json!({"containers": [{"name": "c", "image": "i"}]});
        for (k, v) in template_spec.as_object().unwrap() {
            spec[k] = v.clone();
        }
        serde_json::from_value(json!({
            "metadata": {"name": "agent", "namespace": "ns", "annotations": {TEMPLATE_GENERATION_ANNOTATION: "3"}},
            "spec": {"selector": {"matchLabels": {"app": "a"}},
                     "template": {"metadata": {"labels": {"app": "a"}}, "spec": spec}},
        }))
        .unwrap()
    }

    fn node(name: &str, labels: Value, taints: Value) -> Node {
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints}}))
            .unwrap()
    }

    #[test]
    fn node_selector_and_affinity_choose_nodes() {
        let plain = node("n1", json!({"disk": "ssd", "size": "8"}), json!([]));
        assert_eq!(should_run(&plain, &ds(json!({}))), (true, true));
        assert_eq!(
            should_run(&plain, &ds(json!({"nodeSelector": {"disk": "ssd"}}))),
            (true, true)
        );
        assert_eq!(
            should_run(&plain, &ds(json!({"nodeSelector": {"disk": "hdd"}}))),
            (false, false)
        );
        let aff = |op: &str, values: Value| {
            ds(
                json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                {"nodeSelectorTerms": [{"matchExpressions": [{"key": "size", "operator": op, "values": values}]}]}}}}),
            )
        };
        assert!(should_run(&plain, &aff("Gt", json!(["4"]))).0);
        assert!(!should_run(&plain, &aff("Lt", json!(["4"]))).0);
        assert!(!should_run(&plain, &aff("NotIn", json!(["8"]))).0);
        assert!(!should_run(&plain, &ds(json!({"nodeName": "n2"}))).0);
        assert!(should_run(&plain, &ds(json!({"nodeName": "n1"}))).0);
    }

    #[test]
    fn taints_need_tolerations_except_the_daemon_ones() {
        let ds0 = ds(json!({}));
        let t = |key: &str, effect: &str| node("n", json!({}), json!([{"key": key, "effect": effect}]));
        assert_eq!(
            should_run(&t("node.kubernetes.io/unschedulable", "NoSchedule"), &ds0),
            (true, true)
        );
        assert_eq!(
            should_run(&t("node.kubernetes.io/not-ready", "NoExecute"), &ds0),
            (true, true)
        );
        assert_eq!(
            should_run(&t("dedicated", "NoSchedule"), &ds0),
            (false, true),
            "running pods may stay"
        );
        assert_eq!(should_run(&t("dedicated", "NoExecute"), &ds0), (false, false));
        assert_eq!(should_run(&t("dedicated", "PreferNoSchedule"), &ds0), (true, true));
        let tolerant = ds(json!({"tolerations": [{"key": "dedicated", "operator": "Exists"}]}));
        assert_eq!(should_run(&t("dedicated", "NoExecute"), &tolerant), (true, true));
        let mut spec = PodSpec {
            host_network: Some(true),
            ..PodSpec::default()
        };
        add_daemon_tolerations(&mut spec);
        add_daemon_tolerations(&mut spec);
        assert_eq!(
            spec.tolerations.as_ref().unwrap().len(),
            7,
            "added once, with the network one"
        );
    }

    #[test]
    fn pods_are_pinned_and_labelled() {
        let d = ds(
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchExpressions": [{"key": "k", "operator": "Exists"}]}]}}}}),
        );
        let mut t = pod_template(&d, "h1");
        let labels = t.metadata.as_ref().unwrap().labels.as_ref().unwrap();
        assert_eq!(labels[TEMPLATE_GENERATION_LABEL], "3");
        assert_eq!(labels["controller-revision-hash"], "h1");
        assert_eq!(t.spec.as_ref().unwrap().tolerations.as_ref().unwrap().len(), 6);
        let spec = t.spec.as_mut().unwrap();
        spec.affinity = Some(pin_to_node(spec.affinity.take(), "n7"));
        let pod = CachedPod::from(k8s_openapi::api::core::v1::Pod {
            metadata: t.metadata.clone().unwrap(),
            spec: t.spec.clone(),
            status: None,
        });
        assert_eq!(target_node(&pod).as_deref(), Some("n7"));
        let terms = serde_json::to_value(&pod.spec.as_ref().unwrap().affinity).unwrap();
        assert_eq!(
            terms["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"],
            json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n7"]}]}])
        );
        assert!(is_updated(&pod, "h1", None));
        assert!(is_updated(&pod, "other", Some(3)));
        assert!(!is_updated(&pod, "other", Some(4)));
    }
}
