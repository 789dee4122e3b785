#![allow(clippy::unwrap_used, clippy::expect_used)]
use axum::http::StatusCode;
use serde_json::json;

use super::*;
use crate::testing::TestServer;

const CSRS: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";

fn csr_pem() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["node1.example.com".to_string()]).unwrap();
    params.serialize_request(&key).unwrap().pem().unwrap()
}

fn obj(v: Value) -> Object {
    v.as_object().cloned().unwrap()
}

fn csr(request: &str, spec: Value) -> Object {
    let mut o = obj(json!({"metadata": {"name": "c"}, "spec": spec}));
    o["spec"]["request"] = json!(STANDARD.encode(request));
    o
}

fn messages(o: &Object) -> Vec<String> {
    CsrStrategy.validate(o).iter().map(ToString::to_string).collect()
}

#[test]
fn request_must_be_a_signed_csr() {
    let spec = json!({"signerName": "example.com/signer", "usages": ["client auth"]});
    assert_eq!(messages(&csr(&csr_pem(), spec.clone())), Vec::<String>::new());
    assert_eq!(
        messages(&csr("hi\n", spec.clone())),
        ["spec.request: Invalid value: []byte{0x68, 0x69, 0xa}: PEM block type must be CERTIFICATE REQUEST"]
    );
    // A flipped signature byte.
    let pem_text = csr_pem();
    let block = pem::decode_first(pem_text.as_bytes()).unwrap();
    let mut der = block.bytes.clone();
    let last = der.len() - 1;
    der[last] ^= 0xff;
    let tampered = format!(
        "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
        STANDARD.encode(&der)
    );
    let got = messages(&csr(&tampered, spec));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].ends_with(": x509: ECDSA verification failure"), "{got:?}");
}

#[test]
fn usages_and_signer_names() {
    let pem_text = csr_pem();
    let got = messages(&csr(
        &pem_text,
        json!({"signerName": "example/signer", "usages": ["client auth", "flying", "client auth"], "expirationSeconds": 60}),
    ));
    assert_eq!(
        got,
        [
            "spec.usages[1]: Unsupported value: \"flying\": supported values: \"any\", \"cert sign\", \"client auth\", \"code signing\", \"content commitment\", \"crl sign\", \"data encipherment\", \"decipher only\", \"digital signature\", \"email protection\", \"encipher only\", \"ipsec end system\", \"ipsec tunnel\", \"ipsec user\", \"key agreement\", \"key encipherment\", \"microsoft sgc\", \"netscape sgc\", \"ocsp signing\", \"s/mime\", \"server auth\", \"signing\", \"timestamping\"",
            "spec.usages[2]: Duplicate value: \"client auth\"",
            "spec.signerName: Invalid value: \"example\": should be a domain with at least two segments separated by dots",
            "spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 600 seconds (10 minutes)",
        ]
    );
    assert_eq!(
        messages(&csr(&pem_text, json!({"usages": ["any"]}))),
        ["spec.signerName: Required value"]
    );
    assert_eq!(
        messages(&csr(&pem_text, json!({"signerName": "nopath", "usages": ["any"]}))),
        [
            "spec.signerName: Invalid value: \"nopath\": must be a fully qualified domain and path of the form 'example.com/signer-name'"
        ]
    );
    assert_eq!(
        messages(&csr(&pem_text, json!({"signerName": LEGACY_SIGNER, "usages": ["any"]}))),
        [
            "spec.signerName: Invalid value: \"kubernetes.io/legacy-unknown\": the legacy signerName is not allowed via this API version"
        ]
    );
}

#[test]
fn condition_rules() {
    let base = csr(&csr_pem(), json!({"signerName": "example.com/s", "usages": ["any"]}));
    let with = |conds: Value| {
        let mut o = base.clone();
        o.insert("status".into(), json!({"conditions": conds}));
        o
    };
    let got = messages(&with(json!([
        {"type": "Approved", "status": "False"},
        {"type": "Denied", "status": "True"},
        {"type": "Denied", "status": "True"}
    ])));
    assert_eq!(
        got,
        [
            "status.conditions[0].status: Unsupported value: \"False\": supported values: \"True\"",
            "status.conditions[1].type: Invalid value: \"Denied\": Approved and Denied conditions are mutually exclusive",
            "status.conditions[2].type: Invalid value: \"Denied\": Approved and Denied conditions are mutually exclusive",
            "status.conditions[2].type: Duplicate value: \"Denied\"",
        ]
    );
    // A status update may add Failed, not Approved, and may not drop either.
    let old = with(json!([]));
    let mut failed = with(json!([{"type": "Failed", "status": "True"}]));
    CsrStrategy.prepare_for_update(&mut failed, &old);
    assert!(failed["status"]["conditions"][0]["lastTransitionTime"].is_string());
    assert!(CsrStrategy.validate_update(&failed, &old).is_empty());
    let approved = with(json!([{"type": "Approved", "status": "True"}]));
    assert_eq!(
        CsrStrategy.validate_update(&approved, &old).summary(),
        "status.conditions: Forbidden: updates may not add a condition of type \"Approved\""
    );
    assert_eq!(
        CsrStrategy.validate_update(&old, &failed).summary(),
        "status.conditions: Forbidden: updates may not remove a condition of type \"Failed\""
    );
}

#[tokio::test]
async fn created_over_http_and_spec_is_fixed() {
    let s = TestServer::new().await;
    let body = json!({"metadata": {"name": "node-csr"}, "spec": {
        "request": STANDARD.encode(csr_pem()), "signerName": "kubernetes.io/kube-apiserver-client", "usages": ["client auth"]}});
    let (code, created) = s.post(CSRS, body).await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    let mut changed = created.clone();
    changed["spec"]["usages"] = json!(["server auth"]);
    let (code, updated) = s.put(&format!("{CSRS}/node-csr"), changed).await;
    assert_eq!(code, StatusCode::OK, "{updated}");
    assert_eq!(updated["spec"]["usages"], json!(["client auth"]));
    let (code, status) = s
        .post(
            CSRS,
            json!({"metadata": {"name": "bad"}, "spec": {"request": STANDARD.encode("x"), "signerName": "a.b/c", "usages": ["any"]}}),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        status["message"],
        "CertificateSigningRequest.certificates.k8s.io \"bad\" is invalid: spec.request: Invalid value: []byte{0x78}: PEM block type must be CERTIFICATE REQUEST"
    );
}

/// `kubectl certificate approve|deny` update the `approval` subresource:
/// only conditions change there, and Approved comes only through it.
#[tokio::test]
async fn approval_subresource() {
    let s = TestServer::new().await;
    let body = json!({"metadata": {"name": "n"}, "spec": {
        "request": STANDARD.encode(csr_pem()), "signerName": "kubernetes.io/kube-apiserver-client", "usages": ["client auth"]}});
    let (code, created) = s.post(CSRS, body).await;
    assert_eq!(code, StatusCode::CREATED, "{created}");

    // Not through status.
    let mut approved = created.clone();
    approved["status"] = json!({"conditions": [{"type": "Approved", "status": "True", "reason": "KubectlApprove"}]});
    let (code, err) = s.put(&format!("{CSRS}/n/status"), approved.clone()).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{err}");

    // Through approval; other changes in the body are ignored.
    approved["metadata"]["labels"] = json!({"x": "y"});
    let (code, updated) = s.put(&format!("{CSRS}/n/approval"), approved).await;
    assert_eq!(code, StatusCode::OK, "{updated}");
    let cond = &updated["status"]["conditions"][0];
    assert_eq!(cond["type"], "Approved");
    assert!(cond["lastUpdateTime"].is_string(), "{cond}");
    assert!(updated["metadata"].get("labels").is_none());
    let (code, got) = s.get(&format!("{CSRS}/n/approval")).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(got["status"]["conditions"][0]["type"], "Approved");

    // Denied as well is refused; removing Approved too.
    let mut both = updated.clone();
    both["status"]["conditions"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "Denied", "status": "True"}));
    let (code, _) = s.put(&format!("{CSRS}/n/approval"), both).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    let mut removed = updated.clone();
    removed["status"]["conditions"] = json!([]);
    let (code, err) = s.put(&format!("{CSRS}/n/approval"), removed).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("updates may not remove a condition of type \"Approved\""),
        "{err}"
    );
}

/// `PrepareForCreate`: the requester recorded is the authenticated user,
/// not whatever the request claimed.
#[test]
fn requester_is_the_authenticated_user() {
    let mut o = csr(
        &csr_pem(),
        json!({"username": "admin", "groups": ["system:masters"], "uid": "forged"}),
    );
    let user = crate::authn::UserInfo {
        name: "system:bootstrap:abcdef".into(),
        uid: String::new(),
        groups: vec!["system:bootstrappers".into(), "system:authenticated".into()],
        extra: [("k".to_string(), vec!["v".to_string()])].into_iter().collect(),
    };
    set_requester(&mut o, &user);
    assert_eq!(o["spec"]["username"], "system:bootstrap:abcdef");
    assert_eq!(
        o["spec"]["groups"],
        json!(["system:bootstrappers", "system:authenticated"])
    );
    assert_eq!(o["spec"]["extra"], json!({"k": ["v"]}));
    assert!(o["spec"].get("uid").is_none());
}
