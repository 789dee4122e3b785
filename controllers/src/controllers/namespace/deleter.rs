//! Deleting every object in a terminating namespace (upstream's
//! `namespacedResourcesDeleter`): for every discovered namespaced resource
//! that can be listed and deleted, delete its objects (one
//! deletecollection, or list + delete), then count what remains and which
//! finalizers hold it.

use std::collections::BTreeMap;

use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use kube::discovery::verbs;

use super::conditions::ConditionUpdater;
use crate::discovery::{DELETABLE, DiscoveredResource, resources_supporting};
use crate::error::is_not_found;

/// Seconds to wait for finalizers to finish when objects remain that have
/// them (upstream's `finalizerEstimateSeconds`).
const FINALIZER_ESTIMATE_SECONDS: u64 = 15;

/// The outcome of one pass.
#[derive(Debug, Default)]
pub struct Pass {
    /// Seconds until remaining content is expected to be gone (0: none).
    pub estimate: u64,
    /// Whether some deletion or listing failed.
    pub failed: bool,
}

/// `resource.group`, or `resource` alone for the core group (upstream's
/// `GroupResource.String()`).
fn group_resource(r: &DiscoveredResource) -> String {
    if r.resource.group.is_empty() {
        r.resource.plural.clone()
    } else {
        format!("{}.{}", r.resource.plural, r.resource.group)
    }
}

fn gvr(r: &DiscoveredResource) -> String {
    format!(
        "{}/{}, Resource={}",
        r.resource.group, r.resource.version, r.resource.plural
    )
}

/// Deletes the content of `namespace`, recording failures in `conditions`.
pub async fn delete_all_content(client: &Client, namespace: &str, conditions: &mut ConditionUpdater) -> Pass {
    let mut pass = Pass::default();
    let resources = match resources_supporting(client, DELETABLE).await {
        Ok(r) => r,
        Err(e) => {
            conditions.discovery_failed(1, &format!("unable to retrieve the complete list of server APIs: {e}"));
            pass.failed = true;
            return pass;
        }
    };
    let mut remaining = BTreeMap::new();
    let mut finalizers = BTreeMap::new();
    for r in resources.iter().filter(|r| r.namespaced) {
        match delete_resource_content(client, namespace, r).await {
            Ok(left) => {
                if left.items > 0 {
                    remaining.insert(group_resource(r), left.items);
                }
                for (f, n) in left.finalizers {
                    *finalizers.entry(f).or_insert(0) += n;
                }
                pass.estimate = pass.estimate.max(left.estimate);
                if left.unexpected {
                    conditions.delete_content_failed(format!(
                        "unexpected items still remain in namespace: {namespace} for gvr: {}",
                        gvr(r)
                    ));
                    pass.failed = true;
                }
            }
            Err(e) => {
                conditions.delete_content_failed(e.to_string());
                pass.failed = true;
            }
        }
    }
    conditions.content_totals(&remaining, &finalizers);
    pass
}

/// What is left of one resource after deleting it.
#[derive(Debug, Default)]
struct Left {
    items: usize,
    finalizers: BTreeMap<String, usize>,
    estimate: u64,
    /// Items remain that neither finalizers nor graceful deletion explain.
    unexpected: bool,
}

async fn delete_resource_content(
    client: &Client,
    namespace: &str,
    r: &DiscoveredResource,
) -> Result<Left, kube::Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &r.resource);
    let dp = DeleteParams::background();
    if r.supports(verbs::DELETE_COLLECTION) {
        match api.delete_collection(&dp, &ListParams::default()).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => return Ok(Left::default()),
            Err(e) => return Err(e),
        }
    } else {
        let list = match api.list_metadata(&ListParams::default()).await {
            Ok(l) => l,
            Err(e) if is_not_found(&e) => return Ok(Left::default()),
            Err(e) => return Err(e),
        };
        for item in list.items {
            let Some(name) = item.metadata.name.as_deref() else {
                continue;
            };
            match api.delete(name, &dp).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }
    let list = api.list_metadata(&ListParams::default()).await?;
    let mut left = Left {
        items: list.items.len(),
        ..Left::default()
    };
    if list.items.is_empty() {
        return Ok(left);
    }
    let now = k8s_openapi::jiff::Timestamp::now();
    for item in &list.items {
        for f in item.metadata.finalizers.iter().flatten() {
            *left.finalizers.entry(f.clone()).or_insert(0) += 1;
        }
        // Graceful deletion (pods): the time left of the grace period.
        if let Some(ts) = &item.metadata.deletion_timestamp {
            let secs = ts.0.as_second().saturating_sub(now.as_second());
            left.estimate = left.estimate.max(u64::try_from(secs).unwrap_or(0));
        }
    }
    if left.estimate == 0 && !left.finalizers.is_empty() {
        left.estimate = FINALIZER_ESTIMATE_SECONDS;
    }
    if left.estimate == 0 {
        left.unexpected = true;
    }
    Ok(left)
}

#[cfg(test)]
mod tests {
    use kube::api::{ApiResource, GroupVersionKind};
    use kube::discovery::{ApiCapabilities, Scope};

    use super::*;

    fn resource(group: &str, kind: &str, plural: &str) -> DiscoveredResource {
        DiscoveredResource {
            resource: ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", kind), plural),
            namespaced: true,
            caps: ApiCapabilities {
                scope: Scope::Namespaced,
                subresources: Vec::new(),
                operations: Vec::new(),
            },
        }
    }

    #[test]
    fn group_resources_are_named_as_upstream() {
        assert_eq!(group_resource(&resource("", "ConfigMap", "configmaps")), "configmaps");
        assert_eq!(
            group_resource(&resource("example.com", "Widget", "widgets")),
            "widgets.example.com"
        );
    }
}
