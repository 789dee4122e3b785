//! List continue tokens in kube-apiserver's wire format.
//!
//! A token is the unpadded URL-safe base64 of the JSON
//! `{"v":"meta.k8s.io/v1","rv":<revision>,"start":"<next key, relative to the prefix>"}`.
//! It pins the revision of the first page, so every page of one list is read
//! at the same revision; a token whose revision was compacted fails with
//! `Compacted` (the apiserver answers 410 Expired).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StorageError};
use crate::store::{ListOptions, ListResult, Revision, Store};

const TOKEN_VERSION: &str = "meta.k8s.io/v1";

#[derive(Serialize, Deserialize)]
struct Token {
    v: String,
    rv: Revision,
    start: String,
}

/// Encodes the token for the page starting at `next_key` (a key under
/// `prefix`) at `revision`.
pub fn encode(prefix: &str, next_key: &str, revision: Revision) -> String {
    let start = next_key.strip_prefix(prefix).unwrap_or(next_key);
    let token = Token {
        v: TOKEN_VERSION.to_string(),
        rv: revision,
        start: start.to_string(),
    };
    // Serialising a struct of strings and integers cannot fail.
    let json = serde_json::to_vec(&token).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// Decodes a token into the start key (under `prefix`) and the revision.
pub fn decode(prefix: &str, token: &str) -> Result<(String, Revision)> {
    let invalid = |why: &str| StorageError::InvalidArgument(format!("continue key is not valid: {why}"));
    let raw = URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| invalid("not base64"))?;
    let token: Token = serde_json::from_slice(&raw).map_err(|_| invalid("not a continue token"))?;
    if token.v != TOKEN_VERSION {
        return Err(invalid(&format!(
            "server does not recognize this encoded key version {:?}",
            token.v
        )));
    }
    if token.rv <= 0 {
        return Err(invalid(&format!(
            "incorrect encoded start resourceVersion (version {TOKEN_VERSION})"
        )));
    }
    if token.start.is_empty() {
        return Err(invalid(&format!("encoded start key empty (version {TOKEN_VERSION})")));
    }
    if token.start.split('/').any(|seg| seg == "..") || token.start.contains('\0') && !token.start.ends_with('\0') {
        return Err(invalid("start key must not escape the prefix"));
    }
    Ok((format!("{prefix}{}", token.start), token.rv))
}

/// One page of a paginated list: the items, the revision, the remaining count
/// and the continue token of the next page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub list: ListResult,
    pub continue_token: Option<String>,
}

/// Lists one page of `prefix`: the first page at `revision` (`None`: latest)
/// or, with a token, the page the token points to at the token's revision.
pub async fn list_page(
    store: &dyn Store,
    prefix: &str,
    limit: usize,
    revision: Option<Revision>,
    continue_token: Option<&str>,
) -> Result<Page> {
    let (start, revision) = match continue_token {
        Some(t) => {
            let (start, rv) = decode(prefix, t)?;
            (Some(start), Some(rv))
        }
        None => (None, revision),
    };
    let list = store.list(prefix, ListOptions { revision, limit, start }).await?;
    let continue_token = list.next_start().map(|next| encode(prefix, &next, list.revision));
    Ok(Page { list, continue_token })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = encode("/registry/pods/", "/registry/pods/ns/a\0", 42);
        assert_eq!(
            decode("/registry/pods/", &t).unwrap(),
            ("/registry/pods/ns/a\0".to_string(), 42)
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in ["", "!!!", "e30", "eyJ2IjoieCIsInJ2IjoxLCJzdGFydCI6ImEifQ", "\u{1F600}"] {
            assert!(
                matches!(decode("/p/", bad), Err(StorageError::InvalidArgument(_))),
                "{bad}"
            );
        }
        let escape = encode("/p/", "/p/../secrets/x", 3);
        assert!(decode("/p/", &escape).is_err());
    }
}
