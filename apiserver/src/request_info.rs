//! What a request is about, parsed from its method, path and query like
//! kube-apiserver's `RequestInfo`: the API group and version, namespace,
//! resource, name, subresource and Kubernetes verb, or a non-resource path.

use http::Method;

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestInfo {
    /// Whether this is a request for an API resource (otherwise a
    /// non-resource URL such as `/healthz` or a discovery document).
    pub is_resource_request: bool,
    /// The request path.
    pub path: String,
    /// Kubernetes verb: get, list, watch, create, update, patch, delete,
    /// deletecollection; or the lowercase HTTP method for non-resource requests.
    pub verb: String,
    /// `api` or `apis` (empty for non-resource requests).
    pub api_prefix: String,
    pub api_group: String,
    pub api_version: String,
    pub namespace: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    /// Path segments after the subresource (e.g. a proxy path).
    pub parts: Vec<String>,
}

fn is_watch_query(query: Option<&str>) -> bool {
    query
        .unwrap_or("")
        .split('&')
        .any(|kv| matches!(kv, "watch=true" | "watch=1" | "watch=True" | "watch=TRUE"))
}

/// Parses a request.
pub fn parse(method: &Method, path: &str, query: Option<&str>) -> RequestInfo {
    let mut info = RequestInfo {
        path: path.to_string(),
        verb: method.as_str().to_ascii_lowercase(),
        ..Default::default()
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (prefix, rest) = match segments.split_first() {
        Some((p, rest)) if *p == "api" || *p == "apis" => (*p, rest),
        _ => return info,
    };
    // /api/v1/..., /apis/<group>/<version>/...
    let (group, version, mut rest) = match (prefix, rest) {
        ("api", [version, rest @ ..]) => ("", *version, rest),
        ("apis", [group, version, rest @ ..]) => (*group, *version, rest),
        _ => return info,
    };
    if rest.is_empty() || rest.iter().any(|s| s.is_empty()) {
        // Discovery of a group version, or an empty segment: not a resource.
        return info;
    }
    info.is_resource_request = true;
    info.api_prefix = prefix.to_string();
    info.api_group = group.to_string();
    info.api_version = version.to_string();

    let mut watch_prefix = false;
    if rest[0] == "watch" {
        watch_prefix = true;
        rest = &rest[1..];
    }
    // namespaces/<ns>/<resource>... is namespace-scoped, except the
    // namespaces resource itself (namespaces/<name>[/<subresource>]).
    // The namespaces resource's own subresources (`status`, `finalize`)
    // keep `namespaces` as the resource.
    if rest.len() >= 2 && rest[0] == "namespaces" {
        info.namespace = rest[1].to_string();
        if rest.len() >= 3 && !matches!(rest[2], "status" | "finalize") {
            rest = &rest[2..];
        }
    }
    match rest {
        [] => {
            info.is_resource_request = false;
            return info;
        }
        [resource] => info.resource = resource.to_string(),
        [resource, name] => {
            info.resource = resource.to_string();
            info.name = name.to_string();
        }
        [resource, name, sub, parts @ ..] => {
            info.resource = resource.to_string();
            info.name = name.to_string();
            info.subresource = sub.to_string();
            info.parts = parts.iter().map(|s| s.to_string()).collect();
        }
    }
    if info.resource == "namespaces" && rest.len() >= 2 && rest[0] == "namespaces" {
        // /api/v1/namespaces/<name>/<sub>: the namespace is the object.
        info.namespace = info.name.clone();
    }

    info.verb = match *method {
        Method::GET | Method::HEAD if watch_prefix => "watch".into(),
        Method::GET | Method::HEAD if info.name.is_empty() && is_watch_query(query) => "watch".into(),
        Method::GET | Method::HEAD if info.name.is_empty() => "list".into(),
        Method::GET | Method::HEAD => "get".into(),
        Method::POST => "create".into(),
        Method::PUT => "update".into(),
        Method::PATCH => "patch".into(),
        Method::DELETE if info.name.is_empty() => "deletecollection".into(),
        Method::DELETE => "delete".into(),
        _ => info.verb,
    };
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(method: Method, path: &str, query: Option<&str>, want: (&str, &str, &str, &str, &str, &str, &str)) {
        let i = parse(&method, path, query);
        assert!(i.is_resource_request, "{path}");
        let got = (
            i.verb.as_str(),
            i.api_group.as_str(),
            i.api_version.as_str(),
            i.namespace.as_str(),
            i.resource.as_str(),
            i.name.as_str(),
            i.subresource.as_str(),
        );
        assert_eq!(got, want, "{method} {path}");
    }

    #[test]
    fn resource_requests() {
        check(
            Method::GET,
            "/api/v1/pods",
            None,
            ("list", "", "v1", "", "pods", "", ""),
        );
        check(
            Method::GET,
            "/api/v1/pods",
            Some("watch=true&x=1"),
            ("watch", "", "v1", "", "pods", "", ""),
        );
        check(
            Method::GET,
            "/api/v1/watch/pods",
            None,
            ("watch", "", "v1", "", "pods", "", ""),
        );
        check(
            Method::GET,
            "/api/v1/namespaces/ns/pods/p",
            None,
            ("get", "", "v1", "ns", "pods", "p", ""),
        );
        check(
            Method::PUT,
            "/api/v1/namespaces/ns/pods/p/status",
            None,
            ("update", "", "v1", "ns", "pods", "p", "status"),
        );
        check(
            Method::POST,
            "/api/v1/namespaces/ns/pods",
            None,
            ("create", "", "v1", "ns", "pods", "", ""),
        );
        check(
            Method::DELETE,
            "/api/v1/namespaces/ns/pods",
            None,
            ("deletecollection", "", "v1", "ns", "pods", "", ""),
        );
        check(
            Method::PATCH,
            "/apis/apps/v1/namespaces/d/deployments/x/scale",
            None,
            ("patch", "apps", "v1", "d", "deployments", "x", "scale"),
        );
        check(
            Method::GET,
            "/api/v1/namespaces",
            None,
            ("list", "", "v1", "", "namespaces", "", ""),
        );
        check(
            Method::GET,
            "/api/v1/namespaces/kube-system",
            None,
            ("get", "", "v1", "kube-system", "namespaces", "kube-system", ""),
        );
        check(
            Method::PUT,
            "/api/v1/namespaces/ns/finalize",
            None,
            ("update", "", "v1", "ns", "namespaces", "ns", "finalize"),
        );
        check(
            Method::GET,
            "/apis/apps/v1/watch/namespaces/ns/deployments",
            None,
            ("watch", "apps", "v1", "ns", "deployments", "", ""),
        );
        check(
            Method::DELETE,
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/admin",
            None,
            (
                "delete",
                "rbac.authorization.k8s.io",
                "v1",
                "",
                "clusterroles",
                "admin",
                "",
            ),
        );
        let proxy = parse(&Method::GET, "/api/v1/namespaces/ns/pods/p/proxy/a/b", None);
        assert_eq!(proxy.parts, ["a", "b"]);
    }

    #[test]
    fn non_resource_requests() {
        for path in [
            "/healthz",
            "/api",
            "/api/v1",
            "/apis",
            "/apis/apps",
            "/apis/apps/v1",
            "/version",
            "/",
            "/api/v1//pods",
        ] {
            assert!(!parse(&Method::GET, path, None).is_resource_request, "{path}");
        }
    }
}
