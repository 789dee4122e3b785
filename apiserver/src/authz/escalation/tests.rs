#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use serde_json::json;

fn body(v: serde_json::Value) -> bytes::Bytes {
    bytes::Bytes::from(v.to_string())
}

fn obj(v: serde_json::Value) -> Object {
    match v {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

/// alice holds pod read/write and configmap reads in `a` (a RoleBinding of
/// ClusterRole `pods-rw`), and `bind` on ClusterRole `admin` in `b`; the
/// group `broken` is bound to a missing role.
fn index() -> Arc<PolicyIndex> {
    Arc::new(PolicyIndex::from_bodies(
        [
            vec![
                body(json!({"metadata": {"name": "pods-rw"}, "rules": [
                    {"verbs": ["get", "list", "create"], "apiGroups": [""], "resources": ["pods", "pods/log"]},
                    {"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"]}]})),
                body(json!({"metadata": {"name": "admin"}, "rules": [
                    {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]})),
                body(json!({"metadata": {"name": "binder"}, "rules": [
                    {"verbs": ["bind"], "apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "resourceNames": ["admin"]}]})),
                body(json!({"metadata": {"name": "pod-reader"}, "rules": [
                    {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]})),
            ],
            vec![],
            vec![],
            vec![
                body(json!({"metadata": {"name": "rw", "namespace": "a"},
                    "roleRef": {"kind": "ClusterRole", "name": "pods-rw"},
                    "subjects": [{"kind": "User", "name": "alice"}]})),
                body(json!({"metadata": {"name": "rw", "namespace": "b"},
                    "roleRef": {"kind": "ClusterRole", "name": "pods-rw"},
                    "subjects": [{"kind": "User", "name": "alice"}]})),
                body(json!({"metadata": {"name": "bind", "namespace": "b"},
                    "roleRef": {"kind": "ClusterRole", "name": "binder"},
                    "subjects": [{"kind": "User", "name": "alice"}]})),
                body(json!({"metadata": {"name": "gone", "namespace": "a"},
                    "roleRef": {"kind": "Role", "name": "missing"},
                    "subjects": [{"kind": "Group", "name": "broken"}]})),
            ],
        ],
        [1; 4],
    ))
}

fn check_as(kind: RbacKind, namespace: &str, groups: &[&str]) -> EscalationCheck {
    EscalationCheck {
        kind,
        user: UserInfo {
            name: "alice".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        },
        namespace: namespace.into(),
        index: index(),
    }
}

fn role(rules: serde_json::Value) -> Object {
    obj(json!({"metadata": {"name": "r"}, "rules": rules}))
}

fn binding(kind: &str, name: &str) -> Object {
    obj(
        json!({"metadata": {"name": "rb"}, "roleRef": {"apiGroup": GROUP, "kind": kind, "name": name},
        "subjects": [{"kind": "User", "name": "bob"}]}),
    )
}

#[test]
fn roles_may_grant_only_what_the_user_holds() {
    let c = check_as(RbacKind::Role, "a", &["system:authenticated"]);
    c.check(
        &role(json!([{"verbs": ["get", "create"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["p"]}])),
        None,
    )
    .unwrap();
    let err = c
        .check(
            &role(
                json!([{"verbs": ["get", "delete"], "apiGroups": [""], "resources": ["pods", "secrets"]},
                         {"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"]}]),
            ),
            None,
        )
        .unwrap_err();
    assert_eq!(err.code, 403);
    assert_eq!(
        err.message,
        "roles.rbac.authorization.k8s.io \"r\" is forbidden: user \"alice\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n\
         {APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\"]}\n\
         {APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\" \"delete\"]}"
    );
    // What the user holds in `a` is not held in `c`.
    let c = check_as(RbacKind::Role, "c", &[]);
    let err = c
        .check(
            &role(json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}])),
            None,
        )
        .unwrap_err();
    assert!(err.message.contains("(groups=[]) is attempting"), "{}", err.message);
}

#[test]
fn resolution_errors_are_reported() {
    let c = check_as(RbacKind::Role, "a", &["broken"]);
    let err = c
        .check(
            &role(json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}])),
            None,
        )
        .unwrap_err();
    assert!(
        err.message.ends_with(
            "{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\"]}; resolution errors: [roles.rbac.authorization.k8s.io \"missing\" not found]"
        ),
        "{}",
        err.message
    );
}

#[test]
fn cluster_roles_and_aggregation() {
    let c = check_as(RbacKind::ClusterRole, "", &[]);
    // Alice holds nothing cluster-wide.
    let err = c
        .check(
            &role(json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}])),
            None,
        )
        .unwrap_err();
    assert!(
        err.message
            .starts_with("clusterroles.rbac.authorization.k8s.io \"r\" is forbidden: user \"alice\""),
        "{}",
        err.message
    );
    let aggregated = obj(json!({"metadata": {"name": "agg"},
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]}}));
    let err = c.check(&aggregated, None).unwrap_err();
    assert_eq!(
        err.message,
        "clusterroles.rbac.authorization.k8s.io \"agg\" is forbidden: must have cluster-admin privileges to use the aggregationRule"
    );
    // Removing an aggregation rule needs the same.
    let plain = obj(json!({"metadata": {"name": "agg", "labels": {"a": "b"}}}));
    assert!(c.check(&plain, Some(&aggregated)).is_err());
    assert!(c.check(&plain, None).is_ok());
}

#[test]
fn garbage_collector_changes_are_not_checked() {
    let c = check_as(RbacKind::ClusterRole, "", &[]);
    let old = obj(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "r", "resourceVersion": "5"},
        "rules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]}),
    );
    let mut new = old.clone();
    object::set_meta(&mut new, "finalizers", Some(json!(["x"])));
    object::set_meta(
        &mut new,
        "ownerReferences",
        Some(json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "u"}])),
    );
    c.check(&new, Some(&old)).unwrap();
    object::set_meta(&mut new, "labels", Some(json!({"a": "b"})));
    assert_eq!(c.check(&new, Some(&old)).unwrap_err().code, 403);
}

#[test]
fn bindings_need_the_role_rules_or_bind() {
    let c = check_as(RbacKind::RoleBinding, "a", &[]);
    c.check(&binding("ClusterRole", "pod-reader"), None).unwrap();
    c.check(&binding("ClusterRole", "pods-rw"), None).unwrap();
    let err = c.check(&binding("ClusterRole", "admin"), None).unwrap_err();
    assert_eq!(
        err.message,
        "rolebindings.rbac.authorization.k8s.io \"rb\" is forbidden: user \"alice\" (groups=[]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"*\"], Resources:[\"*\"], Verbs:[\"*\"]}"
    );
    // `bind` on admin in `b` allows binding it there, not elsewhere.
    let in_b = check_as(RbacKind::RoleBinding, "b", &[]);
    in_b.check(&binding("ClusterRole", "admin"), None).unwrap();
    // A missing role is NotFound.
    let err = c.check(&binding("Role", "nope"), None).unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (404, "roles.rbac.authorization.k8s.io \"nope\" not found")
    );
    let err = c.check(&binding("ClusterRole", "nope"), None).unwrap_err();
    assert_eq!(err.code, 404);
    // An unsupported kind is left to validation.
    c.check(&binding("Robot", "x"), None).unwrap();
    // Cluster-wide, alice holds nothing and may bind nothing.
    let crb = check_as(RbacKind::ClusterRoleBinding, "", &[]);
    let err = crb.check(&binding("ClusterRole", "pod-reader"), None).unwrap_err();
    assert!(
        err.message
            .starts_with("clusterrolebindings.rbac.authorization.k8s.io \"rb\" is forbidden:"),
        "{}",
        err.message
    );
}

mod http {
    use super::*;
    use crate::testing::{ALICE_TOKEN, TestServer};
    use axum::http::StatusCode;

    const RBAC: &str = "/apis/rbac.authorization.k8s.io/v1";

    async fn admin_post(s: &TestServer, path: &str, body: Value) {
        let (code, resp) = s.post(&format!("{RBAC}{path}"), body).await;
        assert_eq!(code, StatusCode::CREATED, "{path}: {resp}");
    }

    fn cluster_role(name: &str, rules: Value) -> Value {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name}, "rules": rules})
    }

    fn role_binding(name: &str, role: &str, user: &str) -> Value {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "User", "apiGroup": GROUP, "name": user}]})
    }

    /// alice may manage roles and bindings in `default` and read pods there.
    async fn server() -> TestServer {
        let s = TestServer::new().await;
        admin_post(
            &s,
            "/clusterroles",
            cluster_role(
                "rbac-manager",
                json!([{"verbs": ["create", "update", "patch", "get"], "apiGroups": [GROUP], "resources": ["roles", "rolebindings"]},
                       {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]),
            ),
        )
        .await;
        admin_post(
            &s,
            "/clusterroles",
            cluster_role(
                "pod-writer",
                json!([{"verbs": ["*"], "apiGroups": [""], "resources": ["pods"]}]),
            ),
        )
        .await;
        admin_post(
            &s,
            "/namespaces/default/rolebindings",
            role_binding("alice", "rbac-manager", "alice"),
        )
        .await;
        s
    }

    async fn alice_post(s: &TestServer, path: &str, body: Value) -> (StatusCode, Value) {
        s.request_as(Some(ALICE_TOKEN), "POST", &format!("{RBAC}{path}"), Some(body))
            .await
    }

    #[tokio::test]
    async fn binding_needs_the_rules_or_bind() {
        let s = server().await;
        let (code, body) = alice_post(
            &s,
            "/namespaces/default/rolebindings",
            role_binding("w", "pod-writer", "bob"),
        )
        .await;
        assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(
            body["message"],
            "rolebindings.rbac.authorization.k8s.io \"w\" is forbidden: user \"alice\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"*\"]}"
        );
        assert_eq!(body["reason"], "Forbidden");
        assert_eq!(body["details"]["kind"], "rolebindings");
        // Binding what she holds is fine.
        admin_post(
            &s,
            "/clusterroles",
            cluster_role(
                "pod-reader",
                json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]),
            ),
        )
        .await;
        let (code, body) = alice_post(
            &s,
            "/namespaces/default/rolebindings",
            role_binding("r", "pod-reader", "bob"),
        )
        .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
        // With `bind` on pod-writer (created just before), she may bind it.
        admin_post(
            &s,
            "/clusterroles",
            cluster_role(
                "bind-pod-writer",
                json!([{"verbs": ["bind"], "apiGroups": [GROUP], "resources": ["clusterroles"], "resourceNames": ["pod-writer"]}]),
            ),
        )
        .await;
        admin_post(
            &s,
            "/namespaces/default/rolebindings",
            role_binding("alice-bind", "bind-pod-writer", "alice"),
        )
        .await;
        let (code, body) = alice_post(
            &s,
            "/namespaces/default/rolebindings",
            role_binding("w", "pod-writer", "bob"),
        )
        .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
        // A binding to a missing role is NotFound.
        let (code, body) = alice_post(
            &s,
            "/namespaces/default/rolebindings",
            role_binding("x", "missing", "bob"),
        )
        .await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(
            body["message"],
            "clusterroles.rbac.authorization.k8s.io \"missing\" not found"
        );
    }

    #[tokio::test]
    async fn roles_need_the_rules_or_escalate() {
        let s = server().await;
        let role = |verb: &str| {
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r"},
                "rules": [{"verbs": [verb], "apiGroups": [""], "resources": ["pods"]}]})
        };
        let (code, body) = alice_post(&s, "/namespaces/default/roles", role("list")).await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
        // Updating it to grant more (a merge patch) is refused too.
        let (code, body) = s
            .request_as(
                Some(ALICE_TOKEN),
                "PUT",
                &format!("{RBAC}/namespaces/default/roles/r"),
                Some(role("delete")),
            )
            .await;
        assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .ends_with("{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\"]}"),
            "{body}"
        );
        let (code, body) = alice_post(&s, "/namespaces/default/roles", role("create")).await;
        assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
        // `escalate` on roles lifts the check.
        admin_post(
            &s,
            "/clusterroles",
            cluster_role(
                "escalator",
                json!([{"verbs": ["escalate"], "apiGroups": [GROUP], "resources": ["roles"]}]),
            ),
        )
        .await;
        admin_post(
            &s,
            "/namespaces/default/rolebindings",
            role_binding("alice-esc", "escalator", "alice"),
        )
        .await;
        let (code, body) = alice_post(&s, "/namespaces/default/roles", role("create")).await;
        assert_eq!(code, StatusCode::CONFLICT, "{body}");
        let (code, body) = alice_post(
            &s,
            "/namespaces/default/roles",
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r2"},
                "rules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]}),
        )
        .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
        // The admin (system:masters) is never checked.
        let (code, body) = s
            .post(
                &format!("{RBAC}/clusterrolebindings"),
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "x"},
                    "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": "cluster-admin"},
                    "subjects": [{"kind": "User", "apiGroup": GROUP, "name": "bob"}]}),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
    }
}
