//! Whether the objects a verified token names still exist: upstream's
//! bound-token and legacy-token validators. Errors are upstream's texts
//! (for TokenReview and logs; a 401 never shows them).

use base64::Engine;
use serde_json::Value;

use super::claims::{Claims, split_username};
use crate::authn::getter::ObjectGetter;
use crate::registry::object::{self, Object};

/// Objects deleted more than this long ago no longer back a token.
pub const LEEWAY_SECONDS: i64 = 60;

/// The label upstream's legacy-token cleaner sets on invalidated tokens.
const INVALID_SINCE_LABEL: &str = "kubernetes.io/legacy-token-invalid-since";

/// Who a valid token belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceAccountInfo {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub pod_name: String,
    pub pod_uid: String,
    pub node_name: String,
    pub node_uid: String,
    pub credential_id: String,
}

/// Whether `obj` has been deleting since before `now - leeway`.
fn deleted_before_leeway(obj: &Object, now: i64) -> bool {
    let ts = object::meta_str(obj, "deletionTimestamp");
    if ts.is_empty() {
        return false;
    }
    match time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339) {
        Ok(t) => t.unix_timestamp() < now - LEEWAY_SECONDS,
        Err(_) => true,
    }
}

/// Checks a bound token's service account, pod, secret and node.
pub async fn bound(getter: &ObjectGetter, claims: &Claims, now: i64) -> Result<ServiceAccountInfo, String> {
    let k = claims.kubernetes.clone().unwrap_or_default();
    let ns = &k.namespace;
    let sa_ref = &k.serviceaccount;
    let Some(sa) = getter.get("serviceaccounts", ns, &sa_ref.name).await else {
        return Err(format!("serviceaccounts {:?} not found", sa_ref.name));
    };
    if object::uid(&sa) != sa_ref.uid {
        return Err(format!(
            "service account UID ({}) does not match claim ({})",
            object::uid(&sa),
            sa_ref.uid
        ));
    }
    if deleted_before_leeway(&sa, now) {
        return Err(format!("service account {ns}/{} has been deleted", sa_ref.name));
    }
    let invalidated = || "service account token has been invalidated".to_string();
    if let Some(secret_ref) = &k.secret {
        let secret = getter
            .get("secrets", ns, &secret_ref.name)
            .await
            .ok_or_else(invalidated)?;
        if object::uid(&secret) != secret_ref.uid {
            return Err(format!(
                "secret UID ({}) does not match service account secret ref claim ({})",
                object::uid(&secret),
                secret_ref.uid
            ));
        }
        if deleted_before_leeway(&secret, now) {
            return Err(invalidated());
        }
    }
    let mut info = ServiceAccountInfo {
        namespace: ns.clone(),
        name: sa_ref.name.clone(),
        uid: sa_ref.uid.clone(),
        ..Default::default()
    };
    if let Some(pod_ref) = &k.pod {
        let pod = getter.get("pods", ns, &pod_ref.name).await.ok_or_else(invalidated)?;
        if object::uid(&pod) != pod_ref.uid {
            return Err(format!(
                "pod UID ({}) does not match service account pod ref claim ({})",
                object::uid(&pod),
                pod_ref.uid
            ));
        }
        if deleted_before_leeway(&pod, now) {
            return Err(invalidated());
        }
        info.pod_name = pod_ref.name.clone();
        info.pod_uid = pod_ref.uid.clone();
    }
    if let Some(node_ref) = &k.node {
        if k.pod.is_none() {
            let node = getter.get("nodes", "", &node_ref.name).await.ok_or_else(invalidated)?;
            if object::uid(&node) != node_ref.uid {
                return Err(format!(
                    "node UID ({}) does not match service account node ref claim ({})",
                    object::uid(&node),
                    node_ref.uid
                ));
            }
            if deleted_before_leeway(&node, now) {
                return Err(invalidated());
            }
        }
        info.node_name = node_ref.name.clone();
        info.node_uid = node_ref.uid.clone();
    }
    if !claims.jti.is_empty() {
        info.credential_id = format!("JTI={}", claims.jti);
    }
    Ok(info)
}

/// Checks a legacy token: its claims, the Secret still holding exactly
/// this token, and the service account.
pub async fn legacy(
    getter: &ObjectGetter,
    token: &str,
    claims: &Claims,
    now: i64,
) -> Result<ServiceAccountInfo, String> {
    let required = [
        (&claims.sub, "sub claim is missing"),
        (&claims.legacy_namespace, "namespace claim is missing"),
        (&claims.legacy_secret_name, "secretName claim is missing"),
        (
            &claims.legacy_service_account_name,
            "serviceAccountName claim is missing",
        ),
        (&claims.legacy_service_account_uid, "serviceAccountUID claim is missing"),
    ];
    if let Some((_, why)) = required.iter().find(|(v, _)| v.is_empty()) {
        return Err(why.to_string());
    }
    let ns = &claims.legacy_namespace;
    let name = &claims.legacy_service_account_name;
    if split_username(&claims.sub) != Some((ns.as_str(), name.as_str())) {
        return Err("sub claim is invalid".into());
    }
    let invalidated = || "token has been invalidated".to_string();
    let secret = getter
        .get("secrets", ns, &claims.legacy_secret_name)
        .await
        .ok_or_else(invalidated)?;
    if !object::meta_str(&secret, "deletionTimestamp").is_empty() {
        return Err(invalidated());
    }
    let stored = secret
        .get("data")
        .and_then(|d| d.get("token"))
        .and_then(Value::as_str)
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .unwrap_or_default();
    if !constant_time_eq(&stored, token.as_bytes()) {
        return Err("token does not match server's copy".into());
    }
    let Some(sa) = getter.get("serviceaccounts", ns, name).await else {
        return Err(format!("serviceaccounts {name:?} not found"));
    };
    if !object::meta_str(&sa, "deletionTimestamp").is_empty() {
        return Err(format!("service account {ns}/{name} has been deleted"));
    }
    if object::uid(&sa) != claims.legacy_service_account_uid {
        return Err(format!(
            "service account UID ({}) does not match claim ({})",
            object::uid(&sa),
            claims.legacy_service_account_uid
        ));
    }
    if let Some(since) = object::labels(&secret).get(INVALID_SINCE_LABEL) {
        let invalid_from = time::Date::parse(since, time::macros::format_description!("[year]-[month]-[day]"))
            .map(|d| d.midnight().assume_utc().unix_timestamp())
            .unwrap_or(i64::MIN);
        if now >= invalid_from {
            return Err(invalidated());
        }
    }
    Ok(ServiceAccountInfo {
        namespace: ns.clone(),
        name: name.clone(),
        uid: claims.legacy_service_account_uid.clone(),
        ..Default::default()
    })
}

/// Compares secrets without leaking where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
