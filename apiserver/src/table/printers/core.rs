//! Core kinds: services, endpoints, nodes, namespaces, secrets, config maps,
//! service accounts, resource quotas and component statuses.

use std::collections::BTreeSet;

use serde_json::Value;
use time::OffsetDateTime;

use super::{Object, Printed, Printer, cells};
use crate::table::columns::{AGE, ColumnDefinition, NAME, string};
use crate::table::duration;
use crate::table::field::Fields;
use crate::table::labels::format_labels;

fn name(obj: &Object) -> &str {
    obj.str_at(&["metadata", "name"])
}

fn age(obj: &Object, now: OffsetDateTime) -> String {
    duration::since(obj.time_at(&["metadata", "creationTimestamp"]), now)
}

const SERVICE_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string("Type", "How the service is exposed."),
    string("Cluster-IP", "The service's primary cluster IP."),
    string(
        "External-IP",
        "External IPs, load balancer addresses or the external name.",
    ),
    string("Port(s)", "Ports the service exposes, with node ports."),
    AGE,
    string("Selector", "Label query over the pods the service routes to.").wide(),
];

pub(crate) static SERVICES: Printer = Printer {
    columns: SERVICE_COLUMNS,
    print: print_service,
};

fn print_service(obj: &Object, now: OffsetDateTime) -> Printed {
    // core/v1 defaults the type to ClusterIP.
    let type_ = obj.opt_str(&["spec", "type"]).unwrap_or("ClusterIP");
    let cluster_ip = obj
        .list_at(&["spec", "clusterIPs"])
        .first()
        .and_then(Value::as_str)
        .unwrap_or("<none>");
    let ports: Vec<String> = obj
        .list_at(&["spec", "ports"])
        .iter()
        .map(|p| {
            let port = p.int_at(&["port"]);
            // core/v1 defaults the protocol to TCP.
            let protocol = p.opt_str(&["protocol"]).unwrap_or("TCP");
            match p.int_at(&["nodePort"]) {
                n if n > 0 => format!("{port}:{n}/{protocol}"),
                _ => format!("{port}/{protocol}"),
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    };
    cells![
        name(obj),
        type_,
        cluster_ip,
        external_ip(obj, type_),
        ports,
        age(obj, now),
        format_labels(obj.map_at(&["spec", "selector"])),
    ]
}

/// Upstream's `getServiceExternalIP` in its wide form (the server prints wide).
fn external_ip(obj: &Object, type_: &str) -> String {
    let external_ips: Vec<&str> = obj
        .list_at(&["spec", "externalIPs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match type_ {
        "ClusterIP" | "NodePort" if !external_ips.is_empty() => external_ips.join(","),
        "ClusterIP" | "NodePort" => "<none>".to_string(),
        "LoadBalancer" => {
            let lb = load_balancer_addresses(obj.list_at(&["status", "loadBalancer", "ingress"]));
            match (lb.is_empty(), external_ips.is_empty()) {
                (_, false) => lb
                    .into_iter()
                    .chain(external_ips.iter().map(|s| s.to_string()))
                    .collect::<Vec<_>>()
                    .join(","),
                (false, true) => lb.join(","),
                (true, true) => "<pending>".to_string(),
            }
        }
        "ExternalName" => obj.str_at(&["spec", "externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    }
}

/// Load balancer ingress points (IP, else hostname), sorted and deduplicated.
pub(super) fn load_balancer_addresses(ingress: &[Value]) -> Vec<String> {
    let set: BTreeSet<&str> = ingress
        .iter()
        .filter_map(|i| match (i.str_at(&["ip"]), i.str_at(&["hostname"])) {
            ("", "") => None,
            ("", host) => Some(host),
            (ip, _) => Some(ip),
        })
        .collect();
    set.into_iter().map(str::to_string).collect()
}

const ENDPOINTS_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string("Endpoints", "Ready and not-ready addresses with their ports."),
    AGE,
];

pub(crate) static ENDPOINTS: Printer = Printer {
    columns: ENDPOINTS_COLUMNS,
    print: print_endpoints,
};

fn print_endpoints(obj: &Object, now: OffsetDateTime) -> Printed {
    cells![name(obj), format_endpoints(obj), age(obj, now)]
}

/// Upstream's `formatEndpoints` for all ports: up to three `ip:port`
/// entries, then `+ N more...`.
fn format_endpoints(obj: &Object) -> String {
    const MAX: usize = 3;
    let subsets = obj.list_at(&["subsets"]);
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0;
    for subset in subsets {
        let addresses = subset.list_at(&["addresses"]);
        let ports = subset.list_at(&["ports"]);
        if ports.is_empty() {
            // Headless services may have no ports.
            count += addresses.len();
            for address in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(address.str_at(&["ip"]).to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for address in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(join_host_port(address.str_at(&["ip"]), port.int_at(&["port"])));
            }
        }
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", count - MAX)
    } else {
        joined
    }
}

/// Go's `net.JoinHostPort`: IPv6 addresses are bracketed.
pub(super) fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

const NODE_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string("Status", "Readiness of the node, and whether scheduling is disabled."),
    string("Roles", "Roles from the node's node-role.kubernetes.io labels."),
    AGE,
    string("Version", "Kubelet version reported by the node."),
    string("Internal-IP", "The node's first internal IP address.").wide(),
    string("External-IP", "The node's first external IP address.").wide(),
    string("OS-Image", "OS image reported by the node.").wide(),
    string("Kernel-Version", "Kernel version reported by the node.").wide(),
    string("Container-Runtime", "Container runtime version reported by the node.").wide(),
];

pub(crate) static NODES: Printer = Printer {
    columns: NODE_COLUMNS,
    print: print_node,
};

fn print_node(obj: &Object, now: OffsetDateTime) -> Printed {
    // The last Ready condition wins, as upstream keys conditions by type.
    let ready = obj
        .list_at(&["status", "conditions"])
        .iter()
        .rev()
        .find(|c| c.str_at(&["type"]) == "Ready");
    let mut status = vec![match ready {
        Some(c) if c.str_at(&["status"]) == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if obj.bool_at(&["spec", "unschedulable"]) {
        status.push("SchedulingDisabled");
    }
    let roles = node_roles(obj);
    let address = |type_: &str| {
        obj.list_at(&["status", "addresses"])
            .iter()
            .find(|a| a.str_at(&["type"]) == type_)
            .map_or_else(|| "<none>".to_string(), |a| a.str_at(&["address"]).to_string())
    };
    let info = |field: &str| match obj.str_at(&["status", "nodeInfo", field]) {
        "" => "<unknown>".to_string(),
        v => v.to_string(),
    };
    cells![
        name(obj),
        status.join(","),
        if roles.is_empty() {
            "<none>".to_string()
        } else {
            roles.join(",")
        },
        age(obj, now),
        obj.str_at(&["status", "nodeInfo", "kubeletVersion"]),
        address("InternalIP"),
        address("ExternalIP"),
        info("osImage"),
        info("kernelVersion"),
        info("containerRuntimeVersion"),
    ]
}

/// Roles from `node-role.kubernetes.io/<role>` label keys and the
/// `kubernetes.io/role` label value, sorted and deduplicated.
fn node_roles(obj: &Object) -> Vec<String> {
    let mut roles = BTreeSet::new();
    for (key, value) in obj.map_at(&["metadata", "labels"]).into_iter().flatten() {
        if let Some(role) = key.strip_prefix("node-role.kubernetes.io/") {
            if !role.is_empty() {
                roles.insert(role.to_string());
            }
        } else if key == "kubernetes.io/role" {
            match value.as_str() {
                Some(role) if !role.is_empty() => {
                    roles.insert(role.to_string());
                }
                _ => {}
            }
        }
    }
    roles.into_iter().collect()
}

const NAMESPACE_COLUMNS: &[ColumnDefinition] = &[NAME, string("Status", "The phase of the namespace."), AGE];

pub(crate) static NAMESPACES: Printer = Printer {
    columns: NAMESPACE_COLUMNS,
    print: print_namespace,
};

fn print_namespace(obj: &Object, now: OffsetDateTime) -> Printed {
    // core/v1 defaults the phase to Active.
    cells![
        name(obj),
        obj.opt_str(&["status", "phase"]).unwrap_or("Active"),
        age(obj, now)
    ]
}

const SECRET_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string("Type", "The type of the secret."),
    string("Data", "Number of data keys in the secret."),
    AGE,
];

pub(crate) static SECRETS: Printer = Printer {
    columns: SECRET_COLUMNS,
    print: print_secret,
};

fn print_secret(obj: &Object, now: OffsetDateTime) -> Printed {
    // core/v1 defaults the type to Opaque.
    let type_ = obj.opt_str(&["type"]).unwrap_or("Opaque");
    cells![name(obj), type_, obj.len_of_map(&["data"]) as i64, age(obj, now)]
}

const CONFIG_MAP_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string("Data", "Number of data and binaryData keys in the config map."),
    AGE,
];

pub(crate) static CONFIG_MAPS: Printer = Printer {
    columns: CONFIG_MAP_COLUMNS,
    print: print_config_map,
};

fn print_config_map(obj: &Object, now: OffsetDateTime) -> Printed {
    let keys = obj.len_of_map(&["data"]) + obj.len_of_map(&["binaryData"]);
    cells![name(obj), keys as i64, age(obj, now)]
}

const SERVICE_ACCOUNT_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string("Secrets", "Number of secrets listed by the service account."),
    AGE,
];

pub(crate) static SERVICE_ACCOUNTS: Printer = Printer {
    columns: SERVICE_ACCOUNT_COLUMNS,
    print: print_service_account,
};

fn print_service_account(obj: &Object, now: OffsetDateTime) -> Printed {
    cells![name(obj), obj.list_at(&["secrets"]).len() as i64, age(obj, now)]
}

const RESOURCE_QUOTA_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string(
        "Request",
        "Used out of hard limits for quota resources other than limits.*.",
    ),
    string("Limit", "Used out of hard limits for the limits.* quota resources."),
    AGE,
];

pub(crate) static RESOURCE_QUOTAS: Printer = Printer {
    columns: RESOURCE_QUOTA_COLUMNS,
    print: print_resource_quota,
};

fn print_resource_quota(obj: &Object, now: OffsetDateTime) -> Printed {
    let mut resources: Vec<&String> = obj
        .map_at(&["status", "hard"])
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    resources.sort();
    let mut requests = Vec::new();
    let mut limits = Vec::new();
    for resource in resources {
        // An unset quantity prints as Go's zero Quantity, "0".
        let used = obj
            .quantity_at(&["status", "used", resource])
            .unwrap_or_else(|| "0".to_string());
        let hard = obj
            .quantity_at(&["status", "hard", resource])
            .unwrap_or_else(|| "0".to_string());
        let entry = format!("{resource}: {used}/{hard}");
        let is_limit = resource.split_once('.').is_some_and(|(prefix, _)| prefix == "limits");
        if is_limit {
            limits.push(entry)
        } else {
            requests.push(entry)
        }
    }
    cells![name(obj), requests.join(", "), limits.join(", "), age(obj, now)]
}

const COMPONENT_STATUS_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string("Status", "Whether the component is healthy."),
    string("Message", "Message of the component's Healthy condition."),
    string("Error", "Error of the component's Healthy condition."),
];

pub(crate) static COMPONENT_STATUSES: Printer = Printer {
    columns: COMPONENT_STATUS_COLUMNS,
    print: print_component_status,
};

fn print_component_status(obj: &Object, _now: OffsetDateTime) -> Printed {
    let healthy = obj
        .list_at(&["conditions"])
        .iter()
        .find(|c| c.str_at(&["type"]) == "Healthy");
    let (status, message, error) = match healthy {
        Some(c) => (
            if c.str_at(&["status"]) == "True" {
                "Healthy"
            } else {
                "Unhealthy"
            },
            c.str_at(&["message"]),
            c.str_at(&["error"]),
        ),
        None => ("Unknown", "", ""),
    };
    cells![name(obj), status, message, error]
}

#[cfg(test)]
mod tests;
