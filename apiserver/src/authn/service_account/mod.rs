//! Service-account tokens: signing bound tokens for the TokenRequest API
//! and authenticating bound and legacy tokens, like upstream's JWT token
//! authenticator.
//!
//! A token is this authenticator's when its (unverified) issuer is one of
//! `--service-account-issuer` or the legacy issuer; then its signature must
//! verify with one of the public keys, its time claims must hold (60 s of
//! leeway), its audiences must meet the ones asked for (the API server's
//! `--api-audiences` by default; legacy tokens have the API server's), and
//! the objects it names must still exist with the same UIDs
//! ([`validate`]). The user is `system:serviceaccount:<ns>:<name>` in
//! `system:serviceaccounts` and `system:serviceaccounts:<ns>`, with the
//! bound pod, node and token ID as extras.

pub mod claims;
pub mod keys;
pub mod validate;

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Header, Validation, errors::ErrorKind};

use super::getter::ObjectGetter;
use super::{TokenOutcome, TokenResponse, UserInfo};
use claims::{Claims, LEGACY_ISSUER};
use keys::{PublicKey, SigningKey};
use validate::ServiceAccountInfo;

/// Extra keys of service-account users.
pub const POD_NAME_KEY: &str = "authentication.kubernetes.io/pod-name";
pub const POD_UID_KEY: &str = "authentication.kubernetes.io/pod-uid";
pub const NODE_NAME_KEY: &str = "authentication.kubernetes.io/node-name";
pub const NODE_UID_KEY: &str = "authentication.kubernetes.io/node-uid";
pub const CREDENTIAL_ID_KEY: &str = "authentication.kubernetes.io/credential-id";

/// The group of every service account.
pub const ALL_SERVICE_ACCOUNTS: &str = "system:serviceaccounts";

/// The default `--service-account-issuer`.
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// Service-account token settings, from kube-apiserver's flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `--service-account-issuer`: the first signs, all are accepted.
    pub issuers: Vec<String>,
    /// `--api-audiences` (default: the first issuer).
    pub api_audiences: Vec<String>,
    /// `--service-account-max-token-expiration` in seconds (0: none).
    pub max_expiration_seconds: i64,
    /// `--service-account-extend-token-expiration`.
    pub extend_expiration: bool,
    /// `--service-account-jwks-uri` (default: this server's `/openid/v1/jwks`).
    pub jwks_uri: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            issuers: vec![DEFAULT_ISSUER.into()],
            api_audiences: vec![DEFAULT_ISSUER.into()],
            max_expiration_seconds: 0,
            extend_expiration: true,
            jwks_uri: String::new(),
        }
    }
}

/// Signs and authenticates service-account tokens.
pub struct ServiceAccounts {
    pub settings: Settings,
    pub signing: SigningKey,
    /// Every verification key (the signing key's first).
    pub keys: Vec<PublicKey>,
    getter: ObjectGetter,
}

impl std::fmt::Debug for ServiceAccounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccounts")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The seconds since the epoch.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl ServiceAccounts {
    /// Tokens signed with `signing`, verified with it and `extra_keys`.
    pub fn new(settings: Settings, signing: SigningKey, extra_keys: Vec<PublicKey>, getter: ObjectGetter) -> Self {
        let mut keys = vec![signing.public.clone()];
        for k in extra_keys {
            if !keys.iter().any(|have| have.kid == k.kid) {
                keys.push(k);
            }
        }
        ServiceAccounts {
            settings,
            signing,
            keys,
            getter,
        }
    }

    /// Tokens signed with a key made now and kept in memory (for servers
    /// built without a data directory, like the in-process test server).
    pub fn ephemeral(registry: std::sync::Arc<crate::registry::Registry>) -> Option<Self> {
        let pem = keys::generate_pem().ok()?;
        let signing = keys::signing_key_from_pem(&pem).ok()?;
        let settings = Settings {
            jwks_uri: format!("https://localhost:6443{}", super::openid::JWKS_PATH),
            ..Settings::default()
        };
        Some(Self::new(settings, signing, Vec::new(), ObjectGetter::new(registry)))
    }

    /// The issuer of new tokens.
    pub fn issuer(&self) -> &str {
        self.settings
            .issuers
            .first()
            .map(String::as_str)
            .unwrap_or(DEFAULT_ISSUER)
    }

    /// The object getter tokens are validated with.
    pub fn getter(&self) -> &ObjectGetter {
        &self.getter
    }

    /// Signs `claims` (header: `alg` and `kid`, as upstream).
    pub fn sign(&self, claims: &Claims) -> Result<String, String> {
        let header = Header {
            typ: None,
            kid: Some(self.signing.public.kid.clone()),
            ..Header::new(self.signing.public.alg)
        };
        jsonwebtoken::encode(&header, claims, &self.signing.key).map_err(|e| format!("failed to generate token: {e}"))
    }

    /// Authenticates a token; `audiences` are those asked for (default:
    /// the API server's).
    pub async fn authenticate(&self, token: &str, audiences: Option<&[String]>) -> TokenOutcome {
        self.authenticate_at(token, audiences, now()).await
    }

    /// [`ServiceAccounts::authenticate`] at time `now`.
    pub async fn authenticate_at(&self, token: &str, audiences: Option<&[String]>, now: i64) -> TokenOutcome {
        let Some(unverified) = unverified_claims(token) else {
            return TokenOutcome::NotMine;
        };
        let legacy = unverified.iss == LEGACY_ISSUER;
        if !legacy && !self.settings.issuers.contains(&unverified.iss) {
            return TokenOutcome::NotMine;
        }
        let Ok(header) = jsonwebtoken::decode_header(token) else {
            return TokenOutcome::NotMine;
        };
        let claims = match self.verify(token, &header, now) {
            Ok(c) => c,
            Err(why) => return TokenOutcome::Invalid(why),
        };
        let api = &self.settings.api_audiences;
        let token_audiences = if claims.aud.is_empty() { api } else { &claims.aud };
        let wanted = audiences.unwrap_or(api);
        let audiences: Vec<String> = token_audiences.iter().filter(|a| wanted.contains(a)).cloned().collect();
        if audiences.is_empty() && !api.is_empty() {
            return TokenOutcome::Invalid(format!(
                "token audiences {} is invalid for the target audiences {}",
                go_quoted(token_audiences),
                go_quoted(wanted)
            ));
        }
        let info = if legacy {
            validate::legacy(&self.getter, token, &claims, now).await
        } else {
            validate::bound(&self.getter, &claims, now).await
        };
        match info {
            Ok(info) => TokenOutcome::Authenticated(TokenResponse {
                user: user_info(&info),
                audiences,
            }),
            Err(why) => TokenOutcome::Invalid(why),
        }
    }

    /// Checks the signature with each candidate key, then the time claims.
    fn verify(&self, token: &str, header: &Header, now: i64) -> Result<Claims, String> {
        let by_kid: Vec<&PublicKey> = self
            .keys
            .iter()
            .filter(|k| header.kid.as_deref() == Some(k.kid.as_str()))
            .collect();
        let candidates = if by_kid.is_empty() {
            self.keys.iter().collect()
        } else {
            by_kid
        };
        let mut validation = Validation::new(header.alg);
        validation.required_spec_claims.clear();
        validation.validate_aud = false;
        // Time claims are checked below against `now`, as upstream does.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        for key in candidates.into_iter().filter(|k| k.alg == header.alg) {
            let claims = match jsonwebtoken::decode::<Claims>(token, &key.key, &validation) {
                Ok(data) => data.claims,
                Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm) => continue,
                Err(_) => return Err("service account token claims could not be validated".into()),
            };
            let leeway = validate::LEEWAY_SECONDS;
            if claims.exp.is_some_and(|exp| now > exp + leeway) {
                return Err("service account token has expired".into());
            }
            if claims.nbf.is_some_and(|nbf| now + leeway < nbf) {
                return Err("service account token is not valid yet".into());
            }
            if claims.iat.is_some_and(|iat| now + leeway < iat) {
                return Err("service account token is issued in the future".into());
            }
            return Ok(claims);
        }
        Err("square/go-jose: error in cryptographic primitive".into())
    }
}

/// The payload of a compact JWT, unverified (only to route the token).
fn unverified_claims(token: &str) -> Option<Claims> {
    let mut parts = token.split('.');
    let (_, payload, _, None) = (parts.next()?, parts.next()?, parts.next()?, parts.next()) else {
        return None;
    };
    serde_json::from_slice(&B64.decode(payload).ok()?).ok()
}

/// Go's `%q` of a string slice: `["a" "b"]`.
fn go_quoted(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(" "))
}

/// The user a service-account token authenticates as.
pub fn user_info(sa: &ServiceAccountInfo) -> UserInfo {
    let mut extra = BTreeMap::new();
    if !sa.pod_name.is_empty() && !sa.pod_uid.is_empty() {
        extra.insert(POD_NAME_KEY.to_string(), vec![sa.pod_name.clone()]);
        extra.insert(POD_UID_KEY.to_string(), vec![sa.pod_uid.clone()]);
    }
    if !sa.credential_id.is_empty() {
        extra.insert(CREDENTIAL_ID_KEY.to_string(), vec![sa.credential_id.clone()]);
    }
    if !sa.node_name.is_empty() {
        extra.insert(NODE_NAME_KEY.to_string(), vec![sa.node_name.clone()]);
        if !sa.node_uid.is_empty() {
            extra.insert(NODE_UID_KEY.to_string(), vec![sa.node_uid.clone()]);
        }
    }
    UserInfo {
        name: claims::username(&sa.namespace, &sa.name),
        uid: sa.uid.clone(),
        groups: vec![
            ALL_SERVICE_ACCOUNTS.to_string(),
            format!("{ALL_SERVICE_ACCOUNTS}:{}", sa.namespace),
        ],
        extra,
    }
}

#[cfg(test)]
mod tests;
