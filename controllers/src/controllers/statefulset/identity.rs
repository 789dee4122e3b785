//! A StatefulSet pod's stable identity: its name `<set>-<ordinal>`, the
//! labels `statefulset.kubernetes.io/pod-name` and
//! `apps.kubernetes.io/pod-index`, hostname and subdomain (the governing
//! Service), and its claims `<template>-<set>-<ordinal>` from
//! `volumeClaimTemplates` (upstream `stateful_set_utils.go`).

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::cached_pod::{CachedPod, CachedVolume};
use crate::controllers::controller_ref::new_controller_ref;
use crate::controllers::history::CONTROLLER_REVISION_HASH_LABEL;

/// The label holding a StatefulSet pod's name (for per-pod Services).
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The label holding a StatefulSet pod's ordinal.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// `(parent, ordinal)` from a name of the form `<parent>-<digits>`; the
/// ordinal is `None` when the digits do not fit an `i32`.
pub fn parent_and_ordinal(name: &str) -> Option<(&str, Option<i32>)> {
    let (parent, digits) = name.rsplit_once('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((parent, digits.parse::<i32>().ok()))
}

/// The pod's ordinal, if its name carries one.
pub fn ordinal(pod: &CachedPod) -> Option<i32> {
    name_ordinal(&pod.metadata)
}

fn name_ordinal(meta: &ObjectMeta) -> Option<i32> {
    parent_and_ordinal(meta.name.as_deref().unwrap_or_default()).and_then(|(_, o)| o)
}

fn set_name(set: &StatefulSet) -> &str {
    set.metadata.name.as_deref().unwrap_or_default()
}

/// Whether the pod's name says it belongs to `set`.
pub fn is_member_of(set: &StatefulSet, pod: &CachedPod) -> bool {
    parent_and_ordinal(pod.metadata.name.as_deref().unwrap_or_default()).is_some_and(|(p, _)| p == set_name(set))
}

/// The first ordinal (`spec.ordinals.start`, default 0).
pub fn start_ordinal(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.ordinals.as_ref())
        .and_then(|o| o.start)
        .unwrap_or(0)
}

/// `spec.replicas` (default 1).
pub fn replicas(set: &StatefulSet) -> i32 {
    set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1).max(0)
}

/// Whether the pod's ordinal is one `set` keeps at its current size.
pub fn in_ordinal_range(pod: &CachedPod, set: &StatefulSet) -> bool {
    let start = start_ordinal(set);
    ordinal(pod).is_some_and(|o| o >= start && i64::from(o) < i64::from(start) + i64::from(replicas(set)))
}

/// `<set>-<ordinal>`.
pub fn pod_name(set: &StatefulSet, ordinal: i32) -> String {
    format!("{}-{ordinal}", set_name(set))
}

/// `<template>-<set>-<ordinal>`.
pub fn claim_name(template: &str, set: &StatefulSet, ordinal: i32) -> String {
    format!("{template}-{}-{ordinal}", set_name(set))
}

fn claim_templates(set: &StatefulSet) -> &[PersistentVolumeClaim] {
    set.spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.as_deref())
        .unwrap_or_default()
}

/// Whether the pod has the name, namespace and name label of a member.
pub fn identity_matches(set: &StatefulSet, pod: &CachedPod) -> bool {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let Some((parent, Some(ord))) = parent_and_ordinal(name) else {
        return false;
    };
    parent == set_name(set)
        && name == pod_name(set, ord)
        && pod.metadata.namespace == set.metadata.namespace
        && pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(POD_NAME_LABEL))
            .map(String::as_str)
            == Some(name)
}

/// Whether the pod mounts every claim of the set's templates.
pub fn storage_matches(set: &StatefulSet, pod: &CachedPod) -> bool {
    let Some(ord) = ordinal(pod) else {
        return false;
    };
    let volumes: HashMap<&str, &CachedVolume> = pod
        .spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .map(|v| (v.name.as_str(), v))
        .collect();
    claim_templates(set).iter().all(|t| {
        let tname = t.metadata.name.as_deref().unwrap_or_default();
        volumes
            .get(tname)
            .and_then(|v| v.persistent_volume_claim.as_ref())
            .is_some_and(|c| c.claim_name == claim_name(tname, set, ord))
    })
}

/// The claims of the pod with `ordinal`, by template name: each
/// template named for the pod, labelled with the set's `matchLabels`.
pub fn claims_for(set: &StatefulSet, ordinal: i32) -> Vec<(String, PersistentVolumeClaim)> {
    let match_labels = set
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .unwrap_or_default();
    claim_templates(set)
        .iter()
        .map(|t| {
            let tname = t.metadata.name.clone().unwrap_or_default();
            let mut claim = t.clone();
            claim.metadata.name = Some(claim_name(&tname, set, ordinal));
            claim.metadata.namespace = set.metadata.namespace.clone();
            let mut labels = claim.metadata.labels.take().unwrap_or_default();
            labels.extend(match_labels.clone());
            claim.metadata.labels = (!labels.is_empty()).then_some(labels);
            claim.status = None;
            (tname, claim)
        })
        .collect()
}

/// Points the pod's volumes named like claim templates at its claims,
/// keeping its other volumes.
pub fn update_storage(set: &StatefulSet, pod: &mut Pod) {
    let Some(ord) = name_ordinal(&pod.metadata) else { return };
    let claims = claims_for(set, ord);
    let spec = pod.spec.get_or_insert_with(Default::default);
    let mut volumes: Vec<Volume> = claims
        .iter()
        .map(|(tname, claim)| Volume {
            name: tname.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim.metadata.name.clone().unwrap_or_default(),
                read_only: None,
            }),
            ..Volume::default()
        })
        .collect();
    for v in spec.volumes.take().unwrap_or_default() {
        if !claims.iter().any(|(t, _)| *t == v.name) {
            volumes.push(v);
        }
    }
    spec.volumes = (!volumes.is_empty()).then_some(volumes);
}

/// Sets the pod's name, namespace and identity labels from its ordinal.
pub fn update_identity(set: &StatefulSet, pod: &mut Pod) {
    let Some(ord) = name_ordinal(&pod.metadata) else { return };
    let name = pod_name(set, ord);
    pod.metadata.name = Some(name.clone());
    pod.metadata.namespace = set.metadata.namespace.clone();
    let labels = pod.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(POD_NAME_LABEL.into(), name);
    labels.insert(POD_INDEX_LABEL.into(), ord.to_string());
}

/// The revision a pod was created from (its `controller-revision-hash`).
pub fn pod_revision(pod: &CachedPod) -> &str {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(CONTROLLER_REVISION_HASH_LABEL))
        .map_or("", String::as_str)
}

/// A new member with `ordinal` from `template` (the template of
/// `revision`): controlled by the set, with its identity (hostname and
/// subdomain too, set only at creation) and storage.
pub fn new_pod(set: &StatefulSet, template: &PodTemplateSpec, revision: &str, ordinal: i32) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    let name = pod_name(set, ordinal);
    let mut pod = Pod {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: set.metadata.namespace.clone(),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![new_controller_ref(&set.metadata, "apps/v1", "StatefulSet")]),
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        status: None,
    };
    update_identity(set, &mut pod);
    let service = set
        .spec
        .as_ref()
        .and_then(|s| s.service_name.clone())
        .filter(|s| !s.is_empty());
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.hostname = Some(name);
    spec.subdomain = service;
    update_storage(set, &mut pod);
    pod.metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(CONTROLLER_REVISION_HASH_LABEL.into(), revision.into());
    pod
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    pub fn set() -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "set-uid"},
            "spec": {
                "replicas": 3, "serviceName": "nginx",
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                             "spec": {"containers": [{"name": "c", "image": "nginx"}],
                                      "volumes": [{"name": "www", "emptyDir": {}}, {"name": "cfg", "emptyDir": {}}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "www", "labels": {"tier": "db"}},
                                          "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
            },
        }))
        .unwrap()
    }

    #[test]
    fn names_parse_into_parent_and_ordinal() {
        assert_eq!(parent_and_ordinal("web-0"), Some(("web", Some(0))));
        assert_eq!(parent_and_ordinal("my-web-12"), Some(("my-web", Some(12))));
        assert_eq!(parent_and_ordinal("web-99999999999"), Some(("web", None)));
        assert_eq!(parent_and_ordinal("web-x1"), None);
        assert_eq!(parent_and_ordinal("web-"), None);
        assert_eq!(parent_and_ordinal("web"), None);
    }

    #[test]
    fn new_pods_carry_identity_storage_and_revision() {
        let s = set();
        let t = s.spec.as_ref().unwrap().template.clone();
        let pod = new_pod(&s, &t, "web-abc", 2);
        assert_eq!(pod.metadata.name.as_deref(), Some("web-2"));
        let labels = pod.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[POD_NAME_LABEL], "web-2");
        assert_eq!(labels[POD_INDEX_LABEL], "2");
        assert_eq!(labels[CONTROLLER_REVISION_HASH_LABEL], "web-abc");
        assert_eq!(labels["app"], "web");
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.hostname.as_deref(), Some("web-2"));
        assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
        let vols = spec.volumes.as_ref().unwrap();
        // The claim replaces the template's volume of the same name.
        assert_eq!(vols.len(), 2);
        assert_eq!(
            vols[0].persistent_volume_claim.as_ref().unwrap().claim_name,
            "www-web-2"
        );
        assert_eq!(vols[1].name, "cfg");
        let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("StatefulSet", "set-uid"));
        assert!(identity_matches(&s, &CachedPod::from(&pod)));
        assert!(storage_matches(&s, &CachedPod::from(&pod)));
        assert!(is_member_of(&s, &CachedPod::from(&pod)));
        assert!(in_ordinal_range(&CachedPod::from(&pod), &s));
        assert_eq!(pod_revision(&CachedPod::from(&pod)), "web-abc");
    }

    #[test]
    fn mismatches_are_detected_and_repaired() {
        let s = set();
        let t = s.spec.as_ref().unwrap().template.clone();
        let mut pod = new_pod(&s, &t, "r", 4);
        assert!(
            !in_ordinal_range(&CachedPod::from(&pod), &s),
            "ordinal 4 of 3 replicas is condemned"
        );
        pod.metadata.labels.as_mut().unwrap().remove(POD_NAME_LABEL);
        pod.spec.as_mut().unwrap().volumes = None;
        assert!(!identity_matches(&s, &CachedPod::from(&pod)));
        assert!(!storage_matches(&s, &CachedPod::from(&pod)));
        update_identity(&s, &mut pod);
        update_storage(&s, &mut pod);
        assert!(identity_matches(&s, &CachedPod::from(&pod)));
        assert!(storage_matches(&s, &CachedPod::from(&pod)));
    }

    #[test]
    fn claims_are_named_per_pod_and_labelled_with_the_selector() {
        let claims = claims_for(&set(), 1);
        assert_eq!(claims.len(), 1);
        let (tname, claim) = &claims[0];
        assert_eq!(tname, "www");
        assert_eq!(claim.metadata.name.as_deref(), Some("www-web-1"));
        assert_eq!(claim.metadata.namespace.as_deref(), Some("ns"));
        let labels = claim.metadata.labels.as_ref().unwrap();
        assert_eq!((labels["app"].as_str(), labels["tier"].as_str()), ("web", "db"));
    }

    #[test]
    fn start_ordinal_shifts_the_range() {
        let mut s = set();
        s.spec.as_mut().unwrap().ordinals = Some(serde_json::from_value(json!({"start": 5})).unwrap());
        let t = s.spec.as_ref().unwrap().template.clone();
        assert!(in_ordinal_range(&CachedPod::from(new_pod(&s, &t, "r", 5)), &s));
        assert!(in_ordinal_range(&CachedPod::from(new_pod(&s, &t, "r", 7)), &s));
        assert!(!in_ordinal_range(&CachedPod::from(new_pod(&s, &t, "r", 8)), &s));
        assert!(!in_ordinal_range(&CachedPod::from(new_pod(&s, &t, "r", 0)), &s));
    }
}
