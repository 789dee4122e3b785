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
fn role_bindings() {
    let rb = json!({"metadata": {"name": "cluster-admin", "creationTimestamp": "2025-06-01T11:00:00Z"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "Group", "name": "system:masters"}, {"kind": "User", "name": "alice"}, {"kind": "User", "name": "bob"},
                     {"kind": "ServiceAccount", "namespace": "kube-system", "name": "admin"}]});
    check(
        &CLUSTER_ROLE_BINDINGS,
        rb,
        json!([
            "cluster-admin",
            "ClusterRole/cluster-admin",
            "60m",
            "alice, bob",
            "system:masters",
            "kube-system/admin"
        ]),
    );
    let empty = json!({"metadata": {"name": "r"}, "roleRef": {"kind": "Role", "name": "reader"}});
    check(
        &ROLE_BINDINGS,
        empty,
        json!(["r", "Role/reader", "<unknown>", "", "", ""]),
    );
}

#[test]
fn certificate_signing_requests() {
    let csr = json!({"metadata": {"name": "csr-1", "creationTimestamp": "2025-06-01T11:59:00Z"},
        "spec": {"signerName": "kubernetes.io/kube-apiserver-client", "username": "kubernetes-admin", "expirationSeconds": 86400},
        "status": {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "LS0t"}});
    check(
        &CERTIFICATE_SIGNING_REQUESTS,
        csr,
        json!([
            "csr-1",
            "60s",
            "kubernetes.io/kube-apiserver-client",
            "kubernetes-admin",
            "24h",
            "Approved,Issued"
        ]),
    );
    let denied = json!({"metadata": {"name": "csr-2"}, "spec": {"username": "u"},
        "status": {"conditions": [{"type": "Approved"}, {"type": "Denied"}, {"type": "Failed"}]}});
    check(
        &CERTIFICATE_SIGNING_REQUESTS,
        denied,
        json!(["csr-2", "<unknown>", "<none>", "u", "<none>", "Denied,Failed"]),
    );
    check(
        &CLUSTER_TRUST_BUNDLES,
        json!({"metadata": {"name": "b"}, "spec": {}}),
        json!(["b", "<none>"]),
    );
}

#[test]
fn leases_classes_and_versions() {
    let lease = json!({"metadata": {"name": "kube-scheduler"}, "spec": {"holderIdentity": "cp-1_1234"}});
    check(&LEASES, lease, json!(["kube-scheduler", "cp-1_1234", "<unknown>"]));
    let candidate = json!({"metadata": {"name": "c"}, "spec": {"leaseName": "l", "binaryVersion": "1.36.0", "emulationVersion": "1.35"}});
    check(
        &LEASE_CANDIDATES,
        candidate,
        json!(["c", "l", "1.36.0", "1.35", "<unknown>"]),
    );
    let pc = json!({"metadata": {"name": "system-node-critical"}, "value": 2000001000});
    check(
        &PRIORITY_CLASSES,
        pc,
        json!([
            "system-node-critical",
            2000001000,
            false,
            "<unknown>",
            "PreemptLowerPriority"
        ]),
    );
    check(
        &RUNTIME_CLASSES,
        json!({"metadata": {"name": "gvisor"}, "handler": "runsc"}),
        json!(["gvisor", "runsc", "<unknown>"]),
    );
    let sv = json!({"metadata": {"name": "apps.deployments"}, "status": {"storageVersions": [
        {"apiServerID": "a", "encodingVersion": "apps/v1"}, {"apiServerID": "b", "encodingVersion": "apps/v1"}]}});
    check(
        &STORAGE_VERSIONS,
        sv,
        json!(["apps.deployments", "<unset>", "a=apps/v1,b=apps/v1", "<unknown>"]),
    );
}

#[test]
fn api_services() {
    let local = json!({"metadata": {"name": "v1.apps", "creationTimestamp": "2025-06-01T11:00:00Z"}, "spec": {"group": "apps"},
        "status": {"conditions": [{"type": "Available", "status": "True", "reason": "Local"}]}});
    check(&API_SERVICES, local, json!(["v1.apps", "Local", "True", "60m"]));
    let remote = json!({"metadata": {"name": "v1beta1.metrics.k8s.io"}, "spec": {"service": {"namespace": "kube-system", "name": "metrics-server"}},
        "status": {"conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints"}]}});
    check(
        &API_SERVICES,
        remote,
        json!([
            "v1beta1.metrics.k8s.io",
            "kube-system/metrics-server",
            "False (MissingEndpoints)",
            "<unknown>"
        ]),
    );
    check(
        &API_SERVICES,
        json!({"metadata": {"name": "x"}, "spec": {}}),
        json!(["x", "Local", "Unknown", "<unknown>"]),
    );
}

#[test]
fn dynamic_resource_allocation() {
    check(
        &DEVICE_CLASSES,
        json!({"metadata": {"name": "gpu.example.com"}}),
        json!(["gpu.example.com", "<unknown>"]),
    );
    check(
        &RESOURCE_CLAIM_TEMPLATES,
        json!({"metadata": {"name": "t"}}),
        json!(["t", "<unknown>"]),
    );
    check(
        &RESOURCE_CLAIMS,
        json!({"metadata": {"name": "c"}}),
        json!(["c", "pending", "<unknown>"]),
    );
    let reserved = json!({"metadata": {"name": "c"}, "status": {"allocation": {}, "reservedFor": [{"resource": "pods", "name": "p"}]}});
    check(
        &RESOURCE_CLAIMS,
        reserved,
        json!(["c", "allocated,reserved", "<unknown>"]),
    );
    let deleted = json!({"metadata": {"name": "c", "deletionTimestamp": "2025-06-01T11:00:00Z"}});
    check(&RESOURCE_CLAIMS, deleted, json!(["c", "deleted", "<unknown>"]));
    let slice = json!({"metadata": {"name": "n1-gpu"}, "spec": {"nodeName": "n1", "driver": "gpu.example.com", "pool": {"name": "n1"}}});
    check(
        &RESOURCE_SLICES,
        slice,
        json!(["n1-gpu", "n1", "gpu.example.com", "n1", "<unknown>"]),
    );
}
