//! The objects the scenarios create: small ConfigMaps and realistic Pods of
//! about 2 KiB (two containers with ports, env, probes, resources, mounts;
//! volumes, tolerations and anti-affinity, like a Deployment's pod).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// Annotation holding the creation time in nanoseconds since the Unix
/// epoch, read by watchers to compute delivery latency.
pub const CREATED_NS: &str = "kube-load/created-ns";
/// Label naming the run that created an object.
pub const RUN_LABEL: &str = "kube-load/run";

/// Nanoseconds since the Unix epoch, now.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A ConfigMap of about 0.5 KiB.
pub fn config_map(name: &str, run: &str, created_ns: u64) -> Vec<u8> {
    let body = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "labels": {"app": "kube-load", RUN_LABEL: run},
            "annotations": {CREATED_NS: created_ns.to_string()},
        },
        "data": {
            "log-level": "info",
            "listen": "0.0.0.0:8080",
            "upstreams": "http://backend-0.backend:8080,http://backend-1.backend:8080,http://backend-2.backend:8080",
            "feature-flags": "checkout-v2=true,search-suggest=false,recommendations=true,dark-mode=true",
            "banner": "All systems operational. Maintenance window: Sundays 02:00-04:00 UTC. Contact: platform-team.",
        },
    });
    to_vec(&body)
}

/// The same ConfigMap with a new `generation` value, for updates (PUT with
/// `resourceVersion` as the precondition).
pub fn config_map_update(name: &str, run: &str, resource_version: &str, n: u64) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&config_map(name, run, now_ns())).unwrap_or_default();
    body["metadata"]["resourceVersion"] = json!(resource_version);
    body["data"]["generation"] = json!(n.to_string());
    to_vec(&body)
}

/// A Pod of about 2 KiB as sent (the server's defaults make the stored
/// object larger).
pub fn pod(name: &str, run: &str, created_ns: u64) -> Vec<u8> {
    let body = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {
                "app": "load-web",
                "tier": "frontend",
                "pod-template-hash": "7d9f8b6c5d",
                RUN_LABEL: run,
            },
            "annotations": {
                CREATED_NS: created_ns.to_string(),
                "kubectl.kubernetes.io/default-container": "web",
            },
        },
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": "registry.k8s.io/e2e-test-images/nginx:1.15-4",
                    "imagePullPolicy": "IfNotPresent",
                    "args": ["--port=8080", "--metrics-port=9090", "--config=/etc/web/config.yaml"],
                    "ports": [
                        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                        {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
                    ],
                    "env": [
                        {"name": "LOG_LEVEL", "value": "info"},
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    ],
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "128Mi"},
                        "limits": {"cpu": "500m", "memory": "256Mi"},
                    },
                    "readinessProbe": {
                        "httpGet": {"path": "/healthz", "port": 8080},
                        "periodSeconds": 10,
                        "timeoutSeconds": 2,
                    },
                    "livenessProbe": {
                        "httpGet": {"path": "/livez", "port": 8080},
                        "initialDelaySeconds": 15,
                        "periodSeconds": 20,
                    },
                    "volumeMounts": [
                        {"name": "config", "mountPath": "/etc/web", "readOnly": true},
                        {"name": "cache", "mountPath": "/var/cache/web"},
                    ],
                    "securityContext": {
                        "allowPrivilegeEscalation": false,
                        "readOnlyRootFilesystem": true,
                        "runAsNonRoot": true,
                        "runAsUser": 1000,
                    },
                },
                {
                    "name": "log-shipper",
                    "image": "docker.io/fluent/fluent-bit:3.0.7",
                    "args": ["--config=/fluent-bit/etc/fluent-bit.conf"],
                    "resources": {
                        "requests": {"cpu": "20m", "memory": "32Mi"},
                        "limits": {"memory": "64Mi"},
                    },
                    "volumeMounts": [{"name": "cache", "mountPath": "/var/cache/web", "readOnly": true}],
                },
            ],
            "volumes": [
                {"name": "config", "configMap": {"name": "web-config"}},
                {"name": "cache", "emptyDir": {"sizeLimit": "1Gi"}},
            ],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            ],
            "affinity": {
                "podAntiAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [{
                        "weight": 100,
                        "podAffinityTerm": {
                            "labelSelector": {"matchLabels": {"app": "load-web"}},
                            "topologyKey": "kubernetes.io/hostname",
                        },
                    }],
                },
            },
        },
    });
    to_vec(&body)
}

/// The Pod of [`pod`] as the default admission chain leaves it: the
/// `default` service account with its projected token volume mounted in
/// both containers (ServiceAccount), the `unreachable` toleration next to
/// the `not-ready` one (DefaultTolerationSeconds) and priority 0
/// (Priority). A server without the chain stores the same object as one
/// with it stores for [`pod`], so comparing the two separates the chain's
/// work from the cost of the bigger object.
pub fn admitted_pod(name: &str, run: &str, created_ns: u64) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&pod(name, run, created_ns)).unwrap_or_default();
    let spec = &mut body["spec"];
    spec["serviceAccountName"] = json!("default");
    spec["priority"] = json!(0);
    spec["preemptionPolicy"] = json!("PreemptLowerPriority");
    let volume = "kube-api-access-load0";
    let mount = json!({"name": volume, "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"});
    if let Some(containers) = spec["containers"].as_array_mut() {
        for c in containers {
            if let Some(mounts) = c["volumeMounts"].as_array_mut() {
                mounts.push(mount.clone());
            }
        }
    }
    if let Some(volumes) = spec["volumes"].as_array_mut() {
        volumes.push(json!({
            "name": volume,
            "projected": {
                "defaultMode": 420,
                "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace",
                        "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
                ],
            },
        }));
    }
    if let Some(tolerations) = spec["tolerations"].as_array_mut() {
        tolerations.push(json!({
            "key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300,
        }));
    }
    to_vec(&body)
}

fn to_vec(v: &Value) -> Vec<u8> {
    // Serializing a `Value` built from literals cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn sizes() {
        let pod = pod("load-pod-0000-00-000000", "r1a2b3", now_ns());
        assert!((1800..=2400).contains(&pod.len()), "pod is {} bytes", pod.len());
        let cm = config_map("load-cm-0000-00-000000", "r1a2b3", now_ns());
        assert!((400..=700).contains(&cm.len()), "configmap is {} bytes", cm.len());
    }

    #[test]
    fn admitted_pod_carries_what_the_chain_adds() {
        let plain = pod("p", "r", 1);
        let admitted: Value = serde_json::from_slice(&admitted_pod("p", "r", 1)).unwrap();
        let spec = &admitted["spec"];
        assert_eq!(spec["serviceAccountName"], "default");
        assert_eq!(spec["priority"], 0);
        assert_eq!(spec["volumes"].as_array().unwrap().len(), 3);
        assert_eq!(spec["tolerations"].as_array().unwrap().len(), 2);
        for c in spec["containers"].as_array().unwrap() {
            let last = c["volumeMounts"].as_array().unwrap().last().unwrap().clone();
            assert_eq!(last["name"], "kube-api-access-load0");
        }
        // About 30% more than the pod as sent.
        let grown = admitted.to_string().len() as f64 / plain.len() as f64;
        assert!((1.2..1.5).contains(&grown), "{grown}");
    }

    #[test]
    fn created_timestamp_round_trips() {
        let t = now_ns();
        let v: Value = serde_json::from_slice(&config_map("a", "r", t)).unwrap();
        assert_eq!(v["metadata"]["annotations"][CREATED_NS], t.to_string());
        let u: Value = serde_json::from_slice(&config_map_update("a", "r", "42", 7)).unwrap();
        assert_eq!(u["metadata"]["resourceVersion"], "42");
        assert_eq!(u["data"]["generation"], "7");
    }
}
