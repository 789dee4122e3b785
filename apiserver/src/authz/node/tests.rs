#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use crate::testing::TestServer;
use axum::http::StatusCode;
use serde_json::json;

fn node_user(name: &str) -> UserInfo {
    UserInfo {
        name: format!("system:node:{name}"),
        groups: vec![NODES_GROUP.into(), "system:authenticated".into()],
        ..Default::default()
    }
}

fn attrs(node: &str, verb: &str, group: &str, resource: &str, ns: &str, name: &str) -> Attributes {
    Attributes {
        user: node_user(node),
        verb: verb.into(),
        is_resource_request: true,
        api_group: group.into(),
        resource: resource.into(),
        namespace: ns.into(),
        name: name.into(),
        ..Default::default()
    }
}

/// A cluster with pod `web` on node n1 using secret `db`, config map
/// `settings`, claim `data` (bound to volume `pv1`, whose CSI secret is
/// `storage/csi`) and service account `robot`; pod `other` on n2 uses
/// secret `other`; pod `pending` is not bound and uses secret `pending`.
async fn cluster() -> (TestServer, NodeAuthorizer) {
    let s = TestServer::new().await;
    let post = |path: &'static str, body: serde_json::Value| {
        let s = &s;
        async move {
            let (code, resp) = s.post(path, body).await;
            assert_eq!(code, StatusCode::CREATED, "{path}: {resp}");
        }
    };
    let pod = |name: &str, node: Option<&str>, secret: &str| {
        let mut spec = json!({"serviceAccountName": "robot", "containers": [{"name": "c", "image": "i",
            "env": [{"name": "S", "valueFrom": {"secretKeyRef": {"name": secret, "key": "k"}}}]}],
            "volumes": [{"name": "cfg", "configMap": {"name": "settings"}},
                        {"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]});
        if let Some(n) = node {
            spec["nodeName"] = json!(n);
        }
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
    };
    post("/api/v1/namespaces/default/pods", pod("web", Some("n1"), "db")).await;
    post("/api/v1/namespaces/default/pods", pod("other", Some("n2"), "other")).await;
    post("/api/v1/namespaces/default/pods", pod("pending", None, "pending")).await;
    post(
        "/api/v1/persistentvolumes",
        json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv1"},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                "claimRef": {"namespace": "default", "name": "data"},
                "csi": {"driver": "d.example.com", "volumeHandle": "h",
                        "nodePublishSecretRef": {"name": "csi", "namespace": "storage"}}}}),
    )
    .await;
    post(
        "/api/v1/persistentvolumes",
        json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv2"},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                "claimRef": {"namespace": "default", "name": "unused"}, "hostPath": {"path": "/x"}}}),
    )
    .await;
    s.registry().cache.sync_to_storage().await.unwrap();
    let node = NodeAuthorizer::new(s.registry().clone());
    (s, node)
}

fn allowed(n: &NodeAuthorizer, a: &Attributes) -> bool {
    n.authorize(a).0.allowed()
}

#[tokio::test]
async fn reads_only_what_its_pods_reference() {
    let (_s, n) = cluster().await;
    for (resource, name) in [
        ("secrets", "db"),
        ("configmaps", "settings"),
        ("persistentvolumeclaims", "data"),
    ] {
        assert!(
            allowed(&n, &attrs("n1", "get", "", resource, "default", name)),
            "{resource}/{name}"
        );
        assert!(
            !allowed(&n, &attrs("n2", "get", "", resource, "default", "db")),
            "{resource}"
        );
    }
    assert!(allowed(&n, &attrs("n2", "get", "", "secrets", "default", "other")));
    assert!(!allowed(&n, &attrs("n1", "get", "", "secrets", "default", "other")));
    // An unbound pod's references belong to no node.
    assert!(!allowed(&n, &attrs("n1", "get", "", "secrets", "default", "pending")));
    // Volumes through their claims, and their secrets.
    assert!(allowed(&n, &attrs("n1", "get", "", "persistentvolumes", "", "pv1")));
    assert!(!allowed(&n, &attrs("n1", "get", "", "persistentvolumes", "", "pv2")));
    assert!(allowed(&n, &attrs("n1", "get", "", "secrets", "storage", "csi")));
    assert!(!allowed(&n, &attrs("n1", "get", "", "secrets", "default", "csi")));
    // A single object by list/watch with its name.
    assert!(allowed(&n, &attrs("n1", "watch", "", "secrets", "default", "db")));
    // Service-account tokens for its pods' accounts.
    let mut token = attrs("n1", "create", "", "serviceaccounts", "default", "robot");
    token.subresource = "token".into();
    assert!(allowed(&n, &token));
    token.name = "default".into();
    assert!(!allowed(&n, &token));
}

#[tokio::test]
async fn refusals_carry_upstream_reasons() {
    let (_s, n) = cluster().await;
    let reason = |a: &Attributes| n.authorize(a).1;
    assert_eq!(
        reason(&attrs("n1", "get", "", "secrets", "default", "other")),
        "no relationship found between node 'n1' and this object"
    );
    assert_eq!(
        reason(&attrs("n1", "list", "", "secrets", "default", "")),
        "No Object name found"
    );
    assert_eq!(
        reason(&attrs("n1", "delete", "", "secrets", "default", "db")),
        "can only read resources of this type"
    );
    assert_eq!(
        reason(&attrs("n1", "get", "", "secrets", "", "db")),
        "can only read namespaced object of this type"
    );
    assert_eq!(
        reason(&attrs("n1", "list", "", "persistentvolumes", "", "")),
        "can only get individual resources of this type"
    );
    assert_eq!(
        reason(&attrs("n1", "get", "", "nodes", "", "n2")),
        "node 'n1' cannot read 'n2', only its own Node object"
    );
    assert_eq!(
        reason(&attrs("n1", "list", "", "nodes", "", "")),
        "node 'n1' cannot read all nodes, only its own Node object"
    );
    assert_eq!(
        reason(&attrs("n1", "list", "", "pods", "", "")),
        "can only list/watch pods with spec.nodeName field selector"
    );
    assert_eq!(
        reason(&attrs(
            "n1",
            "update",
            "coordination.k8s.io",
            "leases",
            "kube-node-lease",
            "n2"
        )),
        "can only access node lease with the same name as the requesting node"
    );
    assert_eq!(
        reason(&attrs("n1", "get", "coordination.k8s.io", "leases", "default", "n1")),
        "can only access leases in the \"kube-node-lease\" system namespace"
    );
    let mut unknown = attrs("", "get", "", "secrets", "default", "db");
    unknown.user.name = "system:node:".into();
    assert_eq!(reason(&unknown), "unknown node for user \"system:node:\"");
}

#[tokio::test]
async fn own_node_pods_leases_and_static_rules() {
    let (_s, n) = cluster().await;
    assert!(allowed(&n, &attrs("n1", "get", "", "nodes", "", "n1")));
    assert!(allowed(&n, &attrs("n1", "create", "", "nodes", "", "")));
    let mut status = attrs("n1", "patch", "", "nodes", "", "n1");
    status.subresource = "status".into();
    assert!(allowed(&n, &status));
    let mut pods = attrs("n1", "watch", "", "pods", "", "");
    pods.field_selector = "spec.nodeName=n1".into();
    assert!(allowed(&n, &pods));
    pods.field_selector = "spec.nodeName=n2".into();
    assert!(!allowed(&n, &pods));
    assert!(allowed(&n, &attrs("n1", "get", "", "pods", "default", "web")));
    assert!(!allowed(&n, &attrs("n1", "get", "", "pods", "default", "other")));
    assert!(allowed(
        &n,
        &attrs("n1", "update", "coordination.k8s.io", "leases", "kube-node-lease", "n1")
    ));
    assert!(allowed(
        &n,
        &attrs("n1", "create", "coordination.k8s.io", "leases", "kube-node-lease", "")
    ));
    // The static node rules: services and events, but not deployments.
    assert!(allowed(&n, &attrs("n1", "list", "", "services", "", "")));
    assert!(allowed(
        &n,
        &attrs("n1", "create", "events.k8s.io", "events", "default", "")
    ));
    assert!(!allowed(&n, &attrs("n1", "list", "apps", "deployments", "", "")));
    // Other users get no opinion and no reason.
    let mut alice = attrs("n1", "get", "", "nodes", "", "n1");
    alice.user = UserInfo {
        name: "alice".into(),
        groups: vec![NODES_GROUP.into()],
        ..Default::default()
    };
    assert_eq!(n.authorize(&alice), (Decision::NoOpinion(String::new()), String::new()));
}
