//! `certificates.k8s.io`: CertificateSigningRequest
//! (`pkg/apis/certificates/validation`, `pkg/registry/certificates`).
//!
//! The request must hold a PEM "CERTIFICATE REQUEST" whose signature
//! verifies; usages are known and unique; the signer name is a domain with
//! a path; conditions follow the Approved/Denied/Failed rules. The spec
//! never changes after create, and conditions get timestamps.

mod pem;

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::default_traits;
use crate::registry::object::{self, Object};
use crate::registry::store::UpdateTarget;
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::names::{DNS1123_LABEL_MAX, DNS1123_SUBDOMAIN_MAX, is_dns1123_label, is_dns1123_subdomain};
use crate::validation::{ErrorType, FieldError, FieldErrors, index};

/// The strategy of `resource` when it has its own.
pub fn strategy_for(resource: &str) -> Option<Arc<dyn Strategy>> {
    match resource {
        "certificatesigningrequests" => Some(Arc::new(CsrStrategy)),
        _ => None,
    }
}

#[derive(Debug, Default)]
pub struct CsrStrategy;

/// `allValidUsages`, sorted as `sets.List` returns them.
const USAGES: &[&str] = &[
    "any",
    "cert sign",
    "client auth",
    "code signing",
    "content commitment",
    "crl sign",
    "data encipherment",
    "decipher only",
    "digital signature",
    "email protection",
    "encipher only",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "key agreement",
    "key encipherment",
    "microsoft sgc",
    "netscape sgc",
    "ocsp signing",
    "s/mime",
    "server auth",
    "signing",
    "timestamping",
];

const LEGACY_SIGNER: &str = "kubernetes.io/legacy-unknown";

fn bytes_field(v: Option<&Value>) -> Option<Vec<u8>> {
    v.and_then(Value::as_str)
        .map(|s| STANDARD.decode(s).unwrap_or_default())
}

/// A `[]byte` as Go's `%#v` prints it.
fn go_bytes(b: Option<&[u8]>) -> String {
    match b {
        None => "[]byte(nil)".into(),
        Some(b) => {
            let items: Vec<String> = b.iter().map(|c| format!("{c:#x}")).collect();
            format!("[]byte{{{}}}", items.join(", "))
        }
    }
}

/// `validateCSR`: the PEM block, the DER and its signature.
fn csr_error(request: &[u8]) -> Option<String> {
    let block = pem::decode_first(request).filter(|b| b.kind == "CERTIFICATE REQUEST");
    let Some(block) = block else {
        return Some("PEM block type must be CERTIFICATE REQUEST".into());
    };
    let der = rustls_pki_types::CertificateSigningRequestDer::from(block.bytes);
    match rcgen::CertificateSigningRequestParams::from_der(&der) {
        Ok(_) => None,
        Err(rcgen::Error::CouldNotParseCertificationRequest) => Some("x509: malformed certificate request".into()),
        Err(rcgen::Error::InvalidCertificationRequestSignature) => Some("x509: ECDSA verification failure".into()),
        // Parsed and verified, but with something the parser does not model
        // (an extension or algorithm): Go accepts those.
        Err(_) => None,
    }
}

/// `ValidateSignerName`.
pub fn validate_signer_name(path: &str, signer: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    if signer.is_empty() {
        errs.push(FieldError::required(path, ""));
        return errs;
    }
    let segments: Vec<&str> = signer.split('/').collect();
    let [domain, name] = segments.as_slice() else {
        errs.push(FieldError::invalid(
            path,
            signer,
            "must be a fully qualified domain and path of the form 'example.com/signer-name'",
        ));
        return errs;
    };
    if domain.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(FieldError::too_long(path, DNS1123_SUBDOMAIN_MAX));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    for label in &labels {
        let problems = is_dns1123_label(label);
        if !problems.is_empty() {
            for m in problems {
                errs.push(FieldError::invalid(
                    path,
                    *domain,
                    format!("validating label \"{label}\": {m}"),
                ));
            }
            break;
        }
    }
    if labels.len() < 2 {
        errs.push(FieldError::invalid(
            path,
            *domain,
            "should be a domain with at least two segments separated by dots",
        ));
    }
    let max_path = DNS1123_SUBDOMAIN_MAX + DNS1123_LABEL_MAX + 1;
    if name.len() > max_path {
        errs.push(FieldError::too_long(path, max_path));
    }
    for m in is_dns1123_subdomain(name) {
        errs.push(FieldError::invalid(path, *name, m));
    }
    errs
}

fn conditions(obj: &Object) -> &[Value] {
    obj.get("status")
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn cond_str<'a>(c: &'a Value, k: &str) -> &'a str {
    c.get(k).and_then(Value::as_str).unwrap_or("")
}

/// The compatibility allowances of `getValidationOptions` (an old object
/// that already breaks a rule may keep breaking it).
#[derive(Debug, Default, Clone, Copy)]
struct Options {
    both_approved_and_denied: bool,
    legacy_signer: bool,
    duplicate_condition_types: bool,
    empty_condition_type: bool,
    arbitrary_certificate: bool,
    unknown_usages: bool,
    duplicate_usages: bool,
}

fn usages(obj: &Object) -> Vec<&str> {
    obj.get("spec")
        .and_then(|s| s.get("usages"))
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|u| u.as_str().unwrap_or("")).collect())
        .unwrap_or_default()
}

fn has_duplicates<'a>(items: impl Iterator<Item = &'a str>) -> bool {
    let mut seen = std::collections::HashSet::new();
    items.into_iter().any(|i| !seen.insert(i))
}

fn certificate(obj: &Object) -> Vec<u8> {
    bytes_field(obj.get("status").and_then(|s| s.get("certificate"))).unwrap_or_default()
}

fn options(new: &Object, old: Option<&Object>) -> Options {
    let Some(old) = old else {
        return Options::default();
    };
    let types = || conditions(old).iter().map(|c| cond_str(c, "type"));
    Options {
        both_approved_and_denied: types().any(|t| t == "Approved") && types().any(|t| t == "Denied"),
        legacy_signer: old
            .get("spec")
            .and_then(|s| s.get("signerName"))
            .and_then(Value::as_str)
            == Some(LEGACY_SIGNER),
        duplicate_condition_types: has_duplicates(types()),
        empty_condition_type: types().any(str::is_empty),
        arbitrary_certificate: certificate(new) == certificate(old) || certificate_error(&certificate(old)).is_some(),
        unknown_usages: usages(old).iter().any(|u| !USAGES.contains(u)),
        duplicate_usages: has_duplicates(usages(old).into_iter()),
    }
}

/// `validateCertificate`: only CERTIFICATE blocks, without headers.
fn certificate_error(data: &[u8]) -> Option<String> {
    if data.is_empty() {
        return None;
    }
    let blocks = pem::decode_all(data);
    if blocks.is_empty() {
        return Some("must contain at least one CERTIFICATE PEM block".into());
    }
    for b in blocks {
        if b.kind != "CERTIFICATE" {
            return Some(format!("only CERTIFICATE PEM blocks are allowed, found \"{}\"", b.kind));
        }
        if b.has_headers {
            return Some("no PEM block headers are permitted".into());
        }
    }
    None
}

/// `validateCertificateSigningRequest`.
fn validate_csr(obj: &Object, opts: Options) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let spec = obj.get("spec");
    let request = bytes_field(spec.and_then(|s| s.get("request")));
    if let Some(msg) = csr_error(request.as_deref().unwrap_or_default()) {
        errs.push(FieldError::new(
            ErrorType::Invalid,
            "spec.request",
            None,
            format!("{}: {msg}", go_bytes(request.as_deref())),
        ));
    }
    let usages = usages(obj);
    if usages.is_empty() {
        errs.push(FieldError::required("spec.usages", ""));
    }
    if !opts.unknown_usages {
        for (i, u) in usages.iter().enumerate() {
            if !USAGES.contains(u) {
                errs.push(FieldError::not_supported(index("spec.usages", i), *u, USAGES));
            }
        }
    }
    if !opts.duplicate_usages {
        let mut seen = std::collections::HashSet::new();
        for (i, u) in usages.iter().enumerate() {
            if !seen.insert(*u) {
                errs.push(FieldError::duplicate(index("spec.usages", i), *u));
            }
        }
    }
    let signer = spec
        .and_then(|s| s.get("signerName"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if !opts.legacy_signer && signer == LEGACY_SIGNER {
        errs.push(FieldError::invalid(
            "spec.signerName",
            signer,
            "the legacy signerName is not allowed via this API version",
        ));
    } else {
        errs.extend(validate_signer_name("spec.signerName", signer));
    }
    if let Some(secs) = spec.and_then(|s| s.get("expirationSeconds")).and_then(Value::as_i64)
        && secs < 600
    {
        errs.push(FieldError::invalid(
            "spec.expirationSeconds",
            secs,
            "may not specify a duration less than 600 seconds (10 minutes)",
        ));
    }
    validate_conditions(obj, opts, &mut errs);
    if !opts.arbitrary_certificate
        && let Some(msg) = certificate_error(&certificate(obj))
    {
        errs.push(FieldError::invalid("status.certificate", "<certificate data>", msg));
    }
    errs
}

/// `validateConditions`.
fn validate_conditions(obj: &Object, opts: Options, errs: &mut FieldErrors) {
    let path = "status.conditions";
    let (mut approved, mut denied) = (false, false);
    let mut seen = std::collections::HashSet::new();
    for (i, c) in conditions(obj).iter().enumerate() {
        let p = index(path, i);
        let (ty, status) = (cond_str(c, "type"), cond_str(c, "status"));
        if !opts.empty_condition_type && ty.is_empty() {
            errs.push(FieldError::required(format!("{p}.type"), ""));
        }
        let allowed: &[&str] = if matches!(ty, "Approved" | "Denied" | "Failed") {
            &["True"]
        } else {
            &["False", "True", "Unknown"]
        };
        if status.is_empty() {
            errs.push(FieldError::required(format!("{p}.status"), ""));
        } else if !allowed.contains(&status) {
            errs.push(FieldError::not_supported(format!("{p}.status"), status, allowed));
        }
        if !opts.both_approved_and_denied {
            let clash = match ty {
                "Approved" => {
                    approved = true;
                    denied
                }
                "Denied" => {
                    denied = true;
                    approved
                }
                _ => false,
            };
            if clash {
                errs.push(FieldError::invalid(
                    format!("{p}.type"),
                    ty,
                    "Approved and Denied conditions are mutually exclusive",
                ));
            }
        }
        if !opts.duplicate_condition_types && !seen.insert(ty) {
            errs.push(FieldError::duplicate(format!("{p}.type"), ty));
        }
    }
}

fn of_type<'a>(obj: &'a Object, ty: &str) -> Vec<&'a Value> {
    conditions(obj).iter().filter(|c| cond_str(c, "type") == ty).collect()
}

/// `validateCertificateSigningRequestUpdate` as the status subresource
/// runs it (Approved and Denied come only through `approval`, see
/// [`validate_approval_update`]; a main update keeps the stored status, so
/// its condition checks pass).
fn validate_update(new: &Object, old: &Object) -> FieldErrors {
    let mut errs = validate_csr(new, options(new, Some(old)));
    for ty in ["Approved", "Denied", "Failed"] {
        if of_type(new, ty).len() < of_type(old, ty).len() {
            errs.push(FieldError::forbidden(
                "status.conditions",
                format!("updates may not remove a condition of type \"{ty}\""),
            ));
        }
    }
    for ty in ["Approved", "Denied"] {
        let (n, o) = (of_type(new, ty), of_type(old, ty));
        if n.len() > o.len() {
            errs.push(FieldError::forbidden(
                "status.conditions",
                format!("updates may not add a condition of type \"{ty}\""),
            ));
        } else if n.len() == o.len() && n != o {
            errs.push(FieldError::forbidden(
                "status.conditions",
                format!("updates may not modify a condition of type \"{ty}\""),
            ));
        }
    }
    let (nc, oc) = (certificate(new), certificate(old));
    if nc != oc && !oc.is_empty() {
        errs.push(FieldError::forbidden(
            "status.certificate",
            "updates may not modify existing certificate content",
        ));
    }
    errs
}

/// `ValidateCertificateSigningRequestApprovalUpdate`: through the
/// `approval` subresource Approved and Denied may be added, but no
/// condition of a final type removed.
pub fn validate_approval_update(new: &Object, old: &Object) -> FieldErrors {
    let mut errs = validate_csr(new, options(new, Some(old)));
    for ty in ["Approved", "Denied", "Failed"] {
        if of_type(new, ty).len() < of_type(old, ty).len() {
            errs.push(FieldError::forbidden(
                "status.conditions",
                format!("updates may not remove a condition of type \"{ty}\""),
            ));
        }
    }
    errs
}

/// What `PrepareForCreate` records of the requester: `spec.username`,
/// `uid`, `groups` and `extra` are the authenticated user's, whatever the
/// request said (signers and approvers trust them).
pub fn set_requester(obj: &mut Object, user: &crate::authn::UserInfo) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    for k in ["username", "uid", "groups", "extra"] {
        spec.remove(k);
    }
    if !user.name.is_empty() {
        spec.insert("username".into(), json!(user.name));
    }
    if !user.uid.is_empty() {
        spec.insert("uid".into(), json!(user.uid));
    }
    if !user.groups.is_empty() {
        spec.insert("groups".into(), json!(user.groups));
    }
    if !user.extra.is_empty() {
        spec.insert("extra".into(), json!(user.extra));
    }
}

/// `populateConditionTimestamps`.
fn populate_condition_timestamps(new: &mut Object, old: &Object) {
    let now = object::now_rfc3339();
    let old_conditions = conditions(old).to_vec();
    let Some(Value::Array(conds)) = new.get_mut("status").and_then(|s| s.get_mut("conditions")) else {
        return;
    };
    for c in conds.iter_mut().filter_map(Value::as_object_mut) {
        let unset = |c: &serde_json::Map<String, Value>, k: &str| c.get(k).is_none_or(|v| v.is_null() || v == "");
        if unset(c, "lastUpdateTime") {
            c.insert("lastUpdateTime".into(), json!(now));
        }
        if unset(c, "lastTransitionTime") {
            let (ty, status) = (c.get("type").cloned(), c.get("status").cloned());
            let kept = old_conditions
                .iter()
                .find(|o| {
                    o.get("type").cloned() == ty
                        && o.get("status").cloned() == status
                        && o.get("lastTransitionTime").is_some_and(|t| !t.is_null() && t != "")
                })
                .and_then(|o| o.get("lastTransitionTime").cloned());
            c.insert("lastTransitionTime".into(), kept.unwrap_or_else(|| json!(now)));
        }
    }
}

impl Strategy for CsrStrategy {
    fn traits(&self) -> KindTraits {
        // Upstream accepts any name (`ValidateCertificateRequestName`);
        // a path segment is the widest rule the generic check has.
        KindTraits {
            name_rule: crate::validation::object_meta::NameRule::PathSegment,
            ..default_traits("certificates.k8s.io", "certificatesigningrequests")
        }
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_csr(obj, Options::default())
    }

    fn prepare_for_update(&self, new: &mut Object, old: &Object) {
        // The spec is fixed at create.
        match old.get("spec") {
            Some(spec) => {
                new.insert("spec".into(), spec.clone());
            }
            None => {
                new.remove("spec");
            }
        }
        populate_condition_timestamps(new, old);
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        validate_update(new, old)
    }

    fn validate_update_of(&self, target: UpdateTarget, new: &Object, old: &Object) -> FieldErrors {
        match target {
            UpdateTarget::Approval => validate_approval_update(new, old),
            _ => validate_update(new, old),
        }
    }
}

#[cfg(test)]
mod tests;
