#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use crate::testing::{ALICE_TOKEN, TestServer};
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

#[test]
fn targets_in_upstream_order() {
    let h = headers(&[
        ("Impersonate-Uid", "u-1"),
        ("Impersonate-Extra-Example.com%2Fscopes", "a"),
        ("Impersonate-Extra-Example.com%2Fscopes", "b"),
        ("Impersonate-Group", "devs"),
        ("Impersonate-Group", "ops"),
        ("Impersonate-User", "system:serviceaccount:ns:robot"),
    ]);
    assert_eq!(
        targets(&h).unwrap(),
        [
            Target::ServiceAccount {
                namespace: "ns".into(),
                name: "robot".into()
            },
            Target::Group("devs".into()),
            Target::Group("ops".into()),
            Target::Extra {
                key: "example.com/scopes".into(),
                value: "a".into()
            },
            Target::Extra {
                key: "example.com/scopes".into(),
                value: "b".into()
            },
            Target::Uid("u-1".into()),
        ]
    );
    // Invalid service-account names are plain users.
    for user in [
        "system:serviceaccount:ns",
        "system:serviceaccount:NS:x",
        "system:serviceaccount:a:b:c",
    ] {
        assert_eq!(
            targets(&headers(&[("Impersonate-User", user)])).unwrap(),
            [Target::User(user.into())]
        );
    }
    assert_eq!(targets(&HeaderMap::new()).unwrap(), []);
}

#[test]
fn parts_without_a_user_are_a_bad_request() {
    let err = targets(&headers(&[("Impersonate-Group", "devs"), ("Impersonate-Uid", "1")])).unwrap_err();
    assert_eq!(err.code, 400);
    assert_eq!(
        err.message,
        "requested [{Group  devs    } {UID  1  authentication.k8s.io/v1  }] without impersonating a user"
    );
    let err = targets(&headers(&[("Impersonate-Extra-Scopes", "x")])).unwrap_err();
    assert_eq!(
        err.message,
        "requested [{UserExtra  x  authentication.k8s.io/v1  scopes}] without impersonating a user"
    );
}

#[test]
fn impersonated_groups() {
    let user = |h: &[(&str, &str)]| {
        let h = headers(h);
        impersonated_user(&targets(&h).unwrap(), h.contains_key(GROUP))
    };
    let u = user(&[("Impersonate-User", "bob")]);
    assert_eq!(
        (u.name.as_str(), u.groups.as_slice()),
        ("bob", &["system:authenticated".to_string()][..])
    );
    let u = user(&[("Impersonate-User", "system:serviceaccount:ns:robot")]);
    assert_eq!(
        u.groups,
        [
            "system:serviceaccounts",
            "system:serviceaccounts:ns",
            "system:authenticated"
        ]
    );
    let u = user(&[
        ("Impersonate-User", "system:serviceaccount:ns:robot"),
        ("Impersonate-Group", "g"),
    ]);
    assert_eq!(u.groups, ["g", "system:authenticated"]);
    let u = user(&[
        ("Impersonate-User", "bob"),
        ("Impersonate-Group", "system:unauthenticated"),
    ]);
    assert_eq!(u.groups, ["system:unauthenticated"]);
    let u = user(&[("Impersonate-User", "system:anonymous")]);
    assert_eq!(u.groups, ["system:unauthenticated"]);
    let u = user(&[
        ("Impersonate-User", "bob"),
        ("Impersonate-Uid", "1234"),
        ("Impersonate-Extra-Scopes", "view"),
    ]);
    assert_eq!(u.uid, "1234");
    assert_eq!(u.extra.get("scopes").unwrap(), &["view".to_string()]);
}

async fn send_as(
    s: &TestServer,
    token: &str,
    method: &str,
    path: &str,
    h: &[(&str, &str)],
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut b = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json");
    for (k, v) in h {
        b = b.header(*k, *v);
    }
    let req = b
        .body(body.map(|v| Body::from(v.to_string())).unwrap_or_else(Body::empty))
        .unwrap();
    let resp = s.send(req).await;
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

const WHOAMI: &str = "/apis/authentication.k8s.io/v1/selfsubjectreviews";

fn whoami_body() -> Value {
    json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
}

#[tokio::test]
async fn http_impersonation_is_authorized_per_part() {
    let s = TestServer::new().await;
    let as_bob = [("Impersonate-User", "bob"), ("Impersonate-Group", "devs")];
    let (code, body) = send_as(&s, ALICE_TOKEN, "POST", WHOAMI, &as_bob, Some(whoami_body())).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        body["message"],
        "users \"bob\" is forbidden: User \"alice\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
    );
    // Allowed to impersonate bob, but not the group devs.
    let (code, body) = s
        .post(
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "impersonator"},
                "rules": [{"verbs": ["impersonate"], "apiGroups": [""], "resources": ["users"], "resourceNames": ["bob"]},
                          {"verbs": ["impersonate"], "apiGroups": [""], "resources": ["serviceaccounts"]},
                          {"verbs": ["impersonate"], "apiGroups": ["authentication.k8s.io"], "resources": ["uids", "userextras/scopes"]}]}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let (code, body) = s
        .post(
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "impersonator"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "impersonator"},
                "subjects": [{"kind": "User", "name": "alice"}]}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let (code, body) = send_as(&s, ALICE_TOKEN, "POST", WHOAMI, &as_bob, Some(whoami_body())).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        body["message"],
        "groups \"devs\" is forbidden: User \"alice\" cannot impersonate resource \"groups\" in API group \"\" at the cluster scope"
    );
    let (code, body) = send_as(
        &s,
        ALICE_TOKEN,
        "POST",
        WHOAMI,
        &[
            ("Impersonate-User", "bob"),
            ("Impersonate-Uid", "b-1"),
            ("Impersonate-Extra-Scopes", "x"),
        ],
        Some(whoami_body()),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"]["userInfo"]["username"], "bob");
    assert_eq!(body["status"]["userInfo"]["uid"], "b-1");
    assert_eq!(body["status"]["userInfo"]["groups"], json!(["system:authenticated"]));
    let (code, body) = send_as(
        &s,
        ALICE_TOKEN,
        "POST",
        WHOAMI,
        &[("Impersonate-User", "bob"), ("Impersonate-Extra-Other", "x")],
        Some(whoami_body()),
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        body["message"],
        "userextras.authentication.k8s.io \"x\" is forbidden: User \"alice\" cannot impersonate resource \"userextras/other\" in API group \"authentication.k8s.io\" at the cluster scope"
    );
    // Service accounts by namespace.
    let (code, body) = send_as(
        &s,
        ALICE_TOKEN,
        "POST",
        WHOAMI,
        &[("Impersonate-User", "system:serviceaccount:kube-system:robot")],
        Some(whoami_body()),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["status"]["userInfo"]["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:kube-system",
            "system:authenticated"
        ])
    );
    // Groups without a user.
    let (code, body) = send_as(
        &s,
        ALICE_TOKEN,
        "GET",
        "/api/v1/pods",
        &[("Impersonate-Group", "devs")],
        None,
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn http_requests_are_authorized_as_the_impersonated_user() {
    let s = TestServer::new().await;
    // The admin may impersonate anyone, and then has only their rights.
    let (code, body) = send_as(
        &s,
        crate::testing::ADMIN_TOKEN,
        "GET",
        "/api/v1/namespaces/default/pods",
        &[("Impersonate-User", "alice")],
        None,
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        body["message"],
        "pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
    );
    let (code, body) = send_as(
        &s,
        crate::testing::ADMIN_TOKEN,
        "GET",
        "/api/v1/namespaces/default/pods",
        &[("Impersonate-User", "alice"), ("Impersonate-Group", "system:masters")],
        None,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
}
