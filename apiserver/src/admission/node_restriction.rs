//! NodeRestriction: what a kubelet (`system:node:<name>` in `system:nodes`)
//! may change, on top of the Node authorizer, with upstream's messages
//! (`plugin/pkg/admission/noderestriction`):
//!
//! - its own Node only, without setting or changing labels in the
//!   `node-restriction.kubernetes.io/` namespace or any other
//!   `kubernetes.io`/`k8s.io` label that is not a kubelet label, and
//!   without changing taints;
//! - pods: create mirror pods bound to itself (owned by its Node, referring
//!   to no secrets, configmaps, claims or service account), delete and
//!   evict pods bound to itself, and update the status of those pods
//!   (not their labels);
//! - its own Lease in `kube-node-lease`, its own CSINode, and
//!   ResourceSlices whose `spec.nodeName` is itself (create and delete;
//!   the Node authorizer checks the rest);
//! - service-account tokens only bound to a pod (by name and uid) that is
//!   bound to itself;
//! - CertificateSigningRequests for the kubelet signers only with
//!   `CN=system:node:<itself>`.
//!
//! Requests of other users pass untouched. Off by default, as upstream
//! (`--enable-admission-plugins=NodeRestriction`).

use serde_json::Value;

use super::{Attributes, Operation, forbidden};
use crate::authn::UserInfo;
use crate::registry::Registry;
use crate::registry::object::{self, Object};
use crate::status::ApiError;

const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";
const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// Labels a kubelet may set on its Node (`kubeletapis.IsKubeletLabel`).
const KUBELET_LABELS: &[&str] = &[
    "kubernetes.io/hostname",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
];
const KUBELET_LABEL_NAMESPACES: &[&str] = &["kubelet.kubernetes.io", "node.kubernetes.io"];

/// The node a user is, if it is one (`NodeIdentity`): `Some("")` for a
/// node user whose name lacks the node's.
pub fn node_identity(user: &UserInfo) -> Option<&str> {
    let name = user.name.strip_prefix("system:node:")?;
    user.groups.iter().any(|g| g == "system:nodes").then_some(name)
}

/// Whether the request is checked in the mutating phase (deletes, which
/// have no validating phase, and evictions, whose object is no pod);
/// creates and updates are checked in the validating phase with the old object.
pub fn in_admit_phase(attrs: &Attributes<'_>) -> bool {
    attrs.operation == Operation::Delete || attrs.subresource == "eviction"
}

/// Checks a node's request; `obj` is the object to be written (`None` for deletes).
pub async fn check(registry: &Registry, attrs: &Attributes<'_>, obj: Option<&Object>) -> Result<(), ApiError> {
    let Some(node) = node_identity(attrs.user) else {
        return Ok(());
    };
    let deny = |why: String| Err(forbidden(attrs, obj, &why));
    if node.is_empty() {
        return deny(format!("could not determine node from user {:?}", attrs.user.name));
    }
    match (attrs.resource.group.as_str(), attrs.resource.resource.as_str()) {
        ("", "pods") => match attrs.subresource {
            "" => match (attrs.operation, obj) {
                (Operation::Create, Some(pod)) => admit_pod_create(registry, node, pod).await.map_or(Ok(()), deny),
                (Operation::Delete, _) => {
                    if pod_node(registry, attrs.namespace, attrs.name).await? != node {
                        return deny(format!(
                            "node {node:?} can only delete pods with spec.nodeName set to itself"
                        ));
                    }
                    Ok(())
                }
                (op, _) => deny(format!(
                    "unexpected operation {:?}, node {node:?} can only create and delete mirror pods",
                    op_name(op)
                )),
            },
            "status" => match (attrs.operation, attrs.old, obj) {
                (Operation::Update, Some(old), Some(new)) => {
                    if str_at(old, &["spec", "nodeName"]) != node {
                        return deny(format!(
                            "node {node:?} can only update pod status for pods with spec.nodeName set to itself"
                        ));
                    }
                    if object::labels(old) != object::labels(new) {
                        return deny(format!("node {node:?} cannot update labels through pod status"));
                    }
                    if claim_statuses(old) != claim_statuses(new) {
                        return deny(format!("node {node:?} cannot update resource claim statues"));
                    }
                    Ok(())
                }
                (op, _, _) => deny(format!("unexpected operation {:?}", op_name(op))),
            },
            "eviction" => {
                let name = if attrs.name.is_empty() {
                    obj.map(object::name).unwrap_or("")
                } else {
                    attrs.name
                };
                if pod_node(registry, attrs.namespace, name).await? != node {
                    return deny(format!(
                        "node {node} can only evict pods with spec.nodeName set to itself"
                    ));
                }
                Ok(())
            }
            sub => deny(format!(
                "unexpected pod subresource {sub:?}, only 'status' and 'eviction' are allowed"
            )),
        },
        ("", "nodes") => {
            let requested = if attrs.name.is_empty() {
                obj.map(object::name).unwrap_or("")
            } else {
                attrs.name
            };
            if requested != node {
                return deny(format!("node {node:?} is not allowed to modify node {requested:?}"));
            }
            match (attrs.operation, attrs.old, obj) {
                (Operation::Create, _, Some(new)) => {
                    if new
                        .get("spec")
                        .and_then(|s| s.get("configSource"))
                        .is_some_and(|c| !c.is_null())
                    {
                        return deny(format!(
                            "node {node:?} is not allowed to create pods with a non-nil configSource"
                        ));
                    }
                    let bad = forbidden_labels(&object::labels(new), &Default::default());
                    if !bad.is_empty() {
                        return deny(format!(
                            "node {node:?} is not allowed to set the following labels: {}",
                            bad.join(", ")
                        ));
                    }
                    Ok(())
                }
                (Operation::Update, Some(old), Some(new)) => {
                    let source = |o: &Object| o.get("spec").and_then(|s| s.get("configSource")).cloned();
                    if source(new).is_some_and(|c| !c.is_null()) && source(new) != source(old) {
                        return deny(format!(
                            "node {node:?} is not allowed to update configSource to a new non-nil configSource"
                        ));
                    }
                    if taints(new) != taints(old) {
                        return deny(format!("node {node:?} is not allowed to modify taints"));
                    }
                    let bad = forbidden_labels(&object::labels(new), &object::labels(old));
                    if !bad.is_empty() {
                        return deny(format!("is not allowed to modify labels: {}", bad.join(", ")));
                    }
                    Ok(())
                }
                _ => Ok(()),
            }
        }
        ("", "persistentvolumeclaims") if attrs.subresource != "status" => deny("may only update PVC status".into()),
        ("", "serviceaccounts") if attrs.operation == Operation::Create && attrs.subresource == "token" => match obj {
            Some(request) => admit_token_request(registry, attrs, node, request)
                .await?
                .map_or(Ok(()), deny),
            None => Ok(()),
        },
        ("certificates.k8s.io", "certificatesigningrequests")
            if attrs.operation == Operation::Create && attrs.subresource.is_empty() =>
        {
            match obj.and_then(|csr| node_csr_refusal(node, csr)) {
                Some(why) => deny(why),
                None => Ok(()),
            }
        }
        ("storage.k8s.io", "csinodes") => {
            let name = match attrs.operation {
                Operation::Create => obj.map(object::name).unwrap_or(""),
                _ => attrs.name,
            };
            if name != node {
                return deny("can only access CSINode with the same name as the requesting node".into());
            }
            Ok(())
        }
        ("resource.k8s.io", "resourceslices") => match attrs.operation {
            Operation::Create if obj.is_some_and(|s| str_at(s, &["spec", "nodeName"]) != node) => {
                deny("can only create ResourceSlice with the same NodeName as the requesting node".into())
            }
            Operation::Delete => {
                let stored = match (attrs.old, registry.store_for(attrs.resource)) {
                    (Some(old), _) => Some(old.clone()),
                    (None, Some(store)) => Some(store.get(attrs.namespace, attrs.name).await?),
                    (None, None) => None,
                };
                if stored.is_some_and(|s| str_at(&s, &["spec", "nodeName"]) != node) {
                    return deny("can only delete ResourceSlice with the same NodeName as the requesting node".into());
                }
                Ok(())
            }
            _ => Ok(()),
        },
        ("coordination.k8s.io", "leases") => {
            if attrs.namespace != NODE_LEASE_NAMESPACE {
                return deny(format!(
                    "can only access leases in the {NODE_LEASE_NAMESPACE:?} system namespace"
                ));
            }
            let name = match attrs.operation {
                Operation::Create => obj.map(object::name).unwrap_or(""),
                _ => attrs.name,
            };
            if name != node {
                return deny("can only access node lease with the same name as the requesting node".into());
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn op_name(op: Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
    }
}

fn str_at<'a>(obj: &'a Object, path: &[&str]) -> &'a str {
    super::str_at(obj, path)
}

fn taints(node: &Object) -> Value {
    node.get("spec")
        .and_then(|s| s.get("taints"))
        .filter(|t| t.as_array().is_some_and(|a| !a.is_empty()))
        .cloned()
        .unwrap_or(Value::Null)
}

/// Signers whose certificates name a node.
const KUBELET_SIGNERS: &[&str] = &[
    "kubernetes.io/kubelet-serving",
    "kubernetes.io/kube-apiserver-client-kubelet",
];

/// Why a node may not create this CSR, if it may not: a request to a
/// kubelet signer must be for the node's own name.
fn node_csr_refusal(node: &str, csr: &Object) -> Option<String> {
    use base64::Engine;
    use x509_parser::prelude::FromDer;
    let signer = str_at(csr, &["spec", "signerName"]);
    if !KUBELET_SIGNERS.contains(&signer) {
        return None;
    }
    let common_name = || -> Result<String, String> {
        let encoded = str_at(csr, &["spec", "request"]);
        let pem = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|e| e.to_string())?;
        let (_, block) = x509_parser::pem::parse_x509_pem(&pem).map_err(|e| e.to_string())?;
        if block.label != "CERTIFICATE REQUEST" {
            return Err("PEM block type must be CERTIFICATE REQUEST".into());
        }
        let (_, request) = x509_parser::certification_request::X509CertificationRequest::from_der(&block.contents)
            .map_err(|e| e.to_string())?;
        let subject = &request.certification_request_info.subject;
        Ok(subject
            .iter_common_name()
            .last()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or("")
            .to_string())
    };
    match common_name() {
        Err(e) => Some(format!("unable to parse csr: {e}")),
        Ok(cn) if cn != format!("system:node:{node}") => {
            Some(format!("can only create a node CSR with CN=system:node:{node}"))
        }
        Ok(_) => None,
    }
}

/// `status.resourceClaimStatuses` as (name, resourceClaimName) pairs.
fn claim_statuses(pod: &Object) -> Vec<(String, Option<String>)> {
    pod.get("status")
        .and_then(|s| s.get("resourceClaimStatuses"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|s| {
            let name = s.get("name").and_then(Value::as_str).unwrap_or("").to_string();
            let claim = s.get("resourceClaimName").and_then(Value::as_str).map(String::from);
            (name, claim)
        })
        .collect()
}

/// Why a node may not have this TokenRequest, if it may not: the token
/// must be bound to a pod, by name and uid, that is bound to the node.
async fn admit_token_request(
    registry: &Registry,
    attrs: &Attributes<'_>,
    node: &str,
    request: &Object,
) -> Result<Option<String>, ApiError> {
    let reference = request.get("spec").and_then(|s| s.get("boundObjectRef"));
    let field = |k: &str| reference.and_then(|r| r.get(k)).and_then(Value::as_str).unwrap_or("");
    if reference.is_none_or(Value::is_null)
        || field("apiVersion") != "v1"
        || field("kind") != "Pod"
        || field("name").is_empty()
    {
        return Ok(Some("node requested token not bound to a pod".into()));
    }
    let uid = field("uid");
    if uid.is_empty() {
        return Ok(Some("node requested token with a pod binding without a uid".into()));
    }
    let Some(pods) = registry.store("", "pods") else {
        return Ok(None);
    };
    let pod = pods.get(attrs.namespace, field("name")).await?;
    if uid != object::uid(&pod) {
        return Ok(Some(format!(
            "the UID in the bound object reference ({uid}) does not match the UID in record. The object might have been deleted and then recreated"
        )));
    }
    if str_at(&pod, &["spec", "nodeName"]) != node {
        return Ok(Some(
            "node requested token bound to a pod scheduled on a different node".into(),
        ));
    }
    Ok(None)
}

/// The node a stored pod is bound to (404 when it does not exist).
async fn pod_node(registry: &Registry, namespace: &str, name: &str) -> Result<String, ApiError> {
    let Some(pods) = registry.store("", "pods") else {
        return Ok(String::new());
    };
    let pod = pods.get(namespace, name).await?;
    Ok(str_at(&pod, &["spec", "nodeName"]).to_string())
}

/// Labels added, removed or changed that a kubelet may not touch, sorted.
fn forbidden_labels(
    new: &std::collections::BTreeMap<String, String>,
    old: &std::collections::BTreeMap<String, String>,
) -> Vec<String> {
    let mut modified: Vec<&String> = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, _)| k)
        .chain(old.keys().filter(|k| !new.contains_key(*k)))
        .collect();
    modified.sort();
    modified.dedup();
    modified
        .into_iter()
        .filter(|label| {
            let ns = label.split_once('/').map(|(n, _)| n).unwrap_or("");
            let under = |domain: &str| ns == domain || ns.ends_with(&format!(".{domain}"));
            let kubelet_label =
                KUBELET_LABELS.contains(&label.as_str()) || KUBELET_LABEL_NAMESPACES.iter().any(|d| under(d));
            under("node-restriction.kubernetes.io") || ((under("kubernetes.io") || under("k8s.io")) && !kubelet_label)
        })
        .cloned()
        .collect()
}

/// Why a node may not create this pod, if it may not.
async fn admit_pod_create(registry: &Registry, node: &str, pod: &Object) -> Option<String> {
    let has_mirror = pod
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(MIRROR_POD_ANNOTATION))
        .is_some();
    if !has_mirror {
        return Some(format!(
            "pod does not have {MIRROR_POD_ANNOTATION:?} annotation, node {node:?} can only create mirror pods"
        ));
    }
    if str_at(pod, &["spec", "nodeName"]) != node {
        return Some(format!(
            "node {node:?} can only create pods with spec.nodeName set to itself"
        ));
    }
    let owners = pod
        .get("metadata")
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    match owners.as_slice() {
        [] => {
            return Some(format!(
                "node {node:?} can only create pods with an owner reference set to itself"
            ));
        }
        [owner] => {
            let f = |k: &str| owner.get(k).and_then(Value::as_str).unwrap_or("");
            if f("apiVersion") != "v1" || f("kind") != "Node" || f("name") != node {
                return Some(format!(
                    "node {node:?} can only create pods with an owner reference set to itself"
                ));
            }
            if owner.get("controller").and_then(Value::as_bool) != Some(true) {
                return Some(format!(
                    "node {node:?} can only create pods with a controller owner reference set to itself"
                ));
            }
            if owner.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true) {
                return Some(format!(
                    "node {node:?} must not set blockOwnerDeletion on an owner reference"
                ));
            }
            let uid = match registry.store("", "nodes") {
                Some(nodes) => match nodes.get("", node).await {
                    Ok(n) => object::meta_str(&n, "uid").to_string(),
                    Err(e) => return Some(format!("error looking up node {node} to verify uid: {}", e.message)),
                },
                None => String::new(),
            };
            if f("uid") != uid {
                return Some(format!("node {node} UID mismatch: expected {} got {uid}", f("uid")));
            }
        }
        _ => {
            return Some(format!(
                "node {node:?} can only create pods with a single owner reference set to itself"
            ));
        }
    }
    let spec = pod.get("spec").cloned().unwrap_or(Value::Null);
    if spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
    {
        return Some(format!(
            "node {node:?} can not create pods that reference a service account"
        ));
    }
    if references(&spec, Ref::Secret) {
        return Some(format!("node {node:?} can not create pods that reference secrets"));
    }
    if references(&spec, Ref::ConfigMap) {
        return Some(format!("node {node:?} can not create pods that reference configmaps"));
    }
    let volumes = spec
        .get("volumes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let projected = |kind: &str| {
        volumes.iter().any(|v| {
            v.pointer("/projected/sources")
                .and_then(Value::as_array)
                .is_some_and(|s| s.iter().any(|src| src.get(kind).is_some()))
        })
    };
    if projected("clusterTrustBundle") {
        return Some(format!(
            "node {node:?} can not create pods that reference clustertrustbundles"
        ));
    }
    if volumes.iter().any(|v| v.get("persistentVolumeClaim").is_some()) {
        return Some(format!(
            "node {node:?} can not create pods that reference persistentvolumeclaims"
        ));
    }
    None
}

#[derive(Clone, Copy, PartialEq)]
enum Ref {
    Secret,
    ConfigMap,
}

/// Whether a pod spec names any secret (or configmap), like upstream's
/// `VisitPodSecretNames` / `VisitPodConfigmapNames` over every container.
fn references(spec: &Value, r: Ref) -> bool {
    let volumes = spec.get("volumes").and_then(Value::as_array);
    let containers = ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .filter_map(|k| spec.get(*k).and_then(Value::as_array))
        .flatten();
    let (volume_keys, projected_key, env_key, env_from_key): (&[&str], _, _, _) = match r {
        Ref::Secret => (
            &[
                "secret",
                "azureFile",
                "cephfs",
                "cinder",
                "flexVolume",
                "rbd",
                "scaleIO",
                "iscsi",
                "storageos",
                "csi",
            ],
            "secret",
            "secretKeyRef",
            "secretRef",
        ),
        Ref::ConfigMap => (&["configMap"], "configMap", "configMapKeyRef", "configMapRef"),
    };
    if r == Ref::Secret
        && spec
            .get("imagePullSecrets")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    {
        return true;
    }
    let volume_hit = volumes.into_iter().flatten().any(|v| {
        volume_keys.iter().any(|k| match (r, *k) {
            (Ref::Secret, "secret") | (Ref::ConfigMap, _) => v.get(*k).is_some(),
            (Ref::Secret, "csi") => v.pointer("/csi/nodePublishSecretRef").is_some(),
            (Ref::Secret, "azureFile") => v.get("azureFile").is_some(),
            (Ref::Secret, other) => v.get(other).and_then(|s| s.get("secretRef")).is_some(),
        }) || v
            .pointer("/projected/sources")
            .and_then(Value::as_array)
            .is_some_and(|s| s.iter().any(|src| src.get(projected_key).is_some()))
    });
    volume_hit
        || containers.into_iter().any(|c| {
            c.get("env").and_then(Value::as_array).is_some_and(|env| {
                env.iter()
                    .any(|e| e.pointer(&format!("/valueFrom/{env_key}")).is_some())
            }) || c
                .get("envFrom")
                .and_then(Value::as_array)
                .is_some_and(|env| env.iter().any(|e| e.get(env_from_key).is_some()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn off_unless_enabled() {
        use crate::admission::{Chain, Plugin};
        assert!(!Chain::default().plugins().contains(&Plugin::NodeRestriction));
        let chain = Chain::from_flags(&["NodeRestriction".into()], &[]).unwrap();
        let at = |p| chain.plugins().iter().position(|q| *q == p);
        // Upstream's order: after ServiceAccount, before TaintNodesByCondition.
        assert_eq!(at(Plugin::NodeRestriction), at(Plugin::ServiceAccount).map(|i| i + 1));
        assert_eq!(
            at(Plugin::TaintNodesByCondition),
            at(Plugin::NodeRestriction).map(|i| i + 1)
        );
    }

    #[test]
    fn identity() {
        let user = |name: &str, groups: &[&str]| UserInfo {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        };
        assert_eq!(node_identity(&user("system:node:n1", &["system:nodes"])), Some("n1"));
        assert_eq!(node_identity(&user("system:node:", &["system:nodes"])), Some(""));
        assert_eq!(node_identity(&user("system:node:n1", &["system:authenticated"])), None);
        assert_eq!(node_identity(&user("alice", &["system:nodes"])), None);
    }

    #[test]
    fn label_rules() {
        let check = |new: &[(&str, &str)], old: &[(&str, &str)], want: &[&str]| {
            assert_eq!(
                forbidden_labels(&labels(new), &labels(old)),
                want,
                "{new:?} over {old:?}"
            );
        };
        check(&[("cks/test", "yes"), ("kubernetes.io/hostname", "n1")], &[], &[]);
        check(
            &[("node-restriction.kubernetes.io/tier", "a")],
            &[],
            &["node-restriction.kubernetes.io/tier"],
        );
        check(
            &[("x.node-restriction.kubernetes.io/t", "a")],
            &[],
            &["x.node-restriction.kubernetes.io/t"],
        );
        check(
            &[
                ("foo.k8s.io/x", "b"),
                ("x.node.kubernetes.io/ok", "c"),
                ("kubelet.kubernetes.io/ok", "d"),
            ],
            &[],
            &["foo.k8s.io/x"],
        );
        check(
            &[("node-role.kubernetes.io/master", "")],
            &[],
            &["node-role.kubernetes.io/master"],
        );
        // Removing counts as modifying; unchanged labels do not.
        check(
            &[("node-role.kubernetes.io/x", "")],
            &[
                ("node-role.kubernetes.io/x", ""),
                ("node-restriction.kubernetes.io/a", "1"),
            ],
            &["node-restriction.kubernetes.io/a"],
        );
    }

    #[test]
    fn claim_statuses_compare_names_and_claims() {
        let pod = |statuses: Value| serde_json::json!({"status": {"resourceClaimStatuses": statuses}});
        let a = pod(serde_json::json!([{"name": "gpu", "resourceClaimName": "c1"}]));
        let Value::Object(a) = a else { unreachable!() };
        let same = pod(serde_json::json!([{"name": "gpu", "resourceClaimName": "c1"}]));
        let Value::Object(same) = same else { unreachable!() };
        let other = pod(serde_json::json!([{"name": "gpu"}]));
        let Value::Object(other) = other else { unreachable!() };
        assert_eq!(claim_statuses(&a), claim_statuses(&same));
        assert_ne!(claim_statuses(&a), claim_statuses(&other));
        assert!(claim_statuses(&Object::new()).is_empty());
    }

    #[test]
    fn kubelet_csrs_name_the_node() {
        use base64::Engine;
        let csr = |cn: &str, signer: &str| {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            params.distinguished_name.push(rcgen::DnType::CommonName, cn);
            let pem = params.serialize_request(&key).unwrap().pem().unwrap();
            let request = base64::engine::general_purpose::STANDARD.encode(pem);
            let Value::Object(o) = serde_json::json!({"spec": {"signerName": signer, "request": request}}) else {
                unreachable!()
            };
            o
        };
        let serving = "kubernetes.io/kubelet-serving";
        assert_eq!(node_csr_refusal("n1", &csr("system:node:n1", serving)), None);
        assert_eq!(
            node_csr_refusal(
                "n1",
                &csr("system:node:n2", "kubernetes.io/kube-apiserver-client-kubelet")
            )
            .as_deref(),
            Some("can only create a node CSR with CN=system:node:n1")
        );
        assert_eq!(node_csr_refusal("n1", &csr("anyone", "example.com/other")), None);
        let Value::Object(bad) = serde_json::json!({"spec": {"signerName": serving, "request": "bm90IGEgY3Ny"}}) else {
            unreachable!()
        };
        assert!(
            node_csr_refusal("n1", &bad)
                .unwrap()
                .starts_with("unable to parse csr: ")
        );
    }

    #[test]
    fn pod_references() {
        let check = |spec: Value, secret: bool, cm: bool| {
            assert_eq!(
                (references(&spec, Ref::Secret), references(&spec, Ref::ConfigMap)),
                (secret, cm),
                "{spec}"
            );
        };
        check(serde_json::json!({"containers": [{"name": "c"}]}), false, false);
        check(
            serde_json::json!({"volumes": [{"name": "v", "secret": {"secretName": "s"}}]}),
            true,
            false,
        );
        check(
            serde_json::json!({"volumes": [{"name": "v", "configMap": {"name": "c"}}]}),
            false,
            true,
        );
        check(
            serde_json::json!({"containers": [{"env": [{"name": "E", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}]}),
            true,
            false,
        );
        check(
            serde_json::json!({"initContainers": [{"envFrom": [{"configMapRef": {"name": "c"}}]}]}),
            false,
            true,
        );
        check(
            serde_json::json!({"volumes": [{"projected": {"sources": [{"secret": {"name": "s"}}]}}]}),
            true,
            false,
        );
        check(serde_json::json!({"imagePullSecrets": [{"name": "s"}]}), true, false);
    }
}
