//! Cluster plumbing: role bindings, certificates, leases, priority and
//! runtime classes, API services, storage versions and dynamic resource
//! allocation.

use time::{Duration, OffsetDateTime};

use super::{Object, Printed, Printer, cells};
use crate::table::columns::{AGE, ColumnDefinition, NAME, boolean, integer, string};
use crate::table::duration::{self, human_duration};
use crate::table::field::Fields;
use crate::table::format::list_with_more;

fn name(obj: &Object) -> &str {
    obj.str_at(&["metadata", "name"])
}

fn age(obj: &Object, now: OffsetDateTime) -> String {
    duration::since(obj.time_at(&["metadata", "creationTimestamp"]), now)
}

const ROLE_BINDING_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string("Role", "The role granted, as kind/name."),
    AGE,
    string("Users", "Users the role is granted to.").wide(),
    string("Groups", "Groups the role is granted to.").wide(),
    string(
        "ServiceAccounts",
        "Service accounts the role is granted to, as namespace/name.",
    )
    .wide(),
];

pub(crate) static ROLE_BINDINGS: Printer = Printer {
    columns: ROLE_BINDING_COLUMNS,
    print: print_role_binding,
};
pub(crate) static CLUSTER_ROLE_BINDINGS: Printer = Printer {
    columns: ROLE_BINDING_COLUMNS,
    print: print_role_binding,
};

fn print_role_binding(obj: &Object, now: OffsetDateTime) -> Printed {
    let (mut users, mut groups, mut service_accounts) = (Vec::new(), Vec::new(), Vec::new());
    for subject in obj.list_at(&["subjects"]) {
        let subject_name = subject.str_at(&["name"]);
        match subject.str_at(&["kind"]) {
            "ServiceAccount" => service_accounts.push(format!("{}/{subject_name}", subject.str_at(&["namespace"]))),
            "User" => users.push(subject_name.to_string()),
            "Group" => groups.push(subject_name.to_string()),
            _ => {}
        }
    }
    cells![
        name(obj),
        format!(
            "{}/{}",
            obj.str_at(&["roleRef", "kind"]),
            obj.str_at(&["roleRef", "name"])
        ),
        age(obj, now),
        users.join(", "),
        groups.join(", "),
        service_accounts.join(", "),
    ]
}

const CSR_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    AGE,
    string("SignerName", "The signer asked to sign the certificate."),
    string("Requestor", "The user who created the request."),
    string("RequestedDuration", "The validity period asked for."),
    string("Condition", "Approval state of the request, and whether it was issued."),
];

pub(crate) static CERTIFICATE_SIGNING_REQUESTS: Printer = Printer {
    columns: CSR_COLUMNS,
    print: print_csr,
};

fn print_csr(obj: &Object, now: OffsetDateTime) -> Printed {
    let requested = match obj.opt_int(&["spec", "expirationSeconds"]) {
        Some(seconds) => human_duration(Duration::seconds(seconds)),
        None => "<none>".to_string(),
    };
    cells![
        name(obj),
        age(obj, now),
        obj.opt_str(&["spec", "signerName"])
            .filter(|s| !s.is_empty())
            .unwrap_or("<none>"),
        obj.str_at(&["spec", "username"]),
        requested,
        csr_condition(obj),
    ]
}

/// Denied over Approved over Pending, then `,Failed` and `,Issued`.
fn csr_condition(obj: &Object) -> String {
    let conditions = obj.list_at(&["status", "conditions"]);
    let has = |type_: &str| conditions.iter().any(|c| c.str_at(&["type"]) == type_);
    let mut status = if has("Denied") {
        "Denied"
    } else if has("Approved") {
        "Approved"
    } else {
        "Pending"
    }
    .to_string();
    if has("Failed") {
        status.push_str(",Failed");
    }
    if !obj.str_at(&["status", "certificate"]).is_empty() {
        status.push_str(",Issued");
    }
    status
}

const CLUSTER_TRUST_BUNDLE_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string("SignerName", "The signer whose trust anchors the bundle holds."),
];

pub(crate) static CLUSTER_TRUST_BUNDLES: Printer = Printer {
    columns: CLUSTER_TRUST_BUNDLE_COLUMNS,
    print: print_cluster_trust_bundle,
};

fn print_cluster_trust_bundle(obj: &Object, _now: OffsetDateTime) -> Printed {
    cells![
        name(obj),
        obj.opt_str(&["spec", "signerName"])
            .filter(|s| !s.is_empty())
            .unwrap_or("<none>")
    ]
}

const LEASE_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string("Holder", "Identity of the current holder of the lease."),
    AGE,
];

pub(crate) static LEASES: Printer = Printer {
    columns: LEASE_COLUMNS,
    print: print_lease,
};

fn print_lease(obj: &Object, now: OffsetDateTime) -> Printed {
    cells![name(obj), obj.str_at(&["spec", "holderIdentity"]), age(obj, now)]
}

const LEASE_CANDIDATE_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string("LeaseName", "The lease the candidate competes for."),
    string("BinaryVersion", "Binary version of the candidate."),
    string("EmulationVersion", "Emulation version of the candidate."),
    AGE,
];

pub(crate) static LEASE_CANDIDATES: Printer = Printer {
    columns: LEASE_CANDIDATE_COLUMNS,
    print: print_lease_candidate,
};

fn print_lease_candidate(obj: &Object, now: OffsetDateTime) -> Printed {
    cells![
        name(obj),
        obj.str_at(&["spec", "leaseName"]),
        obj.str_at(&["spec", "binaryVersion"]),
        obj.str_at(&["spec", "emulationVersion"]),
        age(obj, now),
    ]
}

const PRIORITY_CLASS_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    integer("Value", "Priority of pods using this class."),
    boolean("Global-Default", "Whether pods without a class get this one."),
    AGE,
    string(
        "PreemptionPolicy",
        "Whether pods of this class may preempt lower-priority pods.",
    ),
];

pub(crate) static PRIORITY_CLASSES: Printer = Printer {
    columns: PRIORITY_CLASS_COLUMNS,
    print: print_priority_class,
};

fn print_priority_class(obj: &Object, now: OffsetDateTime) -> Printed {
    cells![
        name(obj),
        obj.int_at(&["value"]),
        obj.bool_at(&["globalDefault"]),
        age(obj, now),
        // scheduling/v1 defaults the policy to PreemptLowerPriority.
        obj.opt_str(&["preemptionPolicy"]).unwrap_or("PreemptLowerPriority"),
    ]
}

const RUNTIME_CLASS_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string("Handler", "The CRI handler that runs pods of this class."),
    AGE,
];

pub(crate) static RUNTIME_CLASSES: Printer = Printer {
    columns: RUNTIME_CLASS_COLUMNS,
    print: print_runtime_class,
};

fn print_runtime_class(obj: &Object, now: OffsetDateTime) -> Printed {
    cells![name(obj), obj.str_at(&["handler"]), age(obj, now)]
}

const API_SERVICE_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string("Service", "The service that serves this API, or Local."),
    string("Available", "Whether the API is available, with the reason if not."),
    AGE,
];

/// The aggregator's own table (not a `pkg/printers` one); it always sends
/// its column definitions, even when asked not to.
pub(crate) static API_SERVICES: Printer = Printer {
    columns: API_SERVICE_COLUMNS,
    print: print_api_service,
};

fn print_api_service(obj: &Object, now: OffsetDateTime) -> Printed {
    let service = match obj.at(&["spec", "service"]) {
        Some(s) => format!("{}/{}", s.str_at(&["namespace"]), s.str_at(&["name"])),
        None => "Local".to_string(),
    };
    let available = obj
        .list_at(&["status", "conditions"])
        .iter()
        .find(|c| c.str_at(&["type"]) == "Available");
    let available = match available {
        None => "Unknown".to_string(),
        Some(c) => match (c.str_at(&["status"]), c.str_at(&["reason"])) {
            ("True", _) | (_, "") => c.str_at(&["status"]).to_string(),
            (status, reason) => format!("{status} ({reason})"),
        },
    };
    cells![name(obj), service, available, age(obj, now)]
}

const STORAGE_VERSION_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string(
        "CommonEncodingVersion",
        "The encoding version every API server agrees on.",
    ),
    string("StorageVersions", "Encoding version of each API server."),
    AGE,
];

pub(crate) static STORAGE_VERSIONS: Printer = Printer {
    columns: STORAGE_VERSION_COLUMNS,
    print: print_storage_version,
};

fn print_storage_version(obj: &Object, now: OffsetDateTime) -> Printed {
    let versions: Vec<String> = obj
        .list_at(&["status", "storageVersions"])
        .iter()
        .map(|v| format!("{}={}", v.str_at(&["apiServerID"]), v.str_at(&["encodingVersion"])))
        .collect();
    cells![
        name(obj),
        obj.opt_str(&["status", "commonEncodingVersion"]).unwrap_or("<unset>"),
        list_with_more(&versions, 3),
        age(obj, now),
    ]
}

const NAME_AGE_COLUMNS: &[ColumnDefinition] = &[NAME, AGE];

pub(crate) static DEVICE_CLASSES: Printer = Printer {
    columns: NAME_AGE_COLUMNS,
    print: print_name_age,
};
pub(crate) static RESOURCE_CLAIM_TEMPLATES: Printer = Printer {
    columns: NAME_AGE_COLUMNS,
    print: print_name_age,
};

fn print_name_age(obj: &Object, now: OffsetDateTime) -> Printed {
    cells![name(obj), age(obj, now)]
}

const RESOURCE_CLAIM_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string("State", "Whether the claim is pending, allocated, reserved or deleted."),
    AGE,
];

pub(crate) static RESOURCE_CLAIMS: Printer = Printer {
    columns: RESOURCE_CLAIM_COLUMNS,
    print: print_resource_claim,
};

fn print_resource_claim(obj: &Object, now: OffsetDateTime) -> Printed {
    let deleted = obj.has(&["metadata", "deletionTimestamp"]);
    let mut states = Vec::new();
    if deleted {
        states.push("deleted");
    }
    if obj.has(&["status", "allocation"]) {
        states.push("allocated");
        if !obj.list_at(&["status", "reservedFor"]).is_empty() {
            states.push("reserved");
        }
    } else if !deleted {
        states.push("pending");
    }
    cells![name(obj), states.join(","), age(obj, now)]
}

const RESOURCE_SLICE_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string("Node", "The node whose devices the slice lists."),
    string("Driver", "The DRA driver that publishes the slice."),
    string("Pool", "The device pool the slice belongs to."),
    AGE,
];

pub(crate) static RESOURCE_SLICES: Printer = Printer {
    columns: RESOURCE_SLICE_COLUMNS,
    print: print_resource_slice,
};

fn print_resource_slice(obj: &Object, now: OffsetDateTime) -> Printed {
    cells![
        name(obj),
        obj.str_at(&["spec", "nodeName"]),
        obj.str_at(&["spec", "driver"]),
        obj.str_at(&["spec", "pool", "name"]),
        age(obj, now),
    ]
}

#[cfg(test)]
mod tests;
