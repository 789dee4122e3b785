//! GET and LIST of `componentstatuses`: computed per request by probing
//! the control plane (see [`crate::registry::kinds::core::component_status`]),
//! then rendered like any list or object (JSON, YAML, protobuf, Table).

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::negotiate::negotiate;
use super::params::Params;
use super::render;
use crate::registry::kinds::core::component_status::{PROBE_TIMEOUT, default_components, probe, probe_all};
use crate::registry::list::{ListItem, ListOutcome};
use crate::request_info::RequestInfo;
use crate::resources::ResourceInfo;
use crate::routes::AppState;
use crate::status::{ApiError, GroupResource};

/// Whether `info` is ComponentStatus.
pub fn serves(info: &ResourceInfo) -> bool {
    info.group.is_empty() && info.resource == "componentstatuses"
}

/// Serves `get` and `list`; every other verb is refused before this.
pub async fn serve(
    state: &AppState,
    resource: &std::sync::Arc<ResourceInfo>,
    info: &RequestInfo,
    params: &Params,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let protobuf = crate::protobuf::supports(&resource.api_version(), &resource.kind);
    let components = default_components();
    if info.verb == "get" {
        let output = negotiate(headers, false, protobuf)?;
        // Upstream answers an unknown name with a 500 ("Component not
        // found"); a NotFound Status is what a client can act on.
        let Some(component) = components.iter().find(|c| c.name == info.name) else {
            let gr = GroupResource {
                group: "",
                resource: "componentstatuses",
            };
            return Err(ApiError::not_found(gr, &info.name));
        };
        let obj = crate::registry::kinds::core::component_status::object(
            &component.name,
            &probe(component, &state.store, PROBE_TIMEOUT).await,
        );
        return render::object_response(resource, output, params, obj, StatusCode::OK);
    }
    let output = negotiate(headers, true, protobuf)?;
    let predicate =
        crate::registry::selection::predicate(resource, params.get("labelSelector"), params.get("fieldSelector"))?;
    let items = probe_all(&components, &state.store, PROBE_TIMEOUT)
        .await
        .into_iter()
        .filter(|o| predicate.matches(o))
        .map(ListItem::Decoded)
        .collect();
    let out = ListOutcome {
        items,
        resource_version: 0,
        continue_token: None,
        remaining_item_count: None,
    };
    render::list_response(resource, output, params, out)
}
