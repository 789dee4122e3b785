//! Bootstrap tokens (upstream's `pkg/controller/bootstrap`): Secrets
//! `kube-system/bootstrap-token-<id>` of type `bootstrap.kubernetes.io/token`.
//! The token cleaner deletes them once their `expiration` passed; the
//! bootstrap signer signs the `kube-public/cluster-info` ConfigMap's
//! kubeconfig with every token allowed to sign, so a joining node can
//! trust it knowing only its token (`kubeadm join --token`).

pub mod signer;
pub mod token_cleaner;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;

/// The Secret type of bootstrap tokens.
pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
/// The namespace holding bootstrap token Secrets.
pub const TOKEN_NAMESPACE: &str = "kube-system";
const NAME_PREFIX: &str = "bootstrap-token-";

/// Whether `secret` is a bootstrap token Secret in the token namespace.
pub fn is_token_secret(secret: &Secret) -> bool {
    secret.type_.as_deref() == Some(SECRET_TYPE) && secret.metadata.namespace.as_deref() == Some(TOKEN_NAMESPACE)
}

/// A data field as a string ("" if absent or not UTF-8).
pub fn data(secret: &Secret, key: &str) -> String {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .and_then(|v| std::str::from_utf8(&v.0).ok())
        .unwrap_or_default()
        .to_string()
}

/// Whether the token's `expiration` is over at `now`, and otherwise how
/// long it has left (`None`: it never expires). An unparseable
/// expiration counts as expired, as upstream.
pub fn expiration(secret: &Secret, now: Timestamp) -> Expiry {
    let raw = data(secret, "expiration");
    if raw.is_empty() {
        return Expiry::Never;
    }
    let Ok(at) = raw.parse::<Timestamp>() else {
        tracing::info!(secret = ?secret.metadata.name, expiration = %raw, "unparseable expiration; treating as expired");
        return Expiry::Expired;
    };
    if at <= now {
        return Expiry::Expired;
    }
    Expiry::In(now.duration_until(at).unsigned_abs())
}

/// When a bootstrap token expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// No `expiration` field.
    Never,
    /// The expiration passed (or cannot be read).
    Expired,
    /// Still valid for this long.
    In(std::time::Duration),
}

/// `(token-id, token-secret)` of a token Secret that may sign
/// `cluster-info`: well-formed, named for its ID, unexpired and with
/// `usage-bootstrap-signing: true`.
pub fn signing_token(secret: &Secret, now: Timestamp) -> Option<(String, String)> {
    let id = data(secret, "token-id");
    let token_secret = data(secret, "token-secret");
    let well_formed = id.len() == 6
        && token_secret.len() == 16
        && id
            .bytes()
            .chain(token_secret.bytes())
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !well_formed {
        return None;
    }
    if secret
        .metadata
        .name
        .as_deref()
        .and_then(|n| n.strip_prefix(NAME_PREFIX))
        != Some(id.as_str())
    {
        return None;
    }
    if expiration(secret, now) == Expiry::Expired || data(secret, "usage-bootstrap-signing") != "true" {
        return None;
    }
    Some((id, token_secret))
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use k8s_openapi::ByteString;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::collections::BTreeMap;

    pub fn token_secret(name: &str, fields: &[(&str, &str)]) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(TOKEN_NAMESPACE.into()),
                ..ObjectMeta::default()
            },
            type_: Some(SECRET_TYPE.into()),
            data: Some(
                fields
                    .iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Secret::default()
        }
    }

    #[test]
    fn expirations() {
        let now: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
        let s = |exp: &str| token_secret("bootstrap-token-abcdef", &[("expiration", exp)]);
        assert_eq!(expiration(&token_secret("x", &[]), now), Expiry::Never);
        assert_eq!(expiration(&s("2029-12-31T23:59:59Z"), now), Expiry::Expired);
        assert_eq!(expiration(&s("2030-01-01T00:00:00Z"), now), Expiry::Expired);
        assert_eq!(expiration(&s("not a time"), now), Expiry::Expired);
        assert_eq!(
            expiration(&s("2030-01-01T00:01:00Z"), now),
            Expiry::In(std::time::Duration::from_secs(60))
        );
    }

    #[test]
    fn signing_tokens() {
        let now: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
        let ok = [
            ("token-id", "abcdef"),
            ("token-secret", "0123456789abcdef"),
            ("usage-bootstrap-signing", "true"),
        ];
        let want = Some(("abcdef".to_string(), "0123456789abcdef".to_string()));
        assert_eq!(signing_token(&token_secret("bootstrap-token-abcdef", &ok), now), want);
        assert_eq!(signing_token(&token_secret("bootstrap-token-zzzzzz", &ok), now), None);
        let no_usage = &ok[..2];
        assert_eq!(
            signing_token(&token_secret("bootstrap-token-abcdef", no_usage), now),
            None
        );
        let mut expired = ok.to_vec();
        expired.push(("expiration", "2020-01-01T00:00:00Z"));
        assert_eq!(
            signing_token(&token_secret("bootstrap-token-abcdef", &expired), now),
            None
        );
        let short = [
            ("token-id", "abc"),
            ("token-secret", "0123456789abcdef"),
            ("usage-bootstrap-signing", "true"),
        ];
        assert_eq!(signing_token(&token_secret("bootstrap-token-abc", &short), now), None);
    }
}
