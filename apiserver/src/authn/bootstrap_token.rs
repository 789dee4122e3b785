//! Bootstrap tokens (`--enable-bootstrap-token-auth`): a token
//! `<id>.<secret>` (`[a-z0-9]{6}\.[a-z0-9]{16}`) is valid while the Secret
//! `kube-system/bootstrap-token-<id>` of type `bootstrap.kubernetes.io/token`
//! holds the same `token-id` and `token-secret`, is not expiring
//! (`expiration`, RFC 3339) and has `usage-bootstrap-authentication: true`.
//! The user is `system:bootstrap:<id>` in `system:bootstrappers` and the
//! secret's `auth-extra-groups`, sorted as upstream's set does.

use std::collections::BTreeSet;

use base64::Engine;
use serde_json::Value;

use super::getter::ObjectGetter;
use super::service_account::validate::constant_time_eq;
use super::{TokenOutcome, TokenResponse, UserInfo};
use crate::registry::object;

/// The type of bootstrap token Secrets.
pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
/// The group of every bootstrap token user.
pub const DEFAULT_GROUP: &str = "system:bootstrappers";

/// The bootstrap token authenticator.
#[derive(Debug, Clone)]
pub struct BootstrapTokens {
    getter: ObjectGetter,
}

/// Splits a token into id and secret when it has the bootstrap form.
pub fn parse_token(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.split_once('.')?;
    let ok = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (ok(id, 6) && ok(secret, 16)).then_some((id, secret))
}

/// Whether `group` may be an extra group (`system:bootstrappers:...`).
fn valid_group(group: &str) -> bool {
    let Some(rest) = group.strip_prefix("system:bootstrappers:") else {
        return false;
    };
    !rest.is_empty()
        && rest.len() <= 256
        && rest
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b':' || b == b'-')
        && rest
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

impl BootstrapTokens {
    pub fn new(getter: ObjectGetter) -> Self {
        BootstrapTokens { getter }
    }

    /// Authenticates `token` now.
    pub async fn authenticate(&self, token: &str) -> TokenOutcome {
        self.authenticate_at(token, super::service_account::now()).await
    }

    /// Authenticates `token` at time `now` (seconds since the epoch).
    pub async fn authenticate_at(&self, token: &str, now: i64) -> TokenOutcome {
        let Some((id, secret)) = parse_token(token) else {
            return TokenOutcome::NotMine;
        };
        let name = format!("bootstrap-token-{id}");
        let Some(obj) = self.getter.get("secrets", "kube-system", &name).await else {
            tracing::debug!(secret = %name, "no bootstrap token secret");
            return TokenOutcome::NotMine;
        };
        if !object::meta_str(&obj, "deletionTimestamp").is_empty()
            || obj.get("type").and_then(Value::as_str) != Some(SECRET_TYPE)
        {
            return TokenOutcome::NotMine;
        }
        let data = |key: &str| -> String {
            obj.get("data")
                .and_then(|d| d.get(key))
                .and_then(Value::as_str)
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        };
        if !constant_time_eq(data("token-secret").as_bytes(), secret.as_bytes()) || data("token-id") != id {
            return TokenOutcome::NotMine;
        }
        let expiration = data("expiration");
        if !expiration.is_empty() {
            let expired = time::OffsetDateTime::parse(&expiration, &time::format_description::well_known::Rfc3339)
                .map(|t| t.unix_timestamp() <= now)
                .unwrap_or(true);
            if expired {
                return TokenOutcome::NotMine;
            }
        }
        if data("usage-bootstrap-authentication") != "true" {
            return TokenOutcome::NotMine;
        }
        let mut groups = BTreeSet::from([DEFAULT_GROUP.to_string()]);
        for g in data("auth-extra-groups")
            .split(',')
            .map(str::trim)
            .filter(|g| !g.is_empty())
        {
            if !valid_group(g) {
                return TokenOutcome::Invalid(format!("bootstrap group {g:?} is invalid"));
            }
            groups.insert(g.to_string());
        }
        TokenOutcome::Authenticated(TokenResponse {
            user: UserInfo {
                name: format!("system:bootstrap:{id}"),
                groups: groups.into_iter().collect(),
                ..Default::default()
            },
            audiences: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::testing::TestServer;
    use serde_json::json;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn token_form() {
        assert_eq!(
            parse_token("abcdef.0123456789abcdef"),
            Some(("abcdef", "0123456789abcdef"))
        );
        for bad in [
            "abcdef0123456789abcdef",
            "ABCDEF.0123456789abcdef",
            "abcde.0123456789abcdef",
            "abcdef.0123456789abcde",
        ] {
            assert_eq!(parse_token(bad), None, "{bad}");
        }
        assert!(valid_group("system:bootstrappers:kubeadm:default-node-token"));
        for bad in [
            "system:bootstrappers:",
            "system:nodes",
            "system:bootstrappers:x-",
            "system:bootstrappers:A",
        ] {
            assert!(!valid_group(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn secrets_decide() {
        let server = TestServer::new().await;
        let tokens = BootstrapTokens::new(ObjectGetter::new(server.registry().clone()));
        let secret = |id: &str, extra: Value| {
            let mut data = json!({
                "token-id": b64(id),
                "token-secret": b64("0123456789abcdef"),
                "usage-bootstrap-authentication": b64("true"),
                "auth-extra-groups": b64("system:bootstrappers:kubeadm:default-node-token"),
            });
            for (k, v) in extra.as_object().unwrap() {
                data[k] = Value::String(b64(v.as_str().unwrap()));
            }
            json!({"apiVersion": "v1", "kind": "Secret", "type": SECRET_TYPE,
                "metadata": {"name": format!("bootstrap-token-{id}")}, "data": data})
        };
        let create = |body: Value| server.post("/api/v1/namespaces/kube-system/secrets", body);
        assert_eq!(create(secret("aaaaaa", json!({}))).await.0, 201);
        assert_eq!(
            create(secret("bbbbbb", json!({"expiration": "2020-01-01T00:00:00Z"})))
                .await
                .0,
            201
        );
        assert_eq!(
            create(secret("cccccc", json!({"usage-bootstrap-authentication": "false"})))
                .await
                .0,
            201
        );
        assert_eq!(
            create(secret("dddddd", json!({"auth-extra-groups": "system:nodes"})))
                .await
                .0,
            201
        );
        let TokenOutcome::Authenticated(r) = tokens.authenticate("aaaaaa.0123456789abcdef").await else {
            panic!("a valid bootstrap token is refused");
        };
        assert_eq!(r.user.name, "system:bootstrap:aaaaaa");
        assert_eq!(
            r.user.groups,
            [
                "system:bootstrappers",
                "system:bootstrappers:kubeadm:default-node-token"
            ]
        );
        for refused in [
            "aaaaaa.0123456789abcdee",
            "bbbbbb.0123456789abcdef",
            "cccccc.0123456789abcdef",
            "eeeeee.0123456789abcdef",
        ] {
            assert_eq!(tokens.authenticate(refused).await, TokenOutcome::NotMine, "{refused}");
        }
        assert!(matches!(
            tokens.authenticate("dddddd.0123456789abcdef").await,
            TokenOutcome::Invalid(_)
        ));
    }
}
