#![allow(clippy::unwrap_used)]

use base64::Engine;
use serde_json::{Value, json};

use super::claims::{Claims, LEGACY_ISSUER};
use super::keys::{load_public_keys, load_signing_key};
use super::*;
use crate::authn::TokenOutcome;
use crate::testing::{ALICE_TOKEN, TestServer};

const NS: &str = "/api/v1/namespaces/default";

async fn server_with_robot() -> TestServer {
    let s = TestServer::new().await;
    let (code, body) = s
        .post(&format!("{NS}/serviceaccounts"), json!({"metadata": {"name": "robot"}}))
        .await;
    assert_eq!(code, 201, "{body}");
    s
}

fn sa(s: &TestServer) -> &ServiceAccounts {
    s.state.authn.service_accounts.as_ref().unwrap()
}

async fn request_token(s: &TestServer, spec: Value) -> (u16, Value) {
    let (code, body) = s
        .post(
            &format!("{NS}/serviceaccounts/robot/token"),
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}),
        )
        .await;
    (code.as_u16(), body)
}

async fn create_pod(s: &TestServer, name: &str, sa_name: &str) -> String {
    let (code, body) = s
        .post(
            &format!("{NS}/pods"),
            json!({"metadata": {"name": name}, "spec": {"serviceAccountName": sa_name,
                "containers": [{"name": "c", "image": "busybox"}]}}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    body["metadata"]["uid"].as_str().unwrap().to_string()
}

fn authenticated(outcome: TokenOutcome) -> crate::authn::TokenResponse {
    match outcome {
        TokenOutcome::Authenticated(r) => r,
        other => panic!("not authenticated: {other:?}"),
    }
}

fn invalid(outcome: TokenOutcome) -> String {
    match outcome {
        TokenOutcome::Invalid(why) => why,
        other => panic!("not refused: {other:?}"),
    }
}

#[tokio::test]
async fn token_request_issues_tokens_that_authenticate() {
    let s = server_with_robot().await;
    let (code, body) = request_token(&s, json!({})).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["kind"], "TokenRequest");
    assert_eq!(body["spec"]["expirationSeconds"], 3600);
    assert_eq!(body["spec"]["audiences"], json!([DEFAULT_ISSUER]));
    let token = body["status"]["token"].as_str().unwrap();
    let r = authenticated(sa(&s).authenticate(token, None).await);
    assert_eq!(r.user.name, "system:serviceaccount:default:robot");
    assert_eq!(
        r.user.groups,
        ["system:serviceaccounts", "system:serviceaccounts:default"]
    );
    assert!(r.user.extra[CREDENTIAL_ID_KEY][0].starts_with("JTI="));
    assert_eq!(r.audiences, [DEFAULT_ISSUER]);
    // The token works as a bearer token against the API, as the service
    // account (which RBAC does not let list secrets).
    let (code, review) = s
        .request_as(
            Some(token),
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            Some(json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})),
        )
        .await;
    assert_eq!(code, 201, "{review}");
    assert_eq!(
        review["status"]["userInfo"]["username"],
        "system:serviceaccount:default:robot"
    );
    assert!(review["status"]["userInfo"]["extra"][CREDENTIAL_ID_KEY].is_array());
    let (code, _) = s.request_as(Some(token), "GET", &format!("{NS}/secrets"), None).await;
    assert_eq!(code, 403);
    // The claims are upstream's.
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["sub"], "system:serviceaccount:default:robot");
    assert_eq!(claims["kubernetes.io"]["serviceaccount"]["name"], "robot");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 3600);
}

#[tokio::test]
async fn token_request_validation_is_upstreams() {
    let s = server_with_robot().await;
    let (code, body) = request_token(&s, json!({"expirationSeconds": 60})).await;
    assert_eq!(code, 422);
    assert_eq!(
        body["message"],
        "TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"
    );
    let (code, body) = s
        .post(&format!("{NS}/serviceaccounts/ghost/token"), json!({"spec": {}}))
        .await;
    assert_eq!(
        (code.as_u16(), body["message"].as_str().unwrap()),
        (404, "serviceaccounts \"ghost\" not found")
    );
    let (code, body) = request_token(
        &s,
        json!({"boundObjectRef": {"kind": "ConfigMap", "apiVersion": "v1", "name": "x"}}),
    )
    .await;
    assert_eq!(
        (code, body["message"].as_str().unwrap()),
        (400, "cannot bind token to object of type /v1, Kind=ConfigMap")
    );
    let (code, body) = request_token(
        &s,
        json!({"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "nope"}}),
    )
    .await;
    assert_eq!(
        (code, body["message"].as_str().unwrap()),
        (404, "pods \"nope\" not found")
    );
    create_pod(&s, "other", "default").await;
    let (code, body) = request_token(
        &s,
        json!({"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "other"}}),
    )
    .await;
    assert_eq!(
        (code, body["message"].as_str().unwrap()),
        (
            400,
            "cannot bind token for serviceaccount \"robot\" to pod running with different serviceaccount name."
        )
    );
    create_pod(&s, "mine", "robot").await;
    let (code, body) = request_token(
        &s,
        json!({"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "mine", "uid": "not-the-uid"}}),
    )
    .await;
    assert_eq!(code, 409);
    assert_eq!(
        body["message"],
        "Operation cannot be fulfilled on Pod \"mine\": the UID in the bound object reference (not-the-uid) does not match the UID in record. The object might have been deleted and then recreated"
    );
    // Only those allowed to create tokens may.
    let (code, _) = s
        .request_as(
            Some(ALICE_TOKEN),
            "POST",
            &format!("{NS}/serviceaccounts/robot/token"),
            Some(json!({"spec": {}})),
        )
        .await;
    assert_eq!(code, 403);
}

#[tokio::test]
async fn pod_bound_tokens_die_with_their_pod() {
    let s = server_with_robot().await;
    let uid = create_pod(&s, "mine", "robot").await;
    let (code, body) = request_token(
        &s,
        json!({"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "mine", "uid": uid}}),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let token = body["status"]["token"].as_str().unwrap().to_string();
    let r = authenticated(sa(&s).authenticate(&token, None).await);
    assert_eq!(r.user.extra[POD_NAME_KEY], ["mine"]);
    assert_eq!(r.user.extra[POD_UID_KEY], [uid.as_str()]);
    let (code, _) = s
        .request("DELETE", &format!("{NS}/pods/mine?gracePeriodSeconds=0"), None)
        .await;
    assert!(code.is_success());
    // Gone from storage; the cache may lag, storage decides on a miss.
    let mut why = String::new();
    for _ in 0..100 {
        match sa(&s).authenticate(&token, None).await {
            TokenOutcome::Invalid(w) => {
                why = w;
                break;
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
    assert_eq!(why, "service account token has been invalidated");
    let (code, _) = s.request_as(Some(&token), "GET", "/api", None).await;
    assert_eq!(code, 401);
}

#[tokio::test]
async fn expired_tampered_foreign_and_misaddressed_tokens_are_refused() {
    let s = server_with_robot().await;
    let (_, body) = request_token(&s, json!({"expirationSeconds": 600})).await;
    let token = body["status"]["token"].as_str().unwrap();
    let sa = sa(&s);
    let later = now() + 600 + LEEWAY + 1;
    assert_eq!(
        invalid(sa.authenticate_at(token, None, later).await),
        "service account token has expired"
    );
    assert!(matches!(
        sa.authenticate_at(token, None, now() + 600).await,
        TokenOutcome::Authenticated(_)
    ));
    assert_eq!(
        invalid(sa.authenticate_at(token, None, now() - 3600).await),
        "service account token is not valid yet"
    );
    // A changed payload no longer matches the signature.
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
    claims["sub"] = json!("system:serviceaccount:kube-system:admin");
    let forged = format!("{}.{}.{}", parts[0], B64.encode(claims.to_string()), parts[2]);
    assert_eq!(
        invalid(sa.authenticate(&forged, None).await),
        "square/go-jose: error in cryptographic primitive"
    );
    let (code, _) = s.request_as(Some(&forged), "GET", "/api", None).await;
    assert_eq!(code, 401);
    // Signed by a key this server does not know.
    let other = TestServer::new().await;
    let stranger = other.state.authn.service_accounts.as_ref().unwrap();
    let foreign = stranger.sign(&serde_json::from_value(claims).unwrap()).unwrap();
    assert!(matches!(
        sa.authenticate(&foreign, None).await,
        TokenOutcome::Invalid(_)
    ));
    // Another issuer's token is not ours; garbage is not a JWT.
    let mut c: Claims = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
    c.iss = "https://elsewhere".into();
    assert_eq!(
        sa.authenticate(&sa.sign(&c).unwrap(), None).await,
        TokenOutcome::NotMine
    );
    assert_eq!(sa.authenticate("not-a-jwt", None).await, TokenOutcome::NotMine);
    // Audiences must meet.
    let (_, body) = request_token(&s, json!({"audiences": ["vault"]})).await;
    let vault = body["status"]["token"].as_str().unwrap();
    assert_eq!(
        invalid(sa.authenticate(vault, None).await),
        format!("token audiences [\"vault\"] is invalid for the target audiences [\"{DEFAULT_ISSUER}\"]")
    );
    let r = authenticated(sa.authenticate(vault, Some(&["vault".to_string()])).await);
    assert_eq!(r.audiences, ["vault"]);
}

const LEEWAY: i64 = validate::LEEWAY_SECONDS;

#[tokio::test]
async fn legacy_secret_tokens_live_as_long_as_their_secret() {
    let s = server_with_robot().await;
    let (_, robot) = s.get(&format!("{NS}/serviceaccounts/robot")).await;
    let claims = Claims {
        iss: LEGACY_ISSUER.into(),
        sub: "system:serviceaccount:default:robot".into(),
        legacy_namespace: "default".into(),
        legacy_secret_name: "robot-token".into(),
        legacy_service_account_name: "robot".into(),
        legacy_service_account_uid: robot["metadata"]["uid"].as_str().unwrap().into(),
        ..Default::default()
    };
    let sa = sa(&s);
    let token = sa.sign(&claims).unwrap();
    assert_eq!(
        invalid(sa.authenticate(&token, None).await),
        "token has been invalidated"
    );
    let b64 = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
    let (code, body) = s
        .post(
            &format!("{NS}/secrets"),
            json!({"metadata": {"name": "robot-token", "annotations": {"kubernetes.io/service-account.name": "robot"}},
                "type": "kubernetes.io/service-account-token", "data": {"token": b64(&token)}}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let r = authenticated(sa.authenticate(&token, None).await);
    assert_eq!(r.user.name, "system:serviceaccount:default:robot");
    assert_eq!(r.audiences, [DEFAULT_ISSUER]);
    let (code, _) = s.request("DELETE", &format!("{NS}/secrets/robot-token"), None).await;
    assert!(code.is_success());
    assert!(matches!(sa.authenticate(&token, None).await, TokenOutcome::Invalid(_)));
}

#[tokio::test]
async fn rsa_and_p384_keys_from_files_sign_and_verify() {
    let s = TestServer::new().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/authn/service_account/testdata");
    for (key, public, alg) in [
        ("rsa-pkcs1.key", Some("rsa-pkcs1.pub"), "RS256"),
        ("rsa-pkcs8.key", Some("rsa.pub"), "RS256"),
        ("p256-sec1.key", Some("p256.pub"), "ES256"),
        ("p384-sec1.key", None, "ES384"),
    ] {
        let signing = load_signing_key(&dir.join(key)).unwrap();
        assert_eq!(signing.public.jwk["alg"], alg, "{key}");
        if let Some(public) = public {
            let keys = load_public_keys(&dir.join(public)).unwrap();
            assert_eq!(keys[0].kid, signing.public.kid, "{key} and {public}");
        }
        // A server signing with a key verifies with the key file's half.
        let verifier_keys = load_public_keys(&dir.join(public.unwrap_or(key))).unwrap();
        let sa = ServiceAccounts::new(
            Settings::default(),
            signing,
            Vec::new(),
            ObjectGetter::new(s.registry().clone()),
        );
        let claims = Claims {
            iss: DEFAULT_ISSUER.into(),
            sub: "x".into(),
            ..Default::default()
        };
        let token = sa.sign(&claims).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(verifier_keys[0].kid.as_str()));
        let data = jsonwebtoken::decode::<Claims>(&token, &verifier_keys[0].key, &{
            let mut v = Validation::new(header.alg);
            v.required_spec_claims.clear();
            v.validate_exp = false;
            v.validate_aud = false;
            v
        })
        .unwrap();
        assert_eq!(data.claims.sub, "x");
    }
}

#[tokio::test]
async fn token_review_reports_users_and_errors() {
    let s = server_with_robot().await;
    let review = |token: &str, audiences: Value| {
        s.post(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                "spec": {"token": token, "audiences": audiences}}),
        )
    };
    let (_, body) = request_token(&s, json!({})).await;
    let token = body["status"]["token"].as_str().unwrap().to_string();
    let (code, body) = review(&token, Value::Null).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["status"]["authenticated"], true);
    assert_eq!(
        body["status"]["user"]["username"],
        "system:serviceaccount:default:robot"
    );
    assert_eq!(
        body["status"]["user"]["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:default",
            "system:authenticated"
        ])
    );
    assert_eq!(body["status"]["audiences"], json!([DEFAULT_ISSUER]));
    let (_, body) = review(&token, json!(["vault"])).await;
    assert_eq!(body["status"].get("authenticated"), None);
    assert!(body["status"]["error"].as_str().unwrap().starts_with("token audiences"));
    let (_, body) = review("garbage", Value::Null).await;
    assert_eq!(body["status"]["error"], "invalid bearer token");
    let (code, body) = review("", Value::Null).await;
    assert_eq!(
        (code.as_u16(), body["message"].as_str().unwrap()),
        (400, "token is required for TokenReview in authentication")
    );
}

#[tokio::test]
async fn discovery_documents_describe_the_keys() {
    let s = TestServer::new().await;
    let (code, config) = s.get("/.well-known/openid-configuration").await;
    assert_eq!(code, 200, "{config}");
    assert_eq!(config["issuer"], DEFAULT_ISSUER);
    assert_eq!(config["jwks_uri"], "https://localhost:6443/openid/v1/jwks");
    assert_eq!(config["response_types_supported"], json!(["id_token"]));
    assert_eq!(config["subject_types_supported"], json!(["public"]));
    assert_eq!(config["id_token_signing_alg_values_supported"], json!(["ES256"]));
    let (code, jwks) = s.get("/openid/v1/jwks").await;
    assert_eq!(code, 200);
    let key = &jwks["keys"][0];
    assert_eq!(key["kid"].as_str().unwrap(), sa(&s).signing.public.kid);
    assert_eq!((key["use"].as_str(), key["kty"].as_str()), (Some("sig"), Some("EC")));
    // Upstream binds discovery to service accounts, not to everyone.
    let (code, _) = s.request_as(None, "GET", "/openid/v1/jwks", None).await;
    assert_eq!(code, 403);
}
