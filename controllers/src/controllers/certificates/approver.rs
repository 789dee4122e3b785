//! The CSR approving controller (upstream
//! `pkg/controller/certificates/approver`, `csrapproving`): a pending
//! request for `kubernetes.io/kube-apiserver-client-kubelet` that looks
//! like a node client certificate is approved when a SubjectAccessReview
//! says its requester may `create` `certificatesigningrequests/selfnodeclient`
//! (renewing its own certificate: the requester is the CN) or
//! `certificatesigningrequests/nodeclient` (bootstrap). Approval goes
//! through the `approval` subresource with reason `AutoApproved`.

use std::collections::BTreeMap;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition, CertificateSigningRequestStatus,
};
use kube::api::{Api, PostParams};

use super::request::ParsedRequest;
use super::{KUBE_APISERVER_CLIENT_KUBELET_SIGNER, approval, is_issued, request, usages, validation};
use crate::error::{Error, is_not_found};
use crate::informer::{Change, Informer, object_key};
use crate::manager::ControllerContext;
use crate::runner::{Action, new_queue, run_workers};

/// Upstream's name.
pub const CONTROLLER_NAME: &str = "certificatesigningrequest-approving-controller";
const WORKERS: usize = 5;

/// One kind of request the approver recognizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recognizer {
    /// The permission checked: `create certificatesigningrequests/<subresource>`.
    pub subresource: &'static str,
    /// The approval condition's message.
    pub message: &'static str,
}

/// A node renewing its own client certificate.
pub const SELF_NODE_CLIENT: Recognizer = Recognizer {
    subresource: "selfnodeclient",
    message: "Auto approving self kubelet client certificate after SubjectAccessReview.",
};
/// A node client certificate requested by someone else (bootstrap).
pub const NODE_CLIENT: Recognizer = Recognizer {
    subresource: "nodeclient",
    message: "Auto approving kubelet client certificate after SubjectAccessReview.",
};

fn is_node_client(csr: &CertificateSigningRequest, req: &ParsedRequest) -> bool {
    csr.spec.signer_name == KUBE_APISERVER_CLIENT_KUBELET_SIGNER && validation::is_kubelet_client(req, &usages(csr))
}

/// The recognizers that match `csr`, in the order they are tried.
pub fn recognize(csr: &CertificateSigningRequest, req: &ParsedRequest) -> Vec<Recognizer> {
    let mut out = Vec::new();
    if csr.spec.username.as_deref() == Some(req.common_name.as_str()) && is_node_client(csr, req) {
        out.push(SELF_NODE_CLIENT);
    }
    if is_node_client(csr, req) {
        out.push(NODE_CLIENT);
    }
    out
}

/// Whether the approver looks at `csr` at all: pending and not issued.
pub fn is_pending(csr: &CertificateSigningRequest) -> bool {
    let (approved, denied) = approval(csr);
    !is_issued(csr) && !approved && !denied
}

/// The review asking whether `csr`'s requester may use `recognizer`.
pub fn access_review(csr: &CertificateSigningRequest, recognizer: Recognizer) -> SubjectAccessReview {
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: csr.spec.username.clone(),
            uid: csr.spec.uid.clone(),
            groups: csr.spec.groups.clone(),
            extra: csr
                .spec
                .extra
                .clone()
                .map(|e| e.into_iter().collect::<BTreeMap<_, _>>()),
            resource_attributes: Some(ResourceAttributes {
                group: Some("certificates.k8s.io".into()),
                resource: Some("certificatesigningrequests".into()),
                verb: Some("create".into()),
                subresource: Some(recognizer.subresource.into()),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    }
}

/// `csr` with the AutoApproved condition added.
pub fn approved(mut csr: CertificateSigningRequest, recognizer: Recognizer) -> CertificateSigningRequest {
    csr.status
        .get_or_insert_with(CertificateSigningRequestStatus::default)
        .conditions
        .get_or_insert_with(Vec::new)
        .push(CertificateSigningRequestCondition {
            type_: super::APPROVED.into(),
            status: "True".into(),
            reason: Some("AutoApproved".into()),
            message: Some(recognizer.message.into()),
            last_update_time: None,
            last_transition_time: None,
        });
    csr
}

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, Result<(), Error>> {
    run(ctx).boxed()
}

async fn run(ctx: ControllerContext) -> Result<(), Error> {
    let queue = new_queue("certificate", &ctx.metrics);
    let csrs = ctx.informers.get::<CertificateSigningRequest>();
    let q = queue.clone();
    csrs.add_handler(move |change| match change {
        Change::Added(c) | Change::Updated { new: c, .. } | Change::Deleted(c) => q.add(object_key(c.as_ref())),
    });
    csrs.wait_synced().await;
    let client = ctx.client.clone();
    run_workers(CONTROLLER_NAME, queue, WORKERS, ctx.metrics.clone(), move |key| {
        let client = client.clone();
        let csrs = csrs.clone();
        async move { sync(&client, &csrs, &key).await }
    })
    .await;
    Ok(())
}

async fn sync(client: &kube::Client, cache: &Informer<CertificateSigningRequest>, name: &str) -> Result<Action, Error> {
    let Some(csr) = cache.get("", name) else {
        return Ok(Action::Done);
    };
    if !is_pending(&csr) {
        return Ok(Action::Done);
    }
    let req = request::parse(&csr.spec.request.0)
        .map_err(|e| Error::other(format!("unable to parse csr \"{name}\": {e}")))?;
    let reviews: Api<SubjectAccessReview> = Api::all(client.clone());
    let mut tried = Vec::new();
    for recognizer in recognize(&csr, &req) {
        tried.push(recognizer.subresource);
        let review = reviews
            .create(&PostParams::default(), &access_review(&csr, recognizer))
            .await?;
        if !review.status.is_some_and(|s| s.allowed) {
            continue;
        }
        tracing::info!(
            controller = CONTROLLER_NAME,
            csr = name,
            permission = recognizer.subresource,
            "auto-approving"
        );
        let api: Api<CertificateSigningRequest> = Api::all(client.clone());
        let update = approved((*csr).clone(), recognizer);
        return match api
            .replace_subresource("approval", name, &PostParams::default(), &update)
            .await
        {
            Ok(_) => Ok(Action::Done),
            Err(e) if is_not_found(&e) => Ok(Action::Done),
            Err(e) => Err(Error::other(format!("error updating approval for csr: {e}"))),
        };
    }
    if tried.is_empty() {
        return Ok(Action::Done);
    }
    // Retried with back-off, as upstream's ignorable error is: the
    // requester may be granted the permission later.
    Err(Error::other(format!(
        "recognized csr \"{name}\" as [{}] but subject access review was not approved",
        tried.join(" ")
    )))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::controllers::certificates::request::tests::request_pem;
    use base64::Engine;
    use serde_json::json;

    fn csr(username: &str, cn: &str, signer: &str, usages: &[&str]) -> (CertificateSigningRequest, ParsedRequest) {
        let pem = request_pem(cn, &["system:nodes"], vec![]);
        let csr: CertificateSigningRequest = serde_json::from_value(json!({
            "metadata": {"name": "node-csr-1"},
            "spec": {
                "request": base64::engine::general_purpose::STANDARD.encode(&pem),
                "signerName": signer, "usages": usages,
                "username": username, "uid": "u-1", "groups": ["system:bootstrappers", "system:authenticated"],
                "extra": {"k": ["v"]},
            },
        }))
        .unwrap();
        let req = request::parse(pem.as_bytes()).unwrap();
        (csr, req)
    }

    const USAGES: &[&str] = &["digital signature", "key encipherment", "client auth"];

    #[test]
    fn recognizes_bootstrap_and_self_renewal() {
        let (c, r) = csr(
            "system:bootstrap:abcdef",
            "system:node:n1",
            KUBE_APISERVER_CLIENT_KUBELET_SIGNER,
            USAGES,
        );
        assert_eq!(recognize(&c, &r), vec![NODE_CLIENT]);
        let (c, r) = csr(
            "system:node:n1",
            "system:node:n1",
            KUBE_APISERVER_CLIENT_KUBELET_SIGNER,
            USAGES,
        );
        assert_eq!(recognize(&c, &r), vec![SELF_NODE_CLIENT, NODE_CLIENT]);
        let (c, r) = csr(
            "system:node:n1",
            "system:node:n1",
            "kubernetes.io/kube-apiserver-client",
            USAGES,
        );
        assert_eq!(recognize(&c, &r), vec![]);
        let (c, r) = csr(
            "x",
            "system:node:n1",
            KUBE_APISERVER_CLIENT_KUBELET_SIGNER,
            &["client auth"],
        );
        assert_eq!(recognize(&c, &r), vec![]);
        let (c, r) = csr("x", "n1", KUBE_APISERVER_CLIENT_KUBELET_SIGNER, USAGES);
        assert_eq!(recognize(&c, &r), vec![]);
    }

    #[test]
    fn reviews_the_requester_and_approves_with_upstream_wording() {
        let (c, _) = csr(
            "system:bootstrap:abcdef",
            "system:node:n1",
            KUBE_APISERVER_CLIENT_KUBELET_SIGNER,
            USAGES,
        );
        let sar = serde_json::to_value(access_review(&c, NODE_CLIENT)).unwrap();
        assert_eq!(
            sar["spec"],
            json!({
                "user": "system:bootstrap:abcdef", "uid": "u-1",
                "groups": ["system:bootstrappers", "system:authenticated"], "extra": {"k": ["v"]},
                "resourceAttributes": {"group": "certificates.k8s.io", "resource": "certificatesigningrequests",
                    "verb": "create", "subresource": "nodeclient"},
            })
        );
        assert!(is_pending(&c));
        let a = approved(c, NODE_CLIENT);
        assert!(!is_pending(&a));
        let cond = &a.status.unwrap().conditions.unwrap()[0];
        assert_eq!(cond.type_, "Approved");
        assert_eq!(cond.reason.as_deref(), Some("AutoApproved"));
        assert_eq!(
            cond.message.as_deref(),
            Some("Auto approving kubelet client certificate after SubjectAccessReview.")
        );
    }
}
