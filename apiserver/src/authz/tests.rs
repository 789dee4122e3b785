#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::*;
use crate::testing::{ALICE_TOKEN, BOB_TOKEN, TestServer};

fn attrs(user: &str, verb: &str, group: &str, resource: &str, sub: &str, ns: &str, name: &str) -> Attributes {
    Attributes {
        user: UserInfo {
            name: user.into(),
            ..Default::default()
        },
        verb: verb.into(),
        is_resource_request: true,
        api_group: group.into(),
        resource: resource.into(),
        subresource: sub.into(),
        namespace: ns.into(),
        name: name.into(),
        ..Default::default()
    }
}

#[test]
fn forbidden_messages_match_upstream() {
    let check = |a: Attributes, reason: &str, want: &str| assert_eq!(forbidden(&a, reason).message, want);
    check(
        attrs("alice", "list", "", "pods", "", "default", ""),
        "",
        r#"pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default""#,
    );
    check(
        attrs("alice", "get", "apps", "deployments", "scale", "ns", "web"),
        "",
        r#"deployments.apps "web" is forbidden: User "alice" cannot get resource "deployments/scale" in API group "apps" in the namespace "ns""#,
    );
    check(
        attrs("system:anonymous", "list", "", "nodes", "", "", ""),
        "",
        r#"nodes is forbidden: User "system:anonymous" cannot list resource "nodes" in API group "" at the cluster scope"#,
    );
    check(
        attrs("bob", "get", "", "pods", "", "c", "p"),
        "RBAC: role.rbac.authorization.k8s.io \"x\" not found",
        r#"pods "p" is forbidden: User "bob" cannot get resource "pods" in API group "" in the namespace "c": RBAC: role.rbac.authorization.k8s.io "x" not found"#,
    );
    let path = Attributes {
        user: UserInfo::anonymous(),
        verb: "get".into(),
        path: "/metrics<x>".into(),
        ..Default::default()
    };
    let e = forbidden(&path, "");
    assert_eq!(
        e.message,
        r#"forbidden: User "system:anonymous" cannot get path "/metrics&lt;x&gt;""#
    );
    assert_eq!(e.code, 403);
    assert_eq!(e.reason, "Forbidden");
}

#[test]
fn modes() {
    let m = |s: &[&str]| Mode::parse(&s.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(m(&["RBAC"]), Ok(Mode::Rbac));
    assert_eq!(m(&["Node", "RBAC"]), Ok(Mode::NodeRbac));
    assert_eq!(m(&["RBAC", "Node"]), Ok(Mode::NodeRbac));
    assert_eq!(m(&["Node", "RBAC", "AlwaysAllow"]), Ok(Mode::AlwaysAllow));
    assert_eq!(m(&["AlwaysAllow"]), Ok(Mode::AlwaysAllow));
    assert!(m(&["Webhook"]).is_err());
    assert!(m(&["Node"]).is_err());
}

async fn bind(s: &TestServer, ns: &str, name: &str, role: &str, subject: Value) {
    let (code, body) = s
        .post(
            &format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings"),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [subject]}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn a_user_bound_to_view_reads_but_cannot_write() {
    let s = TestServer::new().await;
    let pods = "/api/v1/namespaces/default/pods";
    let (code, body) = s.request_as(Some(ALICE_TOKEN), "GET", pods, None).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        body["message"],
        r#"pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default""#
    );
    assert_eq!(body["details"]["kind"], "pods");
    bind(
        &s,
        "default",
        "alice-view",
        "view",
        json!({"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}),
    )
    .await;
    let (code, body) = s.request_as(Some(ALICE_TOKEN), "GET", pods, None).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
    let (code, body) = s.request_as(Some(ALICE_TOKEN), "POST", pods, Some(pod.clone())).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        body["message"],
        r#"pods is forbidden: User "alice" cannot create resource "pods" in API group "" in the namespace "default""#
    );
    // view does not reach secrets, nor other namespaces.
    let (code, _) = s
        .request_as(Some(ALICE_TOKEN), "GET", "/api/v1/namespaces/default/secrets", None)
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (code, _) = s
        .request_as(Some(ALICE_TOKEN), "GET", "/api/v1/namespaces/kube-system/pods", None)
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    // A group binding to edit lets bob (in devs) create.
    bind(
        &s,
        "default",
        "devs-edit",
        "edit",
        json!({"kind": "Group", "name": "devs", "apiGroup": "rbac.authorization.k8s.io"}),
    )
    .await;
    let (code, body) = s.request_as(Some(BOB_TOKEN), "POST", pods, Some(pod)).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let (code, _) = s
        .request_as(Some(BOB_TOKEN), "GET", "/api/v1/namespaces/default/pods/p/log", None)
        .await;
    assert_ne!(code, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn anonymous_reaches_only_public_info_and_discovery() {
    let s = TestServer::new().await;
    for path in ["/version", "/healthz", "/livez", "/readyz"] {
        let (code, body) = s.request_as(None, "GET", path, None).await;
        assert_eq!(code, StatusCode::OK, "{path}: {body}");
    }
    // Upstream binds system:discovery to system:authenticated only.
    for path in ["/api", "/apis", "/api/v1", "/apis/apps/v1"] {
        let (code, _) = s.request_as(None, "GET", path, None).await;
        assert_eq!(code, StatusCode::FORBIDDEN, "{path}");
        let (code, body) = s.request_as(Some(ALICE_TOKEN), "GET", path, None).await;
        assert_eq!(code, StatusCode::OK, "{path}: {body}");
    }
    let (code, body) = s.request_as(None, "GET", "/api/v1/pods", None).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert_eq!(
        body["message"],
        r#"pods is forbidden: User "system:anonymous" cannot list resource "pods" in API group "" at the cluster scope"#
    );
    let (code, body) = s.request_as(None, "GET", "/metrics", None).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert_eq!(
        body["message"],
        r#"forbidden: User "system:anonymous" cannot get path "/metrics""#
    );
    // An unknown token is 401 without detail.
    let (code, body) = s.request_as(Some("nope"), "GET", "/version", None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert_eq!(body["message"], "Unauthorized");
}

#[tokio::test]
async fn bootstrap_policy_is_reconciled_without_overwriting_opt_outs() {
    let s = TestServer::new().await;
    let path = "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:discovery";
    let (code, role) = s.get(path).await;
    assert_eq!(code, StatusCode::OK, "{role}");
    assert_eq!(role["metadata"]["annotations"][policy::AUTOUPDATE], "true");
    let full = role["rules"].as_array().unwrap().len();
    // Removing a rule is undone by the next reconcile...
    let (code, body) = s
        .patch(
            path,
            "application/merge-patch+json",
            json!({"rules": [role["rules"][0]]}),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    policy::reconcile(s.registry()).await.unwrap();
    let (_, role) = s.get(path).await;
    assert_eq!(role["rules"].as_array().unwrap().len(), full);
    // ...unless autoupdate is "false".
    let (code, body) = s
        .patch(
            path,
            "application/merge-patch+json",
            json!({"metadata": {"annotations": {policy::AUTOUPDATE: "false"}}, "rules": [role["rules"][0]]}),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    policy::reconcile(s.registry()).await.unwrap();
    let (_, role) = s.get(path).await;
    assert_eq!(role["rules"].as_array().unwrap().len(), 1);
    for name in [
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:basic-user",
        "system:public-info-viewer",
        "system:node",
    ] {
        let (code, _) = s
            .get(&format!("/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}"))
            .await;
        assert_eq!(code, StatusCode::OK, "{name}");
    }
    let (code, _) = s
        .get("/apis/rbac.authorization.k8s.io/v1/namespaces/kube-system/rolebindings/system::leader-locking-kube-scheduler")
        .await;
    assert_eq!(code, StatusCode::OK);
}

#[tokio::test]
async fn access_reviews() {
    let s = TestServer::new().await;
    bind(
        &s,
        "default",
        "alice-view",
        "view",
        json!({"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}),
    )
    .await;
    let ssar = |verb: &str, resource: &str| {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"namespace": "default", "verb": verb, "resource": resource}}})
    };
    let path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
    let (code, body) = s
        .request_as(Some(ALICE_TOKEN), "POST", path, Some(ssar("list", "pods")))
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"]["allowed"], true);
    assert_eq!(
        body["status"]["reason"],
        r#"RBAC: allowed by RoleBinding "alice-view/default" of ClusterRole "view" to User "alice""#
    );
    assert_eq!(body["kind"], "SelfSubjectAccessReview");
    let (_, body) = s
        .request_as(Some(ALICE_TOKEN), "POST", path, Some(ssar("create", "pods")))
        .await;
    assert_eq!(body["status"]["allowed"], false);
    let (code, body) = s
        .request_as(Some(ALICE_TOKEN), "POST", path, Some(json!({"spec": {}})))
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // SubjectAccessReview about alice, by the admin; alice may not ask.
    let sar = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": "alice", "resourceAttributes": {"namespace": "default", "verb": "get", "resource": "pods"}}});
    let sar_path = "/apis/authorization.k8s.io/v1/subjectaccessreviews";
    let (code, body) = s.post(sar_path, sar.clone()).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"]["allowed"], true);
    let (code, _) = s
        .request_as(Some(ALICE_TOKEN), "POST", sar_path, Some(sar.clone()))
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (code, body) = s
        .post(
            "/apis/authorization.k8s.io/v1/namespaces/other/localsubjectaccessreviews",
            sar.clone(),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        body["details"]["causes"][0]["field"],
        "spec.resourceAttributes.namespace"
    );
    assert_eq!(
        body["details"]["causes"][0]["message"],
        "Invalid value: \"default\": must match metadata.namespace"
    );
    let (code, body) = s
        .post(
            "/apis/authorization.k8s.io/v1/namespaces/default/localsubjectaccessreviews",
            sar,
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"]["allowed"], true);
    let (code, body) = s
        .post(
            sar_path,
            json!({"spec": {"resourceAttributes": {"verb": "get"}, "nonResourceAttributes": {"verb": "get"}}}),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let fields: Vec<&Value> = body["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["field"])
        .collect();
    assert_eq!(fields, [&json!("spec.nonResourceAttributes"), &json!("spec.user")]);
    // Non-resource attributes.
    let (_, body) = s
        .request_as(
            None,
            "POST",
            path,
            Some(json!({"spec": {"nonResourceAttributes": {"verb": "get", "path": "/version"}}})),
        )
        .await;
    assert_eq!(
        body["status"]["allowed"],
        Value::Null,
        "anonymous may not create reviews: {body}"
    );
    // whoami.
    let (code, body) = s
        .request_as(
            Some(BOB_TOKEN),
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            Some(json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"]["userInfo"]["username"], "bob");
    assert_eq!(
        body["status"]["userInfo"]["groups"],
        json!(["devs", "system:authenticated"])
    );
    // Rules review.
    let (code, body) = s
        .request_as(
            Some(ALICE_TOKEN),
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
            Some(json!({"spec": {"namespace": "default"}})),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let rules = body["status"]["resourceRules"].as_array().unwrap();
    assert!(
        rules
            .iter()
            .any(|r| r["resources"].as_array().unwrap().contains(&json!("pods"))),
        "{body}"
    );
    assert_eq!(body["status"]["incomplete"], false);
}

#[tokio::test]
async fn cluster_roles_aggregate_into_view() {
    let s = TestServer::new().await;
    let task = aggregation::spawn(s.registry().clone());
    let (code, body) = s
        .post(
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": "widgets-view", "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
                "rules": [{"verbs": ["get"], "apiGroups": ["example.com"], "resources": ["widgets"]}]}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let has_widgets = |role: &Value| {
        role["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["resources"] == json!(["widgets"]))
    };
    // view, then edit (which aggregates view) and admin (which aggregates edit).
    for name in ["view", "edit", "admin"] {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let (_, role) = s
                .get(&format!("/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}"))
                .await;
            if has_widgets(&role) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{name} did not aggregate: {role}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    task.abort();
}

#[tokio::test]
async fn client_certificates_authenticate_before_tokens() {
    use crate::authn::ClientCertificate;
    use axum::body::Body;
    use axum::http::{Request, header};
    let s = TestServer::new().await;
    let send = |cert: ClientCertificate, token: &str| {
        let mut req = Request::builder()
            .uri("/api/v1/namespaces/default/configmaps")
            .header(header::AUTHORIZATION, token)
            .body(Body::empty())
            .unwrap();
        req.extensions_mut().insert(cert);
        s.send(req)
    };
    let carol = UserInfo {
        name: "carol".into(),
        groups: vec!["system:masters".into(), "system:authenticated".into()],
        ..Default::default()
    };
    // A verified certificate wins over a bad token.
    let resp = send(ClientCertificate::Verified(carol), "Bearer nope").await;
    assert_eq!(resp.status(), StatusCode::OK);
    // A certificate that does not verify is a 401 without other credentials...
    let resp = send(ClientCertificate::Invalid, "").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // ...and a valid token still authenticates over it.
    let resp = send(
        ClientCertificate::Invalid,
        &format!("Bearer {}", crate::testing::ADMIN_TOKEN),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn anonymous_auth_can_be_turned_off() {
    let mut s = TestServer::new().await;
    s.state.anonymous_auth = false;
    s.router = crate::routes::router(s.state.clone());
    let (code, body) = s.request_as(None, "GET", "/version", None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "{body}");
    let (code, _) = s.request_as(Some(ALICE_TOKEN), "GET", "/version", None).await;
    assert_eq!(code, StatusCode::OK);
}

#[test]
fn a_name_field_selector_names_the_object() {
    let check = |verb: &str, query: &str, want: &str| {
        let mut a = attrs("alice", verb, "", "configmaps", "", "ns", "");
        a.name_from_field_selector(Some(query));
        assert_eq!(a.name, want, "{verb} ?{query}");
    };
    check("list", "fieldSelector=metadata.name%3Dcfg", "cfg");
    check("watch", "watch=1&fieldSelector=metadata.name=cfg", "cfg");
    check("list", "fieldSelector=metadata.name!=cfg", "");
    check("list", "fieldSelector=metadata.namespace=x", "");
    check("list", "fieldSelector=metadata.name=..", "");
    check("create", "fieldSelector=metadata.name=cfg", "");
}

/// Waits (up to 10 s, the watch cache following storage) until alice's
/// `GET path` gets `want`.
async fn alice_gets(s: &TestServer, path: &str, want: StatusCode, when: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (code, body) = s.request_as(Some(ALICE_TOKEN), "GET", path, None).await;
        if code == want {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{when}: {code} {body}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn remembered_decisions_follow_role_binding_and_aggregation_changes() {
    let s = TestServer::new().await;
    let task = aggregation::spawn(s.registry().clone());
    let rbac = "/apis/rbac.authorization.k8s.io/v1";
    let pods = "/api/v1/namespaces/default/pods";
    // Each state is asked twice, the second answer coming from the cache.
    let twice = |when: &'static str, want: StatusCode| {
        let s = &s;
        async move {
            alice_gets(s, pods, want, when).await;
            alice_gets(s, pods, want, when).await;
        }
    };
    twice("before any binding", StatusCode::FORBIDDEN).await;
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "pod-reader"},
        "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]});
    let (code, body) = s.post(&format!("{rbac}/namespaces/default/roles"), role).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    twice("a role alone grants nothing", StatusCode::FORBIDDEN).await;
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "alice-reads"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
        "subjects": [{"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}]});
    let (code, body) = s
        .post(&format!("{rbac}/namespaces/default/rolebindings"), binding)
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    twice("after the binding's create", StatusCode::OK).await;
    let role_path = format!("{rbac}/namespaces/default/roles/pod-reader");
    let only_get = json!({"rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]});
    let (code, body) = s.patch(&role_path, "application/merge-patch+json", only_get).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    twice("after the role's update took list away", StatusCode::FORBIDDEN).await;
    let list_again = json!({"rules": [{"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]}]});
    let (code, body) = s.patch(&role_path, "application/merge-patch+json", list_again).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    twice("after the role's update gave list back", StatusCode::OK).await;
    let (code, body) = s
        .delete(&format!("{rbac}/namespaces/default/rolebindings/alice-reads"))
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    twice("after the binding's delete", StatusCode::FORBIDDEN).await;

    // A binding to an aggregated ClusterRole: its rules change when the
    // aggregation controller writes them.
    let aggregated = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "pods-agg"},
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"example.com/pods-agg": "true"}}]}});
    let (code, body) = s.post(&format!("{rbac}/clusterroles"), aggregated).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    bind(
        &s,
        "default",
        "alice-agg",
        "pods-agg",
        json!({"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}),
    )
    .await;
    twice("bound to an empty aggregate", StatusCode::FORBIDDEN).await;
    let part = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "pods-agg-list", "labels": {"example.com/pods-agg": "true"}},
        "rules": [{"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]}]});
    let (code, body) = s.post(&format!("{rbac}/clusterroles"), part).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    twice("after aggregation added list", StatusCode::OK).await;
    let (code, body) = s.delete(&format!("{rbac}/clusterroles/pods-agg-list")).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    twice("after aggregation took list away", StatusCode::FORBIDDEN).await;
    task.abort();
}
