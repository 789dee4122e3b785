use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

use super::*;

const NOW: OffsetDateTime = datetime!(2025-06-01 12:00:00 UTC);

fn check(printer: &Printer, obj: Value, expected: Value) {
    let printed = (printer.print)(obj.as_object().expect("object"), NOW);
    assert_eq!(Value::Array(printed.cells), expected, "{obj}");
}

fn service(spec: Value, status: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2025-06-01T10:00:00Z"},
           "spec": spec, "status": status})
}

#[test]
fn services() {
    check(
        &SERVICES,
        service(
            json!({"type": "ClusterIP", "clusterIP": "10.96.0.12", "clusterIPs": ["10.96.0.12"], "selector": {"app": "web"},
                   "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080},
                             {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 8443}]}),
            json!({}),
        ),
        json!([
            "web",
            "ClusterIP",
            "10.96.0.12",
            "<none>",
            "80/TCP,443/TCP",
            "120m",
            "app=web"
        ]),
    );
    check(
        &SERVICES,
        service(
            json!({"type": "NodePort", "clusterIPs": ["10.96.0.13"], "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "nodePort": 30053, "protocol": "UDP"}]}),
            json!({}),
        ),
        json!([
            "web",
            "NodePort",
            "10.96.0.13",
            "<none>",
            "80:30080/TCP,53:30053/UDP",
            "120m",
            "<none>"
        ]),
    );
    check(
        &SERVICES,
        service(
            json!({"type": "LoadBalancer", "clusterIPs": ["10.96.0.14"], "ports": [{"port": 443, "nodePort": 31443}]}),
            json!({}),
        ),
        json!([
            "web",
            "LoadBalancer",
            "10.96.0.14",
            "<pending>",
            "443:31443/TCP",
            "120m",
            "<none>"
        ]),
    );
    check(
        &SERVICES,
        service(
            json!({"type": "LoadBalancer", "clusterIPs": ["10.96.0.14"], "externalIPs": ["192.0.2.9"], "ports": [{"port": 443, "nodePort": 31443}]}),
            json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}, {"hostname": "lb.example.com"}, {"ip": "203.0.113.7"}]}}),
        ),
        json!([
            "web",
            "LoadBalancer",
            "10.96.0.14",
            "203.0.113.7,lb.example.com,192.0.2.9",
            "443:31443/TCP",
            "120m",
            "<none>"
        ]),
    );
    check(
        &SERVICES,
        service(
            json!({"type": "ExternalName", "externalName": "db.example.com"}),
            json!({}),
        ),
        json!([
            "web",
            "ExternalName",
            "<none>",
            "db.example.com",
            "<none>",
            "120m",
            "<none>"
        ]),
    );
    // Headless, type left to its default.
    check(
        &SERVICES,
        service(
            json!({"clusterIP": "None", "clusterIPs": ["None"], "externalIPs": ["192.0.2.1", "192.0.2.2"]}),
            json!({}),
        ),
        json!([
            "web",
            "ClusterIP",
            "None",
            "192.0.2.1,192.0.2.2",
            "<none>",
            "120m",
            "<none>"
        ]),
    );
}

#[test]
fn endpoints() {
    let ep = json!({"metadata": {"name": "web"}, "subsets": [
        {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]},
        {"addresses": [{"ip": "fd00::1"}]}]});
    check(
        &ENDPOINTS,
        ep,
        json!(["web", "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 2 more...", "<unknown>"]),
    );
    check(
        &ENDPOINTS,
        json!({"metadata": {"name": "none"}}),
        json!(["none", "<none>", "<unknown>"]),
    );
    let v6 =
        json!({"metadata": {"name": "v6"}, "subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 53}]}]});
    check(&ENDPOINTS, v6, json!(["v6", "[fd00::1]:53", "<unknown>"]));
}

#[test]
fn nodes() {
    let node = json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "cp-1", "creationTimestamp": "2025-05-20T12:00:00Z",
            "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/etcd": "true", "kubernetes.io/role": "master",
                       "kubernetes.io/hostname": "cp-1"}},
        "spec": {"unschedulable": true},
        "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
            "addresses": [{"type": "Hostname", "address": "cp-1"}, {"type": "InternalIP", "address": "192.168.1.10"}],
            "nodeInfo": {"kubeletVersion": "v1.36.0", "osImage": "Debian GNU/Linux 12 (bookworm)", "kernelVersion": "6.1.0-18-amd64",
                         "containerRuntimeVersion": "containerd://2.0.4"}}});
    check(
        &NODES,
        node,
        json!([
            "cp-1",
            "Ready,SchedulingDisabled",
            "control-plane,etcd,master",
            "12d",
            "v1.36.0",
            "192.168.1.10",
            "<none>",
            "Debian GNU/Linux 12 (bookworm)",
            "6.1.0-18-amd64",
            "containerd://2.0.4"
        ]),
    );
    let bare = json!({"metadata": {"name": "w-1"}, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
    check(
        &NODES,
        bare,
        json!([
            "w-1",
            "NotReady",
            "<none>",
            "<unknown>",
            "",
            "<none>",
            "<none>",
            "<unknown>",
            "<unknown>",
            "<unknown>"
        ]),
    );
    let new = json!({"metadata": {"name": "w-2"}});
    assert_eq!((NODES.print)(new.as_object().expect("object"), NOW).cells[1], "Unknown");
}

#[test]
fn namespaces_secrets_config_maps_and_accounts() {
    let ns = json!({"metadata": {"name": "kube-system", "creationTimestamp": "2025-06-01T11:59:15Z"}, "status": {"phase": "Active"}});
    check(&NAMESPACES, ns, json!(["kube-system", "Active", "45s"]));
    let terminating = json!({"metadata": {"name": "old", "creationTimestamp": "2024-02-01T00:00:00Z"}, "status": {"phase": "Terminating"}});
    check(&NAMESPACES, terminating, json!(["old", "Terminating", "486d"]));
    let secret =
        json!({"metadata": {"name": "tls"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}});
    check(&SECRETS, secret, json!(["tls", "kubernetes.io/tls", 2, "<unknown>"]));
    check(
        &SECRETS,
        json!({"metadata": {"name": "s"}}),
        json!(["s", "Opaque", 0, "<unknown>"]),
    );
    let cm = json!({"metadata": {"name": "kube-root-ca.crt"}, "data": {"ca.crt": "x"}, "binaryData": {"b": ""}});
    check(&CONFIG_MAPS, cm, json!(["kube-root-ca.crt", 2, "<unknown>"]));
    check(
        &SERVICE_ACCOUNTS,
        json!({"metadata": {"name": "default"}}),
        json!(["default", 0, "<unknown>"]),
    );
}

#[test]
fn resource_quota_and_component_status() {
    let quota = json!({"metadata": {"name": "q"}, "status": {
        "hard": {"requests.cpu": "2", "limits.memory": "2Gi", "pods": "10", "limits.cpu": "4"},
        "used": {"requests.cpu": "500m", "limits.memory": "1Gi", "pods": "3"}}});
    check(
        &RESOURCE_QUOTAS,
        quota,
        json!([
            "q",
            "pods: 3/10, requests.cpu: 500m/2",
            "limits.cpu: 0/4, limits.memory: 1Gi/2Gi",
            "<unknown>"
        ]),
    );
    let cs =
        json!({"metadata": {"name": "etcd-0"}, "conditions": [{"type": "Healthy", "status": "True", "message": "ok"}]});
    check(&COMPONENT_STATUSES, cs, json!(["etcd-0", "Healthy", "ok", ""]));
}
