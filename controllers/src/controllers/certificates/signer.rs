//! The CSR signing controller (upstream `pkg/controller/certificates/signer`,
//! `csrsigning`): for each approved, not failed, not yet issued request to
//! a signer it has a CA for, it checks the signer's rules and either
//! writes the certificate to `status.certificate` or adds the Failed
//! condition (reason `SignerValidationFailure`), both through the `status`
//! subresource. Without a CA (no `--cluster-signing-*` flags) it does
//! nothing, as upstream skips it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition, CertificateSigningRequestStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};

use super::authority::{self, CertificateAuthority, SigningPolicy};
use super::validation::{self, ValidationError};
use super::{FAILED, has_true_condition, is_approved, is_issued, request, usages};
use crate::error::{Error, is_not_found};
use crate::informer::{Change, Informer, object_key};
use crate::manager::ControllerContext;
use crate::runner::{Action, new_queue, run_workers};

/// Upstream's name.
pub const CONTROLLER_NAME: &str = "certificatesigningrequest-signing-controller";
/// Workers (upstream runs 5 per signer).
const WORKERS: usize = 5;

/// What the signer does with a request.
#[derive(Debug)]
pub enum Outcome {
    /// Not approved, denied, failed, issued, or not for a signer we run.
    Skip,
    /// The request breaks its signer's rules: add the Failed condition.
    Fail(ValidationError),
    /// The certificate to write (PEM).
    Issue(String),
}

/// The signing CAs by signer name, and the longest certificate duration.
pub struct Signers {
    by_name: HashMap<&'static str, Arc<CertificateAuthority>>,
    duration: Duration,
}

impl Signers {
    /// Loads every configured CA (one load per distinct file pair).
    pub fn load(settings: &super::Settings) -> Result<Self, authority::AuthorityError> {
        let mut loaded: HashMap<super::SigningFiles, Arc<CertificateAuthority>> = HashMap::new();
        let mut by_name = HashMap::new();
        for (name, files) in &settings.signers {
            let ca = match loaded.get(files) {
                Some(ca) => ca.clone(),
                None => {
                    let ca = Arc::new(CertificateAuthority::load(&files.cert_file, &files.key_file)?);
                    loaded.insert(files.clone(), ca.clone());
                    ca
                }
            };
            by_name.insert(*name, ca);
        }
        Ok(Signers {
            by_name,
            duration: settings.duration,
        })
    }

    /// Signers from CAs already loaded (tests).
    pub fn new(by_name: HashMap<&'static str, Arc<CertificateAuthority>>, duration: Duration) -> Self {
        Signers { by_name, duration }
    }

    /// `signer.handle` up to the write: what to do with `csr` at `now`.
    /// An `Err` is retried (an unreadable request or a signing failure).
    pub fn decide(&self, csr: &CertificateSigningRequest, now: Timestamp) -> Result<Outcome, Error> {
        if is_issued(csr) || !is_approved(csr) || has_true_condition(csr, FAILED) {
            return Ok(Outcome::Skip);
        }
        let Some(ca) = self.by_name.get(csr.spec.signer_name.as_str()) else {
            return Ok(Outcome::Skip);
        };
        let name = csr.metadata.name.as_deref().unwrap_or_default();
        let req = request::parse(&csr.spec.request.0)
            .map_err(|e| Error::other(format!("unable to parse csr \"{name}\": {e}")))?;
        let usages = usages(csr);
        match validation::check_for_signer(&req, &usages, &csr.spec.signer_name) {
            Err(e) => return Ok(Outcome::Fail(e)),
            Ok(false) => return Ok(Outcome::Skip),
            Ok(true) => {}
        }
        let ttl = authority::duration(self.duration, csr.spec.expiration_seconds);
        let policy = SigningPolicy::new(ttl, usages.iter().map(|u| u.to_string()).collect());
        let der = ca
            .sign(&req, &policy, now)
            .map_err(|e| Error::other(format!("error auto signing csr: {e}")))?;
        Ok(Outcome::Issue(authority::certificate_pem(&der)))
    }
}

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, Result<(), Error>> {
    run(ctx).boxed()
}

async fn run(ctx: ControllerContext) -> Result<(), Error> {
    let settings = &ctx.config.certificates;
    if settings.signers.is_empty() {
        tracing::info!(
            controller = CONTROLLER_NAME,
            "Skipping CSR signer controller because no csr cert/key was specified"
        );
        return Ok(());
    }
    let signers = Arc::new(Signers::load(settings).map_err(|e| Error::other(format!("loading the signing CA: {e}")))?);
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
        let signers = signers.clone();
        async move { sync(&client, &csrs, &signers, &key).await }
    })
    .await;
    Ok(())
}

async fn sync(
    client: &kube::Client,
    cache: &Informer<CertificateSigningRequest>,
    signers: &Signers,
    name: &str,
) -> Result<Action, Error> {
    let Some(csr) = cache.get("", name) else {
        return Ok(Action::Done);
    };
    let mut csr = (*csr).clone();
    let outcome = signers.decide(&csr, Timestamp::now())?;
    let status = csr.status.get_or_insert_with(CertificateSigningRequestStatus::default);
    match outcome {
        Outcome::Skip => return Ok(Action::Done),
        Outcome::Fail(e) => {
            tracing::info!(controller = CONTROLLER_NAME, csr = name, error = %e, "request fails its signer's rules");
            status
                .conditions
                .get_or_insert_with(Vec::new)
                .push(CertificateSigningRequestCondition {
                    type_: FAILED.into(),
                    status: "True".into(),
                    reason: Some("SignerValidationFailure".into()),
                    message: Some(e.to_string()),
                    last_update_time: Some(Time(Timestamp::now())),
                    last_transition_time: None,
                });
        }
        Outcome::Issue(pem) => {
            tracing::info!(controller = CONTROLLER_NAME, csr = name, signer = %csr.spec.signer_name, "issuing certificate");
            status.certificate = Some(ByteString(pem.into_bytes()));
        }
    }
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    match api.replace_status(name, &PostParams::default(), &csr).await {
        Ok(_) => Ok(Action::Done),
        Err(e) if is_not_found(&e) => Ok(Action::Done),
        Err(e) => Err(Error::other(format!("error updating status for csr: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::controllers::certificates::authority::tests::test_ca;
    use crate::controllers::certificates::request::tests::request_pem;
    use crate::controllers::certificates::{
        ALL_SIGNERS, KUBE_APISERVER_CLIENT_KUBELET_SIGNER, KUBE_APISERVER_CLIENT_SIGNER,
    };
    use base64::Engine;
    use serde_json::{Value, json};
    use x509_parser::prelude::{FromDer, X509Certificate};

    fn signers(duration: Duration) -> Signers {
        let (cert, key) = test_ca(2100);
        let ca = Arc::new(CertificateAuthority::from_pem(&cert, &key).unwrap());
        Signers::new(ALL_SIGNERS.iter().map(|s| (*s, ca.clone())).collect(), duration)
    }

    fn csr(
        signer: &str,
        request: &str,
        usages: &[&str],
        expiration: Option<i32>,
        conditions: Value,
    ) -> CertificateSigningRequest {
        serde_json::from_value(json!({
            "metadata": {"name": "req"},
            "spec": {
                "request": base64::engine::general_purpose::STANDARD.encode(request),
                "signerName": signer, "usages": usages, "expirationSeconds": expiration,
            },
            "status": {"conditions": conditions},
        }))
        .unwrap()
    }

    fn approved() -> Value {
        json!([{"type": "Approved", "status": "True", "reason": "R"}])
    }

    fn issued(o: Outcome) -> X509Certificate<'static> {
        let Outcome::Issue(pem) = o else {
            panic!("expected a certificate, got {o:?}")
        };
        let block = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap().1;
        let der: &'static [u8] = Box::leak(block.contents.into_boxed_slice());
        X509Certificate::from_der(der).unwrap().1
    }

    const KUBELET_USAGES: &[&str] = &["digital signature", "client auth"];

    #[test]
    fn issues_approved_kubelet_client_requests() {
        let s = signers(Duration::from_secs(8760 * 3600));
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let req = request_pem("system:node:n1", &["system:nodes"], vec![]);
        let c = csr(
            KUBE_APISERVER_CLIENT_KUBELET_SIGNER,
            &req,
            KUBELET_USAGES,
            None,
            approved(),
        );
        let cert = issued(s.decide(&c, now).unwrap());
        assert_eq!(cert.subject().to_string(), "O=system:nodes, CN=system:node:n1");
        let lifetime = cert.validity().not_after.timestamp() - now.as_second();
        assert_eq!(lifetime, 8760 * 3600 - 300);
        // expirationSeconds shortens it (short: not backdated at the end).
        let c = csr(
            KUBE_APISERVER_CLIENT_KUBELET_SIGNER,
            &req,
            KUBELET_USAGES,
            Some(3600),
            approved(),
        );
        let cert = issued(s.decide(&c, now).unwrap());
        assert_eq!(cert.validity().not_after.timestamp() - now.as_second(), 3600);
    }

    #[test]
    fn skips_what_is_not_ready_or_not_ours() {
        let s = signers(Duration::from_secs(3600));
        let now = Timestamp::now();
        let req = request_pem("alice", &["devs"], vec![]);
        let skip = |c: &CertificateSigningRequest| matches!(s.decide(c, now).unwrap(), Outcome::Skip);
        assert!(skip(&csr(
            KUBE_APISERVER_CLIENT_SIGNER,
            &req,
            &["client auth"],
            None,
            json!([])
        )));
        let denied = json!([{"type": "Denied", "status": "True"}]);
        assert!(skip(&csr(
            KUBE_APISERVER_CLIENT_SIGNER,
            &req,
            &["client auth"],
            None,
            denied
        )));
        let failed = json!([{"type": "Approved", "status": "True"}, {"type": "Failed", "status": "True"}]);
        assert!(skip(&csr(
            KUBE_APISERVER_CLIENT_SIGNER,
            &req,
            &["client auth"],
            None,
            failed
        )));
        assert!(skip(&csr("example.com/mine", &req, &["client auth"], None, approved())));
        let mut done = csr(KUBE_APISERVER_CLIENT_SIGNER, &req, &["client auth"], None, approved());
        done.status.as_mut().unwrap().certificate = Some(ByteString(b"x".to_vec()));
        assert!(skip(&done));
        // Only the signers with a CA are ours.
        let none = Signers::new(HashMap::new(), Duration::from_secs(3600));
        let c = csr(KUBE_APISERVER_CLIENT_SIGNER, &req, &["client auth"], None, approved());
        assert!(matches!(none.decide(&c, now).unwrap(), Outcome::Skip));
        assert!(matches!(s.decide(&c, now).unwrap(), Outcome::Issue(_)));
    }

    #[test]
    fn rule_breakers_fail_and_garbage_is_retried() {
        let s = signers(Duration::from_secs(3600));
        let now = Timestamp::now();
        let req = request_pem("alice", &["system:nodes"], vec![]);
        let c = csr(
            KUBE_APISERVER_CLIENT_KUBELET_SIGNER,
            &req,
            KUBELET_USAGES,
            None,
            approved(),
        );
        match s.decide(&c, now).unwrap() {
            Outcome::Fail(e) => assert_eq!(e.to_string(), "subject common name does not begin with system:node:"),
            o => panic!("expected Fail, got {o:?}"),
        }
        let c = csr(
            KUBE_APISERVER_CLIENT_SIGNER,
            "not a request",
            &["client auth"],
            None,
            approved(),
        );
        let err = s.decide(&c, now).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to parse csr \"req\": PEM block type must be CERTIFICATE REQUEST"
        );
    }
}
