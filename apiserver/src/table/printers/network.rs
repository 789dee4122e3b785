//! Networking: ingresses and ingress classes, network policies, endpoint
//! slices, IP addresses and service CIDRs.

use serde_json::Value;
use time::OffsetDateTime;

use super::core::load_balancer_addresses;
use super::{Object, Printed, Printer, cells};
use crate::table::columns::{AGE, ColumnDefinition, NAME, string};
use crate::table::duration;
use crate::table::field::Fields;
use crate::table::format::list_with_more;
use crate::table::labels::format_label_selector;

fn name(obj: &Object) -> &str {
    obj.str_at(&["metadata", "name"])
}

fn age(obj: &Object, now: OffsetDateTime) -> String {
    duration::since(obj.time_at(&["metadata", "creationTimestamp"]), now)
}

const INGRESS_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string("Class", "The ingress class that implements this ingress."),
    string("Hosts", "Hosts the ingress rules match."),
    string("Address", "Addresses of the load balancer serving the ingress."),
    string("Ports", "Ports the ingress is served on."),
    AGE,
];

pub(crate) static INGRESSES: Printer = Printer {
    columns: INGRESS_COLUMNS,
    print: print_ingress,
};

fn print_ingress(obj: &Object, now: OffsetDateTime) -> Printed {
    let ports = if obj.list_at(&["spec", "tls"]).is_empty() {
        "80"
    } else {
        "80, 443"
    };
    cells![
        name(obj),
        obj.opt_str(&["spec", "ingressClassName"]).unwrap_or("<none>"),
        format_hosts(obj.list_at(&["spec", "rules"])),
        // The server prints wide, so the address list is not shortened.
        load_balancer_addresses(obj.list_at(&["status", "loadBalancer", "ingress"])).join(","),
        ports,
        age(obj, now),
    ]
}

/// Upstream's `formatHosts`: hosts of the first three rules (skipping rules
/// without one), then `+ N more...` counting every further rule; `*` if none.
fn format_hosts(rules: &[Value]) -> String {
    const MAX: usize = 3;
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == MAX {
            more = true;
        }
        let host = rule.str_at(&["host"]);
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".to_string();
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", rules.len() - MAX)
    } else {
        joined
    }
}

const INGRESS_CLASS_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string("Controller", "The controller that implements this class."),
    string("Parameters", "The resource holding the class's parameters."),
    AGE,
];

pub(crate) static INGRESS_CLASSES: Printer = Printer {
    columns: INGRESS_CLASS_COLUMNS,
    print: print_ingress_class,
};

fn print_ingress_class(obj: &Object, now: OffsetDateTime) -> Printed {
    let parameters = match obj.at(&["spec", "parameters"]) {
        Some(p) => {
            let kind = match p.opt_str(&["apiGroup"]) {
                Some(group) => format!("{}.{group}", p.str_at(&["kind"])),
                None => p.str_at(&["kind"]).to_string(),
            };
            format!("{kind}/{}", p.str_at(&["name"]))
        }
        None => "<none>".to_string(),
    };
    cells![
        name(obj),
        obj.str_at(&["spec", "controller"]),
        parameters,
        age(obj, now)
    ]
}

const NETWORK_POLICY_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string("Pod-Selector", "Label query over the pods the policy applies to."),
    AGE,
];

pub(crate) static NETWORK_POLICIES: Printer = Printer {
    columns: NETWORK_POLICY_COLUMNS,
    print: print_network_policy,
};

fn print_network_policy(obj: &Object, now: OffsetDateTime) -> Printed {
    // The pod selector is a struct upstream, never nil: absent means empty.
    let empty = Value::Object(Default::default());
    let selector = obj.at(&["spec", "podSelector"]).unwrap_or(&empty);
    cells![name(obj), format_label_selector(Some(selector)), age(obj, now)]
}

const ENDPOINT_SLICE_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string("AddressType", "The type of the slice's addresses."),
    string("Ports", "Ports of the endpoints in the slice."),
    string("Endpoints", "Addresses of the endpoints in the slice."),
    AGE,
];

pub(crate) static ENDPOINT_SLICES: Printer = Printer {
    columns: ENDPOINT_SLICE_COLUMNS,
    print: print_endpoint_slice,
};

fn print_endpoint_slice(obj: &Object, now: OffsetDateTime) -> Printed {
    let ports: Vec<String> = obj
        .list_at(&["ports"])
        .iter()
        .map(|p| match (p.opt_int(&["port"]), p.opt_str(&["name"])) {
            (Some(port), _) => port.to_string(),
            (None, Some(name)) => name.to_string(),
            (None, None) => "*".to_string(),
        })
        .collect();
    let addresses: Vec<String> = obj
        .list_at(&["endpoints"])
        .iter()
        .flat_map(|e| {
            e.list_at(&["addresses"])
                .iter()
                .map(|a| a.as_str().unwrap_or("").to_string())
        })
        .collect();
    cells![
        name(obj),
        obj.str_at(&["addressType"]),
        list_with_more(&ports, 3),
        list_with_more(&addresses, 3),
        age(obj, now),
    ]
}

/// Upstream defines two columns for IP addresses but prints three cells
/// (the age has no column); kubectl ignores the extra cell.
const IP_ADDRESS_COLUMNS: &[ColumnDefinition] =
    &[NAME, string("ParentRef", "The object the IP address is allocated to.")];

pub(crate) static IP_ADDRESSES: Printer = Printer {
    columns: IP_ADDRESS_COLUMNS,
    print: print_ip_address,
};

fn print_ip_address(obj: &Object, now: OffsetDateTime) -> Printed {
    let parent = match obj.at(&["spec", "parentRef"]) {
        Some(p) => {
            let (group, resource) = (p.str_at(&["group"]), p.str_at(&["resource"]));
            let mut text = if group.is_empty() {
                resource.to_string()
            } else {
                format!("{resource}.{group}")
            }
            .to_lowercase();
            if let Some(ns) = p.opt_str(&["namespace"]).filter(|ns| !ns.is_empty()) {
                text.push('/');
                text.push_str(ns);
            }
            text.push('/');
            text.push_str(p.str_at(&["name"]));
            text
        }
        None => "<none>".to_string(),
    };
    cells![name(obj), parent, age(obj, now)]
}

const SERVICE_CIDR_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string("CIDRs", "The IP ranges service cluster IPs are allocated from."),
    AGE,
];

pub(crate) static SERVICE_CIDRS: Printer = Printer {
    columns: SERVICE_CIDR_COLUMNS,
    print: print_service_cidr,
};

fn print_service_cidr(obj: &Object, now: OffsetDateTime) -> Printed {
    let cidrs: Vec<&str> = obj
        .list_at(&["spec", "cidrs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    cells![name(obj), cidrs.join(","), age(obj, now)]
}

#[cfg(test)]
mod tests;
