//! Authentication flags, named as kube-apiserver's: the service-account
//! token flags, `--api-audiences` and `--enable-bootstrap-token-auth`, and
//! [`build`], which turns them into the server's [`Authenticator`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::getter::ObjectGetter;
use super::service_account::keys::{self, KeyError};
use super::service_account::{DEFAULT_ISSUER, ServiceAccounts, Settings};
use super::{Authenticator, TokenFile, bootstrap_token::BootstrapTokens, openid};
use crate::registry::Registry;

/// Authentication flags (flattened into [`crate::options::Options`]).
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct AuthnOptions {
    /// Issuer of service-account tokens (repeatable: the first signs, all are accepted).
    #[arg(long = "service-account-issuer", default_value = DEFAULT_ISSUER)]
    pub service_account_issuers: Vec<String>,
    /// PEM files of keys that verify service-account tokens (repeatable).
    #[arg(long = "service-account-key-file")]
    pub service_account_key_files: Vec<PathBuf>,
    /// PEM private key service-account tokens are signed with (default: <data-dir>/pki/sa.key, created on first start).
    #[arg(long)]
    pub service_account_signing_key_file: Option<PathBuf>,
    /// Longest token a TokenRequest gets (0: no limit).
    #[arg(long, default_value = "0", value_parser = crate::options::parse_duration)]
    pub service_account_max_token_expiration: Duration,
    /// Extend the expiry of pod-bound tokens asking for 3607 seconds to a year, warning after the asked time.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub service_account_extend_token_expiration: bool,
    /// The jwks_uri of the discovery document (default: https://<bind-address>:<port>/openid/v1/jwks).
    #[arg(long)]
    pub service_account_jwks_uri: Option<String>,
    /// Audiences of the API, comma-separated (default: the first --service-account-issuer).
    #[arg(long, value_delimiter = ',')]
    pub api_audiences: Vec<String>,
    /// Authenticate bootstrap tokens (Secrets `kube-system/bootstrap-token-<id>`).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub enable_bootstrap_token_auth: bool,
}

impl Default for AuthnOptions {
    fn default() -> Self {
        AuthnOptions {
            service_account_issuers: vec![DEFAULT_ISSUER.into()],
            service_account_key_files: Vec::new(),
            service_account_signing_key_file: None,
            service_account_max_token_expiration: Duration::ZERO,
            service_account_extend_token_expiration: true,
            service_account_jwks_uri: None,
            api_audiences: Vec::new(),
            enable_bootstrap_token_auth: false,
        }
    }
}

impl AuthnOptions {
    /// The token settings; `external` is the server's `host:port`.
    pub fn settings(&self, external: &str) -> Settings {
        let api_audiences = if self.api_audiences.is_empty() {
            self.service_account_issuers.iter().take(1).cloned().collect()
        } else {
            self.api_audiences.clone()
        };
        Settings {
            issuers: self.service_account_issuers.clone(),
            api_audiences,
            max_expiration_seconds: self.service_account_max_token_expiration.as_secs() as i64,
            extend_expiration: self.service_account_extend_token_expiration,
            jwks_uri: self
                .service_account_jwks_uri
                .clone()
                .unwrap_or_else(|| format!("https://{external}{}", openid::JWKS_PATH)),
        }
    }
}

/// Why the authenticators could not be built.
#[derive(Debug, thiserror::Error)]
pub enum AuthnError {
    #[error("service-account key: {0}")]
    Key(#[from] KeyError),
    #[error("creating the service-account key: {0}")]
    Pki(#[from] crate::pki::PkiError),
}

/// The server's authenticators: `token_file`, service-account tokens
/// signed with the signing key (`pki_dir/sa.key` unless given) and verified
/// with it and the key files, and bootstrap tokens when enabled.
pub fn build(
    options: &AuthnOptions,
    token_file: TokenFile,
    registry: Arc<Registry>,
    pki_dir: &Path,
    external: &str,
) -> Result<Authenticator, AuthnError> {
    let signing_path = match &options.service_account_signing_key_file {
        Some(p) => p.clone(),
        None => crate::pki::service_account_key(pki_dir)?,
    };
    let signing = keys::load_signing_key(&signing_path)?;
    let mut extra = Vec::new();
    for path in &options.service_account_key_files {
        extra.extend(keys::load_public_keys(path)?);
    }
    let settings = options.settings(external);
    if let Some(why) = openid::unservable(settings.issuers.first().map(String::as_str).unwrap_or("")) {
        tracing::warn!(reason = %why, "not serving service-account issuer discovery");
    }
    let getter = ObjectGetter::new(registry);
    Ok(Authenticator {
        token_file,
        service_accounts: Some(ServiceAccounts::new(settings, signing, extra, getter.clone())),
        bootstrap_tokens: options
            .enable_bootstrap_token_auth
            .then(|| BootstrapTokens::new(getter)),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        authn: AuthnOptions,
    }

    fn parse(args: &[&str]) -> AuthnOptions {
        Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied()))
            .unwrap()
            .authn
    }

    #[test]
    fn defaults_are_upstreams() {
        let o = parse(&[]);
        assert_eq!(o, AuthnOptions::default());
        let s = o.settings("10.0.0.1:6443");
        assert_eq!(s.issuers, [DEFAULT_ISSUER]);
        assert_eq!(s.api_audiences, [DEFAULT_ISSUER]);
        assert_eq!(s.jwks_uri, "https://10.0.0.1:6443/openid/v1/jwks");
        assert!(s.extend_expiration);
    }

    #[test]
    fn flags() {
        let o = parse(&[
            "--service-account-issuer=https://a.example",
            "--service-account-issuer=https://b.example",
            "--api-audiences=x,y",
            "--service-account-max-token-expiration=48h",
            "--service-account-extend-token-expiration=false",
            "--enable-bootstrap-token-auth",
            "--service-account-key-file=/k1",
            "--service-account-key-file=/k2",
        ]);
        let s = o.settings("h:1");
        assert_eq!(s.issuers, ["https://a.example", "https://b.example"]);
        assert_eq!(s.api_audiences, ["x", "y"]);
        assert_eq!(s.max_expiration_seconds, 48 * 3600);
        assert!(!s.extend_expiration);
        assert!(o.enable_bootstrap_token_auth);
        assert_eq!(o.service_account_key_files.len(), 2);
        // Without --api-audiences, the first issuer.
        let o = parse(&["--service-account-issuer=https://a.example"]);
        assert_eq!(o.settings("h:1").api_audiences, ["https://a.example"]);
    }

    #[tokio::test]
    async fn build_creates_and_reuses_the_signing_key() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Arc::new(Registry::new(
            Arc::new(rkube_storage::memory::MemoryStore::new()),
            crate::resources::ResourceTable::builtin(),
        ));
        let options = AuthnOptions::default();
        let build_once = || build(&options, TokenFile::default(), registry.clone(), dir.path(), "h:1").unwrap();
        let first = build_once().service_accounts.unwrap().signing.public.kid;
        assert_eq!(build_once().service_accounts.unwrap().signing.public.kid, first);
        assert!(build_once().bootstrap_tokens.is_none());
        let missing = AuthnOptions {
            service_account_key_files: vec![dir.path().join("missing.pub")],
            ..AuthnOptions::default()
        };
        assert!(build(&missing, TokenFile::default(), registry.clone(), dir.path(), "h:1").is_err());
    }
}
