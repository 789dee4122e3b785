//! Storage: persistent volumes and claims, storage and volume attributes
//! classes, CSI drivers, nodes and storage capacities, volume attachments.

use serde_json::Value;
use time::OffsetDateTime;

use super::{Object, Printed, Printer, cells};
use crate::table::columns::{AGE, ColumnDefinition, NAME, boolean, integer, string};
use crate::table::duration;
use crate::table::field::Fields;

fn name(obj: &Object) -> &str {
    obj.str_at(&["metadata", "name"])
}

fn age(obj: &Object, now: OffsetDateTime) -> String {
    duration::since(obj.time_at(&["metadata", "creationTimestamp"]), now)
}

/// Upstream's `GetAccessModesAsString`: RWO, ROX, RWX, RWOP in that order.
fn access_modes(modes: &[Value]) -> String {
    let has = |mode: &str| modes.iter().any(|m| m.as_str() == Some(mode));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| has(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// The storage class: the legacy beta annotation wins over the field.
fn storage_class(obj: &Object) -> &str {
    obj.opt_str(&["metadata", "annotations", "volume.beta.kubernetes.io/storage-class"])
        .unwrap_or_else(|| obj.str_at(&["spec", "storageClassName"]))
}

/// The phase, or `Terminating` once deletion has started.
fn phase(obj: &Object) -> &str {
    if obj.has(&["metadata", "deletionTimestamp"]) {
        return "Terminating";
    }
    // core/v1 defaults both volume and claim phases to Pending.
    obj.opt_str(&["status", "phase"]).unwrap_or("Pending")
}

const PERSISTENT_VOLUME_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string("Capacity", "Storage capacity of the volume."),
    string("Access Modes", "Ways the volume can be mounted."),
    string(
        "Reclaim Policy",
        "What happens to the volume when its claim is released.",
    ),
    string("Status", "Phase of the volume."),
    string("Claim", "The claim bound to the volume, as namespace/name."),
    string("StorageClass", "Storage class of the volume."),
    string("VolumeAttributesClass", "Volume attributes class of the volume."),
    string("Reason", "Why the volume is in its phase, if it failed."),
    AGE,
    string(
        "VolumeMode",
        "Whether the volume is a filesystem or a raw block device.",
    )
    .wide(),
];

pub(crate) static PERSISTENT_VOLUMES: Printer = Printer {
    columns: PERSISTENT_VOLUME_COLUMNS,
    print: print_persistent_volume,
};

fn print_persistent_volume(obj: &Object, now: OffsetDateTime) -> Printed {
    let claim = match obj.at(&["spec", "claimRef"]) {
        Some(c) => format!("{}/{}", c.str_at(&["namespace"]), c.str_at(&["name"])),
        None => String::new(),
    };
    cells![
        name(obj),
        obj.quantity_at(&["spec", "capacity", "storage"])
            .unwrap_or_else(|| "0".to_string()),
        access_modes(obj.list_at(&["spec", "accessModes"])),
        // core/v1 defaults the reclaim policy to Retain and the mode to Filesystem.
        obj.opt_str(&["spec", "persistentVolumeReclaimPolicy"])
            .unwrap_or("Retain"),
        phase(obj),
        claim,
        storage_class(obj),
        obj.opt_str(&["spec", "volumeAttributesClassName"]).unwrap_or("<unset>"),
        obj.str_at(&["status", "reason"]),
        age(obj, now),
        obj.opt_str(&["spec", "volumeMode"]).unwrap_or("Filesystem"),
    ]
}

const PERSISTENT_VOLUME_CLAIM_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string("Status", "Phase of the claim."),
    string("Volume", "The volume bound to the claim."),
    string("Capacity", "Storage capacity of the bound volume."),
    string("Access Modes", "Ways the bound volume can be mounted."),
    string("StorageClass", "Storage class of the claim."),
    string("VolumeAttributesClass", "Volume attributes class of the claim."),
    AGE,
    string(
        "VolumeMode",
        "Whether the claim wants a filesystem or a raw block device.",
    )
    .wide(),
];

pub(crate) static PERSISTENT_VOLUME_CLAIMS: Printer = Printer {
    columns: PERSISTENT_VOLUME_CLAIM_COLUMNS,
    print: print_persistent_volume_claim,
};

fn print_persistent_volume_claim(obj: &Object, now: OffsetDateTime) -> Printed {
    let volume = obj.str_at(&["spec", "volumeName"]);
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            obj.quantity_at(&["status", "capacity", "storage"])
                .unwrap_or_else(|| "0".to_string()),
            access_modes(obj.list_at(&["status", "accessModes"])),
        )
    };
    cells![
        name(obj),
        phase(obj),
        volume,
        capacity,
        modes,
        storage_class(obj),
        obj.opt_str(&["spec", "volumeAttributesClassName"]).unwrap_or("<unset>"),
        age(obj, now),
        obj.opt_str(&["spec", "volumeMode"]).unwrap_or("Filesystem"),
    ]
}

const STORAGE_CLASS_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string(
        "Provisioner",
        "The volume plugin that provisions volumes of this class.",
    ),
    string("ReclaimPolicy", "Reclaim policy of volumes provisioned for this class."),
    string("VolumeBindingMode", "When volumes are provisioned and bound."),
    string("AllowVolumeExpansion", "Whether volumes of this class can be expanded."),
    AGE,
];

pub(crate) static STORAGE_CLASSES: Printer = Printer {
    columns: STORAGE_CLASS_COLUMNS,
    print: print_storage_class,
};

fn print_storage_class(obj: &Object, now: OffsetDateTime) -> Printed {
    let default = [
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    ]
    .iter()
    .any(|a| obj.str_at(&["metadata", "annotations", a]) == "true");
    let shown = if default {
        format!("{} (default)", name(obj))
    } else {
        name(obj).to_string()
    };
    cells![
        shown,
        obj.str_at(&["provisioner"]),
        // storage/v1 defaults these two; expansion is off unless set.
        obj.opt_str(&["reclaimPolicy"]).unwrap_or("Delete"),
        obj.opt_str(&["volumeBindingMode"]).unwrap_or("Immediate"),
        obj.bool_at(&["allowVolumeExpansion"]),
        age(obj, now),
    ]
}

const VOLUME_ATTRIBUTES_CLASS_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string("DriverName", "The CSI driver that handles this class."),
    AGE,
];

pub(crate) static VOLUME_ATTRIBUTES_CLASSES: Printer = Printer {
    columns: VOLUME_ATTRIBUTES_CLASS_COLUMNS,
    print: print_volume_attributes_class,
};

fn print_volume_attributes_class(obj: &Object, now: OffsetDateTime) -> Printed {
    let default = obj.str_at(&[
        "metadata",
        "annotations",
        "volumeattributesclass.kubernetes.io/is-default-class",
    ]) == "true";
    let shown = if default {
        format!("{} (default)", name(obj))
    } else {
        name(obj).to_string()
    };
    cells![shown, obj.str_at(&["driverName"]), age(obj, now)]
}

const CSI_DRIVER_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    boolean("AttachRequired", "Whether volumes need an attach operation."),
    boolean("PodInfoOnMount", "Whether pod information is passed on mount."),
    boolean("StorageCapacity", "Whether the driver reports storage capacity."),
    string(
        "TokenRequests",
        "Audiences of service account tokens passed to the driver.",
    ),
    boolean("RequiresRepublish", "Whether NodePublishVolume is called periodically."),
    string("Modes", "Volume lifecycle modes the driver supports."),
    AGE,
];

pub(crate) static CSI_DRIVERS: Printer = Printer {
    columns: CSI_DRIVER_COLUMNS,
    print: print_csi_driver,
};

fn print_csi_driver(obj: &Object, now: OffsetDateTime) -> Printed {
    let modes: Vec<&str> = obj
        .list_at(&["spec", "volumeLifecycleModes"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let tokens = match obj.at(&["spec", "tokenRequests"]) {
        Some(Value::Array(requests)) => requests
            .iter()
            .map(|t| t.str_at(&["audience"]))
            .collect::<Vec<_>>()
            .join(","),
        _ => "<unset>".to_string(),
    };
    cells![
        name(obj),
        obj.opt_bool(&["spec", "attachRequired"]).unwrap_or(true),
        obj.bool_at(&["spec", "podInfoOnMount"]),
        obj.bool_at(&["spec", "storageCapacity"]),
        tokens,
        obj.bool_at(&["spec", "requiresRepublish"]),
        if modes.is_empty() {
            "<none>".to_string()
        } else {
            modes.join(",")
        },
        age(obj, now),
    ]
}

const CSI_NODE_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    integer("Drivers", "Number of CSI drivers registered on the node."),
    AGE,
];

pub(crate) static CSI_NODES: Printer = Printer {
    columns: CSI_NODE_COLUMNS,
    print: print_csi_node,
};

fn print_csi_node(obj: &Object, now: OffsetDateTime) -> Printed {
    cells![name(obj), obj.list_at(&["spec", "drivers"]).len() as i64, age(obj, now)]
}

const CSI_STORAGE_CAPACITY_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string("StorageClassName", "The storage class the capacity applies to."),
    string("Capacity", "Capacity reported by the driver."),
];

pub(crate) static CSI_STORAGE_CAPACITIES: Printer = Printer {
    columns: CSI_STORAGE_CAPACITY_COLUMNS,
    print: print_csi_storage_capacity,
};

fn print_csi_storage_capacity(obj: &Object, _now: OffsetDateTime) -> Printed {
    let capacity = obj.quantity_at(&["capacity"]).unwrap_or_else(|| "<unset>".to_string());
    cells![name(obj), obj.str_at(&["storageClassName"]), capacity]
}

const VOLUME_ATTACHMENT_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    ColumnDefinition {
        format: "name",
        ..string("Attacher", "The CSI driver that attaches the volume.")
    },
    string("PV", "The persistent volume being attached."),
    string("Node", "The node the volume is attached to."),
    boolean("Attached", "Whether the volume is attached."),
    AGE,
];

pub(crate) static VOLUME_ATTACHMENTS: Printer = Printer {
    columns: VOLUME_ATTACHMENT_COLUMNS,
    print: print_volume_attachment,
};

fn print_volume_attachment(obj: &Object, now: OffsetDateTime) -> Printed {
    cells![
        name(obj),
        obj.str_at(&["spec", "attacher"]),
        obj.str_at(&["spec", "source", "persistentVolumeName"]),
        obj.str_at(&["spec", "nodeName"]),
        obj.bool_at(&["status", "attached"]),
        age(obj, now),
    ]
}

#[cfg(test)]
mod tests;
