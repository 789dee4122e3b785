//! API discovery for the controllers that work across every kind (the
//! namespace controller and the garbage collector), so kinds added later,
//! including custom resources, are covered without code changes.

use kube::Client;
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope, verbs};

/// One discovered resource (preferred version of its group).
#[derive(Debug, Clone)]
pub struct DiscoveredResource {
    pub resource: ApiResource,
    pub namespaced: bool,
    pub caps: ApiCapabilities,
}

impl DiscoveredResource {
    pub fn supports(&self, verb: &str) -> bool {
        self.caps.supports_operation(verb)
    }
}

/// Every resource in its group's preferred version that supports all of
/// `required` verbs. Discovery errors of single groups are not separated
/// from total failure yet: any error fails the whole call.
pub async fn resources_supporting(client: &Client, required: &[&str]) -> Result<Vec<DiscoveredResource>, kube::Error> {
    let discovery = Discovery::new(client.clone()).run().await?;
    let mut out = Vec::new();
    for group in discovery.groups() {
        for (resource, caps) in group.recommended_resources() {
            if required.iter().all(|v| caps.supports_operation(v)) {
                out.push(DiscoveredResource {
                    namespaced: caps.scope == Scope::Namespaced,
                    resource,
                    caps,
                });
            }
        }
    }
    Ok(out)
}

/// The verbs a resource must support to be deleted by the namespace
/// controller and the garbage collector.
pub const DELETABLE: &[&str] = &[verbs::LIST, verbs::DELETE];
