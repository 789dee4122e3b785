//! Persistent volumes end to end against the real apiserver binary, with
//! the controller manager (PV binder and hostPath provisioner) and the
//! scheduler in-process and simulated nodes as kubelets: a StatefulSet's
//! claims of the default `standard` class are provisioned on the node the
//! scheduler picked and bound, and their volumes deleted once the claims
//! go; a claim pre-bound to a volume, and one selecting a volume by
//! label, bind; a pod's zoned volume keeps it in that zone; a pod whose
//! claim cannot bind shows upstream's FailedScheduling message.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use rkube_e2e::controllers_support::{Controllers, Env, EnvOptions, sim_nodes, wait_for};
use rkube_e2e::simnodes::SimConfig;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);
const NS: &str = "vol";

/// Two simulated nodes, `sim-node-0` in zone `z1` and `sim-node-1` in
/// zone `z2`, the scheduler and the controller manager.
async fn env() -> Env {
    Env::start(EnvOptions {
        namespace: Some(NS.into()),
        nodes: vec![SimConfig {
            zones: vec!["z1".into(), "z2".into()],
            ..sim_nodes("sim-node-", 2)
        }],
        scheduler: true,
        controllers: Controllers::InProcess,
        ..EnvOptions::default()
    })
    .await
    .expect("environment starts")
}

fn phase_of_claim(c: &PersistentVolumeClaim) -> &str {
    c.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

fn phase_of_volume(v: &PersistentVolume) -> &str {
    v.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

async fn claim_phase(claims: &Api<PersistentVolumeClaim>, name: &str, want: &str) -> PersistentVolumeClaim {
    wait_for(&format!("claim {name} {want}"), WAIT, || async {
        let c = claims.get(name).await?;
        Ok((phase_of_claim(&c) == want).then_some(c))
    })
    .await
    .unwrap()
}

async fn volume_phase(volumes: &Api<PersistentVolume>, name: &str, want: &str) -> PersistentVolume {
    wait_for(&format!("volume {name} {want}"), WAIT, || async {
        let v = volumes.get(name).await?;
        Ok((phase_of_volume(&v) == want).then_some(v))
    })
    .await
    .unwrap()
}

fn annotation<'a>(meta: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_claims_are_provisioned_on_the_chosen_node_and_reclaimed() {
    let e = env().await;
    // The provisioner created the default class.
    let classes: Api<StorageClass> = Api::all(e.client.clone());
    let standard = wait_for("the standard class", WAIT, || async {
        Ok(classes.get_opt("standard").await?)
    })
    .await
    .unwrap();
    assert_eq!(standard.provisioner, "rkube.io/hostpath");
    assert_eq!(standard.volume_binding_mode.as_deref(), Some("WaitForFirstConsumer"));
    assert_eq!(
        annotation(&standard.metadata, "storageclass.kubernetes.io/is-default-class"),
        Some("true")
    );

    let sets: Api<StatefulSet> = Api::namespaced(e.client.clone(), NS);
    let set: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "db"},
        "spec": {
            "replicas": 2,
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}},
                         "spec": {"containers": [{"name": "c", "image": "postgres:16"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "standard",
                         "resources": {"requests": {"storage": "2Gi"}}}}],
        },
    }))
    .unwrap();
    sets.create(&PostParams::default(), &set).await.unwrap();
    wait_for("2 ready replicas", WAIT, || async {
        let s = sets.get("db").await?.status.unwrap_or_default();
        Ok((s.ready_replicas == Some(2)).then_some(()))
    })
    .await
    .unwrap();

    let claims: Api<PersistentVolumeClaim> = Api::namespaced(e.client.clone(), NS);
    let volumes: Api<PersistentVolume> = Api::all(e.client.clone());
    let pods: Api<Pod> = Api::namespaced(e.client.clone(), NS);
    let mut provisioned = Vec::new();
    for i in 0..2 {
        let name = format!("data-db-{i}");
        let claim = claim_phase(&claims, &name, "Bound").await;
        let node = pods
            .get(&format!("db-{i}"))
            .await
            .unwrap()
            .spec
            .unwrap()
            .node_name
            .unwrap();
        assert_eq!(
            annotation(&claim.metadata, "volume.kubernetes.io/selected-node"),
            Some(node.as_str())
        );
        assert_eq!(
            annotation(&claim.metadata, "volume.kubernetes.io/storage-provisioner"),
            Some("rkube.io/hostpath")
        );
        assert_eq!(
            annotation(&claim.metadata, "pv.kubernetes.io/bind-completed"),
            Some("yes")
        );
        let status = claim.status.clone().unwrap();
        assert_eq!(status.capacity.unwrap()["storage"].0, "2Gi");
        assert_eq!(status.access_modes.unwrap(), ["ReadWriteOnce"]);
        let pv_name = claim.spec.clone().unwrap().volume_name.unwrap();
        assert_eq!(pv_name, format!("pvc-{}", claim.uid().unwrap()));
        let pv = volume_phase(&volumes, &pv_name, "Bound").await;
        assert_eq!(
            annotation(&pv.metadata, "pv.kubernetes.io/provisioned-by"),
            Some("rkube.io/hostpath")
        );
        let spec = pv.spec.unwrap();
        assert!(
            spec.host_path
                .unwrap()
                .path
                .ends_with(&format!("{pv_name}_{NS}_{name}"))
        );
        assert_eq!(spec.persistent_volume_reclaim_policy.as_deref(), Some("Delete"));
        assert_eq!(spec.claim_ref.unwrap().uid, claim.uid());
        let term = &spec.node_affinity.unwrap().required.unwrap().node_selector_terms[0];
        assert_eq!(
            term.match_expressions.as_ref().unwrap()[0].values.as_ref().unwrap(),
            &[node]
        );
        provisioned.push(pv_name);
    }

    // Scale to zero and delete the claims: the volumes are Released and,
    // with reclaim policy Delete, deleted by the provisioner.
    sets.patch(
        "db",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 0}})),
    )
    .await
    .unwrap();
    wait_for("pods gone", WAIT, || async {
        Ok(pods.list(&ListParams::default()).await?.items.is_empty().then_some(()))
    })
    .await
    .unwrap();
    for i in 0..2 {
        claims
            .delete(&format!("data-db-{i}"), &DeleteParams::default())
            .await
            .unwrap();
    }
    for pv in &provisioned {
        wait_for(&format!("volume {pv} deleted"), WAIT, || async {
            Ok(volumes.get_opt(pv).await?.is_none().then_some(()))
        })
        .await
        .unwrap();
    }
}

fn static_volume(name: &str, size: &str, extra: Value) -> PersistentVolume {
    let mut v = json!({"metadata": {"name": name, "labels": {"speed": "fast"}},
        "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                 "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": format!("/tmp/{name}")}}});
    if let (Some(spec), Some(extra)) = (v["spec"].as_object_mut(), extra.as_object()) {
        for (k, val) in extra {
            spec.insert(k.clone(), val.clone());
        }
    }
    serde_json::from_value(v).unwrap()
}

fn claim(name: &str, size: &str, extra: Value) -> PersistentVolumeClaim {
    let mut c = json!({"metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "",
                 "resources": {"requests": {"storage": size}}}});
    if let (Some(spec), Some(extra)) = (c["spec"].as_object_mut(), extra.as_object()) {
        for (k, val) in extra {
            spec.insert(k.clone(), val.clone());
        }
    }
    serde_json::from_value(c).unwrap()
}

fn pod_using(name: &str, claim: &str) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox"}],
                 "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": claim}}]}}))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_volumes_bind_by_name_and_selector_and_unbindable_claims_block_scheduling() {
    let e = env().await;
    let pp = PostParams::default();
    let volumes: Api<PersistentVolume> = Api::all(e.client.clone());
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(e.client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(e.client.clone(), NS);

    // Pre-bound: the claim names the volume; the volume is in zone z2.
    let zoned = static_volume("pv-named", "5Gi", json!({}));
    let mut zoned = zoned;
    zoned
        .metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert("topology.kubernetes.io/zone".into(), "z2".into());
    volumes.create(&pp, &zoned).await.unwrap();
    claims
        .create(&pp, &claim("named", "1Gi", json!({"volumeName": "pv-named"})))
        .await
        .unwrap();
    let named = claim_phase(&claims, "named", "Bound").await;
    assert_eq!(
        annotation(&named.metadata, "pv.kubernetes.io/bind-completed"),
        Some("yes")
    );
    assert_eq!(
        annotation(&named.metadata, "pv.kubernetes.io/bound-by-controller"),
        None
    );
    let pv = volume_phase(&volumes, "pv-named", "Bound").await;
    assert_eq!(pv.spec.unwrap().claim_ref.unwrap().uid, named.uid());
    assert_eq!(
        annotation(&pv.metadata, "pv.kubernetes.io/bound-by-controller"),
        Some("yes")
    );

    // VolumeZone: the pod follows its volume to z2 (node sim-node-1).
    pods.create(&pp, &pod_using("zoned", "named")).await.unwrap();
    let node = wait_for("zoned pod scheduled", WAIT, || async {
        Ok(pods.get("zoned").await?.spec.and_then(|s| s.node_name))
    })
    .await
    .unwrap();
    assert_eq!(node, "sim-node-1");

    // By selector: the volume with the right label, not the smaller one
    // without it. (Which of several fitting volumes wins, the smallest, is
    // the binder's unit test `smallest_fitting_volume_wins`: end to end it
    // races the binder's own Available updates reaching its cache, as
    // upstream's binder, which also skips volumes not yet Available.)
    let mut slow = static_volume("pv-slow", "2Gi", json!({}));
    slow.metadata.labels = Some([("speed".to_string(), "slow".to_string())].into());
    volumes.create(&pp, &slow).await.unwrap();
    volumes
        .create(&pp, &static_volume("pv-small", "3Gi", json!({})))
        .await
        .unwrap();
    // Only Available volumes are matched (the binder marks new ones so).
    for pv in ["pv-slow", "pv-small"] {
        volume_phase(&volumes, pv, "Available").await;
    }
    claims
        .create(
            &pp,
            &claim("picky", "2Gi", json!({"selector": {"matchLabels": {"speed": "fast"}}})),
        )
        .await
        .unwrap();
    let picky = claim_phase(&claims, "picky", "Bound").await;
    assert_eq!(picky.spec.unwrap().volume_name.as_deref(), Some("pv-small"));
    assert_eq!(
        annotation(&picky.metadata, "pv.kubernetes.io/bound-by-controller"),
        Some("yes")
    );

    // Deleting a claim releases a Retain volume; it is not bound again.
    claims.delete("picky", &DeleteParams::default()).await.unwrap();
    volume_phase(&volumes, "pv-small", "Released").await;

    // No volume can satisfy 100Gi and the class binds immediately: the
    // claim stays Pending and its pod is unschedulable with upstream's text.
    claims.create(&pp, &claim("huge", "100Gi", json!({}))).await.unwrap();
    pods.create(&pp, &pod_using("stuck", "huge")).await.unwrap();
    let events: Api<Event> = Api::namespaced(e.client.clone(), NS);
    let note = wait_for("a FailedScheduling event", WAIT, || async {
        Ok(events
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter(|e| {
                e.reason.as_deref() == Some("FailedScheduling")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("stuck")
            })
            .find_map(|e| e.note))
    })
    .await
    .unwrap();
    assert_eq!(
        note,
        "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    );
    let huge = claims.get("huge").await.unwrap();
    assert_eq!(phase_of_claim(&huge), "Pending");
    // The binder's FailedBinding event is recorded independently of the
    // scheduler's, so it may land after the FailedScheduling one.
    wait_for("a FailedBinding event for claim huge", WAIT, || async {
        Ok(events
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .any(|e| {
                e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("huge")
                    && e.reason.as_deref() == Some("FailedBinding")
            })
            .then_some(()))
    })
    .await
    .unwrap();

    // A matching volume appears: the claim binds and the pod is scheduled.
    volumes
        .create(&pp, &static_volume("pv-huge", "100Gi", json!({})))
        .await
        .unwrap();
    claim_phase(&claims, "huge", "Bound").await;
    wait_for("stuck pod scheduled", WAIT, || async {
        Ok(pods.get("stuck").await?.spec.and_then(|s| s.node_name))
    })
    .await
    .unwrap();
}
