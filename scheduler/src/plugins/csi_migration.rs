//! In-tree volume plugins migrated to CSI drivers, as far as attach limits
//! need them (upstream's `csi-translation-lib` and NodeVolumeLimits'
//! `isCSIMigrationOn`): which in-tree sources translate, to which driver,
//! and with which volume handle. Only the attachable plugins NodeVolumeLimits
//! counts are here: AWS EBS, GCE PD, Azure Disk, Cinder and Portworx.

use k8s_openapi::api::core::v1::{PersistentVolume, Volume};
use k8s_openapi::api::storage::v1::CSINode;

/// The CSINode annotation listing the in-tree plugins the node migrated.
pub const ANN_MIGRATED_PLUGINS: &str = "storage.alpha.kubernetes.io/migrated-plugins";

/// In-tree plugin name -> CSI driver name.
const PLUGINS: &[(&str, &str)] = &[
    ("kubernetes.io/aws-ebs", "ebs.csi.aws.com"),
    ("kubernetes.io/gce-pd", "pd.csi.storage.gke.io"),
    ("kubernetes.io/azure-disk", "disk.csi.azure.com"),
    ("kubernetes.io/cinder", "cinder.csi.openstack.org"),
    ("kubernetes.io/portworx-volume", "pxd.portworx.com"),
];

const GCE_UNSPECIFIED: &str = "UNSPECIFIED";
const ZONE_LABELS: &[&str] = &["topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone"];

/// The CSI driver an in-tree plugin (or provisioner) name migrates to.
pub fn driver_for(plugin: &str) -> Option<&'static str> {
    PLUGINS.iter().find(|(p, _)| *p == plugin).map(|(_, d)| *d)
}

/// True when `csi_node` says the node runs `plugin` through its CSI driver
/// (the plugin is in the migrated-plugins annotation).
pub fn migration_on(csi_node: Option<&CSINode>, plugin: &str) -> bool {
    if driver_for(plugin).is_none() {
        return false;
    }
    csi_node
        .and_then(|n| n.metadata.annotations.as_ref())
        .and_then(|a| a.get(ANN_MIGRATED_PLUGINS))
        .is_some_and(|list| list.split(',').any(|p| p.trim() == plugin))
}

/// An attachable in-tree source: its plugin and CSI volume handle.
struct InTree {
    plugin: &'static str,
    handle: String,
}

/// EBS volume IDs may be written `aws://<zone>/<id>`; the handle is the id.
fn ebs_volume_id(id: &str) -> String {
    match id.strip_prefix("aws://") {
        Some(rest) => rest.rsplit('/').next().unwrap_or(rest).to_string(),
        None => id.to_string(),
    }
}

fn gce_handle(zone: &str, disk: &str) -> String {
    format!("projects/{GCE_UNSPECIFIED}/zones/{zone}/disks/{disk}")
}

/// The in-tree source of a pod's inline volume, if it is migratable.
fn inline_source(vol: &Volume) -> Option<InTree> {
    if let Some(s) = &vol.aws_elastic_block_store {
        return Some(InTree {
            plugin: "kubernetes.io/aws-ebs",
            handle: ebs_volume_id(&s.volume_id),
        });
    }
    if let Some(s) = &vol.gce_persistent_disk {
        return Some(InTree {
            plugin: "kubernetes.io/gce-pd",
            handle: gce_handle(GCE_UNSPECIFIED, &s.pd_name),
        });
    }
    if let Some(s) = &vol.azure_disk {
        return Some(InTree {
            plugin: "kubernetes.io/azure-disk",
            handle: s.disk_uri.clone(),
        });
    }
    if let Some(s) = &vol.cinder {
        return Some(InTree {
            plugin: "kubernetes.io/cinder",
            handle: s.volume_id.clone(),
        });
    }
    if let Some(s) = &vol.portworx_volume {
        return Some(InTree {
            plugin: "kubernetes.io/portworx-volume",
            handle: s.volume_id.clone(),
        });
    }
    None
}

/// True for an inline volume NodeVolumeLimits may count
/// (`IsInlineMigratable`).
pub fn inline_migratable(vol: &Volume) -> bool {
    inline_source(vol).is_some()
}

/// The (driver, handle) of a migratable inline volume when the node
/// migrated its plugin; `None` otherwise.
pub fn translate_inline(vol: &Volume, csi_node: Option<&CSINode>) -> Option<(&'static str, String)> {
    let src = inline_source(vol)?;
    if !migration_on(csi_node, src.plugin) {
        return None;
    }
    Some((driver_for(src.plugin)?, src.handle))
}

/// The (driver, handle) of a PersistentVolume: its CSI source, or the
/// translation of a migratable in-tree source when the node migrated that
/// plugin.
pub fn pv_driver(pv: &PersistentVolume, csi_node: Option<&CSINode>) -> Option<(String, String)> {
    let spec = pv.spec.as_ref()?;
    if let Some(csi) = &spec.csi {
        return Some((csi.driver.clone(), csi.volume_handle.clone()));
    }
    let src = if let Some(s) = &spec.aws_elastic_block_store {
        InTree {
            plugin: "kubernetes.io/aws-ebs",
            handle: ebs_volume_id(&s.volume_id),
        }
    } else if let Some(s) = &spec.gce_persistent_disk {
        // A single zone label places the disk; regional or unlabelled
        // disks keep the zone unspecified.
        let zone = pv
            .metadata
            .labels
            .as_ref()
            .and_then(|l| ZONE_LABELS.iter().find_map(|k| l.get(*k)))
            .filter(|z| !z.contains("__"))
            .map_or(GCE_UNSPECIFIED, String::as_str);
        InTree {
            plugin: "kubernetes.io/gce-pd",
            handle: gce_handle(zone, &s.pd_name),
        }
    } else if let Some(s) = &spec.azure_disk {
        InTree {
            plugin: "kubernetes.io/azure-disk",
            handle: s.disk_uri.clone(),
        }
    } else if let Some(s) = &spec.cinder {
        InTree {
            plugin: "kubernetes.io/cinder",
            handle: s.volume_id.clone(),
        }
    } else if let Some(s) = &spec.portworx_volume {
        InTree {
            plugin: "kubernetes.io/portworx-volume",
            handle: s.volume_id.clone(),
        }
    } else {
        return None;
    };
    if !migration_on(csi_node, src.plugin) {
        return None;
    }
    Some((driver_for(src.plugin)?.to_string(), src.handle))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use serde_json::json;

    use super::*;

    fn csi_node(migrated: &str) -> CSINode {
        serde_json::from_value(json!({"metadata": {"name": "n",
            "annotations": {ANN_MIGRATED_PLUGINS: migrated}}, "spec": {"drivers": []}}))
        .unwrap()
    }

    #[test]
    fn migration_needs_the_node_annotation() {
        let n = csi_node("kubernetes.io/aws-ebs, kubernetes.io/gce-pd");
        assert!(migration_on(Some(&n), "kubernetes.io/aws-ebs"));
        assert!(migration_on(Some(&n), "kubernetes.io/gce-pd"));
        assert!(!migration_on(Some(&n), "kubernetes.io/cinder"));
        assert!(!migration_on(None, "kubernetes.io/aws-ebs"));
        // Not an attachable migrated plugin at all.
        let f = csi_node("kubernetes.io/azure-file");
        assert!(!migration_on(Some(&f), "kubernetes.io/azure-file"));
    }

    #[test]
    fn in_tree_volumes_translate_to_csi_handles() {
        let n = csi_node("kubernetes.io/aws-ebs,kubernetes.io/gce-pd");
        let ebs: Volume = serde_json::from_value(
            json!({"name": "v", "awsElasticBlockStore": {"volumeID": "aws://us-east-1a/vol-1"}}),
        )
        .unwrap();
        assert!(inline_migratable(&ebs));
        assert_eq!(
            translate_inline(&ebs, Some(&n)),
            Some(("ebs.csi.aws.com", "vol-1".to_string()))
        );
        assert_eq!(translate_inline(&ebs, None), None);
        let pd: PersistentVolume = serde_json::from_value(json!({
            "metadata": {"name": "pv", "labels": {"topology.kubernetes.io/zone": "z1"}},
            "spec": {"gcePersistentDisk": {"pdName": "disk"}}}))
        .unwrap();
        assert_eq!(
            pv_driver(&pd, Some(&n)),
            Some((
                "pd.csi.storage.gke.io".to_string(),
                "projects/UNSPECIFIED/zones/z1/disks/disk".to_string()
            ))
        );
        let csi: PersistentVolume = serde_json::from_value(json!({"metadata": {"name": "pv"},
            "spec": {"csi": {"driver": "d", "volumeHandle": "h"}}}))
        .unwrap();
        assert_eq!(pv_driver(&csi, None), Some(("d".to_string(), "h".to_string())));
        let host: Volume = serde_json::from_value(json!({"name": "v", "hostPath": {"path": "/x"}})).unwrap();
        assert!(!inline_migratable(&host));
    }
}
