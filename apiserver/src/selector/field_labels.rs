//! Which fields a `fieldSelector` may name on each resource, and the fields
//! of an object it is matched against.
//!
//! Upstream answers these in two independent layers, mirrored separately:
//!
//! 1. Acceptance: `Scheme.ConvertFieldLabel`, i.e. the functions registered
//!    with `AddFieldLabelConversionFunc` in `pkg/apis/core/v1/conversion.go`,
//!    `pkg/apis/events/v1/conversion.go`, `pkg/apis/batch/v1/conversion.go`,
//!    `pkg/apis/certificates/v1/conversion.go` and
//!    `pkg/apis/resource/v1/conversion.go`; every other kind falls back to
//!    `runtime.DefaultMetaV1FieldSelectorConversion` (`runtime/conversion.go`),
//!    custom resources to the apiextensions-apiserver converter
//!    (`ConvertFieldLabel` in `apiserver/conversion/converter.go`). This is
//!    [`FieldLabelConversion`].
//! 2. Matching: each registry strategy's `ToSelectableFields` /
//!    `SelectableFields` (`pkg/registry/core/{pod,node,namespace,secret,
//!    service,replicationcontroller,event,persistentvolume,
//!    persistentvolumeclaim}/strategy.go`, `pkg/registry/apps/replicaset`,
//!    `pkg/registry/batch/job`, `pkg/registry/certificates/certificates`,
//!    `pkg/registry/resource/resourceslice`), over the generic
//!    `ObjectMetaFieldsSet`. This is [`selectable_fields`].
//!
//! The layers disagree, and clients see it: pods accept `status.podIPs` but
//! never set it (so it compares as `""`); `apps/v1` registers no conversion,
//! so ReplicaSets reject `status.replicas` although their strategy sets it;
//! namespaces and PVs set a legacy `name` field nothing can select.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::SelectorError;
use super::go_quote::go_quote;

/// How a resource words the rejection of a field label (upstream's
/// conversion functions are not consistent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldLabelRejection {
    /// `field label not supported: <label>`: most registered functions and
    /// custom resources.
    NotSupported,
    /// `"<label>" is not a known field selector: only "metadata.name",
    /// "metadata.namespace"`: kinds without a registered function.
    NotKnown,
    /// `field label "<label>" not supported for batchv1.Job`.
    NotSupportedForJob,
    /// `field label not supported for resource.k8s.io/v1, Kind=ResourceSlice:
    /// <label>`.
    NotSupportedForResourceSlice,
}

impl FieldLabelRejection {
    /// Upstream's message for rejecting `label`.
    pub fn message(self, label: &str) -> String {
        match self {
            FieldLabelRejection::NotSupported => format!("field label not supported: {label}"),
            FieldLabelRejection::NotKnown => format!(
                "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
                go_quote(label)
            ),
            FieldLabelRejection::NotSupportedForJob => {
                format!("field label {} not supported for batchv1.Job", go_quote(label))
            }
            FieldLabelRejection::NotSupportedForResourceSlice => {
                format!("field label not supported for resource.k8s.io/v1, Kind=ResourceSlice: {label}")
            }
        }
    }
}

/// One kind's registered conversion: labels accepted as they are, labels
/// accepted and renamed, and how the rest are rejected.
#[derive(Debug, PartialEq, Eq)]
struct Registered {
    accepted: &'static [&'static str],
    renamed: &'static [(&'static str, &'static str)],
    rejection: FieldLabelRejection,
}

const POD: Registered = Registered {
    accepted: &[
        "metadata.name",
        "metadata.namespace",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.podIPs",
        "status.nominatedNodeName",
    ],
    // Old v1 clients send spec.host.
    renamed: &[("spec.host", "spec.nodeName")],
    rejection: FieldLabelRejection::NotSupported,
};
const NODE: Registered = Registered {
    accepted: &["metadata.name", "spec.unschedulable"],
    renamed: &[],
    rejection: FieldLabelRejection::NotSupported,
};
const REPLICATION_CONTROLLER: Registered = Registered {
    accepted: &["metadata.name", "metadata.namespace", "status.replicas"],
    renamed: &[],
    rejection: FieldLabelRejection::NotSupported,
};
const CORE_EVENT: Registered = Registered {
    accepted: &[
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
        "metadata.namespace",
        "metadata.name",
    ],
    renamed: &[],
    rejection: FieldLabelRejection::NotSupported,
};
const NAMESPACE: Registered = Registered {
    accepted: &["status.phase", "metadata.name"],
    renamed: &[],
    rejection: FieldLabelRejection::NotSupported,
};
const SECRET: Registered = Registered {
    accepted: &["type", "metadata.namespace", "metadata.name"],
    renamed: &[],
    rejection: FieldLabelRejection::NotSupported,
};
const SERVICE: Registered = Registered {
    accepted: &["metadata.namespace", "metadata.name", "spec.clusterIP", "spec.type"],
    renamed: &[],
    rejection: FieldLabelRejection::NotSupported,
};
/// events.k8s.io shares core Event storage: its spellings map to core's.
const EVENTS_V1_EVENT: Registered = Registered {
    accepted: &["reason", "source", "type", "metadata.namespace", "metadata.name"],
    renamed: &[
        ("regarding.kind", "involvedObject.kind"),
        ("regarding.namespace", "involvedObject.namespace"),
        ("regarding.name", "involvedObject.name"),
        ("regarding.uid", "involvedObject.uid"),
        ("regarding.apiVersion", "involvedObject.apiVersion"),
        ("regarding.resourceVersion", "involvedObject.resourceVersion"),
        ("regarding.fieldPath", "involvedObject.fieldPath"),
        ("reportingController", "reportingComponent"),
    ],
    rejection: FieldLabelRejection::NotSupported,
};
const JOB: Registered = Registered {
    accepted: &["metadata.name", "metadata.namespace", "status.successful"],
    renamed: &[],
    rejection: FieldLabelRejection::NotSupportedForJob,
};
const CERTIFICATE_SIGNING_REQUEST: Registered = Registered {
    accepted: &["metadata.name", "spec.signerName"],
    renamed: &[],
    rejection: FieldLabelRejection::NotSupported,
};
const RESOURCE_SLICE: Registered = Registered {
    accepted: &["metadata.name", "spec.nodeName", "spec.driver"],
    renamed: &[],
    rejection: FieldLabelRejection::NotSupportedForResourceSlice,
};
/// `runtime.DefaultMetaV1FieldSelectorConversion`.
const DEFAULT: Registered = Registered {
    accepted: &["metadata.name", "metadata.namespace"],
    renamed: &[],
    rejection: FieldLabelRejection::NotKnown,
};

/// The registered conversion of a built-in group/resource (served version).
fn registered(group: &str, resource: &str) -> &'static Registered {
    match (group, resource) {
        ("", "pods") => &POD,
        ("", "nodes") => &NODE,
        ("", "replicationcontrollers") => &REPLICATION_CONTROLLER,
        ("", "events") => &CORE_EVENT,
        ("", "namespaces") => &NAMESPACE,
        ("", "secrets") => &SECRET,
        ("", "services") => &SERVICE,
        ("events.k8s.io", "events") => &EVENTS_V1_EVENT,
        ("batch", "jobs") => &JOB,
        ("certificates.k8s.io", "certificatesigningrequests") => &CERTIFICATE_SIGNING_REQUEST,
        ("resource.k8s.io", "resourceslices") => &RESOURCE_SLICE,
        _ => &DEFAULT,
    }
}

/// Which field labels a resource accepts and what they become (upstream's
/// `Scheme.ConvertFieldLabel` for one kind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldLabelConversion(Conversion);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Conversion {
    Registered(&'static Registered),
    CustomResource {
        namespaced: bool,
        selectable_fields: Vec<String>,
    },
}

impl FieldLabelConversion {
    /// The conversion of a built-in resource; a group/resource without a
    /// registered function (including every unknown one) accepts only
    /// `metadata.name` and `metadata.namespace`.
    pub fn builtin(group: &str, resource: &str) -> Self {
        FieldLabelConversion(Conversion::Registered(registered(group, resource)))
    }

    /// The conversion of a custom resource: `metadata.name`,
    /// `metadata.namespace` when namespaced, and the CRD version's
    /// `selectableFields` JSON paths without the leading dot (`spec.color`).
    pub fn custom_resource(namespaced: bool, selectable_fields: Vec<String>) -> Self {
        FieldLabelConversion(Conversion::CustomResource {
            namespaced,
            selectable_fields,
        })
    }

    /// The label `label` stands for, or upstream's rejection.
    pub fn convert(&self, label: &str) -> Result<String, SelectorError> {
        let reject = |rejection| SelectorError::FieldLabelNotSupported {
            label: label.to_string(),
            rejection,
        };
        match &self.0 {
            Conversion::Registered(reg) => {
                if reg.accepted.contains(&label) {
                    return Ok(label.to_string());
                }
                match reg.renamed.iter().find(|(from, _)| *from == label) {
                    Some((_, to)) => Ok(to.to_string()),
                    None => Err(reject(reg.rejection)),
                }
            }
            Conversion::CustomResource {
                namespaced,
                selectable_fields,
            } => {
                let ok = label == "metadata.name"
                    || (*namespaced && label == "metadata.namespace")
                    || selectable_fields.iter().any(|f| f == label);
                if ok {
                    Ok(label.to_string())
                } else {
                    Err(reject(FieldLabelRejection::NotSupported))
                }
            }
        }
    }
}

/// The fields of `object` (as served, JSON) that a field selector on
/// `group`/`resource` matches against: upstream's `ToSelectableFields` for
/// the built-in kinds that define one, `metadata.name` (and
/// `metadata.namespace` for namespaced objects) for every other resource.
/// Values are strings as upstream formats them (`"true"`, `"3"`).
pub fn selectable_fields(group: &str, resource: &str, object: &Map<String, Value>) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    let mut set = |name: &str, value: String| {
        fields.insert(name.to_string(), value);
    };
    let s = |path: &str| str_at(object, path);
    let namespaced = match (group, resource) {
        ("", "pods") => {
            set("spec.nodeName", s("/spec/nodeName"));
            set("spec.restartPolicy", s("/spec/restartPolicy"));
            set("spec.schedulerName", s("/spec/schedulerName"));
            set("spec.serviceAccountName", s("/spec/serviceAccountName"));
            set("spec.hostNetwork", bool_at(object, "/spec/hostNetwork"));
            set("status.phase", s("/status/phase"));
            // Upstream reads status.podIPs[0]; v1 objects also carry status.podIP.
            let pod_ip = at(object, "/status/podIPs/0/ip")
                .and_then(Value::as_str)
                .map(str::to_string);
            set("status.podIP", pod_ip.unwrap_or_else(|| s("/status/podIP")));
            set("status.nominatedNodeName", s("/status/nominatedNodeName"));
            true
        }
        ("", "nodes") => {
            set("spec.unschedulable", bool_at(object, "/spec/unschedulable"));
            false
        }
        ("", "namespaces") => {
            set("status.phase", s("/status/phase"));
            set("name", s("/metadata/name"));
            false
        }
        ("", "secrets") => {
            set("type", s("/type"));
            true
        }
        ("", "services") => {
            set("spec.clusterIP", s("/spec/clusterIP"));
            set("spec.type", s("/spec/type"));
            true
        }
        ("", "replicationcontrollers") | ("apps", "replicasets") => {
            set("status.replicas", int_at(object, "/status/replicas"));
            true
        }
        ("", "events") | ("events.k8s.io", "events") => {
            event_fields(object, &mut set);
            true
        }
        ("", "persistentvolumes") => {
            set("name", s("/metadata/name"));
            false
        }
        ("", "persistentvolumeclaims") => {
            set("name", s("/metadata/name"));
            true
        }
        ("batch", "jobs") => {
            set("status.successful", int_at(object, "/status/succeeded"));
            true
        }
        ("certificates.k8s.io", "certificatesigningrequests") => {
            set("spec.signerName", s("/spec/signerName"));
            false
        }
        ("resource.k8s.io", "resourceslices") => {
            set("spec.nodeName", s("/spec/nodeName"));
            set("spec.driver", s("/spec/driver"));
            false
        }
        // Generic registry: metadata only. Cluster-scoped objects have no
        // namespace, and a missing field matches like "".
        _ => !s("/metadata/namespace").is_empty(),
    };
    set("metadata.name", s("/metadata/name"));
    if namespaced {
        set("metadata.namespace", s("/metadata/namespace"));
    }
    fields
}

/// Event fields under core's names, from either wire format: core/v1
/// (`involvedObject`, `reportingComponent`, `source.component`) or
/// events.k8s.io/v1 (`regarding`, `reportingController`,
/// `deprecatedSource.component`).
fn event_fields(object: &Map<String, Value>, set: &mut impl FnMut(&str, String)) {
    let events_v1 = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .is_some_and(|v| v.starts_with("events.k8s.io/"));
    let (reference, reporting, source) = if events_v1 {
        ("/regarding", "/reportingController", "/deprecatedSource/component")
    } else {
        ("/involvedObject", "/reportingComponent", "/source/component")
    };
    for field in [
        "kind",
        "namespace",
        "name",
        "uid",
        "apiVersion",
        "resourceVersion",
        "fieldPath",
    ] {
        set(
            &format!("involvedObject.{field}"),
            str_at(object, &format!("{reference}/{field}")),
        );
    }
    let reporting = str_at(object, reporting);
    let source = Some(str_at(object, source))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| reporting.clone());
    set("reason", str_at(object, "/reason"));
    set("reportingComponent", reporting);
    set("source", source);
    set("type", str_at(object, "/type"));
}

/// The value at JSON pointer `path` (`/spec/nodeName`) of `object`.
fn at<'a>(object: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let path = path.strip_prefix('/')?;
    let (first, rest) = path.split_once('/').unwrap_or((path, ""));
    let value = object.get(first)?;
    if rest.is_empty() {
        Some(value)
    } else {
        value.pointer(&format!("/{rest}"))
    }
}

/// The string at `path`, `""` when absent or not a string.
fn str_at(object: &Map<String, Value>, path: &str) -> String {
    at(object, path).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// `"true"` or `"false"` (absent is false), as Go formats a bool.
fn bool_at(object: &Map<String, Value>, path: &str) -> String {
    at(object, path).and_then(Value::as_bool).unwrap_or(false).to_string()
}

/// The integer at `path` in decimal (absent is `0`), as `strconv.Itoa`.
fn int_at(object: &Map<String, Value>, path: &str) -> String {
    let v = at(object, path);
    let n = v
        .and_then(Value::as_i64)
        .or_else(|| v.and_then(Value::as_f64).map(|f| f as i64));
    n.unwrap_or(0).to_string()
}

#[cfg(test)]
mod tests;
