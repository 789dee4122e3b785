#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use serde_json::{Value, json};

use super::wire::{put_bytes, put_tag, put_varint};
use super::*;

#[test]
fn table_parses() {
    let s = schema::parse_table().unwrap();
    for (av, k) in [
        ("apps/v1", "Deployment"),
        ("v1", "ConfigMap"),
        ("v1", "Status"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        ("apiregistration.k8s.io/v1", "APIService"),
        ("resource.k8s.io/v1", "ResourceClaim"),
    ] {
        assert!(s.kind(av, k).is_some(), "{av}/{k}");
    }
}

/// Builds a message from (field number, bytes) pairs; a test helper that
/// knows only upstream's field numbers.
fn len_field(out: &mut Vec<u8>, n: u32, b: &[u8]) {
    put_bytes(out, n, b);
}

fn var_field(out: &mut Vec<u8>, n: u32, v: u64) {
    put_tag(out, n, 0);
    put_varint(out, v);
}

fn wrap(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut tm = Vec::new();
    len_field(&mut tm, 1, api_version.as_bytes());
    len_field(&mut tm, 2, kind.as_bytes());
    let mut out = b"k8s\0".to_vec();
    len_field(&mut out, 1, &tm);
    len_field(&mut out, 2, raw);
    len_field(&mut out, 3, b"");
    len_field(&mut out, 4, b"");
    out
}

fn map_entry(k: &str, v: &[u8]) -> Vec<u8> {
    let mut e = Vec::new();
    len_field(&mut e, 1, k.as_bytes());
    len_field(&mut e, 2, v);
    e
}

#[test]
fn golden_configmap() {
    // ObjectMeta: name=1, generateName=2, namespace=3, labels=11;
    // creationTimestamp=8 (Time: seconds=1).
    let mut meta = Vec::new();
    len_field(&mut meta, 1, b"cm1");
    len_field(&mut meta, 2, b""); // Go writes empty strings: absent in JSON
    len_field(&mut meta, 3, b"default");
    len_field(&mut meta, 8, b""); // zero Time
    len_field(&mut meta, 11, &map_entry("app", b"web"));
    // ConfigMap: metadata=1, data=2, binaryData=3, immutable=4.
    let mut cm = Vec::new();
    len_field(&mut cm, 1, &meta);
    len_field(&mut cm, 2, &map_entry("k", b"v"));
    len_field(&mut cm, 2, &map_entry("empty", b""));
    len_field(&mut cm, 3, &map_entry("bin", &[0, 255, 1]));
    var_field(&mut cm, 4, 0); // *bool: an explicit false is kept
    var_field(&mut cm, 99, 7); // unknown: skipped
    let got = decode_body(&wrap("v1", "ConfigMap", &cm)).unwrap();
    assert_eq!(
        Value::Object(got),
        json!({"kind": "ConfigMap", "apiVersion": "v1",
               "metadata": {"name": "cm1", "namespace": "default", "labels": {"app": "web"}},
               "data": {"k": "v", "empty": ""}, "binaryData": {"bin": "AP8B"}, "immutable": false})
    );
}

#[test]
fn golden_deployment() {
    // Container: name=1, image=2, ports=6 (ContainerPort: containerPort=3,
    // protocol=4), resources=8 (ResourceRequirements: limits=1 map of
    // Quantity{string=1}), terminationMessagePath=13, stdin=16 (false).
    let mut port = Vec::new();
    var_field(&mut port, 3, 80);
    len_field(&mut port, 4, b"TCP");
    let mut qty = Vec::new();
    len_field(&mut qty, 1, b"500m");
    let mut limits = Vec::new();
    len_field(&mut limits, 1, &map_entry("cpu", &qty));
    let mut c = Vec::new();
    len_field(&mut c, 1, b"busybox");
    len_field(&mut c, 2, b"busybox");
    len_field(&mut c, 6, &port);
    len_field(&mut c, 8, &limits);
    len_field(&mut c, 13, b"");
    var_field(&mut c, 16, 0);
    // PodSpec: containers=2, terminationGracePeriodSeconds=4 (*int64 0).
    let mut pod_spec = Vec::new();
    len_field(&mut pod_spec, 2, &c);
    var_field(&mut pod_spec, 4, 0);
    // PodTemplateSpec: metadata=1, spec=2.
    let mut tmeta = Vec::new();
    len_field(&mut tmeta, 11, &map_entry("app", b"web"));
    let mut template = Vec::new();
    len_field(&mut template, 1, &tmeta);
    len_field(&mut template, 2, &pod_spec);
    // LabelSelector: matchLabels=1.
    let mut sel = Vec::new();
    len_field(&mut sel, 1, &map_entry("app", b"web"));
    // RollingUpdateDeployment: maxUnavailable=1, maxSurge=2
    // (IntOrString: type=1, intVal=2, strVal=3).
    let mut mu = Vec::new();
    var_field(&mut mu, 1, 1);
    var_field(&mut mu, 2, 0);
    len_field(&mut mu, 3, b"25%");
    let mut ms = Vec::new();
    var_field(&mut ms, 1, 0);
    var_field(&mut ms, 2, 2);
    let mut ru = Vec::new();
    len_field(&mut ru, 1, &mu);
    len_field(&mut ru, 2, &ms);
    // DeploymentStrategy: type=1, rollingUpdate=2.
    let mut strategy = Vec::new();
    len_field(&mut strategy, 1, b"RollingUpdate");
    len_field(&mut strategy, 2, &ru);
    // DeploymentSpec: replicas=1 (*int32 0), selector=2, template=3,
    // strategy=4, minReadySeconds=5 (int32 0), paused=7 (false).
    let mut spec = Vec::new();
    var_field(&mut spec, 1, 0);
    len_field(&mut spec, 2, &sel);
    len_field(&mut spec, 3, &template);
    len_field(&mut spec, 4, &strategy);
    var_field(&mut spec, 5, 0);
    var_field(&mut spec, 7, 0);
    let mut meta = Vec::new();
    len_field(&mut meta, 1, b"web");
    // Deployment: metadata=1, spec=2, status=3.
    let mut d = Vec::new();
    len_field(&mut d, 1, &meta);
    len_field(&mut d, 2, &spec);
    len_field(&mut d, 3, b"");
    let got = decode_body(&wrap("apps/v1", "Deployment", &d)).unwrap();
    assert_eq!(
        Value::Object(got),
        json!({"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": "web"},
               "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                        "template": {"metadata": {"labels": {"app": "web"}},
                                     "spec": {"containers": [{"name": "busybox", "image": "busybox",
                                                              "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                                              "resources": {"limits": {"cpu": "500m"}}}],
                                              "terminationGracePeriodSeconds": 0}},
                        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 2}}},
               "status": {}})
    );
}

#[test]
fn malformed_bodies_are_400() {
    let cases: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"{\"kind\":\"Pod\"}".to_vec(),
        b"k8s\0".to_vec(),
        wrap("v1", "NoSuchKind", b""),
        wrap("v1", "ConfigMap", &[0x0a, 0x05, 0x0a]),  // length past the end
        wrap("v1", "ConfigMap", &[0x20, 0xff, 0xff]),  // truncated varint
        wrap("v1", "ConfigMap", &[0x0a | 0x03, 0x00]), // group wire type
        wrap("v1", "ConfigMap", &[0x08, 0x01]),        // metadata as a varint
    ];
    for c in cases {
        let e = decode_body(&c).err().unwrap_or_else(|| panic!("{c:?} decoded"));
        assert_eq!(e.code, 400, "{c:?}");
    }
    // Nesting past the limit: JSONSchemaProps.not (28) inside itself.
    let mut inner = Vec::new();
    for _ in 0..200 {
        let mut next = Vec::new();
        len_field(&mut next, 28, &inner);
        inner = next;
    }
    let mut validation = Vec::new();
    len_field(&mut validation, 1, &inner);
    let mut version = Vec::new();
    len_field(&mut version, 4, &validation);
    let mut spec = Vec::new();
    len_field(&mut spec, 7, &version);
    let mut crd = Vec::new();
    len_field(&mut crd, 2, &spec);
    let e = decode_body(&wrap("apiextensions.k8s.io/v1", "CustomResourceDefinition", &crd)).unwrap_err();
    assert!(e.message.contains("max depth"), "{}", e.message);
}

#[test]
fn special_forms_round_trip() {
    for s in [
        0i64,
        1,
        999,
        1_500,
        2_000_000,
        1_500_000_000,
        3_723_000_000_000,
        -90_000_000_000,
    ] {
        assert_eq!(gotime::parse_duration(&gotime::format_duration(s)), Some(s), "{s}");
    }
    assert_eq!(gotime::format_duration(3_723_500_000_000), "1h2m3.5s");
    assert_eq!(gotime::format(0, 0, false).unwrap(), "1970-01-01T00:00:00Z");
    assert_eq!(
        gotime::format(1, 123_456_789, true).unwrap(),
        "1970-01-01T00:00:01.123456Z"
    );
}

/// Drops what protobuf cannot tell from absent: empty arrays and empty
/// maps (the map-typed fields these tests fill).
fn canonical(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !matches!(v, Value::Array(a) if a.is_empty()))
                .map(|(k, v)| (k, canonical(v)))
                .filter(|(k, v)| {
                    !(matches!(v, Value::Object(o) if o.is_empty())
                        && (k == "labels" || k == "data" || k == "binaryData"))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(canonical).collect()),
        other => other,
    }
}

/// JSON -> protobuf -> JSON.
fn round_trip(obj: Value) {
    let obj = canonical(obj);
    let Value::Object(m) = &obj else { panic!() };
    let bytes = encode_object(m).unwrap();
    let back = decode_body(&bytes).unwrap();
    assert_eq!(Value::Object(back), obj);
}

#[test]
fn kinds_round_trip() {
    round_trip(json!({"kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": "p", "namespace": "ns", "uid": "u-1", "resourceVersion": "5", "generation": 3,
                     "creationTimestamp": "2024-05-06T07:08:09Z", "annotations": {"a": ""},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "x", "controller": true}],
                     "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1",
                                        "time": "2024-05-06T07:08:09Z", "fieldsType": "FieldsV1",
                                        "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}}}]},
        "spec": {"containers": [{"name": "c", "image": "nginx", "args": ["-x", ""],
                                 "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                                 "resources": {"requests": {"memory": "64Mi"}},
                                 "livenessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 3},
                                 "securityContext": {"runAsUser": 0, "privileged": false}}],
                 "volumes": [{"name": "v", "emptyDir": {}}, {"name": "s", "secret": {"secretName": "x", "defaultMode": 420}}],
                 "tolerations": [{"key": "k", "operator": "Exists", "tolerationSeconds": 0}],
                 "automountServiceAccountToken": false},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": "2024-05-06T07:08:09Z"}]}}));
    round_trip(json!({"kind": "Service", "apiVersion": "v1", "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80, "targetPort": 8080, "nodePort": 30001}], "clusterIPs": ["10.0.0.1"],
                 "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10}}, "type": "NodePort"}}));
    round_trip(json!({"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "s"},
        "data": {"bin": "AAEC/w==", "e": ""}, "type": "Opaque"}));
    round_trip(json!({"kind": "Node", "apiVersion": "v1", "metadata": {"name": "n"},
        "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}], "unschedulable": true},
        "status": {"capacity": {"cpu": "4", "pods": "110"}, "nodeInfo": {"kubeletVersion": "v1.36.0"},
                   "addresses": [{"type": "InternalIP", "address": "10.0.0.2"}]}}));
    round_trip(
        json!({"kind": "Event", "apiVersion": "events.k8s.io/v1", "metadata": {"name": "e"},
        "eventTime": "2024-05-06T07:08:09.123456Z", "reason": "R", "action": "A", "type": "Normal",
        "regarding": {"kind": "Pod", "name": "p"}}),
    );
    round_trip(
        json!({"kind": "CustomResourceDefinition", "apiVersion": "apiextensions.k8s.io/v1",
        "metadata": {"name": "foos.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "foos", "kind": "Foo"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object",
                                   "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                                                           "properties": {"n": {"type": "integer", "minimum": 0.0, "default": 3,
                                                                                "enum": [1, "two", null]}},
                                                           "additionalProperties": false},
                                                  "list": {"type": "array", "items": {"type": "string"}},
                                                  "tuple": {"type": "array", "items": [{"type": "string"}]},
                                                  "dep": {"type": "object", "dependencies": {"a": ["b"]}},
                                                  "$ref": {"$ref": "#/x"}},
                                   "required": ["spec"]}}}]}}),
    );
    round_trip(json!({"kind": "ConfigMapList", "apiVersion": "v1",
        "metadata": {"resourceVersion": "9", "continue": "c", "remainingItemCount": 0},
        "items": [{"metadata": {"name": "a"}, "data": {"x": "y"}}]}));
    round_trip(
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "m", "reason": "NotFound", "details": {"name": "x", "kind": "pods"}, "code": 404}),
    );
}

#[test]
fn watch_event_frame() {
    let obj = json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "a"}});
    let frame = encode_watch_event("ADDED", obj.as_object().unwrap()).unwrap();
    let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
    assert_eq!(len, frame.len() - 4);
    let s = schema::schema();
    let ev = s.message("k8s.io.apimachinery.pkg.apis.meta.v1.WatchEvent").unwrap();
    let got = decode::message(s, ev, &frame[4..], 0).unwrap().unwrap();
    assert_eq!(got, json!({"type": "ADDED", "object": obj}));
}

fn label() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,8}"
}

fn text() -> impl Strategy<Value = String> {
    "\\PC{1,12}"
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..200), kind in 0usize..4) {
        let (av, k) = [("v1", "Pod"), ("apps/v1", "Deployment"), ("v1", "Secret"), ("apiextensions.k8s.io/v1", "CustomResourceDefinition")][kind];
        if let Err(e) = decode_body(&wrap(av, k, &body)) {
            prop_assert_eq!(e.code, 400);
        }
        if let Err(e) = decode_body(&body) {
            prop_assert_eq!(e.code, 400);
        }
    }

    #[test]
    fn configmaps_and_secrets_round_trip(
        name in label(),
        data in proptest::collection::btree_map(label(), text(), 0..4),
        bin in proptest::collection::btree_map(label(), proptest::collection::vec(any::<u8>(), 0..10), 0..3),
        labels in proptest::collection::btree_map(label(), label(), 0..3),
        immutable in proptest::option::of(any::<bool>()),
    ) {
        use base64::Engine;
        let b64: serde_json::Map<String, Value> = bin.iter()
            .map(|(k, v)| (k.clone(), Value::String(base64::engine::general_purpose::STANDARD.encode(v)))).collect();
        let mut cm = json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": name, "labels": labels},
                            "data": data, "binaryData": b64});
        if let Some(i) = immutable { cm["immutable"] = json!(i); }
        round_trip(cm);
        let secret = json!({"kind": "Secret", "apiVersion": "v1", "metadata": {"name": name}, "data": b64, "type": "Opaque"});
        round_trip(secret);
    }

    #[test]
    fn deployments_round_trip(
        name in label(),
        replicas in proptest::option::of(0i64..5),
        images in proptest::collection::vec(label(), 1..3),
        port in 1i64..65535,
        surge in prop_oneof![(0i64..10).prop_map(Value::from), "[0-9]{1,2}%".prop_map(Value::from)],
        cpu in "[1-9][0-9]{0,2}m",
    ) {
        let containers: Vec<Value> = images.iter().enumerate().map(|(i, img)| json!({
            "name": format!("c{i}"), "image": img, "ports": [{"containerPort": port}],
            "resources": {"limits": {"cpu": cpu}}})).collect();
        let mut d = json!({"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": containers}},
                     "strategy": {"rollingUpdate": {"maxSurge": surge}}}});
        if let Some(r) = replicas { d["spec"]["replicas"] = json!(r); }
        round_trip(d);
    }
}

#[test]
fn varint_lengths() {
    for v in [0u64, 1, 127, 128, 16383, 16384, u32::MAX as u64, u64::MAX] {
        let mut b = Vec::new();
        put_varint(&mut b, v);
        assert_eq!(super::wire::varint_len(v), b.len(), "{v}");
    }
}

#[test]
fn lists_encode_like_objects() {
    // encode_list (items copied from their bare messages) == encode_object of the list.
    let list = json!({"apiVersion": "v1", "kind": "ConfigMapList",
        "metadata": {"resourceVersion": "9", "continue": "c", "remainingItemCount": 3},
        "items": [{"metadata": {"name": "a"}, "data": {"k": "v"}}, {"metadata": {"name": "b"}}]});
    let whole = encode_object(list.as_object().unwrap()).unwrap();
    let idx = message_index("v1", "ConfigMap").unwrap();
    let items: Vec<Vec<u8>> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| encode_raw(idx, i).unwrap())
        .collect();
    let parts = encode_list("v1", "ConfigMapList", &list["metadata"], items.iter().map(|b| &b[..])).unwrap();
    assert_eq!(parts, whole);
    assert_eq!(Value::Object(decode_object(&parts).unwrap()), list);
}

#[test]
fn objects_encode_as_envelope_around_the_message() {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "a", "labels": {"x": "y"}, "creationTimestamp": "2024-01-02T03:04:05Z"},
        "data": {"k": "v".repeat(300)}});
    let idx = message_index("v1", "ConfigMap").unwrap();
    let raw = encode_raw(idx, &cm).unwrap();
    assert!(raw.len() > 300, "a length over one varint byte");
    assert_eq!(
        encode_object(cm.as_object().unwrap()).unwrap(),
        envelope("v1", "ConfigMap", &raw)
    );
}
