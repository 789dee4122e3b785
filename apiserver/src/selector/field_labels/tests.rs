use serde_json::json;

use super::*;
use crate::selector::FieldSelector;

/// `selector` on `group`/`resource` converts to `expected`, or fails with
/// upstream's message.
fn check(group: &str, resource: &str, selector: &str, expected: Result<&str, &str>) {
    let conversion = FieldLabelConversion::builtin(group, resource);
    let got = FieldSelector::parse(selector)
        .expect("valid syntax")
        .convert_field_labels(&conversion);
    let got = got.map(|s| s.to_string()).map_err(|e| e.to_string());
    assert_eq!(
        got,
        expected.map(str::to_string).map_err(str::to_string),
        "{group}/{resource}: {selector}"
    );
}

#[test]
fn builtin_conversions_accept_upstreams_labels() {
    let pod = [
        "metadata.name",
        "metadata.namespace",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.podIPs",
        "status.nominatedNodeName",
    ];
    for label in pod {
        check("", "pods", &format!("{label}=x"), Ok(&format!("{label}=x")));
    }
    check("", "pods", "spec.host=n1", Ok("spec.nodeName=n1"));
    check(
        "",
        "pods",
        "spec.containers=x",
        Err("field label not supported: spec.containers"),
    );
    check(
        "",
        "pods",
        "metadata.labels=x",
        Err("field label not supported: metadata.labels"),
    );

    check(
        "",
        "nodes",
        "metadata.name=n,spec.unschedulable=true",
        Ok("metadata.name=n,spec.unschedulable=true"),
    );
    check(
        "",
        "nodes",
        "metadata.namespace=x",
        Err("field label not supported: metadata.namespace"),
    );
    check("", "namespaces", "status.phase=Active", Ok("status.phase=Active"));
    check("", "namespaces", "name=x", Err("field label not supported: name"));
    check(
        "",
        "secrets",
        "type=Opaque,metadata.namespace=x",
        Ok("metadata.namespace=x,type=Opaque"),
    );
    check("", "secrets", "data=x", Err("field label not supported: data"));
    check(
        "",
        "services",
        "spec.clusterIP=None,spec.type=ClusterIP",
        Ok("spec.clusterIP=None,spec.type=ClusterIP"),
    );
    check(
        "",
        "replicationcontrollers",
        "status.replicas=0",
        Ok("status.replicas=0"),
    );
    check(
        "",
        "events",
        "involvedObject.kind=Pod,involvedObject.name=p,reason=Started,reportingComponent=kubelet,source=kubelet,type=Normal",
        Ok(
            "involvedObject.kind=Pod,involvedObject.name=p,reason=Started,reportingComponent=kubelet,source=kubelet,type=Normal",
        ),
    );
    check(
        "",
        "events",
        "regarding.name=p",
        Err("field label not supported: regarding.name"),
    );

    check(
        "events.k8s.io",
        "events",
        "regarding.kind=Pod,regarding.name=p,reportingController=kubelet,source=s,type=Warning",
        Ok("involvedObject.kind=Pod,involvedObject.name=p,reportingComponent=kubelet,source=s,type=Warning"),
    );
    check(
        "events.k8s.io",
        "events",
        "involvedObject.name=p",
        Err("field label not supported: involvedObject.name"),
    );
    check(
        "events.k8s.io",
        "events",
        "note=x",
        Err("field label not supported: note"),
    );

    check("batch", "jobs", "status.successful=1", Ok("status.successful=1"));
    check(
        "batch",
        "jobs",
        "status.succeeded=1",
        Err(r#"field label "status.succeeded" not supported for batchv1.Job"#),
    );
    check(
        "certificates.k8s.io",
        "certificatesigningrequests",
        "spec.signerName=x",
        Ok("spec.signerName=x"),
    );
    check(
        "certificates.k8s.io",
        "certificatesigningrequests",
        "metadata.namespace=x",
        Err("field label not supported: metadata.namespace"),
    );
    check(
        "resource.k8s.io",
        "resourceslices",
        "spec.driver=d,spec.nodeName=n",
        Ok("spec.driver=d,spec.nodeName=n"),
    );
    check(
        "resource.k8s.io",
        "resourceslices",
        "spec.pool.name=x",
        Err("field label not supported for resource.k8s.io/v1, Kind=ResourceSlice: spec.pool.name"),
    );
}

#[test]
fn kinds_without_a_registered_conversion_accept_only_metadata() {
    let not_known =
        |label: &str| format!(r#""{label}" is not a known field selector: only "metadata.name", "metadata.namespace""#);
    // apps/v1 registers no conversion, so ReplicaSets reject status.replicas
    // (kubernetes/kubernetes#135136).
    check(
        "apps",
        "replicasets",
        "status.replicas=0",
        Err(&not_known("status.replicas")),
    );
    check(
        "apps",
        "deployments",
        "metadata.name=a,metadata.namespace=b",
        Ok("metadata.name=a,metadata.namespace=b"),
    );
    check("", "configmaps", "data.key=x", Err(&not_known("data.key")));
    check("", "persistentvolumeclaims", "name=x", Err(&not_known("name")));
    check(
        "",
        "persistentvolumes",
        "metadata.namespace=",
        Ok("metadata.namespace="),
    );
    check(
        "example.com",
        "widgets",
        "spec.color=red",
        Err(&not_known("spec.color")),
    );
    check("", "configmaps", "a\"b=x", Err(&not_known("a\\\"b")));
}

#[test]
fn custom_resource_conversion() {
    let conversion = FieldLabelConversion::custom_resource(true, vec!["spec.color".into()]);
    assert_eq!(conversion.convert("metadata.name"), Ok("metadata.name".into()));
    assert_eq!(
        conversion.convert("metadata.namespace"),
        Ok("metadata.namespace".into())
    );
    assert_eq!(conversion.convert("spec.color"), Ok("spec.color".into()));
    let err = conversion.convert("spec.size").expect_err("not selectable");
    assert_eq!(err.to_string(), "field label not supported: spec.size");
    let cluster = FieldLabelConversion::custom_resource(false, vec![]);
    assert_eq!(
        cluster.convert("metadata.namespace").map_err(|e| e.to_string()),
        Err("field label not supported: metadata.namespace".into())
    );
}

fn obj(value: &Value) -> &Map<String, Value> {
    value.as_object().expect("test objects are JSON objects")
}

fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn selectable_fields_of_builtin_kinds() {
    let check = |group: &str, resource: &str, object: Value, expected: &[(&str, &str)]| {
        assert_eq!(
            selectable_fields(group, resource, obj(&object)),
            fields(expected),
            "{group}/{resource}"
        );
    };
    let meta = json!({"name": "n", "namespace": "ns"});
    check(
        "",
        "pods",
        json!({"metadata": meta, "spec": {"nodeName": "node-1", "restartPolicy": "Always", "schedulerName": "default-scheduler",
            "serviceAccountName": "default", "hostNetwork": true},
            "status": {"phase": "Running", "podIP": "10.0.0.9", "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}], "nominatedNodeName": "node-2"}}),
        &[
            ("metadata.name", "n"),
            ("metadata.namespace", "ns"),
            ("spec.nodeName", "node-1"),
            ("spec.restartPolicy", "Always"),
            ("spec.schedulerName", "default-scheduler"),
            ("spec.serviceAccountName", "default"),
            ("spec.hostNetwork", "true"),
            ("status.phase", "Running"),
            ("status.podIP", "10.0.0.1"),
            ("status.nominatedNodeName", "node-2"),
        ],
    );
    check(
        "",
        "pods",
        json!({"metadata": {"name": "p", "namespace": "ns"}, "status": {"podIP": "10.0.0.9"}}),
        &[
            ("metadata.name", "p"),
            ("metadata.namespace", "ns"),
            ("spec.nodeName", ""),
            ("spec.restartPolicy", ""),
            ("spec.schedulerName", ""),
            ("spec.serviceAccountName", ""),
            ("spec.hostNetwork", "false"),
            ("status.phase", ""),
            ("status.podIP", "10.0.0.9"),
            ("status.nominatedNodeName", ""),
        ],
    );
    check(
        "",
        "nodes",
        json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true}}),
        &[("metadata.name", "n"), ("spec.unschedulable", "true")],
    );
    check(
        "",
        "nodes",
        json!({"metadata": {"name": "n"}}),
        &[("metadata.name", "n"), ("spec.unschedulable", "false")],
    );
    check(
        "",
        "namespaces",
        json!({"metadata": {"name": "n"}, "status": {"phase": "Active"}}),
        &[("metadata.name", "n"), ("name", "n"), ("status.phase", "Active")],
    );
    check(
        "",
        "secrets",
        json!({"metadata": meta, "type": "Opaque"}),
        &[("metadata.name", "n"), ("metadata.namespace", "ns"), ("type", "Opaque")],
    );
    check(
        "",
        "services",
        json!({"metadata": meta, "spec": {"clusterIP": "10.96.0.1", "type": "ClusterIP"}}),
        &[
            ("metadata.name", "n"),
            ("metadata.namespace", "ns"),
            ("spec.clusterIP", "10.96.0.1"),
            ("spec.type", "ClusterIP"),
        ],
    );
    check(
        "",
        "replicationcontrollers",
        json!({"metadata": meta, "status": {"replicas": 3}}),
        &[
            ("metadata.name", "n"),
            ("metadata.namespace", "ns"),
            ("status.replicas", "3"),
        ],
    );
    check(
        "apps",
        "replicasets",
        json!({"metadata": meta}),
        &[
            ("metadata.name", "n"),
            ("metadata.namespace", "ns"),
            ("status.replicas", "0"),
        ],
    );
    check(
        "batch",
        "jobs",
        json!({"metadata": meta, "status": {"succeeded": 2}}),
        &[
            ("metadata.name", "n"),
            ("metadata.namespace", "ns"),
            ("status.successful", "2"),
        ],
    );
    check(
        "certificates.k8s.io",
        "certificatesigningrequests",
        json!({"metadata": {"name": "csr"}, "spec": {"signerName": "kubernetes.io/kubelet-serving"}}),
        &[
            ("metadata.name", "csr"),
            ("spec.signerName", "kubernetes.io/kubelet-serving"),
        ],
    );
    check(
        "resource.k8s.io",
        "resourceslices",
        json!({"metadata": {"name": "s"}, "spec": {"driver": "gpu.example.com", "nodeName": "node-1"}}),
        &[
            ("metadata.name", "s"),
            ("spec.driver", "gpu.example.com"),
            ("spec.nodeName", "node-1"),
        ],
    );
    check(
        "",
        "persistentvolumes",
        json!({"metadata": {"name": "pv"}}),
        &[("metadata.name", "pv"), ("name", "pv")],
    );
    check(
        "",
        "persistentvolumeclaims",
        json!({"metadata": meta}),
        &[("metadata.name", "n"), ("metadata.namespace", "ns"), ("name", "n")],
    );
    check(
        "",
        "configmaps",
        json!({"metadata": meta, "data": {"a": "b"}}),
        &[("metadata.name", "n"), ("metadata.namespace", "ns")],
    );
    check(
        "rbac.authorization.k8s.io",
        "clusterroles",
        json!({"metadata": {"name": "admin"}}),
        &[("metadata.name", "admin")],
    );
}

#[test]
fn selectable_fields_of_events_in_both_wire_formats() {
    let core = json!({
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "e", "namespace": "ns"},
        "involvedObject": {"kind": "Pod", "namespace": "ns", "name": "p", "uid": "u1", "apiVersion": "v1",
            "resourceVersion": "7", "fieldPath": "spec.containers{c}"},
        "reason": "Started", "reportingComponent": "kubelet", "type": "Normal"
    });
    let events_v1 = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e", "namespace": "ns"},
        "regarding": {"kind": "Pod", "namespace": "ns", "name": "p", "uid": "u1", "apiVersion": "v1",
            "resourceVersion": "7", "fieldPath": "spec.containers{c}"},
        "reason": "Started", "reportingController": "kubelet", "type": "Normal"
    });
    let expected = fields(&[
        ("involvedObject.apiVersion", "v1"),
        ("involvedObject.fieldPath", "spec.containers{c}"),
        ("involvedObject.kind", "Pod"),
        ("involvedObject.name", "p"),
        ("involvedObject.namespace", "ns"),
        ("involvedObject.resourceVersion", "7"),
        ("involvedObject.uid", "u1"),
        ("metadata.name", "e"),
        ("metadata.namespace", "ns"),
        ("reason", "Started"),
        ("reportingComponent", "kubelet"),
        ("source", "kubelet"),
        ("type", "Normal"),
    ]);
    for group in ["", "events.k8s.io"] {
        assert_eq!(selectable_fields(group, "events", obj(&core)), expected, "{group} core");
        assert_eq!(
            selectable_fields(group, "events", obj(&events_v1)),
            expected,
            "{group} v1"
        );
    }
    let with_source = json!({"apiVersion": "v1", "source": {"component": "scheduler"}, "reportingComponent": "x"});
    assert_eq!(
        selectable_fields("", "events", obj(&with_source))
            .get("source")
            .cloned(),
        Some("scheduler".into())
    );
}

#[test]
fn end_to_end_like_a_list_handler() {
    let pods = [
        json!({"metadata": {"name": "a", "namespace": "ns"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}}),
        json!({"metadata": {"name": "b", "namespace": "ns"}, "spec": {"nodeName": "n2"}, "status": {"phase": "Running"}}),
        json!({"metadata": {"name": "c", "namespace": "ns"}, "status": {"phase": "Pending"}}),
    ];
    let select = |selector: &str| -> Vec<String> {
        let sel = FieldSelector::parse(selector)
            .and_then(|s| s.convert_field_labels(&FieldLabelConversion::builtin("", "pods")))
            .expect("valid selector");
        pods.iter()
            .filter(|p| sel.matches(&selectable_fields("", "pods", obj(p))))
            .filter_map(|p| p.pointer("/metadata/name").and_then(Value::as_str).map(str::to_string))
            .collect()
    };
    assert_eq!(select("spec.host=n1"), ["a"]);
    assert_eq!(select("spec.nodeName="), ["c"]);
    assert_eq!(select("status.phase!=Running"), ["c"]);
    assert_eq!(select("status.phase=Running,spec.nodeName!=n1"), ["b"]);
    // Accepted but never set upstream: compares as "".
    assert_eq!(select("status.podIPs=10.0.0.1"), Vec::<String>::new());
    assert_eq!(select("status.podIPs="), ["a", "b", "c"]);
    assert_eq!(select("metadata.namespace=ns,metadata.name=b"), ["b"]);
}
