use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

use super::*;

const NOW: OffsetDateTime = datetime!(2025-06-01 12:00:00 UTC);

fn check(printer: &Printer, obj: Value, expected: Value) {
    let printed = (printer.print)(obj.as_object().expect("object"), NOW);
    assert_eq!(Value::Array(printed.cells), expected, "{obj}");
}

#[test]
fn volumes_and_claims() {
    let pv = json!({"metadata": {"name": "pv-1", "creationTimestamp": "2025-06-01T11:00:00Z"},
        "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                 "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "standard",
                 "claimRef": {"namespace": "default", "name": "data"}},
        "status": {"phase": "Bound"}});
    check(
        &PERSISTENT_VOLUMES,
        pv,
        json!([
            "pv-1",
            "10Gi",
            "RWO,RWX",
            "Delete",
            "Bound",
            "default/data",
            "standard",
            "<unset>",
            "",
            "60m",
            "Filesystem"
        ]),
    );
    let mut deleting = json!({"metadata": {"name": "pv-2", "deletionTimestamp": "2025-06-01T11:59:00Z",
        "annotations": {"volume.beta.kubernetes.io/storage-class": "legacy"}}, "spec": {"storageClassName": "ignored", "volumeMode": "Block"}});
    deleting["spec"]["volumeAttributesClassName"] = json!("gold");
    check(
        &PERSISTENT_VOLUMES,
        deleting,
        json!([
            "pv-2",
            "0",
            "",
            "Retain",
            "Terminating",
            "",
            "legacy",
            "gold",
            "",
            "<unknown>",
            "Block"
        ]),
    );
    let bound = json!({"metadata": {"name": "data", "creationTimestamp": "2025-06-01T11:00:00Z"},
        "spec": {"volumeName": "pv-1", "storageClassName": "standard", "resources": {"requests": {"storage": "5Gi"}}},
        "status": {"phase": "Bound", "capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOncePod"]}});
    check(
        &PERSISTENT_VOLUME_CLAIMS,
        bound,
        json!([
            "data",
            "Bound",
            "pv-1",
            "10Gi",
            "RWOP",
            "standard",
            "<unset>",
            "60m",
            "Filesystem"
        ]),
    );
    let pending = json!({"metadata": {"name": "new"}, "spec": {"resources": {"requests": {"storage": "5Gi"}}}, "status": {"phase": "Pending"}});
    check(
        &PERSISTENT_VOLUME_CLAIMS,
        pending,
        json!(["new", "Pending", "", "", "", "", "<unset>", "<unknown>", "Filesystem"]),
    );
}

#[test]
fn classes() {
    let sc = json!({"metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"});
    check(
        &STORAGE_CLASSES,
        sc,
        json!([
            "standard (default)",
            "rancher.io/local-path",
            "Delete",
            "WaitForFirstConsumer",
            false,
            "<unknown>"
        ]),
    );
    let vac = json!({"metadata": {"name": "gold"}, "driverName": "csi.example.com"});
    check(
        &VOLUME_ATTRIBUTES_CLASSES,
        vac,
        json!(["gold", "csi.example.com", "<unknown>"]),
    );
}

#[test]
fn csi() {
    let driver = json!({"metadata": {"name": "csi.example.com"},
        "spec": {"attachRequired": false, "podInfoOnMount": true, "volumeLifecycleModes": ["Persistent", "Ephemeral"],
                 "tokenRequests": [{"audience": "vault"}, {"audience": ""}]}});
    check(
        &CSI_DRIVERS,
        driver,
        json!([
            "csi.example.com",
            false,
            true,
            false,
            "vault,",
            false,
            "Persistent,Ephemeral",
            "<unknown>"
        ]),
    );
    let bare = json!({"metadata": {"name": "d"}, "spec": {}});
    check(
        &CSI_DRIVERS,
        bare,
        json!(["d", true, false, false, "<unset>", false, "<none>", "<unknown>"]),
    );
    let node = json!({"metadata": {"name": "n1"}, "spec": {"drivers": [{"name": "a"}, {"name": "b"}]}});
    check(&CSI_NODES, node, json!(["n1", 2, "<unknown>"]));
    let cap = json!({"metadata": {"name": "c"}, "storageClassName": "fast", "capacity": "100Gi"});
    check(&CSI_STORAGE_CAPACITIES, cap, json!(["c", "fast", "100Gi"]));
    check(
        &CSI_STORAGE_CAPACITIES,
        json!({"metadata": {"name": "c"}, "storageClassName": "fast"}),
        json!(["c", "fast", "<unset>"]),
    );
    let va = json!({"metadata": {"name": "csi-123"}, "spec": {"attacher": "csi.example.com", "nodeName": "n1",
        "source": {"persistentVolumeName": "pv-1"}}, "status": {"attached": true}});
    check(
        &VOLUME_ATTACHMENTS,
        va,
        json!(["csi-123", "csi.example.com", "pv-1", "n1", true, "<unknown>"]),
    );
}
