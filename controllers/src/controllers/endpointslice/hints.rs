//! Topology hints from `spec.trafficDistribution` (upstream's
//! `trafficdist`): with `PreferClose`/`PreferSameZone` every ready
//! endpoint with a zone is hinted for its zone, with `PreferSameNode` also
//! for its node; otherwise hints are removed.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointHints, EndpointSlice, ForNode, ForZone};

/// The topology-mode annotations that ask for the (annotation-driven)
/// topology-aware hints instead of `trafficDistribution`.
const TOPOLOGY_MODE: &str = "service.kubernetes.io/topology-mode";
const TOPOLOGY_AWARE_HINTS: &str = "service.kubernetes.io/topology-aware-hints";

/// How hints are set on a Service's slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heuristic {
    /// No hints.
    None,
    /// Zone hints, and node hints when `same_node`.
    PreferClose { same_node: bool },
}

impl Heuristic {
    pub fn for_service(service: &Service) -> Heuristic {
        let annotations = service.metadata.annotations.as_ref();
        let topology_mode = annotations
            .and_then(|a| a.get(TOPOLOGY_MODE).or_else(|| a.get(TOPOLOGY_AWARE_HINTS)))
            .is_some_and(|v| v == "Auto" || v == "auto");
        let td = service.spec.as_ref().and_then(|s| s.traffic_distribution.as_deref());
        match td {
            _ if topology_mode => Heuristic::None,
            Some("PreferClose" | "PreferSameZone") => Heuristic::PreferClose { same_node: false },
            Some("PreferSameNode") => Heuristic::PreferClose { same_node: true },
            _ => Heuristic::None,
        }
    }

    fn hints(self, e: &Endpoint) -> Option<EndpointHints> {
        let Heuristic::PreferClose { same_node } = self else {
            return None;
        };
        let zones = e.zone.clone().map(|name| vec![ForZone { name }]);
        let nodes = e
            .node_name
            .clone()
            .filter(|_| same_node)
            .map(|name| vec![ForNode { name }]);
        (zones.is_some() || nodes.is_some()).then_some(EndpointHints {
            for_zones: zones,
            for_nodes: nodes,
        })
    }

    fn is_ready(e: &Endpoint) -> bool {
        e.conditions.as_ref().and_then(|c| c.ready) == Some(true)
    }

    /// Whether the slice's hints differ from what this heuristic sets.
    pub fn needs_update(self, slice: &EndpointSlice) -> bool {
        super::desired::eps(slice).iter().any(|e| match self {
            Heuristic::None => e.hints.is_some(),
            Heuristic::PreferClose { .. } => Self::is_ready(e) && e.hints != self.hints(e),
        })
    }

    /// Sets the hints of every endpoint (ready ones only for PreferClose).
    pub fn update(self, slice: &mut EndpointSlice) {
        for e in super::desired::eps_mut(slice) {
            match self {
                Heuristic::None => e.hints = None,
                Heuristic::PreferClose { .. } if Self::is_ready(e) => e.hints = self.hints(e),
                Heuristic::PreferClose { .. } => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn slice(endpoints: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(json!({"metadata": {"name": "s"}, "addressType": "IPv4", "endpoints": endpoints}))
            .unwrap()
    }

    fn svc(v: serde_json::Value) -> Service {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn heuristic_from_the_service() {
        let td = |t: &str| svc(json!({"metadata": {"name": "s"}, "spec": {"trafficDistribution": t}}));
        assert_eq!(
            Heuristic::for_service(&td("PreferClose")),
            Heuristic::PreferClose { same_node: false }
        );
        assert_eq!(
            Heuristic::for_service(&td("PreferSameNode")),
            Heuristic::PreferClose { same_node: true }
        );
        assert_eq!(Heuristic::for_service(&td("Other")), Heuristic::None);
        let annotated = svc(
            json!({"metadata": {"name": "s", "annotations": {"service.kubernetes.io/topology-mode": "Auto"}},
            "spec": {"trafficDistribution": "PreferClose"}}),
        );
        assert_eq!(Heuristic::for_service(&annotated), Heuristic::None);
    }

    #[test]
    fn zone_and_node_hints_for_ready_endpoints() {
        let mut s = slice(json!([
            {"addresses": ["10.0.0.1"], "zone": "a", "nodeName": "n1", "conditions": {"ready": true}},
            {"addresses": ["10.0.0.2"], "zone": "b", "nodeName": "n2", "conditions": {"ready": false}},
            {"addresses": ["10.0.0.3"], "nodeName": "n3", "conditions": {"ready": true}},
        ]));
        let h = Heuristic::PreferClose { same_node: true };
        assert!(h.needs_update(&s));
        h.update(&mut s);
        assert!(!h.needs_update(&s));
        let v = serde_json::to_value(crate::controllers::endpointslice::desired::eps(&s)).unwrap();
        assert_eq!(
            v[0]["hints"],
            json!({"forZones": [{"name": "a"}], "forNodes": [{"name": "n1"}]})
        );
        assert_eq!(v[1].get("hints"), None);
        assert_eq!(v[2]["hints"], json!({"forNodes": [{"name": "n3"}]}));
        let zone_only = Heuristic::PreferClose { same_node: false };
        assert!(zone_only.needs_update(&s));
        assert!(Heuristic::None.needs_update(&s));
        Heuristic::None.update(&mut s);
        assert!(
            crate::controllers::endpointslice::desired::eps(&s)
                .iter()
                .all(|e| e.hints.is_none())
        );
    }
}
