//! Column definitions against upstream's `AddHandlers`, and the Table, row
//! and object shapes.

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

use super::*;

const NOW: OffsetDateTime = datetime!(2025-06-01 12:00:00 UTC);

/// `(name, type, priority)` per column, as upstream's `pkg/printers/internalversion`
/// `AddHandlers` defines them. Every name column has format `name`.
type Expected = (&'static str, &'static str, &'static [(&'static str, &'static str, i32)]);

const S: &str = "string";
const I: &str = "integer";
const B: &str = "boolean";

#[rustfmt::skip]
const UPSTREAM: &[Expected] = &[
    ("", "pods", &[("Name", S, 0), ("Ready", S, 0), ("Status", S, 0), ("Restarts", S, 0), ("Age", S, 0), ("IP", S, 1), ("Node", S, 1), ("Nominated Node", S, 1), ("Readiness Gates", S, 1)]),
    ("", "podtemplates", &[("Name", S, 0), ("Containers", S, 0), ("Images", S, 0), ("Pod Labels", S, 0)]),
    ("policy", "poddisruptionbudgets", &[("Name", S, 0), ("Min Available", S, 0), ("Max Unavailable", S, 0), ("Allowed Disruptions", I, 0), ("Age", S, 0)]),
    ("", "replicationcontrollers", &[("Name", S, 0), ("Desired", I, 0), ("Current", I, 0), ("Ready", I, 0), ("Age", S, 0), ("Containers", S, 1), ("Images", S, 1), ("Selector", S, 1)]),
    ("apps", "replicasets", &[("Name", S, 0), ("Desired", I, 0), ("Current", I, 0), ("Ready", I, 0), ("Age", S, 0), ("Containers", S, 1), ("Images", S, 1), ("Selector", S, 1)]),
    ("apps", "daemonsets", &[("Name", S, 0), ("Desired", I, 0), ("Current", I, 0), ("Ready", I, 0), ("Up-to-date", I, 0), ("Available", I, 0), ("Node Selector", S, 0), ("Age", S, 0), ("Containers", S, 1), ("Images", S, 1), ("Selector", S, 1)]),
    ("batch", "jobs", &[("Name", S, 0), ("Status", S, 0), ("Completions", S, 0), ("Duration", S, 0), ("Age", S, 0), ("Containers", S, 1), ("Images", S, 1), ("Selector", S, 1)]),
    ("batch", "cronjobs", &[("Name", S, 0), ("Schedule", S, 0), ("Timezone", S, 0), ("Suspend", B, 0), ("Active", I, 0), ("Last Schedule", S, 0), ("Age", S, 0), ("Containers", S, 1), ("Images", S, 1), ("Selector", S, 1)]),
    ("", "services", &[("Name", S, 0), ("Type", S, 0), ("Cluster-IP", S, 0), ("External-IP", S, 0), ("Port(s)", S, 0), ("Age", S, 0), ("Selector", S, 1)]),
    ("networking.k8s.io", "ingresses", &[("Name", S, 0), ("Class", S, 0), ("Hosts", S, 0), ("Address", S, 0), ("Ports", S, 0), ("Age", S, 0)]),
    ("networking.k8s.io", "ingressclasses", &[("Name", S, 0), ("Controller", S, 0), ("Parameters", S, 0), ("Age", S, 0)]),
    ("apps", "statefulsets", &[("Name", S, 0), ("Ready", S, 0), ("Age", S, 0), ("Containers", S, 1), ("Images", S, 1)]),
    ("", "endpoints", &[("Name", S, 0), ("Endpoints", S, 0), ("Age", S, 0)]),
    ("", "nodes", &[("Name", S, 0), ("Status", S, 0), ("Roles", S, 0), ("Age", S, 0), ("Version", S, 0), ("Internal-IP", S, 1), ("External-IP", S, 1), ("OS-Image", S, 1), ("Kernel-Version", S, 1), ("Container-Runtime", S, 1)]),
    ("", "events", &[("Last Seen", S, 0), ("Type", S, 0), ("Reason", S, 0), ("Object", S, 0), ("Subobject", S, 1), ("Source", S, 1), ("Message", S, 0), ("First Seen", S, 1), ("Count", S, 1), ("Name", S, 1)]),
    ("events.k8s.io", "events", &[("Last Seen", S, 0), ("Type", S, 0), ("Reason", S, 0), ("Object", S, 0), ("Subobject", S, 1), ("Source", S, 1), ("Message", S, 0), ("First Seen", S, 1), ("Count", S, 1), ("Name", S, 1)]),
    ("", "namespaces", &[("Name", S, 0), ("Status", S, 0), ("Age", S, 0)]),
    ("", "secrets", &[("Name", S, 0), ("Type", S, 0), ("Data", S, 0), ("Age", S, 0)]),
    ("", "serviceaccounts", &[("Name", S, 0), ("Secrets", S, 0), ("Age", S, 0)]),
    ("", "persistentvolumes", &[("Name", S, 0), ("Capacity", S, 0), ("Access Modes", S, 0), ("Reclaim Policy", S, 0), ("Status", S, 0), ("Claim", S, 0), ("StorageClass", S, 0), ("VolumeAttributesClass", S, 0), ("Reason", S, 0), ("Age", S, 0), ("VolumeMode", S, 1)]),
    ("", "persistentvolumeclaims", &[("Name", S, 0), ("Status", S, 0), ("Volume", S, 0), ("Capacity", S, 0), ("Access Modes", S, 0), ("StorageClass", S, 0), ("VolumeAttributesClass", S, 0), ("Age", S, 0), ("VolumeMode", S, 1)]),
    ("", "componentstatuses", &[("Name", S, 0), ("Status", S, 0), ("Message", S, 0), ("Error", S, 0)]),
    ("apps", "deployments", &[("Name", S, 0), ("Ready", S, 0), ("Up-to-date", S, 0), ("Available", S, 0), ("Age", S, 0), ("Containers", S, 1), ("Images", S, 1), ("Selector", S, 1)]),
    ("autoscaling", "horizontalpodautoscalers", &[("Name", S, 0), ("Reference", S, 0), ("Targets", S, 0), ("MinPods", S, 0), ("MaxPods", S, 0), ("Replicas", S, 0), ("Age", S, 0)]),
    ("", "configmaps", &[("Name", S, 0), ("Data", S, 0), ("Age", S, 0)]),
    ("networking.k8s.io", "networkpolicies", &[("Name", S, 0), ("Pod-Selector", S, 0), ("Age", S, 0)]),
    ("rbac.authorization.k8s.io", "rolebindings", &[("Name", S, 0), ("Role", S, 0), ("Age", S, 0), ("Users", S, 1), ("Groups", S, 1), ("ServiceAccounts", S, 1)]),
    ("rbac.authorization.k8s.io", "clusterrolebindings", &[("Name", S, 0), ("Role", S, 0), ("Age", S, 0), ("Users", S, 1), ("Groups", S, 1), ("ServiceAccounts", S, 1)]),
    ("certificates.k8s.io", "certificatesigningrequests", &[("Name", S, 0), ("Age", S, 0), ("SignerName", S, 0), ("Requestor", S, 0), ("RequestedDuration", S, 0), ("Condition", S, 0)]),
    ("certificates.k8s.io", "clustertrustbundles", &[("Name", S, 0), ("SignerName", S, 0)]),
    ("coordination.k8s.io", "leases", &[("Name", S, 0), ("Holder", S, 0), ("Age", S, 0)]),
    ("coordination.k8s.io", "leasecandidates", &[("Name", S, 0), ("LeaseName", S, 0), ("BinaryVersion", S, 0), ("EmulationVersion", S, 0), ("Age", S, 0)]),
    ("storage.k8s.io", "storageclasses", &[("Name", S, 0), ("Provisioner", S, 0), ("ReclaimPolicy", S, 0), ("VolumeBindingMode", S, 0), ("AllowVolumeExpansion", S, 0), ("Age", S, 0)]),
    ("storage.k8s.io", "volumeattributesclasses", &[("Name", S, 0), ("DriverName", S, 0), ("Age", S, 0)]),
    ("apps", "controllerrevisions", &[("Name", S, 0), ("Controller", S, 0), ("Revision", S, 0), ("Age", S, 0)]),
    ("", "resourcequotas", &[("Name", S, 0), ("Request", S, 0), ("Limit", S, 0), ("Age", S, 0)]),
    ("scheduling.k8s.io", "priorityclasses", &[("Name", S, 0), ("Value", I, 0), ("Global-Default", B, 0), ("Age", S, 0), ("PreemptionPolicy", S, 0)]),
    ("node.k8s.io", "runtimeclasses", &[("Name", S, 0), ("Handler", S, 0), ("Age", S, 0)]),
    ("storage.k8s.io", "volumeattachments", &[("Name", S, 0), ("Attacher", S, 0), ("PV", S, 0), ("Node", S, 0), ("Attached", B, 0), ("Age", S, 0)]),
    ("discovery.k8s.io", "endpointslices", &[("Name", S, 0), ("AddressType", S, 0), ("Ports", S, 0), ("Endpoints", S, 0), ("Age", S, 0)]),
    ("storage.k8s.io", "csinodes", &[("Name", S, 0), ("Drivers", I, 0), ("Age", S, 0)]),
    ("storage.k8s.io", "csidrivers", &[("Name", S, 0), ("AttachRequired", B, 0), ("PodInfoOnMount", B, 0), ("StorageCapacity", B, 0), ("TokenRequests", S, 0), ("RequiresRepublish", B, 0), ("Modes", S, 0), ("Age", S, 0)]),
    ("storage.k8s.io", "csistoragecapacities", &[("Name", S, 0), ("StorageClassName", S, 0), ("Capacity", S, 0)]),
    ("admissionregistration.k8s.io", "mutatingwebhookconfigurations", &[("Name", S, 0), ("Webhooks", I, 0), ("Age", S, 0)]),
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations", &[("Name", S, 0), ("Webhooks", I, 0), ("Age", S, 0)]),
    ("admissionregistration.k8s.io", "validatingadmissionpolicies", &[("Name", S, 0), ("Validations", I, 0), ("ParamKind", S, 0), ("Age", S, 0)]),
    ("admissionregistration.k8s.io", "validatingadmissionpolicybindings", &[("Name", S, 0), ("PolicyName", S, 0), ("ParamRef", S, 0), ("Age", S, 0)]),
    ("admissionregistration.k8s.io", "mutatingadmissionpolicies", &[("Name", S, 0), ("Mutations", I, 0), ("ParamKind", S, 0), ("Age", S, 0)]),
    ("admissionregistration.k8s.io", "mutatingadmissionpolicybindings", &[("Name", S, 0), ("PolicyName", S, 0), ("ParamRef", S, 0), ("Age", S, 0)]),
    ("flowcontrol.apiserver.k8s.io", "flowschemas", &[("Name", S, 0), ("PriorityLevel", S, 0), ("MatchingPrecedence", S, 0), ("DistinguisherMethod", S, 0), ("Age", S, 0), ("MissingPL", S, 0)]),
    ("flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations", &[("Name", S, 0), ("Type", S, 0), ("NominalConcurrencyShares", S, 0), ("Queues", S, 0), ("HandSize", S, 0), ("QueueLengthLimit", S, 0), ("Age", S, 0)]),
    ("internal.apiserver.k8s.io", "storageversions", &[("Name", S, 0), ("CommonEncodingVersion", S, 0), ("StorageVersions", S, 0), ("Age", S, 0)]),
    ("resource.k8s.io", "deviceclasses", &[("Name", S, 0), ("Age", S, 0)]),
    ("resource.k8s.io", "resourceclaims", &[("Name", S, 0), ("State", S, 0), ("Age", S, 0)]),
    ("resource.k8s.io", "resourceclaimtemplates", &[("Name", S, 0), ("Age", S, 0)]),
    ("resource.k8s.io", "resourceslices", &[("Name", S, 0), ("Node", S, 0), ("Driver", S, 0), ("Pool", S, 0), ("Age", S, 0)]),
    ("networking.k8s.io", "servicecidrs", &[("Name", S, 0), ("CIDRs", S, 0), ("Age", S, 0)]),
    ("networking.k8s.io", "ipaddresses", &[("Name", S, 0), ("ParentRef", S, 0)]),
    // kube-aggregator's own table convertor.
    ("apiregistration.k8s.io", "apiservices", &[("Name", S, 0), ("Service", S, 0), ("Available", S, 0), ("Age", S, 0)]),
];

#[test]
fn column_definitions_match_upstream() {
    for (group, resource, expected) in UPSTREAM {
        assert!(has_printer(group, resource), "{group}/{resource} has no printer");
        let got = column_definitions(group, resource);
        let got_summary: Vec<(String, String, i64)> = got
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap_or("").to_string(),
                    c["type"].as_str().unwrap_or("").to_string(),
                    c["priority"].as_i64().unwrap_or(-1),
                )
            })
            .collect();
        let want: Vec<(String, String, i64)> = expected
            .iter()
            .map(|(n, t, p)| (n.to_string(), t.to_string(), i64::from(*p)))
            .collect();
        assert_eq!(got_summary, want, "{group}/{resource}");
        for column in &got {
            let keys: Vec<&str> = column
                .as_object()
                .map(|m| m.keys().map(String::as_str).collect())
                .unwrap_or_default();
            assert_eq!(keys.len(), 5, "{group}/{resource}: {column}");
            assert!(
                !column["description"].as_str().unwrap_or("").is_empty(),
                "{group}/{resource}: {column}"
            );
            let is_name = column["name"] == "Name";
            assert_eq!(
                column["format"] == "name",
                is_name || column["name"] == "Attacher",
                "{group}/{resource}: {column}"
            );
        }
    }
}

#[test]
fn every_printer_is_checked_against_upstream() {
    // Resources served by rkube that upstream prints with the default table.
    let defaults = [
        ("", "limitranges"),
        ("", "bindings"),
        ("rbac.authorization.k8s.io", "roles"),
        ("rbac.authorization.k8s.io", "clusterroles"),
        ("apiextensions.k8s.io", "customresourcedefinitions"),
        ("autoscaling", "scale"),
    ];
    for (group, resource) in defaults {
        assert!(!has_printer(group, resource), "{group}/{resource}");
        assert_eq!(
            column_definitions(group, resource),
            vec![
                json!({"name": "Name", "type": "string", "format": "name", "description": columns::NAME_DESCRIPTION, "priority": 0}),
                json!({"name": "Created At", "type": "date", "format": "", "description": columns::CREATION_DESCRIPTION, "priority": 0}),
            ]
        );
    }
    // The built-in resource list: every resource either has a checked printer or the default.
    let builtin: Vec<Value> = serde_json::from_str(include_str!("../resources/builtin.json")).unwrap_or_default();
    assert!(!builtin.is_empty());
    for r in &builtin {
        let (group, resource) = (r["group"].as_str().unwrap_or(""), r["resource"].as_str().unwrap_or(""));
        if has_printer(group, resource) {
            assert!(
                UPSTREAM.iter().any(|(g, res, _)| *g == group && *res == resource),
                "{group}/{resource} untested"
            );
        }
    }
}

fn deployment() -> Map<String, Value> {
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "uid": "u-1", "resourceVersion": "42", "labels": {"app": "web"},
                     "creationTimestamp": "2025-06-01T11:00:00Z"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}},
        "status": {"readyReplicas": 2, "updatedReplicas": 2, "availableReplicas": 2}});
    d.as_object().cloned().unwrap_or_default()
}

#[test]
fn row_objects_by_include_object() {
    let d = deployment();
    let metadata = row("apps", "deployments", &d, IncludeObject::Metadata, NOW);
    assert_eq!(
        metadata,
        json!({
            "cells": ["web", "2/2", 2, 2, "60m", "nginx", "nginx", "app=web"],
            "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": d["metadata"]},
        })
    );
    let whole = row("apps", "deployments", &d, IncludeObject::Object, NOW);
    assert_eq!(whole["object"], Value::Object(d.clone()));
    let none = row("apps", "deployments", &d, IncludeObject::None, NOW);
    assert_eq!(none.get("object"), Some(&Value::Null));
    assert!(none.get("conditions").is_none());

    // Go encodes an unset creationTimestamp as null.
    let bare = json!({"metadata": {"name": "x"}})
        .as_object()
        .cloned()
        .unwrap_or_default();
    let r = row("", "configmaps", &bare, IncludeObject::Metadata, NOW);
    assert_eq!(r["object"]["metadata"], json!({"name": "x", "creationTimestamp": null}));
}

#[test]
fn include_object_query_values() {
    assert_eq!(IncludeObject::from_query(""), Ok(IncludeObject::Metadata));
    assert_eq!(IncludeObject::from_query("Metadata"), Ok(IncludeObject::Metadata));
    assert_eq!(IncludeObject::from_query("Object"), Ok(IncludeObject::Object));
    assert_eq!(IncludeObject::from_query("None"), Ok(IncludeObject::None));
    let err = IncludeObject::from_query("object").err().map(|e| e.to_string());
    assert_eq!(err.as_deref(), Some("unrecognized includeObject value: \"object\""));
    assert_eq!(IncludeObject::default(), IncludeObject::Metadata);
}

#[test]
fn list_table_shape() {
    let t = table(
        "apps",
        "deployments",
        &[deployment()],
        IncludeObject::None,
        "57",
        Some("next"),
        Some(3),
        true,
        NOW,
    );
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(
        t["metadata"],
        json!({"resourceVersion": "57", "continue": "next", "remainingItemCount": 3})
    );
    assert_eq!(
        t["columnDefinitions"],
        Value::Array(column_definitions("apps", "deployments"))
    );
    assert_eq!(
        t["rows"],
        json!([{"cells": ["web", "2/2", 2, 2, "60m", "nginx", "nginx", "app=web"], "object": null}])
    );

    // Watch events after the first, and empty lists.
    let t = table(
        "apps",
        "deployments",
        &[],
        IncludeObject::Metadata,
        "",
        None,
        None,
        false,
        NOW,
    );
    assert_eq!(t["metadata"], json!({}));
    assert_eq!(t["columnDefinitions"], Value::Null);
    assert_eq!(t["rows"], json!([]));
}

#[test]
fn default_table() {
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "reader", "namespace": "default", "creationTimestamp": "2025-05-31T09:08:07Z"}, "rules": []});
    let role = role.as_object().cloned().unwrap_or_default();
    let t = table(
        "rbac.authorization.k8s.io",
        "roles",
        &[role],
        IncludeObject::Metadata,
        "9",
        None,
        None,
        true,
        NOW,
    );
    assert_eq!(t["rows"][0]["cells"], json!(["reader", "2025-05-31T09:08:07Z"]));
    assert_eq!(t["columnDefinitions"][1]["name"], "Created At");
    let bare = json!({"metadata": {"name": "x"}})
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        row("", "limitranges", &bare, IncludeObject::None, NOW)["cells"],
        json!(["x", "0001-01-01T00:00:00Z"])
    );
    // Upstream's default table has no rows at all for an empty list.
    let empty = table(
        "",
        "limitranges",
        &[],
        IncludeObject::Metadata,
        "9",
        None,
        None,
        true,
        NOW,
    );
    assert_eq!(empty["rows"], Value::Null);
}

#[test]
fn finished_pod_rows_carry_conditions() {
    let pod = json!({"metadata": {"name": "job-x"}, "spec": {"containers": [{"name": "c"}]},
        "status": {"phase": "Succeeded", "containerStatuses": [{"name": "c", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}});
    let pod = pod.as_object().cloned().unwrap_or_default();
    let r = row("", "pods", &pod, IncludeObject::None, NOW);
    assert_eq!(
        r["conditions"],
        json!([{"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."}])
    );
    assert_eq!(r["cells"][2], "Completed");
}

#[test]
fn cells_match_columns() {
    // Every printer fills one cell per column (upstream's IP address printer adds the age).
    let obj = json!({"metadata": {"name": "x"}})
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (group, resource, expected) in UPSTREAM {
        let r = row(group, resource, &obj, IncludeObject::None, NOW);
        let cells = r["cells"].as_array().map_or(0, Vec::len);
        let extra = usize::from(*resource == "ipaddresses");
        assert_eq!(cells, expected.len() + extra, "{group}/{resource}");
    }
}

#[test]
fn api_service_tables_always_carry_headers() {
    let t = table(
        "apiregistration.k8s.io",
        "apiservices",
        &[],
        IncludeObject::None,
        "",
        None,
        None,
        false,
        NOW,
    );
    assert_eq!(t["columnDefinitions"].as_array().map(Vec::len), Some(4));
    assert_eq!(t["rows"], json!([]));
}
