//! The root CA publisher: every active namespace has a `kube-root-ca.crt`
//! ConfigMap whose `ca.crt` is the cluster CA (`--root-ca-file`), kept
//! equal to it.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;

use crate::error::{Error, is_already_exists, status_code};
use crate::informer::{Change, Informer};
use crate::manager::ControllerContext;
use crate::runner::{Action, new_queue, run_controller_workers};

const NAME: &str = "root-ca-certificate-publisher-controller";
/// The ConfigMap's name in every namespace.
pub const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";
/// The key holding the PEM bundle.
pub const ROOT_CA_KEY: &str = "ca.crt";
const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, Result<(), Error>> {
    run(ctx).boxed()
}

struct State {
    client: kube::Client,
    ca: String,
    namespaces: Informer<Namespace>,
    config_maps: Informer<ConfigMap>,
}

async fn run(ctx: ControllerContext) -> Result<(), Error> {
    let Some(ca) = ctx.config.root_ca.clone() else {
        tracing::warn!(controller = NAME, "no --root-ca-file; not publishing kube-root-ca.crt");
        return Ok(());
    };
    let namespaces = ctx.informers.get::<Namespace>();
    let config_maps = ctx.informers.get::<ConfigMap>();
    let queue = new_queue("root_ca_cert_publisher", &ctx.metrics);
    let q = queue.clone();
    namespaces.add_handler(move |change| match change {
        Change::Added(ns) | Change::Updated { new: ns, .. } => q.add(ns.metadata.name.clone().unwrap_or_default()),
        Change::Deleted(_) => {}
    });
    let q = queue.clone();
    config_maps.add_handler(move |change| {
        let (Change::Added(cm) | Change::Updated { new: cm, .. } | Change::Deleted(cm)) = change;
        if cm.metadata.name.as_deref() == Some(ROOT_CA_CONFIG_MAP) {
            q.add(cm.metadata.namespace.clone().unwrap_or_default());
        }
    });
    namespaces.wait_synced().await;
    config_maps.wait_synced().await;
    let state = Arc::new(State {
        client: ctx.client.clone(),
        ca,
        namespaces,
        config_maps,
    });
    run_controller_workers(NAME, queue, 1, &ctx.metrics, state, |c, key| c.sync(key).boxed()).await;
    Ok(())
}

impl State {
    async fn sync(&self, namespace: &str) -> Result<Action, Error> {
        let Some(ns) = self.namespaces.get("", namespace) else {
            return Ok(Action::Done);
        };
        if ns.metadata.deletion_timestamp.is_some() {
            return Ok(Action::Done);
        }
        let api = Api::<ConfigMap>::namespaced(self.client.clone(), namespace);
        let data = BTreeMap::from([(ROOT_CA_KEY.to_string(), self.ca.clone())]);
        let result = match self.config_maps.get(namespace, ROOT_CA_CONFIG_MAP) {
            None => {
                let cm = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(ROOT_CA_CONFIG_MAP.into()),
                        annotations: Some(BTreeMap::from([(DESCRIPTION_ANNOTATION.into(), DESCRIPTION.into())])),
                        ..ObjectMeta::default()
                    },
                    data: Some(data),
                    ..ConfigMap::default()
                };
                api.create(&PostParams::default(), &cm).await.map(|_| ())
            }
            Some(cm) => {
                let annotated = cm
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(DESCRIPTION_ANNOTATION))
                    .is_some_and(|d| d == DESCRIPTION);
                if cm.data.as_ref() == Some(&data) && annotated {
                    return Ok(Action::Done);
                }
                let mut cm = (*cm).clone();
                cm.data = Some(data);
                cm.metadata
                    .annotations
                    .get_or_insert_with(BTreeMap::new)
                    .insert(DESCRIPTION_ANNOTATION.into(), DESCRIPTION.into());
                api.replace(ROOT_CA_CONFIG_MAP, &PostParams::default(), &cm)
                    .await
                    .map(|_| ())
            }
        };
        match result {
            Ok(()) => Ok(Action::Done),
            Err(e) if is_already_exists(&e) => Ok(Action::Done),
            Err(e) if matches!(status_code(&e), Some(403 | 404)) => Ok(Action::Done),
            Err(e) => Err(e.into()),
        }
    }
}
