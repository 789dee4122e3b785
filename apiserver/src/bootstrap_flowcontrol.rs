//! The API Priority and Fairness configuration kube-apiserver creates at
//! start (upstream `k8s.io/apiserver/pkg/apis/flowcontrol/bootstrap`, v1):
//! the mandatory PriorityLevelConfigurations `exempt` and `catch-all` and
//! FlowSchemas `exempt` and `catch-all`, and the suggested ones (`system`,
//! `node-high`, `leader-election`, `workload-high`, `workload-low`,
//! `global-default`; `system-nodes`, `system-node-high`, `probes`,
//! `system-leader-election`, `workload-leader-election`,
//! `endpoint-controller`, `kube-controller-manager`, `kube-scheduler`,
//! `kube-system-service-accounts`, `service-accounts`, `global-default`).
//!
//! Reconciled like upstream's ensurer (`pkg/registry/flowcontrol/ensurer`):
//! a missing object is created with `apf.kubernetes.io/autoupdate-spec:
//! "true"`; an existing mandatory object always gets the bootstrap spec back;
//! an existing suggested object is updated only when its annotation says
//! `true`, or, without the annotation, when it was never changed
//! (`metadata.generation` 1) — it then gets the annotation too.

use serde_json::{Value, json};

use crate::registry::Registry;
use crate::registry::object::{self, Object};
use crate::registry::store::{CreateOptions, GenericStore, UpdateOptions};
use crate::status::ApiError;

/// The annotation that tells the server whether it may rewrite the spec.
pub const AUTO_UPDATE_ANNOTATION: &str = "apf.kubernetes.io/autoupdate-spec";

const FLOWCONTROL: &str = "flowcontrol.apiserver.k8s.io";

/// Whether a bootstrap object is mandatory or suggested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Always kept at the bootstrap spec.
    Mandatory,
    /// Created when missing; updated only where the annotation allows.
    Suggested,
}

fn limited(shares: i64, lendable: i64, queues: i64, hand_size: i64, queue_length: i64) -> Value {
    json!({
        "type": "Limited",
        "limited": {
            "nominalConcurrencyShares": shares,
            "lendablePercent": lendable,
            "limitResponse": {
                "type": "Queue",
                "queuing": {"queues": queues, "handSize": hand_size, "queueLengthLimit": queue_length},
            },
        },
    })
}

/// `(name, kind, spec)` of every bootstrap PriorityLevelConfiguration.
pub fn priority_levels() -> Vec<(&'static str, Kind, Value)> {
    use Kind::*;
    vec![
        (
            "catch-all",
            Mandatory,
            json!({"type": "Limited", "limited": {
                "nominalConcurrencyShares": 5,
                "lendablePercent": 0,
                "limitResponse": {"type": "Reject"},
            }}),
        ),
        (
            "exempt",
            Mandatory,
            json!({"type": "Exempt", "exempt": {"nominalConcurrencyShares": 0, "lendablePercent": 0}}),
        ),
        ("system", Suggested, limited(30, 33, 64, 6, 50)),
        ("node-high", Suggested, limited(40, 25, 64, 6, 50)),
        ("leader-election", Suggested, limited(10, 0, 16, 4, 50)),
        ("workload-high", Suggested, limited(40, 50, 128, 6, 50)),
        ("workload-low", Suggested, limited(100, 90, 128, 6, 50)),
        ("global-default", Suggested, limited(20, 50, 128, 6, 50)),
    ]
}

fn group(name: &str) -> Value {
    json!({"kind": "Group", "group": {"name": name}})
}

fn user(name: &str) -> Value {
    json!({"kind": "User", "user": {"name": name}})
}

fn kube_system_sa(name: &str) -> Value {
    json!({"kind": "ServiceAccount", "serviceAccount": {"name": name, "namespace": "kube-system"}})
}

fn resource_rule(verbs: &[&str], groups: &[&str], resources: &[&str], namespaces: &[&str], cluster: bool) -> Value {
    let mut rule = json!({"verbs": verbs, "apiGroups": groups, "resources": resources, "namespaces": namespaces});
    if cluster && let Some(m) = rule.as_object_mut() {
        m.insert("clusterScope".into(), Value::Bool(true));
    }
    rule
}

/// Rules matching every request of `subjects`.
fn everything(subjects: Vec<Value>) -> Value {
    json!({
        "subjects": subjects,
        "resourceRules": [resource_rule(&["*"], &["*"], &["*"], &["*"], true)],
        "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
    })
}

fn flow_schema(level: &str, precedence: i64, distinguisher: Option<&str>, rules: Value) -> Value {
    let mut spec = json!({
        "priorityLevelConfiguration": {"name": level},
        "matchingPrecedence": precedence,
        "rules": [rules],
    });
    if let (Some(d), Some(m)) = (distinguisher, spec.as_object_mut()) {
        m.insert("distinguisherMethod".into(), json!({"type": d}));
    }
    spec
}

/// `(name, kind, spec)` of every bootstrap FlowSchema.
pub fn flow_schemas() -> Vec<(&'static str, Kind, Value)> {
    use Kind::*;
    const BY_USER: Option<&str> = Some("ByUser");
    const BY_NS: Option<&str> = Some("ByNamespace");
    let all_users = || vec![group("system:unauthenticated"), group("system:authenticated")];
    let leader_rules = |ns: &str| {
        vec![
            resource_rule(
                &["get", "create", "update"],
                &[""],
                &["endpoints", "configmaps"],
                &[ns],
                false,
            ),
            resource_rule(
                &["get", "create", "update"],
                &["coordination.k8s.io"],
                &["leases"],
                &["*"],
                false,
            ),
        ]
    };
    let mut leader_subjects = vec![user("system:kube-controller-manager"), user("system:kube-scheduler")];
    leader_subjects.push(kube_system_sa("*"));
    vec![
        (
            "exempt",
            Mandatory,
            flow_schema("exempt", 1, None, everything(vec![group("system:masters")])),
        ),
        (
            "catch-all",
            Mandatory,
            flow_schema("catch-all", 10000, BY_USER, everything(all_users())),
        ),
        (
            "system-nodes",
            Suggested,
            flow_schema("system", 500, BY_USER, everything(vec![group("system:nodes")])),
        ),
        (
            "system-node-high",
            Suggested,
            flow_schema(
                "node-high",
                400,
                BY_USER,
                json!({
                    "subjects": [group("system:nodes")],
                    "resourceRules": [
                        resource_rule(&["*"], &[""], &["nodes", "nodes/status"], &["*"], true),
                        resource_rule(&["*"], &["coordination.k8s.io"], &["leases"], &["*"], false),
                    ],
                }),
            ),
        ),
        (
            "probes",
            Suggested,
            flow_schema(
                "exempt",
                2,
                None,
                json!({
                    "subjects": all_users(),
                    "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz", "/readyz", "/livez"]}],
                }),
            ),
        ),
        (
            "system-leader-election",
            Suggested,
            flow_schema(
                "leader-election",
                100,
                BY_USER,
                json!({"subjects": leader_subjects, "resourceRules": leader_rules("kube-system")}),
            ),
        ),
        (
            "workload-leader-election",
            Suggested,
            flow_schema(
                "leader-election",
                200,
                BY_USER,
                json!({"subjects": [kube_system_sa("*")], "resourceRules": leader_rules("*")}),
            ),
        ),
        (
            "endpoint-controller",
            Suggested,
            flow_schema(
                "workload-high",
                150,
                BY_USER,
                json!({
                    "subjects": [
                        user("system:kube-controller-manager"),
                        kube_system_sa("endpoint-controller"),
                        kube_system_sa("endpointslicemirroring-controller"),
                    ],
                    "resourceRules": [resource_rule(&["get", "create", "update"], &[""], &["endpoints"], &["*"], false)],
                }),
            ),
        ),
        (
            "kube-controller-manager",
            Suggested,
            flow_schema(
                "workload-high",
                800,
                BY_NS,
                everything(vec![user("system:kube-controller-manager")]),
            ),
        ),
        (
            "kube-scheduler",
            Suggested,
            flow_schema(
                "workload-high",
                800,
                BY_NS,
                everything(vec![user("system:kube-scheduler")]),
            ),
        ),
        (
            "kube-system-service-accounts",
            Suggested,
            flow_schema("workload-high", 900, BY_NS, everything(vec![kube_system_sa("*")])),
        ),
        (
            "service-accounts",
            Suggested,
            flow_schema(
                "workload-low",
                9000,
                BY_USER,
                everything(vec![group("system:serviceaccounts")]),
            ),
        ),
        (
            "global-default",
            Suggested,
            flow_schema("global-default", 9900, BY_USER, everything(all_users())),
        ),
    ]
}

/// Whether every field of `wanted` has the same value in `actual` (fields
/// the server defaults are not in `wanted`).
fn covers(actual: &Value, wanted: &Value) -> bool {
    match (actual, wanted) {
        (Value::Object(a), Value::Object(w)) => w.iter().all(|(k, wv)| a.get(k).is_some_and(|av| covers(av, wv))),
        (Value::Array(a), Value::Array(w)) => a.len() == w.len() && a.iter().zip(w).all(|(av, wv)| covers(av, wv)),
        _ => actual == wanted,
    }
}

/// The value of [`AUTO_UPDATE_ANNOTATION`] on `obj`.
fn annotation(obj: &Object) -> Option<&str> {
    object::meta(obj)
        .get("annotations")
        .and_then(|a| a.get(AUTO_UPDATE_ANNOTATION))
        .and_then(Value::as_str)
}

/// Upstream's decision for an existing object: may the server rewrite it?
fn should_update(kind: Kind, current: &Object) -> bool {
    if kind == Kind::Mandatory {
        return true;
    }
    match annotation(current) {
        Some(v) => v.parse::<bool>().unwrap_or(false),
        None => object::meta(current).get("generation").and_then(Value::as_i64) == Some(1),
    }
}

async fn ensure(store: &GenericStore, name: &str, kind: Kind, spec: &Value) -> Result<(), ApiError> {
    let wanted = match json!({
        "metadata": {"name": name, "annotations": {AUTO_UPDATE_ANNOTATION: "true"}},
        "spec": spec,
    }) {
        Value::Object(m) => m,
        _ => return Ok(()),
    };
    let current = match store.get("", name).await {
        Ok(current) => current,
        Err(e) if e.code == 404 => {
            return match store.create("", wanted, &CreateOptions::default()).await {
                Ok(_) => {
                    tracing::info!(name, kind = ?kind, "created APF bootstrap object");
                    Ok(())
                }
                Err(e) if e.code == 409 => Ok(()),
                Err(e) => Err(e),
            };
        }
        Err(e) => return Err(e),
    };
    if !should_update(kind, &current) {
        return Ok(());
    }
    let annotated = annotation(&current) == Some("true");
    if annotated && current.get("spec").is_some_and(|s| covers(s, spec)) {
        return Ok(());
    }
    store
        .update_with(
            "",
            name,
            &UpdateOptions::default(),
            |old| {
                let mut new = old.clone();
                new.insert("spec".into(), spec.clone());
                if let Some(Value::Object(meta)) = new.get_mut("metadata") {
                    let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
                    if let Value::Object(a) = annotations {
                        a.insert(AUTO_UPDATE_ANNOTATION.into(), json!("true"));
                    } else {
                        *annotations = json!({AUTO_UPDATE_ANNOTATION: "true"});
                    }
                }
                Ok(new)
            },
            None,
        )
        .await
        .map(|_| tracing::info!(name, kind = ?kind, "updated APF bootstrap object"))
}

/// Creates or reconciles every bootstrap PriorityLevelConfiguration, then
/// every FlowSchema.
pub async fn ensure_flowcontrol_configuration(registry: &Registry) -> Result<(), ApiError> {
    if let Some(store) = registry.store(FLOWCONTROL, "prioritylevelconfigurations") {
        for (name, kind, spec) in priority_levels() {
            ensure(store, name, kind, &spec).await?;
        }
    }
    if let Some(store) = registry.store(FLOWCONTROL, "flowschemas") {
        for (name, kind, spec) in flow_schemas() {
            ensure(store, name, kind, &spec).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
