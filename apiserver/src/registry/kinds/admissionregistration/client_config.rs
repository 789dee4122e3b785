//! A webhook's `clientConfig` (`k8s.io/apiserver/pkg/util/webhook`'s
//! `ValidateWebhookURL` and `ValidateWebhookService`), with the URL split
//! the way Go's `net/url.Parse` splits it.

use serde_json::Value;

use crate::validation::names::is_dns1123_subdomain;
use crate::validation::{FieldError, FieldErrors, child};

const FORM: &str = "; desired format: https://host[/path]";

/// The parts of a URL the checks look at.
#[derive(Debug, Default, PartialEq, Eq)]
struct Url {
    scheme: String,
    user: Option<String>,
    host: String,
    query: String,
    fragment: String,
}

/// `url.Parse`, as far as the checks need it.
fn parse_url(raw: &str) -> Result<Url, String> {
    let err = |msg: &str| format!("parse {}: {msg}", serde_json::to_string(raw).unwrap_or_default());
    if raw.chars().any(|c| c.is_ascii_control()) {
        return Err(err("net/url: invalid control character in URL"));
    }
    let mut url = Url::default();
    let (rest, fragment) = raw.split_once('#').unwrap_or((raw, ""));
    url.fragment = fragment.to_string();
    let mut rest = rest;
    // The scheme: a letter, then letters, digits, '+', '-', '.', up to ':'.
    for (i, c) in rest.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' => {}
            '0'..='9' | '+' | '-' | '.' if i > 0 => {}
            ':' if i == 0 => return Err(err("missing protocol scheme")),
            ':' => {
                url.scheme = rest[..i].to_ascii_lowercase();
                rest = &rest[i + 1..];
                break;
            }
            _ => break,
        }
    }
    if let Some((before, query)) = rest.split_once('?') {
        url.query = query.to_string();
        rest = before;
    }
    if let Some(after) = rest.strip_prefix("//") {
        let end = after.find('/').unwrap_or(after.len());
        let authority = &after[..end];
        let host = match authority.rsplit_once('@') {
            Some((user, host)) => {
                url.user = Some(user.to_string());
                host
            }
            None => authority,
        };
        if let Some(i) = host.rfind(':')
            && !host[i..].contains(']')
        {
            let port = &host[i + 1..];
            if !port.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err(&format!(
                    "invalid port {} after host",
                    serde_json::to_string(&host[i..]).unwrap_or_default()
                )));
            }
        }
        url.host = host.to_string();
    }
    Ok(url)
}

/// `ValidateWebhookURL` with `forceHttps`.
pub fn validate_url(path: &str, raw: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    match parse_url(raw) {
        Err(e) => errs.push(FieldError::required(
            path,
            format!("url must be a valid URL: {e}{FORM}"),
        )),
        Ok(u) => {
            if u.scheme != "https" {
                errs.push(FieldError::invalid(
                    path,
                    u.scheme.as_str(),
                    format!("'https' is the only allowed URL scheme{FORM}"),
                ));
            }
            if u.host.is_empty() {
                errs.push(FieldError::invalid(path, "", format!("host must be specified{FORM}")));
            }
            if let Some(user) = u.user {
                errs.push(FieldError::invalid(
                    path,
                    user,
                    "user information is not permitted in the URL",
                ));
            }
            if !u.fragment.is_empty() {
                errs.push(FieldError::invalid(
                    path,
                    u.fragment,
                    "fragments are not permitted in the URL",
                ));
            }
            if !u.query.is_empty() {
                errs.push(FieldError::invalid(
                    path,
                    u.query,
                    "query parameters are not permitted in the URL",
                ));
            }
        }
    }
    errs
}

/// `ValidateWebhookService`. Upstream's callers pass the service's name
/// and namespace in the opposite order of the parameters, so a missing
/// name is reported at `namespace` and the reverse; kept for wire
/// compatibility.
pub fn validate_service(path: &str, svc: &Value) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let s = |k: &str| svc.get(k).and_then(Value::as_str).unwrap_or("");
    let (namespace_param, name_param) = (s("name"), s("namespace"));
    if name_param.is_empty() {
        errs.push(FieldError::required(child(path, "name"), ""));
    }
    if namespace_param.is_empty() {
        errs.push(FieldError::required(child(path, "namespace"), ""));
    }
    let port = svc.get("port").and_then(Value::as_i64).unwrap_or(443);
    if !(1..=65535).contains(&port) {
        errs.push(FieldError::invalid(
            child(path, "port"),
            port,
            "port is not valid: must be between 1 and 65535, inclusive",
        ));
    }
    let Some(url_path) = svc.get("path").and_then(Value::as_str) else {
        return errs;
    };
    let p = child(path, "path");
    if url_path == "/" || url_path.is_empty() {
        return errs;
    }
    if url_path == "//" {
        errs.push(FieldError::invalid(p, url_path, "segment[0] may not be empty"));
        return errs;
    }
    if !url_path.starts_with('/') {
        errs.push(FieldError::invalid(&p, url_path, "must start with a '/'"));
    }
    let mut check = &url_path[url_path.chars().next().map_or(0, char::len_utf8)..];
    check = check.strip_suffix('/').unwrap_or(check);
    for (i, step) in check.split('/').enumerate() {
        if step.is_empty() {
            errs.push(FieldError::invalid(
                &p,
                url_path,
                format!("segment[{i}] may not be empty"),
            ));
            continue;
        }
        for m in is_dns1123_subdomain(step) {
            errs.push(FieldError::invalid(&p, url_path, format!("segment[{i}]: {m}")));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn urls() {
        assert!(validate_url("u", "https://hook.example.com:8443/validate").is_empty());
        assert_eq!(
            validate_url("u", "http://a:b@h/p?x=1#f").summary(),
            "[u: Invalid value: \"http\": 'https' is the only allowed URL scheme; desired format: https://host[/path], u: Invalid value: \"a:b\": user information is not permitted in the URL, u: Invalid value: \"f\": fragments are not permitted in the URL, u: Invalid value: \"x=1\": query parameters are not permitted in the URL]"
        );
        assert_eq!(
            validate_url("u", "https:///nohost").summary(),
            "u: Invalid value: \"\": host must be specified; desired format: https://host[/path]"
        );
        assert_eq!(
            validate_url("u", "://x").summary(),
            "u: Required value: url must be a valid URL: parse \"://x\": missing protocol scheme; desired format: https://host[/path]"
        );
    }

    #[test]
    fn services() {
        assert!(
            validate_service(
                "s",
                &json!({"name": "n", "namespace": "ns", "port": 443, "path": "/a/b/"})
            )
            .is_empty()
        );
        assert_eq!(
            validate_service("s", &json!({"namespace": "ns", "port": 0, "path": "a//B"})).summary(),
            "[s.namespace: Required value, s.port: Invalid value: 0: port is not valid: must be between 1 and 65535, inclusive, s.path: Invalid value: \"a//B\": must start with a '/', s.path: Invalid value: \"a//B\": segment[0] may not be empty, s.path: Invalid value: \"a//B\": segment[1] may not be empty, s.path: Invalid value: \"a//B\": segment[2]: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')]"
        );
    }
}
