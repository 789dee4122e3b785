use serde_json::{Value, json};

use super::*;
use crate::registry::cache::resource::CachedObject;
use crate::registry::selection::attrs_of;
use crate::resources::{ResourceInfo, ResourceTable};

fn info(group: &str, version: &str, resource: &str) -> &'static ResourceInfo {
    ResourceTable::builtin()
        .get(group, version, resource)
        .unwrap_or_else(|| panic!("{group}/{version}/{resource} is built in"))
}

/// The value as this server stores it (compact, keys sorted).
fn stored(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// The spliced body and the view's attributes equal what decoding the
/// whole value gives.
fn check_same(info: &ResourceInfo, value: &[u8], revision: i64) {
    let slow = CachedObject::decoded(info, "/k", value, revision).unwrap();
    let body =
        cached_body(value, revision).unwrap_or_else(|| panic!("fast path for {}", String::from_utf8_lossy(value)));
    assert_eq!(
        String::from_utf8_lossy(&body),
        String::from_utf8_lossy(&slow.body),
        "body of {}",
        String::from_utf8_lossy(value)
    );
    let view = selectable_view(value).unwrap();
    assert_eq!(
        attrs_of(info, &view),
        slow.attrs,
        "attrs of {}",
        String::from_utf8_lossy(value)
    );
}

#[test]
fn splices_like_decoding_and_encoding() {
    let cm = info("", "v1", "configmaps");
    let cases = [
        // `data` sorts before `kind`; resourceVersion between namespace and uid.
        json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "x\"}{[", "b": "é\u{1F600}\\n"},
               "metadata": {"name": "c", "namespace": "d", "uid": "u", "labels": {"k": "v"}}}),
        // A key before `apiVersion`; metadata keys all before resourceVersion.
        json!({"aggregationRule": {"s": [1, -2, 35, null, true, false]}, "apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "c"}}),
        // Metadata keys all after resourceVersion, and an empty metadata.
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"uid": "u", "z": {}}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}),
        json!({"metadata": {"name": "no-kind"}, "zz": [[], {}, [{}]]}),
        // A stale resourceVersion is replaced in place.
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "resourceVersion": "3", "uid": "u"}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"resourceVersion": "3"}}),
    ];
    for case in &cases {
        for revision in [1, 42, 1_000_000_007] {
            check_same(cm, &stored(case), revision);
        }
    }
}

#[test]
fn other_encodings_take_the_slow_path() {
    for value in [
        // Whitespace, keys out of order (also nested), a duplicate, escaped keys.
        &br#"{"kind": "ConfigMap", "metadata": {}}"#[..],
        br#"{"metadata":{"name":"a"},"kind":"ConfigMap"}"#,
        br#"{"metadata":{"uid":"u","name":"a"}}"#,
        br#"{"metadata":{"name":"a","name":"b"}}"#,
        br#"{"metadata":{"na\u006de":"a"}}"#,
        br#"{"data":{"a": 1},"metadata":{}}"#,
        br#"{"data":{"b":1,"a":2},"metadata":{}}"#,
        br#"{"data":[{"b":1,"a":2}],"metadata":{}}"#,
        // Numbers and strings serde_json would write differently.
        br#"{"data":1.5,"metadata":{}}"#,
        br#"{"data":1e3,"metadata":{}}"#,
        br#"{"data":-0,"metadata":{}}"#,
        br#"{"data":01,"metadata":{}}"#,
        br#"{"data":18446744073709551616,"metadata":{}}"#,
        br#"{"data":-9223372036854775809,"metadata":{}}"#,
        br#"{"data":"a\/b","metadata":{}}"#,
        br#"{"data":"\u0041","metadata":{}}"#,
        br#"{"data":"\u000A","metadata":{}}"#,
        b"{\"data\":\"a\tb\",\"metadata\":{}}",
        // No metadata map, or not an object at all.
        br#"{"kind":"ConfigMap"}"#,
        br#"{"metadata":[]}"#,
        br#"{"metadata":"x"}"#,
        br#"[1]"#,
        br#"{"metadata":{}}x"#,
        br#"{"metadata":{"name":"a""#,
        br#"{"metadata":{"name":tru}}"#,
        b"",
    ] {
        assert_eq!(cached_body(value, 5), None, "{}", String::from_utf8_lossy(value));
    }
    // What serde_json writes is taken apart: integers at the limits, every
    // escape it uses, other characters as they are.
    let value = "{\"data\":[18446744073709551615,-9223372036854775808,0,-1,true,false,null,\
                 \"\\\"\\\\\\b\\t\\n\\f\\r\\u0001\\u001f\u{7f}/\u{e9}\"],\"metadata\":{}}";
    let parsed: Value = serde_json::from_str(value).unwrap();
    assert_eq!(
        String::from_utf8(stored(&parsed)).unwrap(),
        value,
        "the sample is serde_json's own encoding"
    );
    check_same(info("", "v1", "configmaps"), value.as_bytes(), 3);
    // Invalid UTF-8 passes the scanner and is caught by the view.
    let bad = b"{\"metadata\":{\"name\":\"\xff\"}}";
    assert!(cached_body(bad, 5).is_some());
    assert!(selectable_view(bad).is_err());
}

/// Random objects: whenever the splice is taken, it gives what decoding
/// and encoding gives.
#[test]
fn random_objects_splice_like_decoding() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    // Floats are rare (an object with one never takes the splice).
    let leaf = prop_oneof![
        4 => Just(Value::Null),
        4 => any::<bool>().prop_map(Value::Bool),
        4 => any::<i64>().prop_map(Value::from),
        4 => any::<u64>().prop_map(Value::from),
        1 => any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        8 => "[a-z\"\\\\/\\x00-\\x1f\\x7fé]{0,8}".prop_map(Value::String),
    ];
    let value = leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z\"\\\\]{0,6}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    let object = (
        prop::collection::btree_map("[a-zA-Z]{1,8}", value.clone(), 0..5),
        prop::collection::btree_map("[a-zA-Z]{1,16}", value, 0..5),
    )
        .prop_map(|(top, meta)| {
            let mut top: serde_json::Map<String, Value> = top.into_iter().collect();
            top.insert("metadata".into(), Value::Object(meta.into_iter().collect()));
            Value::Object(top)
        });
    let cm = info("", "v1", "configmaps");
    let mut runner = TestRunner::new(Config::with_cases(500));
    let fast = std::cell::Cell::new(0);
    runner
        .run(&object, |obj| {
            let value = stored(&obj);
            if cached_body(&value, 9).is_some() {
                fast.set(fast.get() + 1);
                check_same(cm, &value, 9);
            }
            Ok(())
        })
        .unwrap();
    assert!(fast.get() > 25, "only {} of 500 took the splice", fast.get());
}

#[test]
fn the_view_has_what_selectors_read() {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "n", "labels": {"app": "a", "tier": "t"},
                     "ownerReferences": [{"name": "rs"}], "annotations": {"x": "y"}},
        "spec": {"nodeName": "node-1", "restartPolicy": "Always", "schedulerName": "s",
                 "serviceAccountName": "sa", "hostNetwork": true, "containers": [{"name": "c"}]},
        "status": {"phase": "Running", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.2"}],
                   "nominatedNodeName": "node-2", "conditions": [{"type": "Ready"}]},
    });
    check_same(info("", "v1", "pods"), &stored(&pod), 7);
    let view = selectable_view(&stored(&pod)).unwrap();
    assert_eq!(view["metadata"]["labels"], json!({"app": "a", "tier": "t"}));
    assert_eq!(view["status"]["podIPs"], json!([{"ip": "10.0.0.2"}]));
    assert!(view["spec"].get("containers").is_none() && view.get("kind").is_none());
    // Status without podIPs falls back to podIP.
    let mut pod2 = pod.clone();
    pod2["status"].as_object_mut().unwrap().remove("podIPs");
    check_same(info("", "v1", "pods"), &stored(&pod2), 7);

    let event = json!({
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "e", "namespace": "n"},
        "involvedObject": {"kind": "Pod", "namespace": "n", "name": "p", "uid": "u", "apiVersion": "v1",
                           "resourceVersion": "3", "fieldPath": "spec"},
        "reason": "Scheduled", "reportingComponent": "sched", "source": {"component": "sched"}, "type": "Normal",
    });
    check_same(info("", "v1", "events"), &stored(&event), 9);
    let others = [
        (
            info("", "v1", "nodes"),
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}, "spec": {"unschedulable": true}}),
        ),
        (
            info("", "v1", "namespaces"),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}, "status": {"phase": "Active"}}),
        ),
        (
            info("", "v1", "secrets"),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "n"}, "type": "Opaque"}),
        ),
        (
            info("", "v1", "services"),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "n"},
                   "spec": {"clusterIP": "10.0.0.1", "type": "ClusterIP", "ports": [{"port": 80}]}}),
        ),
        (
            info("apps", "v1", "replicasets"),
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "r", "namespace": "n"},
                   "status": {"replicas": 3}}),
        ),
        (
            info("batch", "v1", "jobs"),
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "n"},
                   "status": {"succeeded": 2}}),
        ),
        (
            info("certificates.k8s.io", "v1", "certificatesigningrequests"),
            json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
                   "metadata": {"name": "c"}, "spec": {"signerName": "example.com/s"}}),
        ),
        (
            info("coordination.k8s.io", "v1", "leases"),
            json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                   "metadata": {"name": "l", "namespace": "kube-node-lease"}, "spec": {"holderIdentity": "l"}}),
        ),
    ];
    for (info, obj) in &others {
        check_same(info, &stored(obj), 11);
    }
}
