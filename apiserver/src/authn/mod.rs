//! Authentication: who is making a request.
//!
//! Upstream's union of authenticators, in its order: a client certificate
//! signed by the cluster CA ([`x509`]), then a bearer token, tried against
//! the static token file ([`token_file`]), service-account JWTs
//! ([`service_account`]: bound tokens from the TokenRequest API and legacy
//! secret-based ones) and bootstrap tokens ([`bootstrap_token`]); a request
//! without credentials is `system:anonymous` in `system:unauthenticated`
//! (or a 401 with `--anonymous-auth=false`). Every authenticated user is in
//! `system:authenticated`. A token that no authenticator accepts, or a
//! certificate that does not verify with no token beside it, is a 401 that
//! never says why.

pub mod bootstrap_token;
pub mod getter;
pub mod openid;
pub mod options;
pub mod service_account;
pub mod token_file;
pub mod x509;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::HeaderValue;

pub use service_account::ServiceAccounts;
pub use token_file::{TokenFile, TokenFileError};
pub use x509::{ClientCertificate, X509Authenticator, subject_user};

/// An authenticated (or anonymous) user.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    /// Extra attributes (`authentication.kubernetes.io/pod-name`, ...).
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// The anonymous user.
    pub fn anonymous() -> Self {
        UserInfo {
            name: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
            ..Default::default()
        }
    }

    /// Adds `system:authenticated` unless the user already has it.
    pub fn authenticated(mut self) -> Self {
        if !self.groups.iter().any(|g| g == AUTHENTICATED) {
            self.groups.push(AUTHENTICATED.into());
        }
        self
    }
}

/// The group of every authenticated user.
pub const AUTHENTICATED: &str = "system:authenticated";

/// A token an authenticator accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenResponse {
    pub user: UserInfo,
    /// The audiences the token is valid for among those asked for (empty
    /// for tokens without audiences, like static and bootstrap tokens).
    pub audiences: Vec<String>,
}

/// What one token authenticator says about a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenOutcome {
    /// The token is valid.
    Authenticated(TokenResponse),
    /// The token is not one this authenticator handles.
    NotMine,
    /// The token is this authenticator's but invalid; the reason is for
    /// logs and TokenReview status, never for a 401's body.
    Invalid(String),
}

/// The union of authenticators the server runs.
pub struct Authenticator {
    pub token_file: TokenFile,
    pub service_accounts: Option<ServiceAccounts>,
    /// `--enable-bootstrap-token-auth`.
    pub bootstrap_tokens: Option<bootstrap_token::BootstrapTokens>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

/// Why a request is refused with 401 (never sent to the client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unauthorized(pub String);

impl Authenticator {
    /// An authenticator with only a token file.
    pub fn with_token_file(token_file: TokenFile) -> Self {
        Authenticator {
            token_file,
            service_accounts: None,
            bootstrap_tokens: None,
        }
    }

    /// Authenticates a bearer token against every token authenticator, like
    /// upstream's union: the first that accepts it wins; otherwise the
    /// errors of those that claimed it, or "invalid bearer token".
    /// `audiences` are the audiences asked for (default: the API server's).
    pub async fn authenticate_token(&self, token: &str, audiences: Option<&[String]>) -> Result<TokenResponse, String> {
        let mut errors = Vec::new();
        if let Some(user) = self.token_file.authenticate(token) {
            return Ok(TokenResponse {
                user,
                audiences: Vec::new(),
            });
        }
        let authenticated = |mut r: TokenResponse| {
            r.user = r.user.authenticated();
            Ok(r)
        };
        if let Some(sa) = &self.service_accounts {
            match sa.authenticate(token, audiences).await {
                TokenOutcome::Authenticated(r) => return authenticated(r),
                TokenOutcome::Invalid(why) => errors.push(why),
                TokenOutcome::NotMine => {}
            }
        }
        if let Some(bootstrap) = &self.bootstrap_tokens {
            match bootstrap.authenticate(token).await {
                TokenOutcome::Authenticated(r) => return authenticated(r),
                TokenOutcome::Invalid(why) => errors.push(why),
                TokenOutcome::NotMine => {}
            }
        }
        Err(match errors.len() {
            0 => "invalid bearer token".to_string(),
            1 => errors.remove(0),
            _ => format!("[{}]", errors.join(", ")),
        })
    }

    /// Authenticates a request from its connection's certificate and its
    /// `Authorization` header; without either it is the anonymous user if
    /// `anonymous` (`--anonymous-auth`).
    pub async fn authenticate_request(
        &self,
        cert: Option<&ClientCertificate>,
        authorization: Option<&HeaderValue>,
        anonymous: bool,
    ) -> Result<UserInfo, Unauthorized> {
        if let Some(ClientCertificate::Verified(user)) = cert {
            return Ok(user.clone());
        }
        match authorization.and_then(bearer_token) {
            Some(token) => match self.authenticate_token(token, None).await {
                Ok(r) => Ok(r.user),
                Err(why) => Err(Unauthorized(why)),
            },
            None if matches!(cert, Some(ClientCertificate::Invalid)) => {
                Err(Unauthorized("client certificate does not verify".into()))
            }
            None if anonymous => Ok(UserInfo::anonymous()),
            None => Err(Unauthorized("no credentials".into())),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header, like upstream's
/// bearer-token authenticator: the scheme is case-insensitive, anything
/// else (another scheme, an empty token) is no token at all.
pub fn bearer_token(value: &HeaderValue) -> Option<&str> {
    let value = value.to_str().ok()?.trim();
    let mut parts = value.splitn(3, ' ');
    let scheme = parts.next()?;
    let token = parts.next()?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The shared handle the router keeps.
pub type SharedAuthenticator = Arc<Authenticator>;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bearer_header_forms() {
        let check = |v: &str, want: Option<&str>| {
            assert_eq!(bearer_token(&HeaderValue::from_str(v).unwrap()), want, "{v:?}");
        };
        check("Bearer abc", Some("abc"));
        check("bearer abc", Some("abc"));
        check("BEARER abc extra", Some("abc"));
        check("  Bearer abc  ", Some("abc"));
        check("Bearer ", None);
        check("Bearer  abc", None);
        check("Basic dXNlcjpwYXNz", None);
        check("abc", None);
    }

    #[tokio::test]
    async fn union_order_and_anonymous() {
        let file = TokenFile::parse("t1,alice,1,devs\n").unwrap();
        let authn = Authenticator::with_token_file(file);
        let bearer = |t: &str| HeaderValue::from_str(&format!("Bearer {t}")).unwrap();
        let alice = authn
            .authenticate_request(None, Some(&bearer("t1")), true)
            .await
            .unwrap();
        assert_eq!((alice.name.as_str(), alice.groups.len()), ("alice", 2));
        assert!(
            authn
                .authenticate_request(None, Some(&bearer("nope")), true)
                .await
                .is_err()
        );
        assert_eq!(
            authn.authenticate_request(None, None, true).await.unwrap(),
            UserInfo::anonymous()
        );
        // Another scheme is no credential: anonymous, like upstream.
        let basic = HeaderValue::from_static("Basic dXNlcjpwYXNz");
        assert_eq!(
            authn.authenticate_request(None, Some(&basic), true).await.unwrap(),
            UserInfo::anonymous()
        );
        let invalid = ClientCertificate::Invalid;
        assert!(authn.authenticate_request(Some(&invalid), None, true).await.is_err());
        assert_eq!(
            authn
                .authenticate_request(Some(&invalid), Some(&bearer("t1")), true)
                .await
                .unwrap()
                .name,
            "alice"
        );
        assert!(authn.authenticate_request(None, None, false).await.is_err());
        assert_eq!(
            authn.authenticate_token("nope", None).await.unwrap_err(),
            "invalid bearer token"
        );
    }
}
