//! The chain through the HTTP handlers: each plugin's effect and upstream's
//! messages on real requests to an in-process server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{Chain, ChainError, Plugin};
use crate::testing::TestServer;

const PODS: &str = "/api/v1/namespaces/default/pods";

fn pod(name: &str, spec_extra: Value) -> Value {
    let mut spec = json!({"containers": [{"name": "c", "image": "busybox"}]});
    for (k, v) in spec_extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    json!({"metadata": {"name": name}, "spec": spec})
}

async fn create_namespace(s: &TestServer, name: &str) {
    let (code, body) = s.post("/api/v1/namespaces", json!({"metadata": {"name": name}})).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
}

#[test]
fn flags_choose_plugins_in_upstream_order() {
    assert_eq!(Chain::from_flags(&[], &[]).unwrap(), Chain::default());
    let c = Chain::from_flags(
        &["NodeRestriction".into()],
        &["ServiceAccount".into(), "ResourceQuota".into()],
    )
    .unwrap();
    assert!(!c.plugins().contains(&Plugin::ServiceAccount));
    assert!(!c.plugins().contains(&Plugin::ResourceQuota));
    let mut sorted = c.plugins().to_vec();
    sorted.sort();
    assert_eq!(sorted, c.plugins());
    assert_eq!(
        Chain::from_flags(&["Bogus".into()], &[]),
        Err(ChainError::UnknownEnabled("Bogus".into()))
    );
    assert_eq!(
        Chain::from_flags(&["Priority".into()], &["Priority".into()]),
        Err(ChainError::Overlap("Priority".into()))
    );
    assert_eq!(
        Chain::of(&[Plugin::ResourceQuota, Plugin::NamespaceLifecycle]).plugins(),
        &[Plugin::NamespaceLifecycle, Plugin::ResourceQuota]
    );
}

#[tokio::test]
async fn namespace_lifecycle() {
    let s = TestServer::new().await;
    let (code, err) = s
        .post("/api/v1/namespaces/nope/configmaps", json!({"metadata": {"name": "a"}}))
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{err}");
    assert_eq!(err["message"], "namespaces \"nope\" not found");

    for name in ["default", "kube-system", "kube-public"] {
        let (code, err) = s.delete(&format!("/api/v1/namespaces/{name}")).await;
        assert_eq!(code, StatusCode::FORBIDDEN, "{err}");
        assert_eq!(
            err["message"],
            format!("namespaces \"{name}\" is forbidden: this namespace may not be deleted")
        );
    }

    create_namespace(&s, "doomed").await;
    let (code, body) = s.delete("/api/v1/namespaces/doomed").await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (code, err) = s
        .post(
            "/api/v1/namespaces/doomed/configmaps",
            json!({"metadata": {"name": "late"}}),
        )
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{err}");
    assert_eq!(
        err["message"],
        "configmaps \"late\" is forbidden: unable to create new content in namespace doomed because it is being terminated"
    );
    assert_eq!(
        err["details"]["causes"],
        json!([{"reason": "NamespaceTerminating", "message": "namespace doomed is being terminated",
                "field": "metadata.namespace"}])
    );
    // generateName names the object in the message.
    let (_, err) = s
        .post(
            "/api/v1/namespaces/doomed/configmaps",
            json!({"metadata": {"generateName": "gen-"}}),
        )
        .await;
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .starts_with("configmaps \"gen-\" is forbidden"),
        "{err}"
    );
}

#[tokio::test]
async fn service_account_defaults_and_token_volume() {
    let s = TestServer::with_admission(Chain::default()).await;
    let (code, err) = s.post(PODS, pod("early", json!({}))).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{err}");
    assert_eq!(
        err["message"],
        "pods \"early\" is forbidden: error looking up service account default/default: serviceaccount \"default\" not found"
    );

    let (code, body) = s
        .post(
            "/api/v1/namespaces/default/serviceaccounts",
            json!({"metadata": {"name": "default"}, "imagePullSecrets": [{"name": "regcred"}]}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let (code, p) = s
        .post(
            PODS,
            pod("p", json!({"initContainers": [{"name": "init", "image": "busybox"}]})),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{p}");
    assert_eq!(p["spec"]["serviceAccountName"], "default");
    assert_eq!(p["spec"]["imagePullSecrets"], json!([{"name": "regcred"}]));
    let volumes = p["spec"]["volumes"].as_array().unwrap();
    assert_eq!(volumes.len(), 1);
    let name = volumes[0]["name"].as_str().unwrap();
    assert!(
        name.starts_with("kube-api-access-") && name.len() == "kube-api-access-".len() + 5,
        "{name}"
    );
    assert_eq!(
        volumes[0]["projected"],
        json!({"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace",
                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ]})
    );
    for field in ["containers", "initContainers"] {
        assert_eq!(
            p["spec"][field][0]["volumeMounts"],
            json!([{"name": name, "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]),
            "{field}"
        );
    }

    let (code, p) = s
        .post(PODS, pod("quiet", json!({"automountServiceAccountToken": false})))
        .await;
    assert_eq!(code, StatusCode::CREATED, "{p}");
    assert!(
        p["spec"]
            .get("volumes")
            .is_none_or(|v| v.as_array().unwrap().is_empty()),
        "{p}"
    );

    let (code, err) = s.post(PODS, pod("x", json!({"serviceAccountName": "robot"}))).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{err}");
    assert_eq!(
        err["message"],
        "pods \"x\" is forbidden: error looking up service account default/robot: serviceaccount \"robot\" not found"
    );
}

#[tokio::test]
async fn limit_ranges_default_and_bound_pods() {
    let s = TestServer::new().await;
    let (code, body) = s
        .post(
            "/api/v1/namespaces/default/limitranges",
            json!({"metadata": {"name": "lr"}, "spec": {"limits": [{"type": "Container",
                "default": {"cpu": "500m", "memory": "256Mi"}, "defaultRequest": {"cpu": "100m"},
                "max": {"cpu": "1", "memory": "1Gi"}}]}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let (code, p) = s.post(PODS, pod("defaults", json!({}))).await;
    assert_eq!(code, StatusCode::CREATED, "{p}");
    assert_eq!(
        p["spec"]["containers"][0]["resources"],
        json!({"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "256Mi"}})
    );
    assert_eq!(
        p["metadata"]["annotations"]["kubernetes.io/limit-ranger"],
        "LimitRanger plugin set: cpu, memory request for container c; cpu, memory limit for container c"
    );

    let big = json!({"containers": [{"name": "c", "image": "busybox",
        "resources": {"limits": {"cpu": "2", "memory": "2Gi"}}}]});
    let (code, err) = s.post(PODS, pod("big", big)).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{err}");
    assert_eq!(
        err["message"],
        "pods \"big\" is forbidden: [maximum cpu usage per Container is 1, but limit is 2, maximum memory usage per Container is 1Gi, but limit is 2Gi]"
    );
}

/// LimitRanges are read once while they do not change (kept per
/// revision of the resource): each change reaches the next pod.
#[tokio::test]
async fn limit_range_changes_reach_the_next_pod() {
    let s = TestServer::new().await;
    // The reads under test are the cache's: wait for it to be filled.
    while !s.state.registry.cache.is_ready() {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let requests = |p: &Value| p["spec"]["containers"][0]["resources"].clone();
    let (code, p) = s.post(PODS, pod("before", json!({}))).await;
    assert_eq!(code, StatusCode::CREATED, "{p}");
    assert!(requests(&p).is_null() || requests(&p) == json!({}), "{p}");
    let path = "/api/v1/namespaces/default/limitranges";
    let limits = |cpu: &str| json!({"limits": [{"type": "Container", "defaultRequest": {"cpu": cpu}}]});
    let (code, body) = s
        .post(path, json!({"metadata": {"name": "lr"}, "spec": limits("100m")}))
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let (_, p) = s.post(PODS, pod("first", json!({}))).await;
    assert_eq!(requests(&p), json!({"requests": {"cpu": "100m"}}), "{p}");
    let (_, p) = s.post(PODS, pod("again", json!({}))).await;
    assert_eq!(requests(&p), json!({"requests": {"cpu": "100m"}}), "{p}");
    let (code, body) = s
        .put(
            &format!("{path}/lr"),
            json!({"metadata": {"name": "lr"}, "spec": limits("200m")}),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (_, p) = s.post(PODS, pod("second", json!({}))).await;
    assert_eq!(requests(&p), json!({"requests": {"cpu": "200m"}}), "{p}");
    let (code, body) = s.delete(&format!("{path}/lr")).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (_, p) = s.post(PODS, pod("after", json!({}))).await;
    assert!(requests(&p).is_null() || requests(&p) == json!({}), "{p}");
}

/// Sets a quota's status as the quota controller would: hard from spec,
/// used as given.
async fn set_quota_status(s: &TestServer, name: &str, used: Value) {
    let path = format!("/api/v1/namespaces/default/resourcequotas/{name}");
    let (_, mut q) = s.get(&path).await;
    q["status"] = json!({"hard": q["spec"]["hard"].clone(), "used": used});
    let (code, body) = s.put(&format!("{path}/status"), q).await;
    assert_eq!(code, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn resource_quota_charges_and_refuses() {
    let s = TestServer::new().await;
    let (code, body) = s
        .post(
            "/api/v1/namespaces/default/resourcequotas",
            json!({"metadata": {"name": "q"}, "spec": {"hard": {"count/configmaps": "2", "pods": "1"}}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    // Without the controller's status the quota is not enforced yet.
    let (code, _) = s
        .post(
            "/api/v1/namespaces/default/configmaps",
            json!({"metadata": {"name": "before"}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED);
    set_quota_status(&s, "q", json!({"count/configmaps": "1", "pods": "0"})).await;

    // A dry run is checked but charges nothing.
    let (code, body) = s
        .post(
            "/api/v1/namespaces/default/configmaps?dryRun=All",
            json!({"metadata": {"name": "dry"}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let (_, q) = s.get("/api/v1/namespaces/default/resourcequotas/q").await;
    assert_eq!(q["status"]["used"]["count/configmaps"], "1");

    let (code, body) = s
        .post(
            "/api/v1/namespaces/default/configmaps",
            json!({"metadata": {"name": "a"}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let (_, q) = s.get("/api/v1/namespaces/default/resourcequotas/q").await;
    assert_eq!(q["status"]["used"], json!({"count/configmaps": "2", "pods": "0"}));

    let (code, err) = s
        .post(
            "/api/v1/namespaces/default/configmaps",
            json!({"metadata": {"name": "b"}}),
        )
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{err}");
    assert_eq!(
        err["message"],
        "configmaps \"b\" is forbidden: exceeded quota: q, requested: count/configmaps=1, used: count/configmaps=2, limited: count/configmaps=2"
    );

    let (code, p) = s.post(PODS, pod("one", json!({}))).await;
    assert_eq!(code, StatusCode::CREATED, "{p}");
    let (code, err) = s.post(PODS, pod("two", json!({}))).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{err}");
    assert_eq!(
        err["message"],
        "pods \"two\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1"
    );
}

#[tokio::test]
async fn concurrent_creates_never_overrun_a_quota() {
    let s = std::sync::Arc::new(TestServer::new().await);
    let (code, body) = s
        .post(
            "/api/v1/namespaces/default/resourcequotas",
            json!({"metadata": {"name": "q"}, "spec": {"hard": {"count/secrets": "5"}}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    set_quota_status(&s, "q", json!({"count/secrets": "0"})).await;
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                s.post(
                    "/api/v1/namespaces/default/secrets",
                    json!({"metadata": {"name": format!("s{i}")}}),
                )
                .await
                .0
            })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        let code = t.await.unwrap();
        assert!(
            code == StatusCode::CREATED || code == StatusCode::FORBIDDEN || code == StatusCode::CONFLICT,
            "{code}"
        );
        created += usize::from(code == StatusCode::CREATED);
    }
    assert!(created <= 5, "{created} secrets created under a quota of 5");
    let (_, q) = s.get("/api/v1/namespaces/default/resourcequotas/q").await;
    assert_eq!(q["status"]["used"]["count/secrets"], created.to_string());
}

#[tokio::test]
async fn tolerations_taints_and_storage_class() {
    let s = TestServer::with_admission(Chain::without(&[Plugin::ServiceAccount])).await;
    let (code, p) = s
        .post(
            PODS,
            pod(
                "t",
                json!({"tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists"}]}),
            ),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{p}");
    assert_eq!(
        p["spec"]["tolerations"],
        json!([
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists"},
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        ])
    );

    let (code, n) = s.post("/api/v1/nodes", json!({"metadata": {"name": "n1"}})).await;
    assert_eq!(code, StatusCode::CREATED, "{n}");
    assert_eq!(
        n["spec"]["taints"],
        json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}])
    );

    let claim = |name: &str, class: Option<&str>| {
        let mut c = json!({"metadata": {"name": name}, "spec": {"accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}}}});
        if let Some(class) = class {
            c["spec"]["storageClassName"] = json!(class);
        }
        c
    };
    let claims = "/api/v1/namespaces/default/persistentvolumeclaims";
    let (code, c) = s.post(claims, claim("none", None)).await;
    assert_eq!(code, StatusCode::CREATED, "{c}");
    assert!(c["spec"].get("storageClassName").is_none(), "{c}");
    let (code, body) = s
        .post(
            "/apis/storage.k8s.io/v1/storageclasses",
            json!({"metadata": {"name": "fast",
                   "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                   "provisioner": "example.com/fast"}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let (code, c) = s.post(claims, claim("defaulted", None)).await;
    assert_eq!(code, StatusCode::CREATED, "{c}");
    assert_eq!(c["spec"]["storageClassName"], "fast");
    let (code, c) = s.post(claims, claim("explicit", Some(""))).await;
    assert_eq!(code, StatusCode::CREATED, "{c}");
    assert_eq!(c["spec"]["storageClassName"], "");
}
