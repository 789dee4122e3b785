//! The horizontal pod autoscaler controller (upstream's
//! `pkg/controller/podautoscaler`), honest until a metrics API exists:
//! every sync period it reads the target's `scale` subresource
//! (`AbleToScale`), clamps the replica count into
//! `[minReplicas, maxReplicas]` through that subresource, and otherwise
//! reports `ScalingActive=False` with upstream's reason and message for a
//! cluster without `metrics.k8s.io`, keeping `currentReplicas` current.

pub mod status;

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscaler, HorizontalPodAutoscalerStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::controllers::events::{EventRecorder, EventType, reference};
use crate::error::{Error, is_not_found};
use crate::informer::{Change, Informer, object_key, split_key};
use crate::manager::ControllerContext;
use crate::runner::{Action, new_queue, run_controller_workers};
use status::{Decision, decide, metric_error, set_condition};

const NAME: &str = "horizontal-pod-autoscaler-controller";
/// Upstream's `--horizontal-pod-autoscaler-sync-period` default.
pub const SYNC_PERIOD: Duration = Duration::from_secs(15);
const WORKERS: usize = 5;

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, Result<(), Error>> {
    run(ctx).boxed()
}

struct State {
    client: kube::Client,
    hpas: Informer<HorizontalPodAutoscaler>,
    recorder: EventRecorder,
}

async fn run(ctx: ControllerContext) -> Result<(), Error> {
    let hpas = ctx.informers.get::<HorizontalPodAutoscaler>();
    let queue = new_queue("horizontalpodautoscaler", &ctx.metrics);
    let q = queue.clone();
    hpas.add_handler(move |change| {
        if let Change::Added(h) | Change::Updated { new: h, .. } = change {
            q.add(object_key(h.as_ref()));
        }
    });
    hpas.wait_synced().await;
    let state = Arc::new(State {
        client: ctx.client.clone(),
        hpas,
        recorder: EventRecorder::new(ctx.client.clone(), NAME),
    });
    run_controller_workers(NAME, queue, WORKERS, &ctx.metrics, state, |c, key| c.sync(key).boxed()).await;
    Ok(())
}

/// The target's `(spec.replicas, status.replicas)` through its `scale`
/// subresource.
async fn get_scale(
    client: &kube::Client,
    ns: &str,
    api_version: &str,
    kind: &str,
    name: &str,
) -> Result<(Api<DynamicObject>, i32, i32), String> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (ar, _) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .map_err(|e| e.to_string())?;
    let api = Api::<DynamicObject>::namespaced_with(client.clone(), ns, &ar);
    let scale = api.get_subresource("scale", name).await.map_err(|e| e.to_string())?;
    let int = |v: &serde_json::Value| i32::try_from(v.as_i64().unwrap_or(0)).unwrap_or(i32::MAX);
    Ok((
        api,
        int(&scale.data["spec"]["replicas"]),
        int(&scale.data["status"]["replicas"]),
    ))
}

impl State {
    async fn sync(&self, key: &str) -> Result<Action, Error> {
        let (ns, name) = split_key(key);
        let Some(hpa) = self.hpas.get(ns, name) else {
            return Ok(Action::Done);
        };
        let now = Timestamp::now();
        let spec = hpa.spec.clone();
        let old = hpa.status.clone();
        let mut st = old.clone().unwrap_or_default();
        let mut conditions = st.conditions.take().unwrap_or_default();
        let target = &spec.scale_target_ref;
        let api_version = target.api_version.clone().unwrap_or_default();
        let scale = get_scale(&self.client, ns, &api_version, &target.kind, &target.name).await;
        let (scale_api, spec_replicas, current) = match scale {
            Ok(s) => s,
            Err(e) => {
                let msg = format!("the HPA controller was unable to get the target's current scale: {e}");
                self.recorder.record(
                    reference(hpa.as_ref()),
                    EventType::Warning,
                    "FailedGetScale",
                    "Scale",
                    e.clone(),
                );
                set_condition(&mut conditions, "AbleToScale", false, "FailedGetScale", msg, now);
                st.conditions = Some(conditions);
                self.write_status(&hpa, old.as_ref(), st).await?;
                return Ok(Action::RequeueAfter(SYNC_PERIOD));
            }
        };
        set_condition(
            &mut conditions,
            "AbleToScale",
            true,
            "SucceededGetScale",
            "the HPA controller was able to get the target's current scale".into(),
            now,
        );
        st.current_replicas = Some(current);
        let min = spec.min_replicas.unwrap_or(1);
        match decide(spec_replicas, current, min, spec.max_replicas) {
            Decision::ScalingDisabled => {
                set_condition(
                    &mut conditions,
                    "ScalingActive",
                    false,
                    "ScalingDisabled",
                    "scaling is disabled since the replica count of the target is zero".into(),
                    now,
                );
                st.desired_replicas = 0;
            }
            Decision::Rescale(desired, reason) => {
                if desired != current {
                    let body = json!({"spec": {"replicas": desired}});
                    if let Err(e) = scale_api
                        .patch_subresource("scale", &target.name, &PatchParams::default(), &Patch::Merge(&body))
                        .await
                    {
                        let msg = format!("the HPA controller was unable to update the target scale: {e}");
                        self.recorder.record(
                            reference(hpa.as_ref()),
                            EventType::Warning,
                            "FailedRescale",
                            "Scale",
                            msg.clone(),
                        );
                        set_condition(&mut conditions, "AbleToScale", false, "FailedUpdateScale", msg, now);
                        st.conditions = Some(conditions);
                        self.write_status(&hpa, old.as_ref(), st).await?;
                        return Err(e.into());
                    }
                    set_condition(
                        &mut conditions,
                        "AbleToScale",
                        true,
                        "SucceededRescale",
                        format!("the HPA controller was able to update the target scale to {desired}"),
                        now,
                    );
                    self.recorder.record(
                        reference(hpa.as_ref()),
                        EventType::Normal,
                        "SuccessfulRescale",
                        "Scale",
                        format!("New size: {desired}; reason: {reason}"),
                    );
                    st.last_scale_time = Some(Time(now));
                }
                st.desired_replicas = desired;
            }
            Decision::FromMetrics => {
                let (reason, err) = metric_error(spec.metrics.as_deref().unwrap_or_default());
                self.recorder.record(
                    reference(hpa.as_ref()),
                    EventType::Warning,
                    reason,
                    "Scale",
                    err.clone(),
                );
                set_condition(
                    &mut conditions,
                    "ScalingActive",
                    false,
                    reason,
                    format!("the HPA was unable to compute the replica count: {err}"),
                    now,
                );
            }
        }
        st.conditions = Some(conditions);
        st.observed_generation = hpa.metadata.generation;
        self.write_status(&hpa, old.as_ref(), st).await?;
        Ok(Action::RequeueAfter(SYNC_PERIOD))
    }

    async fn write_status(
        &self,
        hpa: &HorizontalPodAutoscaler,
        old: Option<&HorizontalPodAutoscalerStatus>,
        new: HorizontalPodAutoscalerStatus,
    ) -> Result<(), Error> {
        if old == Some(&new) {
            return Ok(());
        }
        let mut fresh = hpa.clone();
        fresh.status = Some(new);
        let api = Api::<HorizontalPodAutoscaler>::namespaced(self.client.clone(), &hpa.namespace().unwrap_or_default());
        match api
            .replace_status(&hpa.name_any(), &PostParams::default(), &fresh)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
