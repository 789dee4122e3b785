//! The claims of service-account tokens, as upstream writes them.
//!
//! Bound tokens (TokenRequest): `iss`, `sub`
//! (`system:serviceaccount:<ns>:<name>`), `aud`, `exp`, `iat`, `nbf`, `jti`
//! and the private `kubernetes.io` claim (namespace, service account, the
//! bound pod, secret or node, and `warnafter` for tokens whose expiry was
//! extended). Legacy tokens (the Secrets of type
//! `kubernetes.io/service-account-token`) have issuer
//! `kubernetes/serviceaccount`, no audience and no expiry, and four
//! `kubernetes.io/serviceaccount/...` claims.

use serde::{Deserialize, Deserializer, Serialize};

/// The issuer of legacy secret-based tokens.
pub const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";

/// A `{name, uid}` reference in the `kubernetes.io` claim.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ref {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
}

/// The private `kubernetes.io` claim.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesClaims {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Ref>,
    #[serde(default)]
    pub serviceaccount: Ref,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnafter: Option<i64>,
}

/// Every claim either kind of token may carry (fields in the order
/// upstream's encoder writes them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default)]
    pub iss: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jti: String,
    #[serde(rename = "kubernetes.io", default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesClaims>,
    #[serde(
        rename = "kubernetes.io/serviceaccount/namespace",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub legacy_namespace: String,
    #[serde(
        rename = "kubernetes.io/serviceaccount/secret.name",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub legacy_secret_name: String,
    #[serde(
        rename = "kubernetes.io/serviceaccount/service-account.name",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub legacy_service_account_name: String,
    #[serde(
        rename = "kubernetes.io/serviceaccount/service-account.uid",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub legacy_service_account_uid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default)]
    pub sub: String,
}

/// `aud` may be one string or a list.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// `system:serviceaccount:<namespace>:<name>`.
pub fn username(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// The namespace and name of a service-account username.
pub fn split_username(user: &str) -> Option<(&str, &str)> {
    let rest = user.strip_prefix("system:serviceaccount:")?;
    let (ns, name) = rest.split_once(':')?;
    (!ns.is_empty() && !name.is_empty() && !name.contains(':')).then_some((ns, name))
}

/// What a TokenRequest binds a token to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bound {
    pub pod: Option<Ref>,
    pub secret: Option<Ref>,
    /// The node of a bound pod, or a Node the token is bound to.
    pub node: Option<Ref>,
}

/// The claims of a bound token for service account `name` (`uid`) in
/// `namespace`, issued at `now` for `expiration_seconds` (and with
/// `warnafter` when the expiry was extended).
#[allow(clippy::too_many_arguments)]
pub fn bound_claims(
    issuer: &str,
    namespace: &str,
    name: &str,
    uid: &str,
    bound: Bound,
    audiences: Vec<String>,
    now: i64,
    expiration_seconds: i64,
    warn_after_seconds: Option<i64>,
) -> Claims {
    Claims {
        aud: audiences,
        exp: Some(now + expiration_seconds),
        iat: Some(now),
        nbf: Some(now),
        iss: issuer.to_string(),
        jti: crate::registry::object::new_uid(),
        sub: username(namespace, name),
        kubernetes: Some(KubernetesClaims {
            namespace: namespace.to_string(),
            serviceaccount: Ref {
                name: name.to_string(),
                uid: uid.to_string(),
            },
            pod: bound.pod,
            secret: bound.secret,
            node: bound.node,
            warnafter: warn_after_seconds.map(|w| now + w),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn bound_claims_are_upstreams() {
        let pod = Ref {
            name: "p".into(),
            uid: "pod-uid".into(),
        };
        let node = Ref {
            name: "n1".into(),
            uid: "node-uid".into(),
        };
        let c = bound_claims(
            "https://kubernetes.default.svc.cluster.local",
            "ns",
            "robot",
            "sa-uid",
            Bound {
                pod: Some(pod),
                secret: None,
                node: Some(node),
            },
            vec!["api".into()],
            1000,
            3600,
            None,
        );
        let mut v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["jti"].as_str().unwrap().len(), 36);
        v.as_object_mut().unwrap().remove("jti");
        assert_eq!(
            v,
            json!({
                "aud": ["api"], "exp": 4600, "iat": 1000, "nbf": 1000,
                "iss": "https://kubernetes.default.svc.cluster.local",
                "sub": "system:serviceaccount:ns:robot",
                "kubernetes.io": {
                    "namespace": "ns",
                    "serviceaccount": {"name": "robot", "uid": "sa-uid"},
                    "pod": {"name": "p", "uid": "pod-uid"},
                    "node": {"name": "n1", "uid": "node-uid"},
                }
            })
        );
    }

    #[test]
    fn audience_may_be_a_string_and_usernames_split() {
        let c: Claims = serde_json::from_value(json!({"aud": "one", "iss": "x", "sub": "y"})).unwrap();
        assert_eq!(c.aud, ["one"]);
        assert_eq!(split_username("system:serviceaccount:ns:sa"), Some(("ns", "sa")));
        for bad in [
            "system:serviceaccount:ns",
            "system:serviceaccount::sa",
            "alice",
            "system:serviceaccount:a:b:c",
        ] {
            assert_eq!(split_username(bad), None, "{bad}");
        }
    }
}
