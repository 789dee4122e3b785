//! Impersonation (upstream's `WithImpersonation` filter): a request with
//! `Impersonate-User` (and optionally `Impersonate-Group`,
//! `Impersonate-Uid`, `Impersonate-Extra-<key>`) is served as that user
//! when the authenticated user may `impersonate` each part: `users`,
//! `groups` and a service account's `serviceaccounts` object in the core
//! group, `uids` and `userextras/<key>` in `authentication.k8s.io`.
//! `kubectl --as`, `--as-group` and `--as-uid` send these headers.
//!
//! The impersonated user gets `system:authenticated` unless its groups
//! name it or `system:unauthenticated` (the anonymous user gets
//! `system:unauthenticated`); a service account without groups asked for
//! gets its fixed groups. A refusal is upstream's 403; groups, extras or a
//! uid without a user are a 400. Runs after authentication and before
//! authorization, which then sees the impersonated user.

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::authn::UserInfo;
use crate::authz::{Attributes, Decision};
use crate::routes::AppState;
use crate::status::ApiError;

const USER: &str = "impersonate-user";
const GROUP: &str = "impersonate-group";
const UID: &str = "impersonate-uid";
const EXTRA_PREFIX: &str = "impersonate-extra-";
const AUTHENTICATION_GROUP: &str = "authentication.k8s.io";

const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";
const ANONYMOUS: &str = "system:anonymous";
const UNAUTHENTICATED: &str = "system:unauthenticated";

/// One thing a request asks to act as.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    User(String),
    ServiceAccount { namespace: String, name: String },
    Group(String),
    Extra { key: String, value: String },
    Uid(String),
}

impl Target {
    /// Go's `%v` of the `v1.ObjectReference` upstream builds (Kind,
    /// Namespace, Name, UID, APIVersion, ResourceVersion, FieldPath).
    fn go_value(&self) -> String {
        let fields: [&str; 7] = match self {
            Target::User(n) => ["User", "", n, "", "", "", ""],
            Target::ServiceAccount { namespace, name } => ["ServiceAccount", namespace, name, "", "", "", ""],
            Target::Group(n) => ["Group", "", n, "", "", "", ""],
            Target::Extra { key, value } => ["UserExtra", "", value, "", "authentication.k8s.io/v1", "", key],
            Target::Uid(u) => ["UID", "", u, "", "authentication.k8s.io/v1", "", ""],
        };
        format!("{{{}}}", fields.join(" "))
    }

    /// What the requestor must be allowed to do to act as this.
    fn attributes(&self, requestor: &UserInfo) -> Attributes {
        let (group, version, namespace, resource, subresource, name) = match self {
            Target::User(n) => ("", "v1", "", "users", "", n.as_str()),
            Target::ServiceAccount { namespace, name } => {
                ("", "v1", namespace.as_str(), "serviceaccounts", "", name.as_str())
            }
            Target::Group(n) => ("", "v1", "", "groups", "", n.as_str()),
            Target::Extra { key, value } => (
                AUTHENTICATION_GROUP,
                "v1",
                "",
                "userextras",
                key.as_str(),
                value.as_str(),
            ),
            Target::Uid(u) => (AUTHENTICATION_GROUP, "v1", "", "uids", "", u.as_str()),
        };
        Attributes {
            user: requestor.clone(),
            verb: "impersonate".into(),
            is_resource_request: true,
            namespace: namespace.into(),
            api_group: group.into(),
            api_version: version.into(),
            resource: resource.into(),
            subresource: subresource.into(),
            name: name.into(),
            ..Default::default()
        }
    }
}

/// Upstream's `serviceaccount.SplitUsername`: the namespace and name of a
/// service account's user name, when both are valid.
fn split_service_account(user: &str) -> Option<(String, String)> {
    let rest = user.strip_prefix(SERVICE_ACCOUNT_PREFIX)?;
    let (namespace, name) = rest.split_once(':')?;
    if name.contains(':')
        || !crate::validation::names::is_dns1123_label(namespace).is_empty()
        || !crate::validation::names::is_dns1123_subdomain(name).is_empty()
    {
        return None;
    }
    Some((namespace.to_string(), name.to_string()))
}

fn header_values<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = String> + 'a {
    headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// The impersonation requests of a request's headers, in upstream's
/// order (user, groups, extras, uid); a 400 when groups, extras or a uid
/// come without a user.
fn targets(headers: &HeaderMap) -> Result<Vec<Target>, ApiError> {
    let mut out = Vec::new();
    let user = header_values(headers, USER).next().filter(|u| !u.is_empty());
    if let Some(user) = &user {
        out.push(match split_service_account(user) {
            Some((namespace, name)) => Target::ServiceAccount { namespace, name },
            None => Target::User(user.clone()),
        });
    }
    out.extend(header_values(headers, GROUP).map(Target::Group));
    let extra_keys = headers.keys().filter_map(|k| k.as_str().strip_prefix(EXTRA_PREFIX));
    for raw in extra_keys {
        // Keys are percent-encoded so they can hold any character.
        let key = percent_decode(raw).unwrap_or_else(|| raw.to_string());
        for value in header_values(headers, &format!("{EXTRA_PREFIX}{raw}")) {
            out.push(Target::Extra {
                key: key.clone(),
                value,
            });
        }
    }
    if let Some(uid) = header_values(headers, UID).next().filter(|u| !u.is_empty()) {
        out.push(Target::Uid(uid));
    }
    if user.is_none() && !out.is_empty() {
        let listed: Vec<String> = out.iter().map(Target::go_value).collect();
        return Err(ApiError::bad_request(format!(
            "requested [{}] without impersonating a user",
            listed.join(" ")
        )));
    }
    Ok(out)
}

/// Go's `url.PathUnescape`; `None` for a malformed escape.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The user the targets describe (after each was authorized).
fn impersonated_user(targets: &[Target], groups_given: bool) -> UserInfo {
    let mut user = UserInfo::default();
    for t in targets {
        match t {
            Target::User(n) => user.name = n.clone(),
            Target::ServiceAccount { namespace, name } => {
                user.name = format!("{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}");
                if !groups_given {
                    user.groups = vec![
                        "system:serviceaccounts".into(),
                        format!("system:serviceaccounts:{namespace}"),
                    ];
                }
            }
            Target::Group(g) => user.groups.push(g.clone()),
            Target::Extra { key, value } => user.extra.entry(key.clone()).or_default().push(value.clone()),
            Target::Uid(u) => user.uid = u.clone(),
        }
    }
    let has = |g: &str| user.groups.iter().any(|x| x == g);
    if user.name != ANONYMOUS {
        if !has(crate::authn::AUTHENTICATED) && !has(UNAUTHENTICATED) {
            user.groups.push(crate::authn::AUTHENTICATED.into());
        }
    } else if !has(UNAUTHENTICATED) {
        user.groups.push(UNAUTHENTICATED.into());
    }
    user
}

/// The impersonation middleware.
pub async fn middleware(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let targets = match targets(req.headers()) {
        Ok(t) if t.is_empty() => return next.run(req).await,
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let requestor = req
        .extensions()
        .get::<UserInfo>()
        .cloned()
        .unwrap_or_else(UserInfo::anonymous);
    for t in &targets {
        let attrs = t.attributes(&requestor);
        let (decision, reason) = state.authorizer.authorize_with_reason(&attrs).await;
        if decision != Decision::Allow {
            return crate::authz::forbidden(&attrs, &reason).into_response();
        }
    }
    let groups_given = req.headers().contains_key(GROUP);
    let user = impersonated_user(&targets, groups_given);
    tracing::debug!(requestor = %requestor.name, impersonated = %user.name, "impersonating");
    let headers = req.headers_mut();
    let names: Vec<_> = headers
        .keys()
        .filter(|k| matches!(k.as_str(), USER | GROUP | UID) || k.as_str().starts_with(EXTRA_PREFIX))
        .cloned()
        .collect();
    for name in names {
        headers.remove(&name);
    }
    crate::audit::ImpersonatedUser::record(&req, &user);
    req.extensions_mut().insert(user);
    next.run(req).await
}

#[cfg(test)]
mod tests;
