//! Discovery: `/api`, `/apis`, `/api/v1`, `/apis/<group>` and
//! `/apis/<group>/<version>`, in the legacy forms (APIVersions,
//! APIGroupList, APIGroup, APIResourceList) and, when the client asks for
//! it in `Accept`, the aggregated form (`apidiscovery.k8s.io/v2` or
//! `v2beta1` APIGroupDiscoveryList). The reply's content type tells the
//! client which one it got.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::request_info::RequestInfo;
use crate::resources::{ResourceInfo, ResourceTable};
use crate::routes::AppState;
use crate::status::ApiError;

use super::response;

/// Which aggregated discovery version the client accepts, if any.
fn aggregated_version(headers: &HeaderMap) -> Option<&'static str> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    for part in accept.split(',') {
        let params: Vec<&str> = part.split(';').map(str::trim).collect();
        let has = |p: &str| params.contains(&p);
        if has("g=apidiscovery.k8s.io") && has("as=APIGroupDiscoveryList") {
            if has("v=v2") {
                return Some("v2");
            }
            if has("v=v2beta1") {
                return Some("v2beta1");
            }
        }
    }
    None
}

fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// Serves a discovery path, or 404.
pub fn serve(state: &AppState, info: &RequestInfo, headers: &HeaderMap) -> Result<Response, ApiError> {
    let table = state.registry.resources;
    let segments: Vec<&str> = info.path.trim_matches('/').split('/').collect();
    let aggregated = aggregated_version(headers);
    match segments.as_slice() {
        ["api"] => Ok(match aggregated {
            Some(v) => aggregated_response(table, true, v),
            None => response::json(
                StatusCode::OK,
                &json!({
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address(headers)}],
                }),
            ),
        }),
        ["apis"] => Ok(match aggregated {
            Some(v) => aggregated_response(table, false, v),
            None => {
                let groups: Vec<Value> = table
                    .groups()
                    .into_iter()
                    .filter(|(g, _)| !g.is_empty())
                    .map(|(g, vs)| api_group(&g, &vs))
                    .collect();
                response::json(
                    StatusCode::OK,
                    &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
                )
            }
        }),
        ["api", "v1"] => Ok(response::json(StatusCode::OK, &resource_list(table, "", "v1"))),
        ["apis", group] => {
            let (g, vs) = table
                .groups()
                .into_iter()
                .find(|(g, _)| g == group)
                .ok_or_else(ApiError::path_not_found)?;
            let mut body = api_group(&g, &vs);
            if let Value::Object(m) = &mut body {
                m.insert("kind".into(), json!("APIGroup"));
                m.insert("apiVersion".into(), json!("v1"));
            }
            Ok(response::json(StatusCode::OK, &body))
        }
        ["apis", group, version] => {
            if table.all().iter().any(|r| r.group == *group && r.version == *version) {
                Ok(response::json(StatusCode::OK, &resource_list(table, group, version)))
            } else {
                Err(ApiError::path_not_found())
            }
        }
        _ => Err(ApiError::path_not_found()),
    }
}

/// `host:port` the client used, for `serverAddressByClientCIDRs`.
fn server_address(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string()
}

fn api_group(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": group_version(group, v), "version": v}))
        .collect();
    let preferred = vs.first().cloned().unwrap_or(Value::Null);
    json!({"name": group, "versions": vs, "preferredVersion": preferred})
}

/// One resource and its subresources as `APIResource`s.
fn api_resources(r: &ResourceInfo) -> Vec<Value> {
    let mut main = serde_json::Map::new();
    main.insert("name".into(), json!(r.resource));
    main.insert("singularName".into(), json!(r.singular));
    main.insert("namespaced".into(), json!(r.namespaced));
    main.insert("kind".into(), json!(r.kind));
    main.insert("verbs".into(), json!(r.verbs));
    if !r.short_names.is_empty() {
        main.insert("shortNames".into(), json!(r.short_names));
    }
    if !r.categories.is_empty() {
        main.insert("categories".into(), json!(r.categories));
    }
    if r.has_verb("get") || r.has_verb("list") {
        main.insert("storageVersionHash".into(), json!(r.storage_version_hash()));
    }
    let mut out = vec![Value::Object(main)];
    for s in &r.subresources {
        let mut sub = serde_json::Map::new();
        sub.insert("name".into(), json!(format!("{}/{}", r.resource, s.name)));
        sub.insert("singularName".into(), json!(""));
        sub.insert("namespaced".into(), json!(r.namespaced));
        if !s.group.is_empty() || !s.version.is_empty() {
            sub.insert("group".into(), json!(s.group));
            sub.insert("version".into(), json!(s.version));
        }
        sub.insert("kind".into(), json!(s.kind));
        sub.insert("verbs".into(), json!(s.verbs));
        out.push(Value::Object(sub));
    }
    out
}

fn resource_list(table: &ResourceTable, group: &str, version: &str) -> Value {
    let resources: Vec<Value> = table
        .all()
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .flat_map(|r| api_resources(r))
        .collect();
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version(group, version), "resources": resources})
}

/// One resource in aggregated form.
fn aggregated_resource(r: &ResourceInfo) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("resource".into(), json!(r.resource));
    m.insert(
        "responseKind".into(),
        json!({"group": "", "version": "", "kind": r.kind}),
    );
    m.insert(
        "scope".into(),
        json!(if r.namespaced { "Namespaced" } else { "Cluster" }),
    );
    m.insert("singularResource".into(), json!(r.singular));
    m.insert("verbs".into(), json!(r.verbs));
    if !r.short_names.is_empty() {
        m.insert("shortNames".into(), json!(r.short_names));
    }
    if !r.categories.is_empty() {
        m.insert("categories".into(), json!(r.categories));
    }
    if !r.subresources.is_empty() {
        let subs: Vec<Value> = r
            .subresources
            .iter()
            .map(|s| json!({"subresource": s.name, "responseKind": {"group": s.group, "version": s.version, "kind": s.kind}, "verbs": s.verbs}))
            .collect();
        m.insert("subresources".into(), Value::Array(subs));
    }
    Value::Object(m)
}

fn aggregated_response(table: &ResourceTable, core: bool, version: &'static str) -> Response {
    let items: Vec<Value> = table
        .groups()
        .into_iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(g, versions)| {
            let vs: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = table
                        .all()
                        .iter()
                        .filter(|r| r.group == g && r.version == *v)
                        .map(|r| aggregated_resource(r))
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            let metadata = if g.is_empty() { json!({}) } else { json!({"name": g}) };
            json!({"metadata": metadata, "versions": vs})
        })
        .collect();
    let body = json!({"kind": "APIGroupDiscoveryList", "apiVersion": format!("apidiscovery.k8s.io/{version}"), "metadata": {}, "items": items});
    let mut resp = response::json(StatusCode::OK, &body);
    let ct = format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList");
    if let Ok(v) = HeaderValue::from_str(&ct) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}
