//! Workload controllers: pod templates, replication controllers, replica
//! sets, deployments, stateful sets, daemon sets, jobs, cron jobs,
//! controller revisions and pod disruption budgets.

use time::OffsetDateTime;

use super::{Object, Printed, Printer, cells};
use crate::table::columns::{AGE, CONTAINERS, ColumnDefinition, IMAGES, NAME, SELECTOR, boolean, integer, string};
use crate::table::duration::{self, human_duration};
use crate::table::field::Fields;
use crate::table::format::{bool_ptr, containers_and_images, int_or_string};
use crate::table::labels::{format_label_selector, format_labels, selector_string};

fn name(obj: &Object) -> &str {
    obj.str_at(&["metadata", "name"])
}

fn age(obj: &Object, now: OffsetDateTime) -> String {
    duration::since(obj.time_at(&["metadata", "creationTimestamp"]), now)
}

/// `spec.replicas`, which the apps/v1 and core/v1 APIs default to 1.
fn desired_replicas(obj: &Object) -> i64 {
    obj.opt_int(&["spec", "replicas"]).unwrap_or(1)
}

fn template_containers(obj: &Object) -> (String, String) {
    containers_and_images(obj.list_at(&["spec", "template", "spec", "containers"]))
}

const POD_TEMPLATE_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string("Containers", "Names of the containers in the pod template."),
    string("Images", "Images used by the containers in the pod template."),
    string("Pod Labels", "Labels of the pod template."),
];

pub(crate) static POD_TEMPLATES: Printer = Printer {
    columns: POD_TEMPLATE_COLUMNS,
    print: print_pod_template,
};

fn print_pod_template(obj: &Object, _now: OffsetDateTime) -> Printed {
    // Pod templates keep the template at the top level, not under spec.
    let (names, images) = containers_and_images(obj.list_at(&["template", "spec", "containers"]));
    cells![
        name(obj),
        names,
        images,
        format_labels(obj.map_at(&["template", "metadata", "labels"]))
    ]
}

const REPLICATION_CONTROLLER_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    integer("Desired", "Number of replicas requested."),
    integer("Current", "Number of replicas most recently observed."),
    integer("Ready", "Number of ready replicas."),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

pub(crate) static REPLICATION_CONTROLLERS: Printer = Printer {
    columns: REPLICATION_CONTROLLER_COLUMNS,
    print: print_replication_controller,
};

fn print_replication_controller(obj: &Object, now: OffsetDateTime) -> Printed {
    let (names, images) = template_containers(obj);
    cells![
        name(obj),
        desired_replicas(obj),
        obj.int_at(&["status", "replicas"]),
        obj.int_at(&["status", "readyReplicas"]),
        age(obj, now),
        names,
        images,
        format_labels(obj.map_at(&["spec", "selector"])),
    ]
}

const REPLICA_SET_COLUMNS: &[ColumnDefinition] = REPLICATION_CONTROLLER_COLUMNS;

pub(crate) static REPLICA_SETS: Printer = Printer {
    columns: REPLICA_SET_COLUMNS,
    print: print_replica_set,
};

fn print_replica_set(obj: &Object, now: OffsetDateTime) -> Printed {
    let (names, images) = template_containers(obj);
    cells![
        name(obj),
        desired_replicas(obj),
        obj.int_at(&["status", "replicas"]),
        obj.int_at(&["status", "readyReplicas"]),
        age(obj, now),
        names,
        images,
        format_label_selector(obj.at(&["spec", "selector"])),
    ]
}

const DEPLOYMENT_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string("Ready", "Ready replicas out of desired replicas."),
    string("Up-to-date", "Replicas running the latest pod template."),
    string("Available", "Replicas available for at least minReadySeconds."),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

pub(crate) static DEPLOYMENTS: Printer = Printer {
    columns: DEPLOYMENT_COLUMNS,
    print: print_deployment,
};

fn print_deployment(obj: &Object, now: OffsetDateTime) -> Printed {
    let (names, images) = template_containers(obj);
    // Deployments print the selector without the <none> placeholder.
    let selector = selector_string(obj.at(&["spec", "selector"])).unwrap_or_else(|_| "<invalid>".to_string());
    cells![
        name(obj),
        format!("{}/{}", obj.int_at(&["status", "readyReplicas"]), desired_replicas(obj)),
        obj.int_at(&["status", "updatedReplicas"]),
        obj.int_at(&["status", "availableReplicas"]),
        age(obj, now),
        names,
        images,
        selector,
    ]
}

const STATEFUL_SET_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string("Ready", "Ready replicas out of desired replicas."),
    AGE,
    CONTAINERS,
    IMAGES,
];

pub(crate) static STATEFUL_SETS: Printer = Printer {
    columns: STATEFUL_SET_COLUMNS,
    print: print_stateful_set,
};

fn print_stateful_set(obj: &Object, now: OffsetDateTime) -> Printed {
    let (names, images) = template_containers(obj);
    cells![
        name(obj),
        format!("{}/{}", obj.int_at(&["status", "readyReplicas"]), desired_replicas(obj)),
        age(obj, now),
        names,
        images,
    ]
}

const DAEMON_SET_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    integer("Desired", "Number of nodes that should run the daemon pod."),
    integer(
        "Current",
        "Number of nodes running at least one daemon pod that should.",
    ),
    integer("Ready", "Number of nodes whose daemon pod is ready."),
    integer("Up-to-date", "Number of nodes running the updated daemon pod."),
    integer("Available", "Number of nodes whose daemon pod is available."),
    string("Node Selector", "Node labels the daemon pods are restricted to."),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

pub(crate) static DAEMON_SETS: Printer = Printer {
    columns: DAEMON_SET_COLUMNS,
    print: print_daemon_set,
};

fn print_daemon_set(obj: &Object, now: OffsetDateTime) -> Printed {
    let (names, images) = template_containers(obj);
    cells![
        name(obj),
        obj.int_at(&["status", "desiredNumberScheduled"]),
        obj.int_at(&["status", "currentNumberScheduled"]),
        obj.int_at(&["status", "numberReady"]),
        obj.int_at(&["status", "updatedNumberScheduled"]),
        obj.int_at(&["status", "numberAvailable"]),
        format_labels(obj.map_at(&["spec", "template", "spec", "nodeSelector"])),
        age(obj, now),
        names,
        images,
        format_label_selector(obj.at(&["spec", "selector"])),
    ]
}

const JOB_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string("Status", "Status of the job."),
    string("Completions", "Succeeded pods out of the completions wanted."),
    string("Duration", "How long the job ran, or has been running."),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

pub(crate) static JOBS: Printer = Printer {
    columns: JOB_COLUMNS,
    print: print_job,
};

/// Whether the job's first condition of this type is True.
fn job_condition(obj: &Object, type_: &str) -> bool {
    obj.list_at(&["status", "conditions"])
        .iter()
        .find(|c| c.str_at(&["type"]) == type_)
        .is_some_and(|c| c.str_at(&["status"]) == "True")
}

fn print_job(obj: &Object, now: OffsetDateTime) -> Printed {
    let succeeded = obj.int_at(&["status", "succeeded"]);
    let parallelism = obj.opt_int(&["spec", "parallelism"]);
    // batch/v1 defaults completions (and parallelism) to 1 when neither is set.
    let completions = obj
        .opt_int(&["spec", "completions"])
        .or(parallelism.is_none().then_some(1));
    let completions = match (completions, parallelism.unwrap_or(1)) {
        (Some(c), _) => format!("{succeeded}/{c}"),
        (None, p) if p > 1 => format!("{succeeded}/1 of {p}"),
        (None, _) => format!("{succeeded}/1"),
    };
    let duration = match (
        obj.time_at(&["status", "startTime"]),
        obj.time_at(&["status", "completionTime"]),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(now - start),
        (Some(start), Some(end)) => human_duration(end - start),
    };
    let status = if job_condition(obj, "Complete") {
        "Complete"
    } else if job_condition(obj, "Failed") {
        "Failed"
    } else if obj.has(&["metadata", "deletionTimestamp"]) {
        "Terminating"
    } else if job_condition(obj, "Suspended") {
        "Suspended"
    } else if job_condition(obj, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = template_containers(obj);
    cells![
        name(obj),
        status,
        completions,
        duration,
        age(obj, now),
        names,
        images,
        format_label_selector(obj.at(&["spec", "selector"])),
    ]
}

const CRON_JOB_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string("Schedule", "The schedule in Cron format."),
    string("Timezone", "The time zone the schedule is interpreted in."),
    boolean("Suspend", "Whether new runs are suspended."),
    integer("Active", "Number of jobs currently running."),
    string("Last Schedule", "How long ago a job was last scheduled."),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

pub(crate) static CRON_JOBS: Printer = Printer {
    columns: CRON_JOB_COLUMNS,
    print: print_cron_job,
};

fn print_cron_job(obj: &Object, now: OffsetDateTime) -> Printed {
    let last_schedule = match obj.time_at(&["status", "lastScheduleTime"]) {
        Some(t) => duration::since(Some(t), now),
        None if obj.has(&["status", "lastScheduleTime"]) => "<unknown>".to_string(),
        None => "<none>".to_string(),
    };
    let template = ["spec", "jobTemplate", "spec", "template", "spec", "containers"];
    let (names, images) = containers_and_images(obj.list_at(&template));
    cells![
        name(obj),
        obj.str_at(&["spec", "schedule"]),
        obj.opt_str(&["spec", "timeZone"]).unwrap_or("<none>"),
        // batch/v1 defaults suspend to false.
        bool_ptr(Some(obj.opt_bool(&["spec", "suspend"]).unwrap_or(false))),
        obj.list_at(&["status", "active"]).len() as i64,
        last_schedule,
        age(obj, now),
        names,
        images,
        format_label_selector(obj.at(&["spec", "jobTemplate", "spec", "selector"])),
    ]
}

const CONTROLLER_REVISION_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string("Controller", "The object that owns this revision."),
    string("Revision", "The revision number of the state this object holds."),
    AGE,
];

pub(crate) static CONTROLLER_REVISIONS: Printer = Printer {
    columns: CONTROLLER_REVISION_COLUMNS,
    print: print_controller_revision,
};

fn print_controller_revision(obj: &Object, now: OffsetDateTime) -> Printed {
    let controller = obj
        .list_at(&["metadata", "ownerReferences"])
        .iter()
        .find(|r| r.bool_at(&["controller"]))
        .map_or_else(
            || "<none>".to_string(),
            |r| {
                let group = r.str_at(&["apiVersion"]).rsplit_once('/').map_or("", |(g, _)| g);
                let kind = r.str_at(&["kind"]);
                let group_kind = if group.is_empty() {
                    kind.to_string()
                } else {
                    format!("{kind}.{group}")
                };
                if group_kind.is_empty() {
                    r.str_at(&["name"]).to_string()
                } else {
                    format!("{}/{}", group_kind.to_lowercase(), r.str_at(&["name"]))
                }
            },
        );
    cells![name(obj), controller, obj.int_at(&["revision"]), age(obj, now)]
}

const POD_DISRUPTION_BUDGET_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string(
        "Min Available",
        "Pods that must stay available, as a number or percentage.",
    ),
    string(
        "Max Unavailable",
        "Pods that may be unavailable, as a number or percentage.",
    ),
    integer("Allowed Disruptions", "Pod disruptions currently allowed."),
    AGE,
];

pub(crate) static POD_DISRUPTION_BUDGETS: Printer = Printer {
    columns: POD_DISRUPTION_BUDGET_COLUMNS,
    print: print_pod_disruption_budget,
};

fn print_pod_disruption_budget(obj: &Object, now: OffsetDateTime) -> Printed {
    let bound = |field: &str| {
        obj.at(&["spec", field])
            .map_or_else(|| "N/A".to_string(), int_or_string)
    };
    cells![
        name(obj),
        bound("minAvailable"),
        bound("maxUnavailable"),
        obj.int_at(&["status", "disruptionsAllowed"]),
        age(obj, now),
    ]
}

#[cfg(test)]
mod tests;
