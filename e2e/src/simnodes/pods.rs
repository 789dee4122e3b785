//! The pods of simulated nodes: one watch on all pods, filtered to ours.
//! A pending pod bound to one of our nodes becomes Running and Ready; a
//! pod with a deletionTimestamp is deleted for good.
//!
//! Failure injection, per pod, by annotation:
//! - [`EXIT_AFTER_ANNOTATION`] (seconds) with [`EXIT_CODE_ANNOTATION`]
//!   (default 0): the containers exit once after running that long; the pod
//!   ends Succeeded or Failed per its restartPolicy, or its containers are
//!   restarted (restartCount 1). Set on a pod that is already running, they
//!   take effect then (so a test can make one pod of a controller exit);
//! - [`START_FAILURE_ANNOTATION`] (a reason such as `ImagePullBackOff`): the
//!   containers stay waiting with that reason and the pod stays Pending.

use std::collections::HashSet;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{debug, warn};

use super::State;

/// Seconds after which the pod's containers exit.
pub const EXIT_AFTER_ANNOTATION: &str = "sim.rkube.io/exit-after-seconds";
/// The exit code of that exit (default 0).
pub const EXIT_CODE_ANNOTATION: &str = "sim.rkube.io/exit-code";
/// A waiting reason the containers never get past.
pub const START_FAILURE_ANNOTATION: &str = "sim.rkube.io/start-failure";

fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

fn container_names(pod: &Pod) -> Vec<String> {
    pod.spec
        .as_ref()
        .map(|s| s.containers.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default()
}

/// When and with which code the pod's containers exit, per its annotations.
fn exit_of(pod: &Pod) -> Option<(std::time::Duration, i32)> {
    let secs = annotation(pod, EXIT_AFTER_ANNOTATION)?.parse::<f64>().ok()?;
    let code = annotation(pod, EXIT_CODE_ANNOTATION)
        .and_then(|c| c.parse::<i32>().ok())
        .unwrap_or(0);
    Some((std::time::Duration::from_secs_f64(secs.max(0.0)), code))
}

/// The status of a pod whose containers cannot start (`reason`).
pub fn waiting_status(pod: &Pod, host_ip: &str, pod_ip: &str, reason: &str, now: Timestamp) -> Value {
    let now = now.to_string();
    let names = container_names(pod);
    let unready = format!("containers with unready status: [{}]", names.join(" "));
    let statuses: Vec<Value> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .map(|c| {
            json!({"name": c.name, "ready": false, "started": false, "restartCount": 0, "image": c.image, "imageID": "",
                   "state": {"waiting": {"reason": reason, "message": format!("simulated start failure: {reason}")}}})
        })
        .collect();
    let cond = |t: &str, status: &str| {
        let mut c = json!({"type": t, "status": status, "lastProbeTime": null, "lastTransitionTime": now});
        if status == "False" {
            c["reason"] = json!("ContainersNotReady");
            c["message"] = json!(unready);
        }
        c
    };
    json!({"status": {
        "phase": "Pending",
        "conditions": [cond("PodReadyToStartContainers", "True"), cond("Initialized", "True"),
                       cond("Ready", "False"), cond("ContainersReady", "False"), cond("PodScheduled", "True")],
        "hostIP": host_ip, "hostIPs": [{"ip": host_ip}], "podIP": pod_ip, "podIPs": [{"ip": pod_ip}],
        "startTime": now, "containerStatuses": statuses,
    }})
}

/// The status after the containers exited with `code` (terminal, or
/// restarted per the pod's restartPolicy).
pub fn exited_status(pod: &Pod, code: i32, started: &str, now: Timestamp) -> Value {
    let now = now.to_string();
    let policy = pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always");
    let terminal = policy == "Never" || (policy == "OnFailure" && code == 0);
    let uid = pod.metadata.uid.as_deref().unwrap_or("");
    let terminated = json!({"terminated": {"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" },
                                           "startedAt": started, "finishedAt": now,
                                           "containerID": format!("sim://{uid}")}});
    let statuses: Vec<Value> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .map(|c| {
            let mut st = json!({"name": c.name, "image": c.image,
                                "imageID": format!("sim://{}", c.image.as_deref().unwrap_or("")),
                                "containerID": format!("sim://{uid}/{}", c.name)});
            if terminal {
                st["ready"] = json!(false);
                st["started"] = json!(false);
                st["restartCount"] = json!(0);
                st["state"] = terminated.clone();
            } else {
                st["ready"] = json!(true);
                st["started"] = json!(true);
                st["restartCount"] = json!(1);
                st["lastState"] = terminated.clone();
                st["state"] = json!({"running": {"startedAt": now}});
            }
            st
        })
        .collect();
    if !terminal {
        return json!({"status": {"containerStatuses": statuses}});
    }
    let phase = if code == 0 { "Succeeded" } else { "Failed" };
    let reason = if code == 0 { "PodCompleted" } else { "PodFailed" };
    let cond = |t: &str| json!({"type": t, "status": "False", "reason": reason, "lastProbeTime": null, "lastTransitionTime": now});
    json!({"status": {"phase": phase, "conditions": [cond("Ready"), cond("ContainersReady")], "containerStatuses": statuses}})
}

/// The status a started pod reports.
pub fn running_status(pod: &Pod, host_ip: &str, pod_ip: &str, now: Timestamp) -> Value {
    let now = now.to_string();
    let spec = pod.spec.as_ref();
    let container = |c: &k8s_openapi::api::core::v1::Container| {
        let uid = pod.metadata.uid.as_deref().unwrap_or("");
        json!({
            "name": c.name, "ready": true, "started": true, "restartCount": 0,
            "image": c.image, "imageID": format!("sim://{}", c.image.as_deref().unwrap_or("")),
            "containerID": format!("sim://{uid}/{}", c.name),
            "state": {"running": {"startedAt": now}},
        })
    };
    let init = |c: &k8s_openapi::api::core::v1::Container| {
        let mut s = container(c);
        if c.restart_policy.as_deref() != Some("Always") {
            s["ready"] = json!(false);
            s["started"] = json!(false);
            s["state"] =
                json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}});
        }
        s
    };
    let containers: Vec<Value> = spec
        .map(|s| s.containers.iter().map(container).collect())
        .unwrap_or_default();
    let inits: Vec<Value> = spec
        .and_then(|s| s.init_containers.as_ref())
        .map(|cs| cs.iter().map(init).collect())
        .unwrap_or_default();
    let cond = |t: &str| json!({"type": t, "status": "True", "lastProbeTime": null, "lastTransitionTime": now});
    let mut status = json!({
        "phase": "Running",
        "conditions": [cond("PodReadyToStartContainers"), cond("Initialized"), cond("Ready"),
                       cond("ContainersReady"), cond("PodScheduled")],
        "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip, "podIPs": [{"ip": pod_ip}],
        "startTime": now,
        "containerStatuses": containers,
    });
    if !inits.is_empty() {
        status["initContainerStatuses"] = json!(inits);
    }
    json!({"status": status})
}

struct Pods {
    client: Client,
    state: Arc<State>,
    permits: Arc<Semaphore>,
    tasks: JoinSet<()>,
    starting: HashSet<String>,
    deleting: HashSet<String>,
    /// Pods whose exit is scheduled.
    exiting: HashSet<String>,
}

impl Pods {
    fn on_apply(&mut self, pod: Pod) {
        let Some(node_name) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
            return;
        };
        let Some(node) = self.state.nodes.get(&node_name).cloned() else {
            return;
        };
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(
            self.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or("default"),
        );
        let name = pod.metadata.name.clone().unwrap_or_default();
        let permits = self.permits.clone();
        if pod.metadata.deletion_timestamp.is_some() {
            if !self.deleting.insert(uid.clone()) {
                return;
            }
            self.tasks.spawn(async move {
                let _permit = permits.acquire().await;
                let dp = DeleteParams {
                    grace_period_seconds: Some(0),
                    preconditions: Some(Preconditions {
                        uid: Some(uid),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                match api.delete(&name, &dp).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
                    Err(e) => warn!(pod = %name, error = %e, "finishing deletion failed"),
                }
            });
            return;
        }
        let status = pod.status.as_ref();
        let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
        if phase == "Succeeded" || phase == "Failed" {
            self.state.lock_ipam().release(&uid);
            self.starting.remove(&uid);
            return;
        }
        if phase != "Pending" {
            if phase == "Running" {
                self.exit_later(&pod, &api, &name, &uid);
            }
            if let Some(ip) = status
                .and_then(|s| s.pod_ip.as_deref())
                .and_then(|ip| ip.parse::<std::net::Ipv4Addr>().ok())
                && node.pod_cidr.0.octets()[..3] == ip.octets()[..3]
            {
                self.state.lock_ipam().adopt(&node_name, ip, &uid);
            }
            self.starting.remove(&uid);
            return;
        }
        if !self.starting.insert(uid.clone()) {
            return;
        }
        let host_network = pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false);
        let pod_ip = if host_network {
            Some(node.ip)
        } else {
            self.state.lock_ipam().allocate(&node_name, node.pod_cidr, &uid)
        };
        let Some(pod_ip) = pod_ip else {
            warn!(pod = %name, node = %node_name, "no pod IP left on the node");
            return;
        };
        let now = Timestamp::now();
        let (host_ip, pod_ip) = (node.ip.to_string(), pod_ip.to_string());
        let patch = match annotation(&pod, START_FAILURE_ANNOTATION) {
            Some(reason) => waiting_status(&pod, &host_ip, &pod_ip, reason, now),
            None => running_status(&pod, &host_ip, &pod_ip, now),
        };
        let exit = annotation(&pod, START_FAILURE_ANNOTATION)
            .is_none()
            .then(|| exit_of(&pod))
            .flatten();
        if exit.is_some() {
            self.exiting.insert(uid.clone());
        }
        self.tasks.spawn(async move {
            {
                let _permit = permits.acquire().await;
                if let Err(e) = api
                    .patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
                    .await
                {
                    debug!(pod = %name, error = %e, "starting pod failed");
                    return;
                }
            }
            let Some((after, code)) = exit else { return };
            tokio::time::sleep(after).await;
            let _permit = permits.acquire().await;
            let patch = exited_status(&pod, code, &now.to_string(), Timestamp::now());
            if let Err(e) = api
                .patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
                .await
            {
                debug!(pod = %name, error = %e, "exiting pod failed");
            }
        });
    }

    /// Schedules the exit of a running pod that got the exit annotations.
    fn exit_later(&mut self, pod: &Pod, api: &Api<Pod>, name: &str, uid: &str) {
        let Some((after, code)) = exit_of(pod) else { return };
        if !self.exiting.insert(uid.to_string()) {
            return;
        }
        let started = pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map_or(Timestamp::now(), |t| t.0)
            .to_string();
        let (pod, api, name, permits) = (pod.clone(), api.clone(), name.to_string(), self.permits.clone());
        self.tasks.spawn(async move {
            tokio::time::sleep(after).await;
            let _permit = permits.acquire().await;
            let patch = exited_status(&pod, code, &started, Timestamp::now());
            if let Err(e) = api
                .patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
                .await
            {
                debug!(pod = %name, error = %e, "exiting pod failed");
            }
        });
    }

    fn on_delete(&mut self, pod: Pod) {
        let uid = pod.metadata.uid.unwrap_or_default();
        self.state.lock_ipam().release(&uid);
        self.starting.remove(&uid);
        self.deleting.remove(&uid);
        self.exiting.remove(&uid);
    }
}

impl State {
    fn lock_ipam(&self) -> std::sync::MutexGuard<'_, super::ipam::Ipam> {
        self.ipam.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Watches all pods and plays the kubelet for ours, forever.
pub async fn run(client: Client, state: Arc<State>) {
    let mut pods = Pods {
        permits: Arc::new(Semaphore::new(state.config.concurrency.max(1))),
        client: client.clone(),
        state,
        tasks: JoinSet::new(),
        starting: HashSet::new(),
        deleting: HashSet::new(),
        exiting: HashSet::new(),
    };
    let stream = watcher::watcher(Api::<Pod>::all(client), watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    while let Some(ev) = stream.next().await {
        while pods.tasks.try_join_next().is_some() {}
        match ev {
            Ok(Event::Apply(p)) | Ok(Event::InitApply(p)) => pods.on_apply(p),
            Ok(Event::Delete(p)) => pods.on_delete(p),
            Ok(Event::Init) | Ok(Event::InitDone) => {}
            Err(e) => warn!(error = %e, "pod watch failed; retrying"),
        }
    }
}
