//! Upstream's `TestCSILimits` cases, by name.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::{StorageClass, VolumeAttachment};
use serde_json::{Value, json};

use super::*;
use crate::plugins::testing::{filter_all, node, pod, with_pods};

const EBS: &str = "ebs.csi.aws.com";
const GCE: &str = "pd.csi.storage.gke.io";

#[derive(Default)]
struct Fake {
    claims: HashMap<String, Arc<PersistentVolumeClaim>>,
    volumes: HashMap<String, Arc<PersistentVolume>>,
    classes: HashMap<String, Arc<StorageClass>>,
    csi_node: Option<Arc<CSINode>>,
    attachments: Vec<Arc<VolumeAttachment>>,
}

impl VolumeListers for Fake {
    fn claim(&self, _ns: &str, name: &str) -> Option<Arc<PersistentVolumeClaim>> {
        self.claims.get(name).cloned()
    }
    fn volume(&self, name: &str) -> Option<Arc<PersistentVolume>> {
        self.volumes.get(name).cloned()
    }
    fn volumes(&self) -> Vec<Arc<PersistentVolume>> {
        self.volumes.values().cloned().collect()
    }
    fn class(&self, name: &str) -> Option<Arc<StorageClass>> {
        self.classes.get(name).cloned()
    }
    fn csi_node(&self, _node: &str) -> Option<Arc<CSINode>> {
        self.csi_node.clone()
    }
    fn attachments(&self, node: &str) -> Vec<Arc<VolumeAttachment>> {
        self.attachments
            .iter()
            .filter(|va| va.spec.node_name == node)
            .cloned()
            .collect()
    }
}

/// The cluster of upstream's test: CSI PVs `csi-<driver>-<i>` behind claims
/// of the same names, in-tree EBS PVs, classes per provisioner, and the
/// claims naming missing volumes or none.
fn cluster() -> Fake {
    let mut f = Fake::default();
    let mut claim = |name: &str, volume: &str, class: &str| {
        let pvc = json!({"metadata": {"name": name, "namespace": "default"},
            "spec": {"volumeName": volume, "storageClassName": class}});
        f.claims
            .insert(name.into(), Arc::new(serde_json::from_value(pvc).unwrap()));
    };
    for d in [EBS, GCE] {
        for i in 0..4 {
            claim(&format!("csi-{d}-{i}"), &format!("csi-{d}-{i}"), "");
        }
        claim(&format!("csi-{d}-pending"), "", &format!("sc-{d}"));
        claim(&format!("csi-{d}-missing-pv"), "missing", &format!("sc-{d}"));
        claim(&format!("csi-{d}-missing-pv-no-sc"), "missing", "");
    }
    claim("ebs-intree-0", "ebs-intree-0", "");
    claim("ebs-intree-1", "ebs-intree-1", "");
    claim("intree-pending", "", "sc-intree-ebs");
    claim("ephemeral-other", "csi-ebs.csi.aws.com-3", "");
    for d in [EBS, GCE] {
        for i in 0..4 {
            let name = format!("csi-{d}-{i}");
            let pv = json!({"metadata": {"name": name},
                "spec": {"csi": {"driver": d, "volumeHandle": format!("{name}-handle")}}});
            f.volumes.insert(name, Arc::new(serde_json::from_value(pv).unwrap()));
        }
        let sc = json!({"metadata": {"name": format!("sc-{d}")}, "provisioner": d});
        f.classes
            .insert(format!("sc-{d}"), Arc::new(serde_json::from_value(sc).unwrap()));
    }
    for i in 0..2 {
        let name = format!("ebs-intree-{i}");
        let pv = json!({"metadata": {"name": name},
            "spec": {"awsElasticBlockStore": {"volumeID": format!("vol-{i}")}}});
        f.volumes.insert(name, Arc::new(serde_json::from_value(pv).unwrap()));
    }
    let sc = json!({"metadata": {"name": "sc-intree-ebs"}, "provisioner": "kubernetes.io/aws-ebs"});
    f.classes
        .insert("sc-intree-ebs".into(), Arc::new(serde_json::from_value(sc).unwrap()));
    f
}

/// A CSINode with these driver limits (`None`: a driver without a
/// count) and migrated plugins.
fn csi_node(limits: &[(&str, Option<i32>)], migrated: &str) -> Arc<CSINode> {
    let drivers: Vec<Value> = limits
        .iter()
        .map(|(d, c)| match c {
            Some(c) => json!({"name": d, "nodeID": "n", "allocatable": {"count": c}}),
            None => json!({"name": d, "nodeID": "n"}),
        })
        .collect();
    Arc::new(
        serde_json::from_value(json!({"metadata": {"name": "node-1",
        "annotations": {csi_migration::ANN_MIGRATED_PLUGINS: migrated}}, "spec": {"drivers": drivers}}))
        .unwrap(),
    )
}

fn claims(name: &str, claims: &[&str]) -> PodInfo {
    let vols: Vec<Value> = claims
        .iter()
        .enumerate()
        .map(|(i, c)| json!({"name": format!("v{i}"), "persistentVolumeClaim": {"claimName": c}}))
        .collect();
    pod(name, json!({}), json!({"volumes": vols}))
}

fn ephemeral_pod() -> PodInfo {
    // Claim `abc-xyz` for volume `xyz` of pod `abc`.
    pod(
        "abc",
        json!({}),
        json!({"volumes": [{"name": "xyz", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}}]}),
    )
}

fn ephemeral_claim(f: &mut Fake, owner_uid: &str, volume: &str, class: &str) {
    let pvc = json!({"metadata": {"name": "abc-xyz", "namespace": "default",
        "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "abc", "uid": owner_uid, "controller": true}]},
        "spec": {"volumeName": volume, "storageClassName": class}});
    f.claims
        .insert("abc-xyz".into(), Arc::new(serde_json::from_value(pvc).unwrap()));
}

/// Runs the plugin for `new` on node-1 holding `existing`; the status.
fn run(f: Fake, new: &PodInfo, existing: Vec<PodInfo>) -> (Code, String) {
    let plugin = Arc::new(NodeVolumeLimits::new(Arc::new(f)));
    let n = with_pods(node("node-1", Value::Null, Value::Null, json!({})), existing);
    let snap = Snapshot::from_nodes(vec![n]);
    let fw = crate::framework::Framework::new("default-scheduler", vec![(plugin.clone() as Arc<dyn Plugin>, 1)]);
    let mut state = CycleState::default();
    let (pre, _) = fw.run_pre_filter(&mut state, new, &snap);
    if !pre.is_success() {
        return (pre.code, pre.message());
    }
    if state.skip_filter.contains(NAME) {
        return (Code::Skip, String::new());
    }
    let s = &filter_all(plugin, new, &snap)[0];
    (s.code, s.message())
}

fn fits() -> (Code, String) {
    (Code::Success, String::new())
}

fn exceeds() -> (Code, String) {
    (Code::Unschedulable, ERR_REASON_MAX_VOLUME_COUNT_EXCEEDED.to_string())
}

fn ebs(i: usize) -> String {
    format!("csi-{EBS}-{i}")
}

#[test]
fn csi_limits() {
    let ebs_limit = |n: i32| csi_node(&[(EBS, Some(n))], "");
    let existing = || vec![claims("e1", &[&ebs(1), &ebs(2)])];
    type Case = (&'static str, Fake, PodInfo, Vec<PodInfo>, (Code, String));
    let with = |node: Arc<CSINode>| Fake {
        csi_node: Some(node),
        ..cluster()
    };
    let mut cases: Vec<Case> = vec![
        (
            "fits when node volume limit >= new pods CSI volume",
            with(ebs_limit(4)),
            claims("new", &[&ebs(0)]),
            existing(),
            fits(),
        ),
        (
            "doesn't when node volume limit <= pods CSI volume",
            with(ebs_limit(2)),
            claims("new", &[&ebs(0)]),
            existing(),
            exceeds(),
        ),
        (
            "should when driver does not support volume limits",
            with(csi_node(&[(EBS, None)], "")),
            claims("new", &[&ebs(0)]),
            existing(),
            fits(),
        ),
        (
            "no CSINode: the node is unlimited",
            cluster(),
            claims("new", &[&ebs(0)]),
            existing(),
            fits(),
        ),
        (
            "count pending PVCs towards volume limit <= pods CSI volume",
            with(ebs_limit(2)),
            claims("new", &[&format!("csi-{EBS}-pending")]),
            existing(),
            exceeds(),
        ),
        (
            "two pending PVCs of the same claim count once",
            with(ebs_limit(3)),
            claims("new", &[&format!("csi-{EBS}-pending"), &format!("csi-{EBS}-pending")]),
            existing(),
            fits(),
        ),
        (
            "should count PVCs with invalid PV name but valid SC",
            with(ebs_limit(2)),
            claims("new", &[&format!("csi-{EBS}-missing-pv")]),
            existing(),
            exceeds(),
        ),
        (
            "should not count PVCs with invalid PV name and no SC",
            with(ebs_limit(2)),
            claims("new", &[&format!("csi-{EBS}-missing-pv-no-sc")]),
            existing(),
            fits(),
        ),
        (
            "a volume already used on the node counts once",
            with(ebs_limit(2)),
            claims("new", &[&ebs(1)]),
            existing(),
            fits(),
        ),
        (
            "limits are per driver",
            with(csi_node(&[(EBS, Some(2)), (GCE, Some(1))], "")),
            claims("new", &[&format!("csi-{GCE}-0")]),
            existing(),
            fits(),
        ),
        (
            "the limit of another driver is exceeded",
            with(csi_node(&[(EBS, Some(4)), (GCE, Some(1))], "")),
            claims("new", &[&format!("csi-{GCE}-0")]),
            vec![claims("e1", &[&format!("csi-{GCE}-1")])],
            exceeds(),
        ),
        (
            "existing pods' missing claims are not counted",
            with(ebs_limit(1)),
            claims("new", &[&ebs(0)]),
            vec![claims("e1", &["gone"])],
            fits(),
        ),
        (
            "a missing claim of the new pod is unresolvable",
            with(ebs_limit(4)),
            claims("new", &["gone"]),
            existing(),
            (
                Code::UnschedulableAndUnresolvable,
                "looking up PVC default/gone: persistentvolumeclaim \"gone\" not found".into(),
            ),
        ),
        (
            "should not count non-CSI volumes",
            with(ebs_limit(0)),
            pod(
                "new",
                json!({}),
                json!({"volumes": [{"name": "h", "hostPath": {"path": "/x"}}]}),
            ),
            existing(),
            (Code::Skip, String::new()),
        ),
        (
            "should count in-tree volumes if migration is enabled",
            with(csi_node(&[(EBS, Some(2))], "kubernetes.io/aws-ebs")),
            claims("new", &["ebs-intree-0"]),
            existing(),
            exceeds(),
        ),
        (
            "should not count in-tree volumes if migration is disabled",
            with(ebs_limit(2)),
            claims("new", &["ebs-intree-0"]),
            existing(),
            fits(),
        ),
        (
            "should count pending in-tree claims through the migrated provisioner",
            with(csi_node(&[(EBS, Some(1))], "kubernetes.io/aws-ebs")),
            claims("new", &["intree-pending"]),
            vec![claims("e1", &["ebs-intree-1"])],
            exceeds(),
        ),
        (
            "inline in-tree volumes count when migrated",
            with(csi_node(&[(EBS, Some(2))], "kubernetes.io/aws-ebs")),
            pod(
                "new",
                json!({}),
                json!({"volumes": [{"name": "i", "awsElasticBlockStore": {"volumeID": "vol-inline"}}]}),
            ),
            existing(),
            exceeds(),
        ),
        (
            "an inline volume the same as a PV on the node counts once",
            with(csi_node(&[(EBS, Some(1))], "kubernetes.io/aws-ebs")),
            pod(
                "new",
                json!({}),
                json!({"volumes": [{"name": "i", "awsElasticBlockStore": {"volumeID": "aws://zone-a/vol-0"}}]}),
            ),
            vec![claims("e1", &["ebs-intree-0"])],
            fits(),
        ),
        (
            "ephemeral volume missing",
            with(ebs_limit(4)),
            ephemeral_pod(),
            vec![],
            (
                Code::UnschedulableAndUnresolvable,
                "looking up PVC default/abc-xyz: persistentvolumeclaim \"abc-xyz\" not found".into(),
            ),
        ),
    ];
    let mut not_owned = with(ebs_limit(4));
    ephemeral_claim(&mut not_owned, "other-uid", &ebs(3), "");
    cases.push((
        "ephemeral volume not owned",
        not_owned,
        ephemeral_pod(),
        vec![],
        (
            Code::Error,
            "PVC default/abc-xyz was not created for pod default/abc (pod is not owner)".into(),
        ),
    ));
    let mut owned = with(ebs_limit(2));
    ephemeral_claim(&mut owned, "uid-abc", &ebs(3), "");
    cases.push((
        "ephemeral doesn't when node volume limit <= pods ephemeral CSI volume",
        owned,
        ephemeral_pod(),
        existing(),
        exceeds(),
    ));
    let mut owned = with(ebs_limit(3));
    ephemeral_claim(&mut owned, "uid-abc", &ebs(3), "");
    cases.push((
        "ephemeral okay when node volume limit > pods ephemeral CSI volume",
        owned,
        ephemeral_pod(),
        existing(),
        fits(),
    ));
    let mut unbound = with(ebs_limit(2));
    ephemeral_claim(&mut unbound, "uid-abc", "", &format!("sc-{EBS}"));
    cases.push((
        "ephemeral volume unbound counts through its class",
        unbound,
        ephemeral_pod(),
        existing(),
        exceeds(),
    ));
    let attachment = |pv: &str| -> Arc<VolumeAttachment> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": format!("va-{pv}")},
                "spec": {"attacher": EBS, "nodeName": "node-1", "source": {"persistentVolumeName": pv}}}))
            .unwrap(),
        )
    };
    let mut va = with(ebs_limit(3));
    va.attachments = vec![attachment(&ebs(3))];
    cases.push((
        "a VolumeAttachment counts toward the limit",
        va,
        claims("new", &[&ebs(0)]),
        existing(),
        exceeds(),
    ));
    let mut va = with(ebs_limit(3));
    va.attachments = vec![attachment(&ebs(1)), attachment(&ebs(2))];
    cases.push((
        "a VolumeAttachment of a volume pods on the node use counts once",
        va,
        claims("new", &[&ebs(0)]),
        existing(),
        fits(),
    ));
    for (name, f, new, existing, want) in cases {
        assert_eq!(run(f, &new, existing), want, "{name}");
    }
}

#[test]
fn pods_without_attachable_volumes_skip() {
    let f = Fake {
        csi_node: Some(csi_node(&[(EBS, Some(0))], "")),
        ..cluster()
    };
    let p = pod(
        "p",
        json!({}),
        json!({"volumes": [{"name": "s", "secret": {"secretName": "s"}}, {"name": "c", "configMap": {"name": "c"}}]}),
    );
    assert_eq!(run(f, &p, vec![]).0, Code::Skip);
}
