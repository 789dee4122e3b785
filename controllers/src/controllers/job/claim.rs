//! The pods a Job manages: those its controller reference points to,
//! plus orphans its selector matches (adopted with the tracking
//! finalizer); pods it no longer selects are released without it.

use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::Api;
use serde_json::json;

use super::JobController;
use super::pod_template::JOB_TRACKING_FINALIZER;
use crate::cached_pod::CachedPod;
use crate::controllers::controller_ref::{
    Claim, claim, controller_selects, new_controller_ref, patch_claim, with_owner, without_owner,
};
use crate::error::{Error, ignore_not_found};

impl JobController {
    /// Every pod in the Job's namespace this Job controls after adopting
    /// and releasing by selector (upstream's `getPodsForJob`).
    pub(crate) async fn pods_for_job(&self, job: &Job) -> Result<Vec<Arc<CachedPod>>, Error> {
        let ns = job.namespace().unwrap_or_default();
        let uid = job.metadata.uid.clone().unwrap_or_default();
        let selector = job.spec.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default();
        let deleting = job.metadata.deletion_timestamp.is_some();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let mut claimed = Vec::new();
        let mut can_adopt: Option<bool> = None;
        for pod in self.pods.list(&ns) {
            let labels = pod.metadata.labels.clone().unwrap_or_default();
            let matches = controller_selects(&selector, &labels);
            match claim(&pod.metadata, &uid, matches, deleting) {
                Claim::Owned => claimed.push(pod),
                Claim::Ignore => {}
                Claim::Release => {
                    let mut finalizers = pod.metadata.finalizers.clone().unwrap_or_default();
                    finalizers.retain(|f| f != JOB_TRACKING_FINALIZER);
                    let patch = json!({"metadata": {
                        "ownerReferences": without_owner(&pod.metadata, &uid),
                        "finalizers": finalizers,
                        "uid": pod.metadata.uid, "resourceVersion": pod.metadata.resource_version,
                    }});
                    patch_claim(&api, &pod.name_any(), &patch).await?;
                }
                Claim::Adopt => {
                    if can_adopt.is_none() {
                        let fresh = ignore_not_found(
                            Api::<Job>::namespaced(self.client.clone(), &ns)
                                .get(&job.name_any())
                                .await,
                        )?;
                        can_adopt = Some(fresh.is_some_and(|f| {
                            f.metadata.uid.as_deref() == Some(uid.as_str()) && f.metadata.deletion_timestamp.is_none()
                        }));
                    }
                    if can_adopt != Some(true) {
                        continue;
                    }
                    let owner = new_controller_ref(&job.metadata, "batch/v1", "Job");
                    let mut finalizers = pod.metadata.finalizers.clone().unwrap_or_default();
                    if !finalizers.iter().any(|f| f == JOB_TRACKING_FINALIZER) {
                        finalizers.push(JOB_TRACKING_FINALIZER.into());
                    }
                    let patch = json!({"metadata": {
                        "ownerReferences": with_owner(&pod.metadata, owner),
                        "finalizers": finalizers,
                        "uid": pod.metadata.uid, "resourceVersion": pod.metadata.resource_version,
                    }});
                    if let Some(p) = patch_claim(&api, &pod.name_any(), &patch).await? {
                        claimed.push(Arc::new(CachedPod::from(p)));
                    }
                }
            }
        }
        Ok(claimed)
    }
}
