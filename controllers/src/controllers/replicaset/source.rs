//! The kinds the ReplicaSet controller manages: ReplicaSets, and
//! ReplicationControllers (upstream runs the same controller on them
//! through a conversion, as here: an RC is seen as a ReplicaSet whose
//! selector is `matchLabels`, and its status is written back as an RC's).

use std::sync::Arc;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::ReplicationController;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

use crate::error::ignore_not_found;
use crate::informer::Informer;

/// The informer of the managed kind.
#[derive(Clone)]
pub enum Source {
    ReplicaSets(Informer<ReplicaSet>),
    ReplicationControllers(Informer<ReplicationController>),
}

/// An RC as a ReplicaSet (selector map → `matchLabels`); `None` if it
/// does not convert.
pub fn rc_as_replica_set(rc: &ReplicationController) -> Option<ReplicaSet> {
    let mut v = serde_json::to_value(rc).ok()?;
    if let Some(spec) = v.get_mut("spec").and_then(Value::as_object_mut) {
        let selector = spec.remove("selector").unwrap_or(Value::Null);
        spec.insert("selector".into(), json!({"matchLabels": selector}));
    }
    v["apiVersion"] = json!("apps/v1");
    v["kind"] = json!("ReplicaSet");
    serde_json::from_value(v).ok()
}

/// A ReplicaSet status as an RC's (no terminatingReplicas).
fn rc_status(rs: &ReplicaSet) -> Option<Value> {
    let mut status = serde_json::to_value(rs.status.as_ref()?).ok()?;
    if let Some(s) = status.as_object_mut() {
        s.remove("terminatingReplicas");
    }
    Some(status)
}

impl Source {
    /// The controller's upstream name.
    pub fn controller_name(&self) -> &'static str {
        match self {
            Source::ReplicaSets(_) => "replicaset-controller",
            Source::ReplicationControllers(_) => "replicationcontroller-controller",
        }
    }

    /// Upstream's work queue name.
    pub fn queue_name(&self) -> &'static str {
        match self {
            Source::ReplicaSets(_) => "replicaset",
            Source::ReplicationControllers(_) => "replicationmanager",
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Source::ReplicaSets(_) => "ReplicaSet",
            Source::ReplicationControllers(_) => "ReplicationController",
        }
    }

    pub fn api_version(&self) -> &'static str {
        match self {
            Source::ReplicaSets(_) => "apps/v1",
            Source::ReplicationControllers(_) => "v1",
        }
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<ReplicaSet>> {
        match self {
            Source::ReplicaSets(i) => i.get(namespace, name),
            Source::ReplicationControllers(i) => i
                .get(namespace, name)
                .and_then(|rc| rc_as_replica_set(&rc))
                .map(Arc::new),
        }
    }

    pub fn list(&self, namespace: &str) -> Vec<Arc<ReplicaSet>> {
        match self {
            Source::ReplicaSets(i) => i.list(namespace),
            Source::ReplicationControllers(i) => i
                .list(namespace)
                .iter()
                .filter_map(|rc| rc_as_replica_set(rc))
                .map(Arc::new)
                .collect(),
        }
    }

    pub async fn wait_synced(&self) {
        match self {
            Source::ReplicaSets(i) => i.wait_synced().await,
            Source::ReplicationControllers(i) => i.wait_synced().await,
        }
    }

    /// Writes `rs`'s status through the kind's status subresource.
    pub async fn write_status(&self, client: &kube::Client, rs: &ReplicaSet) -> Result<(), kube::Error> {
        let ns = rs.metadata.namespace.clone().unwrap_or_default();
        let name = rs.metadata.name.clone().unwrap_or_default();
        match self {
            Source::ReplicaSets(_) => {
                Api::<ReplicaSet>::namespaced(client.clone(), &ns)
                    .replace_status(&name, &PostParams::default(), rs)
                    .await?;
            }
            Source::ReplicationControllers(i) => {
                let Some(mut rc) = i.get(&ns, &name).map(|rc| (*rc).clone()) else {
                    return Ok(());
                };
                rc.metadata.resource_version = rs.metadata.resource_version.clone();
                rc.status = rc_status(rs).and_then(|s| serde_json::from_value(s).ok());
                Api::<ReplicationController>::namespaced(client.clone(), &ns)
                    .replace_status(&name, &PostParams::default(), &rc)
                    .await?;
            }
        }
        Ok(())
    }

    /// A live read of the object's metadata (to recheck before adopting).
    pub async fn get_live(
        &self,
        client: &kube::Client,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ObjectMeta>, kube::Error> {
        Ok(match self {
            Source::ReplicaSets(_) => {
                ignore_not_found(Api::<ReplicaSet>::namespaced(client.clone(), namespace).get(name).await)?
                    .map(|o| o.metadata)
            }
            Source::ReplicationControllers(_) => ignore_not_found(
                Api::<ReplicationController>::namespaced(client.clone(), namespace)
                    .get(name)
                    .await,
            )?
            .map(|o| o.metadata),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn replication_controllers_convert() {
        let rc: ReplicationController = serde_json::from_value(json!({
            "metadata": {"name": "rc", "namespace": "ns", "uid": "u"},
            "spec": {"replicas": 2, "selector": {"app": "a"}, "template": {"metadata": {"labels": {"app": "a"}}}},
            "status": {"replicas": 1},
        }))
        .unwrap();
        let rs = rc_as_replica_set(&rc).unwrap();
        let spec = rs.spec.as_ref().unwrap();
        assert_eq!(spec.replicas, Some(2));
        assert_eq!(
            spec.selector
                .match_labels
                .as_ref()
                .unwrap()
                .get("app")
                .map(String::as_str),
            Some("a")
        );
        assert_eq!(rs.status.as_ref().unwrap().replicas, 1);
        let mut rs = rs;
        rs.status.as_mut().unwrap().terminating_replicas = Some(0);
        let back = rc_status(&rs).unwrap();
        assert!(back.get("terminatingReplicas").is_none());
        assert_eq!(back["replicas"], 1);
    }
}
