//! `PodInfo`: a pod with what scheduling needs precomputed once (requests,
//! affinity terms, host ports), shared by the queue, the cache and plugins.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, PodAffinityTerm, PodStatus, WeightedPodAffinityTerm};

use crate::resources::{Resource, pod_requests};
use crate::selectors::{Labels, Selector};

/// `namespace/name` of a pod.
pub type PodKey = String;

/// The key of a pod.
pub fn pod_key(pod: &Pod) -> PodKey {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

/// A compiled pod (anti-)affinity term.
#[derive(Debug, Clone)]
pub struct AffinityTerm {
    /// Namespaces listed by the term, or the pod's own when none are listed
    /// and there is no namespace selector.
    pub namespaces: BTreeSet<String>,
    /// The namespace selector, when set.
    pub namespace_selector: Option<Selector>,
    pub selector: Selector,
    pub topology_key: String,
}

impl AffinityTerm {
    fn new(term: &PodAffinityTerm, pod_namespace: &str) -> AffinityTerm {
        let mut namespaces: BTreeSet<String> = term.namespaces.iter().flatten().cloned().collect();
        let namespace_selector = term
            .namespace_selector
            .as_ref()
            .map(|s| Selector::from_label_selector(Some(s)));
        if namespaces.is_empty() && namespace_selector.is_none() {
            namespaces.insert(pod_namespace.to_string());
        }
        AffinityTerm {
            namespaces,
            namespace_selector,
            selector: Selector::from_label_selector(term.label_selector.as_ref()),
            topology_key: term.topology_key.clone(),
        }
    }

    /// Whether [`AffinityTerm::matches`] reads the namespace's labels.
    pub fn needs_namespace_labels(&self) -> bool {
        self.namespace_selector.as_ref().is_some_and(|s| !s.is_everything())
    }

    /// True when `pod` (with its namespace's labels) is selected by the term.
    pub fn matches(&self, pod: &PodInfo, namespace_labels: Option<&Labels>) -> bool {
        let ns_ok = self.namespaces.contains(&pod.namespace)
            || self
                .namespace_selector
                .as_ref()
                .is_some_and(|s| s.is_everything() || namespace_labels.is_some_and(|l| s.matches(l)));
        ns_ok && self.selector.matches(&pod.labels)
    }
}

/// A preferred term with its weight.
#[derive(Debug, Clone)]
pub struct WeightedAffinityTerm {
    pub term: AffinityTerm,
    pub weight: i32,
}

/// A host port a pod asks for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostPort {
    pub ip: String,
    pub protocol: String,
    pub port: i32,
}

/// A pod and its precomputed scheduling facts.
#[derive(Debug)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    pub key: PodKey,
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub labels: Labels,
    pub priority: i32,
    /// Effective requests (for filtering and node accounting).
    pub requests: Resource,
    /// Requests with defaults for missing cpu/memory (for scoring).
    pub non_zero_requests: Resource,
    pub required_affinity: Vec<AffinityTerm>,
    pub required_anti_affinity: Vec<AffinityTerm>,
    pub preferred_affinity: Vec<WeightedAffinityTerm>,
    pub preferred_anti_affinity: Vec<WeightedAffinityTerm>,
    pub host_ports: Vec<HostPort>,
}

/// Pod conditions the scheduler reads (its own PodScheduled, and
/// DisruptionTarget on preemption victims).
const READ_CONDITIONS: [&str; 2] = ["PodScheduled", "DisruptionTarget"];

/// Makes a decoded pod small before it is kept: the scheduler never reads
/// `managedFields` (a JSON tree per field manager, often the largest part
/// of a pod), resource limits (only requests are scheduled), or status
/// beyond the phase, start time, nominated node and the conditions it
/// reads (container statuses, IPs, other conditions); and decoding leaves
/// every list with room for at least four elements (a container is about
/// a kilobyte, so a one-container pod carried three unused ones). The
/// labels are taken out into [`PodInfo::labels`] by the caller. The queue
/// and the cache hold one of these per pod, so this is most of the
/// scheduler's memory per pod.
fn compact(pod: &mut Pod) {
    fn shrink<T>(v: &mut Option<Vec<T>>) {
        if let Some(v) = v {
            v.shrink_to_fit();
        }
    }
    pod.metadata.managed_fields = None;
    shrink(&mut pod.metadata.owner_references);
    shrink(&mut pod.metadata.finalizers);
    if let Some(spec) = pod.spec.as_mut() {
        spec.containers.shrink_to_fit();
        shrink(&mut spec.init_containers);
        shrink(&mut spec.volumes);
        shrink(&mut spec.tolerations);
        shrink(&mut spec.topology_spread_constraints);
        if let Some(r) = spec.resources.as_mut() {
            r.limits = None;
        }
        for c in spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten())
        {
            if let Some(r) = c.resources.as_mut() {
                r.limits = None;
            }
            shrink(&mut c.ports);
            shrink(&mut c.env);
            shrink(&mut c.volume_mounts);
            shrink(&mut c.args);
            shrink(&mut c.command);
        }
    }
    if let Some(status) = pod.status.take() {
        let mut conditions = status.conditions;
        if let Some(cs) = conditions.as_mut() {
            cs.retain(|c| READ_CONDITIONS.contains(&c.type_.as_str()));
            cs.shrink_to_fit();
        }
        pod.status = Some(PodStatus {
            phase: status.phase,
            start_time: status.start_time,
            nominated_node_name: status.nominated_node_name,
            conditions: conditions.filter(|cs| !cs.is_empty()),
            ..PodStatus::default()
        });
    }
}

impl PodInfo {
    /// Precomputes everything from `pod` (which is compacted first).
    pub fn new(mut pod: Pod) -> PodInfo {
        compact(&mut pod);
        // Kept once, here; [`PodInfo::to_pod`] puts them back.
        let labels = pod.metadata.labels.take().unwrap_or_default();
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let spec = pod.spec.as_ref();
        let affinity = spec.and_then(|s| s.affinity.as_ref());
        let pa = affinity.and_then(|a| a.pod_affinity.as_ref());
        let paa = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
        let required = |terms: Option<&Vec<PodAffinityTerm>>| -> Vec<AffinityTerm> {
            terms
                .into_iter()
                .flatten()
                .map(|t| AffinityTerm::new(t, &namespace))
                .collect()
        };
        let preferred = |terms: Option<&Vec<WeightedPodAffinityTerm>>| -> Vec<WeightedAffinityTerm> {
            terms
                .into_iter()
                .flatten()
                .map(|t| WeightedAffinityTerm {
                    term: AffinityTerm::new(&t.pod_affinity_term, &namespace),
                    weight: t.weight,
                })
                .collect()
        };
        let mut host_ports = Vec::new();
        for c in spec.map(|s| s.containers.as_slice()).unwrap_or_default() {
            for p in c.ports.iter().flatten() {
                if let Some(port) = p.host_port.filter(|p| *p > 0) {
                    host_ports.push(HostPort {
                        ip: p
                            .host_ip
                            .clone()
                            .filter(|ip| !ip.is_empty())
                            .unwrap_or_else(|| "0.0.0.0".into()),
                        protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                        port,
                    });
                }
            }
        }
        let mut info = PodInfo {
            key: format!("{namespace}/{name}"),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            labels,
            priority: spec.and_then(|s| s.priority).unwrap_or(0),
            requests: pod_requests(&pod, false),
            non_zero_requests: pod_requests(&pod, true),
            required_affinity: required(
                pa.and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref()),
            ),
            required_anti_affinity: required(
                paa.and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref()),
            ),
            preferred_affinity: preferred(
                pa.and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_ref()),
            ),
            preferred_anti_affinity: preferred(
                paa.and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_ref()),
            ),
            host_ports,
            namespace,
            name,
            pod: Arc::new(pod),
        };
        // A bound pod is only ever an existing pod to the plugins, which
        // read its requests and host ports (computed above), never its
        // containers; they are most of what is left of it.
        if info.node_name().is_some()
            && let Some(pod) = Arc::get_mut(&mut info.pod)
            && let Some(spec) = pod.spec.as_mut()
        {
            spec.containers = Vec::new();
            spec.init_containers = None;
            spec.ephemeral_containers = None;
        }
        info
    }

    /// The kept pod with its labels (which [`PodInfo::new`] takes out of
    /// `metadata`), for making a changed copy of a pending pod (assumed on
    /// a node). A bound pod's copy lacks its containers (not kept).
    pub fn to_pod(&self) -> Pod {
        let mut pod = (*self.pod).clone();
        pod.metadata.labels = Some(self.labels.clone());
        pod
    }

    /// True when the pod has any pod affinity or anti-affinity term.
    pub fn has_affinity(&self) -> bool {
        !(self.required_affinity.is_empty()
            && self.required_anti_affinity.is_empty()
            && self.preferred_affinity.is_empty()
            && self.preferred_anti_affinity.is_empty())
    }

    /// True when the pod has terms that score other pods coming to its
    /// topology (required affinity, preferred affinity or anti-affinity;
    /// its required anti-affinity only filters).
    pub fn has_scoring_affinity(&self) -> bool {
        !(self.required_affinity.is_empty()
            && self.preferred_affinity.is_empty()
            && self.preferred_anti_affinity.is_empty())
    }

    /// The node the pod is bound (or assumed) to.
    pub fn node_name(&self) -> Option<&str> {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .filter(|n| !n.is_empty())
    }

    /// `status.nominatedNodeName`, when set.
    pub fn nominated_node_name(&self) -> Option<&str> {
        self.pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref())
            .filter(|n| !n.is_empty())
    }

    /// True when the pod is being deleted.
    pub fn is_terminating(&self) -> bool {
        self.pod.metadata.deletion_timestamp.is_some()
    }

    /// The pod's scheduler name (`default-scheduler` when unset).
    pub fn scheduler_name(&self) -> &str {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduler_name.as_deref())
            .unwrap_or(crate::DEFAULT_SCHEDULER_NAME)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn kept_pods_lose_managed_fields_and_spare_list_room() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "d", "uid": "u", "labels": {"app": "web"},
                         "managedFields": [{"manager": "kubectl", "operation": "Apply",
                                            "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}]},
            "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}],
                                     "resources": {"requests": {"cpu": "100m"}}}],
                     "tolerations": [{"key": "k", "operator": "Exists"}]},
            "status": {"conditions": [{"type": "PodScheduled", "status": "False"}]},
        }))
        .unwrap();
        let info = PodInfo::new(pod);
        let p = &info.pod;
        assert!(p.metadata.managed_fields.is_none());
        let spec = p.spec.as_ref().unwrap();
        assert_eq!(spec.containers.capacity(), 1);
        assert_eq!(spec.containers[0].ports.as_ref().unwrap().capacity(), 1);
        assert_eq!(spec.tolerations.as_ref().unwrap().capacity(), 1);
        assert_eq!(p.status.as_ref().unwrap().conditions.as_ref().unwrap().capacity(), 1);
        // What scheduling reads is all there.
        assert_eq!(info.requests.milli_cpu, 100);
        assert_eq!(info.host_ports.len(), 1);
        assert_eq!(info.labels["app"], "web");
    }

    #[test]
    fn kept_pods_keep_what_scheduling_reads_and_rebuild_the_same() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "d", "uid": "u", "labels": {"app": "web"},
                         "annotations": {"a": "b"}, "deletionTimestamp": "2026-12-06T10:00:00Z"},
            "spec": {"containers": [{"name": "c", "image": "i",
                                     "resources": {"requests": {"cpu": "100m", "memory": "1Gi"},
                                                   "limits": {"cpu": "1", "memory": "2Gi"}}}],
                     "initContainers": [{"name": "s", "restartPolicy": "Always",
                                         "resources": {"requests": {"cpu": "50m"}, "limits": {"cpu": "50m"}}}],
                     "priority": 7},
            "status": {"phase": "Running", "startTime": "2026-12-06T09:00:00Z", "nominatedNodeName": "n",
                       "podIP": "10.0.0.1", "qosClass": "Burstable",
                       "conditions": [{"type": "Ready", "status": "True"},
                                      {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"},
                                      {"type": "PodScheduled", "status": "True"}],
                       "containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": true,
                                              "restartCount": 0}]},
        }))
        .unwrap();
        let info = PodInfo::new(pod);
        let p = &info.pod;
        assert_eq!(p.metadata.labels, None, "kept once, in PodInfo::labels");
        assert_eq!(info.labels["app"], "web");
        assert_eq!(p.metadata.annotations.as_ref().unwrap()["a"], "b");
        assert!(info.is_terminating());
        let spec = p.spec.as_ref().unwrap();
        assert!(spec.containers[0].resources.as_ref().unwrap().limits.is_none());
        assert_eq!(spec.containers[0].image.as_deref(), Some("i"));
        let status = p.status.as_ref().unwrap();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert!(status.start_time.is_some());
        assert_eq!(info.nominated_node_name(), Some("n"));
        let kinds: Vec<&str> = status.conditions.iter().flatten().map(|c| c.type_.as_str()).collect();
        assert_eq!(kinds, ["DisruptionTarget", "PodScheduled"]);
        assert!(status.pod_ip.is_none() && status.qos_class.is_none() && status.container_statuses.is_none());
        assert_eq!((info.requests.milli_cpu, info.requests.memory), (150, 1 << 30));
        // A copy made from the kept pod is the same pod to the scheduler.
        let again = PodInfo::new(info.to_pod());
        assert_eq!(again.labels, info.labels);
        assert_eq!(again.requests, info.requests);
        assert_eq!(again.non_zero_requests, info.non_zero_requests);
        assert_eq!(again.priority, 7);
        assert_eq!(again.pod.spec, info.pod.spec);
        assert_eq!(again.pod.status, info.pod.status);
        // Bound, it keeps neither containers nor the duty to read them.
        let mut bound = info.to_pod();
        bound.spec.as_mut().unwrap().node_name = Some("n1".into());
        let bound = PodInfo::new(bound);
        let spec = bound.pod.spec.as_ref().unwrap();
        assert!(spec.containers.is_empty() && spec.init_containers.is_none());
        assert_eq!(bound.requests, info.requests);
        assert_eq!(bound.non_zero_requests, info.non_zero_requests);
        assert_eq!(bound.node_name(), Some("n1"));
    }
}
