//! Properties of the whole request path over arbitrary input: whatever a
//! client sends as a body (bytes, or JSON shaped like the built-in kinds)
//! to create, update or patch, the answer is a success or a client error
//! Status, never a panic and never a 500.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value, json};

use crate::testing::TestServer;

use super::body::decode_json;

/// Field names of the kinds below, so random objects reach deep into
/// defaulting and validation.
const KEYS: &[&str] = &[
    "metadata",
    "name",
    "labels",
    "annotations",
    "spec",
    "status",
    "template",
    "selector",
    "matchLabels",
    "matchExpressions",
    "key",
    "operator",
    "values",
    "containers",
    "initContainers",
    "image",
    "ports",
    "containerPort",
    "port",
    "targetPort",
    "nodePort",
    "protocol",
    "env",
    "value",
    "valueFrom",
    "volumes",
    "volumeMounts",
    "mountPath",
    "resources",
    "limits",
    "requests",
    "cpu",
    "memory",
    "replicas",
    "strategy",
    "type",
    "rollingUpdate",
    "maxSurge",
    "maxUnavailable",
    "clusterIP",
    "clusterIPs",
    "rules",
    "http",
    "paths",
    "path",
    "pathType",
    "backend",
    "service",
    "number",
    "host",
    "tls",
    "roleRef",
    "kind",
    "apiGroup",
    "subjects",
    "namespace",
    "data",
    "stringData",
    "binaryData",
    "immutable",
    "schedule",
    "jobTemplate",
    "completions",
    "parallelism",
    "backoffLimit",
    "restartPolicy",
    "minAvailable",
    "maxReplicas",
    "minReplicas",
    "scaleTargetRef",
    "addressType",
    "endpoints",
    "addresses",
    "conditions",
    "holderIdentity",
    "leaseDurationSeconds",
    "provisioner",
    "reclaimPolicy",
    "accessModes",
    "storage",
    "capacity",
    "taints",
    "effect",
    "podCIDR",
    "involvedObject",
    "reason",
    "message",
    "finalizers",
    "ownerReferences",
    "generateName",
    "serviceName",
    "volumeClaimTemplates",
    "updateStrategy",
    "probes",
    "livenessProbe",
    "httpGet",
    "exec",
    "command",
    "tolerations",
    "affinity",
    "nodeSelector",
    "hostname",
    "subdomain",
    "externalName",
    "sessionAffinity",
    "ipFamilies",
    "ipFamilyPolicy",
    "globalDefault",
    "preemptionPolicy",
    "verbs",
    "resourceNames",
    "nonResourceURLs",
    "aggregationRule",
    "emptyDir",
    "configMap",
    "secret",
    "items",
];

fn arb_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        8 => prop::sample::select(KEYS).prop_map(str::to_string),
        1 => "[a-zA-Z.$/\\[\\]-]{0,6}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-3i64..70000).prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        prop::sample::select(
            &[
                "",
                "x",
                "web",
                "busybox",
                "1Gi",
                "100m",
                "TCP",
                "UDP",
                "None",
                "NodePort",
                "ClusterIP",
                "LoadBalancer",
                "ExternalName",
                "10.96.0.10",
                "10.96.0.1",
                "::1",
                "*/5 * * * *",
                "@hourly",
                "Prefix",
                "Exact",
                "Role",
                "ClusterRole",
                "rbac.authorization.k8s.io",
                "ServiceAccount",
                "User",
                "In",
                "NotIn",
                "Exists",
                "25%",
                "Always",
                "Never",
                "OnFailure",
                "IPv4",
                "FQDN",
                "NoSchedule",
                "ReadWriteOnce",
                "2024-01-02T03:04:05Z",
                "2024-01-02T03:04:05.000000Z",
                "aGk=",
                "/",
                "/a",
            ][..]
        )
        .prop_map(|s| json!(s)),
        ".{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(7, 80, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..7)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Collection URLs of kinds with their own strategies, and one more.
const COLLECTIONS: &[&str] = &[
    "/api/v1/namespaces/default/pods",
    "/api/v1/namespaces/default/services",
    "/api/v1/namespaces/default/configmaps",
    "/api/v1/namespaces/default/secrets",
    "/api/v1/namespaces/default/persistentvolumeclaims",
    "/api/v1/namespaces/default/events",
    "/api/v1/namespaces/default/replicationcontrollers",
    "/api/v1/namespaces/default/endpoints",
    "/api/v1/namespaces/default/serviceaccounts",
    "/api/v1/nodes",
    "/api/v1/persistentvolumes",
    "/api/v1/namespaces",
    "/apis/apps/v1/namespaces/default/deployments",
    "/apis/apps/v1/namespaces/default/statefulsets",
    "/apis/apps/v1/namespaces/default/daemonsets",
    "/apis/apps/v1/namespaces/default/replicasets",
    "/apis/batch/v1/namespaces/default/jobs",
    "/apis/batch/v1/namespaces/default/cronjobs",
    "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers",
    "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers",
    "/apis/policy/v1/namespaces/default/poddisruptionbudgets",
    "/apis/networking.k8s.io/v1/namespaces/default/ingresses",
    "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies",
    "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
    "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles",
    "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
    "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
    "/apis/coordination.k8s.io/v1/namespaces/default/leases",
    "/apis/storage.k8s.io/v1/storageclasses",
    "/apis/scheduling.k8s.io/v1/priorityclasses",
    "/apis/events.k8s.io/v1/namespaces/default/events",
];

/// A client error or success, never a server fault.
fn acceptable(code: u16) -> bool {
    (200..300).contains(&code) || matches!(code, 400 | 404 | 409 | 415 | 422)
}

#[test]
fn body_decoder_never_panics_on_bytes() {
    let mut runner = TestRunner::new(Config::with_cases(2000));
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        "[{}\\[\\]\":,a-z0-9 \\\\]{0,48}".prop_map(String::into_bytes),
    ];
    let result = runner.run(&bytes, |b| {
        if let Err(e) = decode_json(&b) {
            prop_assert_eq!(e.code, 400);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn arbitrary_objects_get_a_client_answer() {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => panic!("runtime: {e}"),
    };
    let server = rt.block_on(TestServer::new());
    let mut runner = TestRunner::new(Config::with_cases(600));
    let input = (prop::sample::select(COLLECTIONS), arb_json(), arb_json(), 0usize..3);
    let n = std::sync::atomic::AtomicUsize::new(0);
    let result = runner.run(&input, |(collection, body, patch, how)| {
        let name = format!("p{}", n.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let mut obj = match body {
            Value::Object(m) => m,
            other => {
                let mut m = Map::new();
                m.insert("spec".into(), other);
                m
            }
        };
        // Mostly a valid name, so validation goes past metadata.
        if how > 0 {
            let meta = obj.entry("metadata").or_insert_with(|| json!({}));
            if !meta.is_object() {
                *meta = json!({});
            }
            meta["name"] = json!(name);
            meta.as_object_mut().map(|m| m.remove("namespace"));
        }
        let (code, status) = rt.block_on(server.post(collection, Value::Object(obj.clone())));
        prop_assert!(acceptable(code.as_u16()), "POST {collection}: {code} {status}");
        if code.is_success() {
            let url = format!("{collection}/{name}");
            let (code, status) = rt.block_on(server.put(&url, Value::Object(obj)));
            prop_assert!(acceptable(code.as_u16()), "PUT {url}: {code} {status}");
            let (code, status) = rt.block_on(server.patch(&url, "application/merge-patch+json", patch.clone()));
            prop_assert!(acceptable(code.as_u16()), "merge PATCH {url}: {code} {status}");
            let (code, status) = rt.block_on(server.patch(&url, "application/strategic-merge-patch+json", patch));
            prop_assert!(acceptable(code.as_u16()), "strategic PATCH {url}: {code} {status}");
            let (code, status) = rt.block_on(server.delete(&url));
            prop_assert!(acceptable(code.as_u16()), "DELETE {url}: {code} {status}");
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// A valid object per collection, to be mutated.
fn template(collection: &str) -> Value {
    let pod_spec = json!({"containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80}],
        "env": [{"name": "A", "value": "b"}], "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "1"}},
        "volumeMounts": [{"name": "v", "mountPath": "/v"}]}], "volumes": [{"name": "v", "emptyDir": {}}]});
    let template = json!({"metadata": {"labels": {"app": "x"}}, "spec": pod_spec});
    let selector = json!({"matchLabels": {"app": "x"}});
    let resource = collection.rsplit('/').next().unwrap_or("");
    let spec = match resource {
        "pods" => pod_spec,
        "services" => {
            json!({"selector": {"app": "x"}, "ports": [{"port": 80, "targetPort": 8080}], "type": "NodePort"})
        }
        "persistentvolumeclaims" => {
            json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}})
        }
        "persistentvolumes" => {
            json!({"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/x"}})
        }
        "replicationcontrollers" => json!({"replicas": 1, "selector": {"app": "x"}, "template": template}),
        "deployments" | "replicasets" | "daemonsets" => {
            json!({"replicas": 1, "selector": selector, "template": template})
        }
        "statefulsets" => json!({"replicas": 1, "selector": selector, "template": template, "serviceName": "s",
            "volumeClaimTemplates": [{"metadata": {"name": "d"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}),
        "jobs" => {
            json!({"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}})
        }
        "cronjobs" => {
            json!({"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}}})
        }
        "horizontalpodautoscalers" => {
            json!({"scaleTargetRef": {"kind": "Deployment", "name": "d", "apiVersion": "apps/v1"}, "minReplicas": 1, "maxReplicas": 3})
        }
        "poddisruptionbudgets" => json!({"minAvailable": 1, "selector": selector}),
        "ingresses" => {
            json!({"rules": [{"host": "a.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "s", "port": {"number": 80}}}}]}}]})
        }
        "networkpolicies" => {
            json!({"podSelector": selector, "ingress": [{"ports": [{"port": 80}], "from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]}]})
        }
        "leases" => json!({"holderIdentity": "me", "leaseDurationSeconds": 15}),
        "nodes" => json!({"podCIDR": "10.244.0.0/24", "taints": [{"key": "k", "effect": "NoSchedule"}]}),
        _ => json!({}),
    };
    let mut obj = json!({"metadata": {"name": "t", "labels": {"app": "x"}}, "spec": spec});
    match resource {
        "configmaps" => obj = json!({"metadata": {"name": "t"}, "data": {"a": "b"}}),
        "secrets" => obj = json!({"metadata": {"name": "t"}, "type": "Opaque", "stringData": {"a": "b"}}),
        "roles" => {
            obj = json!({"metadata": {"name": "t"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]})
        }
        "rolebindings" | "clusterrolebindings" => {
            obj = json!({"metadata": {"name": "t"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "default"}]})
        }
        "endpointslices" => {
            obj = json!({"metadata": {"name": "t"}, "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": true}}], "ports": [{"name": "http", "port": 80}]})
        }
        "storageclasses" => {
            obj = json!({"metadata": {"name": "t"}, "provisioner": "example.com/x", "reclaimPolicy": "Delete"})
        }
        "priorityclasses" => obj = json!({"metadata": {"name": "t"}, "value": 1000}),
        "events" if collection.contains("events.k8s.io") => {
            obj = json!({"metadata": {"name": "t"}, "eventTime": "2024-01-02T03:04:05.000000Z",
            "reportingController": "x.io/c", "reportingInstance": "i", "action": "Act", "reason": "Why", "type": "Normal",
            "regarding": {"kind": "Pod", "name": "p", "namespace": "default"}})
        }
        "events" => {
            obj = json!({"metadata": {"name": "t"}, "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
            "reason": "Why", "message": "m", "type": "Normal"})
        }
        "endpoints" => {
            obj = json!({"metadata": {"name": "t"}, "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]})
        }
        _ => {}
    }
    obj
}

/// One random change somewhere in a JSON tree: a value replaced, a key
/// removed, or a key added. `path` picks the branch at each level.
fn mutate(v: &mut Value, path: &[usize], new: Value, key: &str, op: usize) {
    let (Some(&i), rest) = (path.first(), path.get(1..).unwrap_or(&[])) else {
        *v = new;
        return;
    };
    match v {
        Value::Object(m) if !m.is_empty() => {
            let k = m.keys().nth(i % m.len()).cloned().unwrap_or_default();
            if rest.is_empty() || !m.get(&k).is_some_and(|c| c.is_object() || c.is_array()) {
                match op % 3 {
                    0 => {
                        m.insert(k, new);
                    }
                    1 => {
                        m.remove(&k);
                    }
                    _ => {
                        m.insert(key.to_string(), new);
                    }
                }
            } else if let Some(child) = m.get_mut(&k) {
                mutate(child, rest, new, key, op);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            let n = a.len();
            if rest.is_empty() {
                match op % 3 {
                    0 => a[i % n] = new,
                    1 => {
                        a.remove(i % n);
                    }
                    _ => a.push(new),
                }
            } else {
                mutate(&mut a[i % n], rest, new, key, op);
            }
        }
        other => *other = new,
    }
}

#[test]
fn mutated_valid_objects_get_a_client_answer() {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => panic!("runtime: {e}"),
    };
    let server = rt.block_on(TestServer::new());
    let mut runner = TestRunner::new(Config::with_cases(1500));
    let mutation = (
        prop::collection::vec(0usize..16, 1..7),
        arb_json(),
        prop::sample::select(KEYS),
        0usize..3,
    );
    let input = (prop::sample::select(COLLECTIONS), prop::collection::vec(mutation, 1..4));
    let n = std::sync::atomic::AtomicUsize::new(0);
    let counts = std::sync::Mutex::new(std::collections::BTreeMap::<u16, usize>::new());
    let result = runner.run(&input, |(collection, mutations)| {
        let name = format!("m{}", n.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let valid = template(collection);
        let mut obj = valid.clone();
        for (path, new, key, op) in mutations {
            mutate(&mut obj, &path, new, key, op);
        }
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("name".into(), json!(name));
        }
        let (code, status) = rt.block_on(server.post(collection, obj.clone()));
        prop_assert!(acceptable(code.as_u16()), "POST {collection} {obj}: {code} {status}");
        *counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(code.as_u16())
            .or_default() += 1;
        // And as an update of a valid object.
        let mut valid = valid;
        valid["metadata"]["name"] = json!(format!("{name}-v"));
        let (code, status) = rt.block_on(server.post(collection, valid));
        prop_assert!(acceptable(code.as_u16()), "POST valid {collection}: {code} {status}");
        if code.is_success() {
            let url = format!("{collection}/{name}-v");
            let mut obj = obj;
            if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert("name".into(), json!(format!("{name}-v")));
            }
            let (code, status) = rt.block_on(server.put(&url, obj.clone()));
            prop_assert!(acceptable(code.as_u16()), "PUT {url} {obj}: {code} {status}");
            let (code, status) = rt.block_on(server.patch(&url, "application/strategic-merge-patch+json", obj));
            prop_assert!(acceptable(code.as_u16()), "PATCH {url}: {code} {status}");
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let counts = counts.into_inner().unwrap_or_default();
    // The mutations must leave enough objects valid to reach the stores.
    assert!(counts.get(&201).copied().unwrap_or(0) > 100, "{counts:?}");
}
