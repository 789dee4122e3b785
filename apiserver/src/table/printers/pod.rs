//! Pods: NAME READY STATUS RESTARTS AGE, and wide IP NODE NOMINATED NODE
//! READINESS GATES. STATUS follows upstream's `printPod` step by step: the
//! phase or status reason, then init containers, then containers (last
//! first), then deletion.

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::{Object, Printed, Printer};
use crate::table::columns::{AGE, ColumnDefinition, NAME, string};
use crate::table::duration;
use crate::table::field::Fields;

const COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string("Ready", "Ready containers out of all containers of the pod."),
    string("Status", "Summary of the pod's phase and its containers' states."),
    string(
        "Restarts",
        "Container restarts in the pod, and how long ago the last one was.",
    ),
    AGE,
    string("IP", "The pod's first IP address.").wide(),
    string("Node", "The node the pod is bound to.").wide(),
    string(
        "Nominated Node",
        "The node the scheduler nominated for this pod after preemption.",
    )
    .wide(),
    string(
        "Readiness Gates",
        "Readiness gates whose condition is True, out of all of them.",
    )
    .wide(),
];

pub(crate) static PODS: Printer = Printer {
    columns: COLUMNS,
    print: print_pod,
};

/// A Go `metav1.Time` that may be zero, ordered so that zero is earliest.
type Timestamp = Option<OffsetDateTime>;

fn print_pod(pod: &Object, now: OffsetDateTime) -> Printed {
    let init_specs = pod.list_at(&["spec", "initContainers"]);
    let is_sidecar = |name: &str| {
        // Upstream keys init containers by name, so the last one of a name wins.
        init_specs
            .iter()
            .rev()
            .find(|c| c.str_at(&["name"]) == name)
            .is_some_and(|c| c.str_at(&["restartPolicy"]) == "Always")
    };
    let mut total = pod.list_at(&["spec", "containers"]).len();
    total += init_specs
        .iter()
        .filter(|c| c.str_at(&["restartPolicy"]) == "Always")
        .count();
    let mut ready = 0usize;
    let mut restarts: i64 = 0;
    let mut sidecar_restarts: i64 = 0;
    let mut last_restart: Timestamp = None;
    let mut last_sidecar_restart: Timestamp = None;

    let phase = pod.str_at(&["status", "phase"]);
    let mut reason = match pod.str_at(&["status", "reason"]) {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    if pod
        .list_at(&["status", "conditions"])
        .iter()
        .any(|c| c.str_at(&["type"]) == "PodScheduled" && c.str_at(&["reason"]) == "SchedulingGated")
    {
        reason = "SchedulingGated".to_string();
    }

    let init_count = init_specs.len();
    let mut initializing = false;
    for (i, status) in pod.list_at(&["status", "initContainerStatuses"]).iter().enumerate() {
        let count = status.int_at(&["restartCount"]);
        restarts += count;
        let finished = last_terminated_at(status);
        last_restart = last_restart.max(finished);
        let sidecar = is_sidecar(status.str_at(&["name"]));
        if sidecar {
            sidecar_restarts += count;
            last_sidecar_restart = last_sidecar_restart.max(finished);
        }
        let terminated = status.at(&["state", "terminated"]);
        let waiting_reason = status.at(&["state", "waiting"]).map(|w| w.str_at(&["reason"]));
        if terminated.is_some_and(|t| t.int_at(&["exitCode"]) == 0) {
            continue;
        }
        if sidecar && status.opt_bool(&["started"]) == Some(true) {
            if status.bool_at(&["ready"]) {
                ready += 1;
            }
            continue;
        }
        reason = match (terminated, waiting_reason) {
            (Some(t), _) => match t.str_at(&["reason"]) {
                "" if t.int_at(&["signal"]) != 0 => format!("Init:Signal:{}", t.int_at(&["signal"])),
                "" => format!("Init:ExitCode:{}", t.int_at(&["exitCode"])),
                r => format!("Init:{r}"),
            },
            (None, Some(w)) if !w.is_empty() && w != "PodInitializing" => format!("Init:{w}"),
            _ => format!("Init:{i}/{init_count}"),
        };
        initializing = true;
        break;
    }

    if !initializing || condition_is_true(pod, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for status in pod.list_at(&["status", "containerStatuses"]).iter().rev() {
            restarts += status.int_at(&["restartCount"]);
            last_restart = last_restart.max(last_terminated_at(status));
            let waiting = status.at(&["state", "waiting"]);
            let terminated = status.at(&["state", "terminated"]);
            if let Some(r) = waiting.map(|w| w.str_at(&["reason"])).filter(|r| !r.is_empty()) {
                reason = r.to_string();
            } else if let Some(t) = terminated {
                reason = match t.str_at(&["reason"]) {
                    "" if t.int_at(&["signal"]) != 0 => format!("Signal:{}", t.int_at(&["signal"])),
                    "" => format!("ExitCode:{}", t.int_at(&["exitCode"])),
                    r => r.to_string(),
                };
            } else if status.bool_at(&["ready"]) && status.has(&["state", "running"]) {
                has_running = true;
                ready += 1;
            }
        }
        // A pod with a container still running is not Completed.
        if reason == "Completed" && has_running {
            let ready_condition = pod
                .list_at(&["status", "conditions"])
                .iter()
                .any(|c| c.str_at(&["type"]) == "Ready" && c.str_at(&["status"]) == "True");
            reason = if ready_condition { "Running" } else { "NotReady" }.to_string();
        }
    }

    if pod.has(&["metadata", "deletionTimestamp"]) {
        if pod.str_at(&["status", "reason"]) == "NodeLost" {
            reason = "Unknown".to_string();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".to_string();
        }
    }

    let restarts_text = match last_restart {
        Some(at) if restarts != 0 => format!("{restarts} ({} ago)", duration::since(Some(at), now)),
        _ => restarts.to_string(),
    };

    let first_ip = pod
        .list_at(&["status", "podIPs"])
        .first()
        .map_or("", |ip| ip.str_at(&["ip"]));
    let mut printed = super::cells![
        pod.str_at(&["metadata", "name"]),
        format!("{ready}/{total}"),
        reason,
        restarts_text,
        duration::since(pod.time_at(&["metadata", "creationTimestamp"]), now),
        or_none(first_ip),
        or_none(pod.str_at(&["spec", "nodeName"])),
        or_none(pod.str_at(&["status", "nominatedNodeName"])),
        readiness_gates(pod),
    ];
    printed.conditions = match phase {
        "Succeeded" => vec![completed_condition("Succeeded", "The pod has completed successfully.")],
        "Failed" => vec![completed_condition("Failed", "The pod failed.")],
        _ => Vec::new(),
    };
    printed
}

/// When the container's previous run ended, if it has ended.
fn last_terminated_at(status: &Value) -> Timestamp {
    status
        .at(&["lastState", "terminated"])
        .and_then(|t| t.time_at(&["finishedAt"]))
}

/// Whether the pod's first condition of this type is True.
fn condition_is_true(pod: &Object, type_: &str) -> bool {
    pod.list_at(&["status", "conditions"])
        .iter()
        .find(|c| c.str_at(&["type"]) == type_)
        .is_some_and(|c| c.str_at(&["status"]) == "True")
}

/// `true/total` over the pod's readiness gates, or `<none>` without any.
fn readiness_gates(pod: &Object) -> String {
    let gates = pod.list_at(&["spec", "readinessGates"]);
    if gates.is_empty() {
        return "<none>".to_string();
    }
    let passing = gates
        .iter()
        .filter(|g| condition_is_true(pod, g.str_at(&["conditionType"])))
        .count();
    format!("{passing}/{}", gates.len())
}

fn or_none(s: &str) -> String {
    if s.is_empty() {
        "<none>".to_string()
    } else {
        s.to_string()
    }
}

/// The row condition upstream attaches to finished pods.
fn completed_condition(reason: &str, message: &str) -> Value {
    json!({"type": "Completed", "status": "True", "reason": reason, "message": message})
}

#[cfg(test)]
mod tests;
