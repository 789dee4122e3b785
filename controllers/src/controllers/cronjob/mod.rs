//! The CronJob controller (upstream `pkg/controller/cronjob`, v2): creates
//! a Job per activation of `spec.schedule` ([`schedule`], in
//! `spec.timeZone`), named `<cronjob>-<minutes since the epoch>` so a
//! retried creation never doubles a run; honours `suspend`,
//! `startingDeadlineSeconds` and `concurrencyPolicy` (Allow, Forbid,
//! Replace); keeps `status.active`, `lastScheduleTime` and
//! `lastSuccessfulTime`; deletes finished Jobs past the history limits;
//! and re-queues itself for the next activation. The decisions are pure
//! functions of the objects and `now` ([`scheduling`]); the clock is a
//! [`Clock`] so tests can choose the time.

pub mod scheduling;

use std::collections::HashSet;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams, PropagationPolicy};

use crate::controllers::controller_ref::controller_of;
use crate::controllers::events::{EventRecorder, EventType, reference};
use crate::controllers::job::conditions::{COMPLETE, FAILED, find_true, is_finished};
use crate::error::{Error, ignore_not_found, is_already_exists, is_not_found};
use crate::informer::{Change, Informer, object_key, split_key};
use crate::manager::ControllerContext;
use crate::runner::{Action, new_queue, run_controller_workers};
use rkube_cron::{load_time_zone, parse};
use scheduling::{
    TOO_MANY_MISSED, job_from_template, job_name, jobs_past_history_limits, most_recent_schedule_time,
    next_schedule_duration,
};

/// Upstream's name.
pub const CONTROLLER_NAME: &str = "cronjob-controller";

/// The time source (the real clock, or a fixed one in tests).
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, Result<(), Error>> {
    run(ctx, Arc::new(SystemClock)).boxed()
}

/// The CronJob controller's shared state.
pub struct CronJobController {
    client: kube::Client,
    cronjobs: Informer<CronJob>,
    jobs: Informer<Job>,
    queue: crate::queue::WorkQueue<String>,
    events: EventRecorder,
    clock: Arc<dyn Clock>,
}

/// Runs the controller with `clock`.
pub async fn run(ctx: ControllerContext, clock: Arc<dyn Clock>) -> Result<(), Error> {
    let queue = new_queue("cronjob", &ctx.metrics);
    let c = Arc::new(CronJobController {
        client: ctx.client.clone(),
        cronjobs: ctx.informers.get::<CronJob>(),
        jobs: ctx.informers.get::<Job>(),
        queue: queue.clone(),
        events: EventRecorder::new(ctx.client.clone(), CONTROLLER_NAME),
        clock,
    });
    let h = c.clone();
    c.cronjobs.add_handler(move |change| match change {
        Change::Added(cj) | Change::Updated { new: cj, .. } | Change::Deleted(cj) => {
            h.queue.add(object_key(cj.as_ref()))
        }
    });
    let h = c.clone();
    c.jobs.add_handler(move |change| {
        let job = match change {
            Change::Added(j) | Change::Deleted(j) => j,
            Change::Updated { old, new } => {
                if old.metadata.resource_version == new.metadata.resource_version {
                    return;
                }
                if controller_of(&old.metadata).map(|r| &r.uid) != controller_of(&new.metadata).map(|r| &r.uid) {
                    h.enqueue_owner(old);
                }
                new
            }
        };
        h.enqueue_owner(job);
    });
    c.cronjobs.wait_synced().await;
    c.jobs.wait_synced().await;
    run_controller_workers(
        CONTROLLER_NAME,
        queue,
        ctx.config.concurrency.cronjob,
        &ctx.metrics,
        c,
        |c, key| c.sync(key).boxed(),
    )
    .await;
    Ok(())
}

fn in_active_list(cj: &CronJob, uid: &str) -> bool {
    cj.status
        .as_ref()
        .and_then(|s| s.active.as_ref())
        .is_some_and(|a| a.iter().any(|r| r.uid.as_deref() == Some(uid)))
}

fn remove_from_active_list(cj: &mut CronJob, uid: &str) {
    if let Some(active) = cj.status.as_mut().and_then(|s| s.active.as_mut()) {
        active.retain(|r| r.uid.as_deref() != Some(uid));
    }
}

fn job_reference(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        field_path: None,
    }
}

impl CronJobController {
    fn enqueue_owner(&self, job: &Job) {
        let Some(r) = controller_of(&job.metadata) else { return };
        if r.kind != "CronJob" {
            return;
        }
        let ns = job.namespace().unwrap_or_default();
        if let Some(cj) = self.cronjobs.get(&ns, &r.name)
            && cj.metadata.uid.as_deref() == Some(r.uid.as_str())
        {
            self.queue.add(object_key(cj.as_ref()));
        }
    }

    fn event(&self, cj: &CronJob, type_: EventType, reason: &str, note: String) {
        self.events.record(reference(cj), type_, reason, "Sync", note);
    }

    /// One reconcile of `namespace/name`.
    pub async fn sync(&self, key: &str) -> Result<Action, Error> {
        let (ns, name) = split_key(key);
        let Some(shared) = self.cronjobs.get(ns, name) else {
            return Ok(Action::Done);
        };
        let uid = shared.metadata.uid.clone().unwrap_or_default();
        let jobs: Vec<Arc<Job>> = self
            .jobs
            .list(ns)
            .into_iter()
            .filter(|j| controller_of(&j.metadata).is_some_and(|r| r.uid == uid))
            .collect();
        let mut cj = (*shared).clone();
        let now = self.clock.now();
        let (requeue, mut update_status, result) = self.sync_cronjob(&mut cj, &jobs, now).await;
        if cj.metadata.deletion_timestamp.is_none() {
            update_status |= self.cleanup_finished_jobs(&mut cj, &jobs).await;
        }
        if update_status && cj.status != shared.status {
            let api: Api<CronJob> = Api::namespaced(self.client.clone(), ns);
            match api.replace_status(name, &PostParams::default(), &cj).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => return Ok(Action::Done),
                Err(e) => return Err(e.into()),
            }
        }
        result?;
        Ok(match requeue {
            Some(d) => Action::RequeueAfter(d),
            None => Action::Done,
        })
    }

    /// Upstream's `syncCronJob`: returns when to look again, whether the
    /// status changed, and the error.
    async fn sync_cronjob(
        &self,
        cj: &mut CronJob,
        jobs: &[Arc<Job>],
        now: Timestamp,
    ) -> (Option<std::time::Duration>, bool, Result<(), Error>) {
        let ns = cj.namespace().unwrap_or_default();
        let mut update = false;
        cj.status.get_or_insert_with(Default::default);
        let children: HashSet<String> = jobs.iter().filter_map(|j| j.metadata.uid.clone()).collect();
        for j in jobs {
            let juid = j.metadata.uid.clone().unwrap_or_default();
            let found = in_active_list(cj, &juid);
            if !found && !is_finished(j) {
                self.event(
                    cj,
                    EventType::Warning,
                    "UnexpectedJob",
                    format!(
                        "Saw a job that the controller did not create or forgot: {}",
                        j.name_any()
                    ),
                );
            } else if found && is_finished(j) {
                let cond = if find_true(j, COMPLETE).is_some() {
                    COMPLETE
                } else {
                    FAILED
                };
                remove_from_active_list(cj, &juid);
                self.event(
                    cj,
                    EventType::Normal,
                    "SawCompletedJob",
                    format!("Saw completed job: {}, condition: {cond}", j.name_any()),
                );
                update = true;
            }
            if find_true(j, COMPLETE).is_some()
                && let Some(done) = j.status.as_ref().and_then(|s| s.completion_time.clone())
            {
                let status = cj.status.get_or_insert_with(Default::default);
                if status.last_successful_time.as_ref().is_none_or(|t| done.0 > t.0) {
                    status.last_successful_time = Some(done);
                    update = true;
                }
            }
        }
        // Active Jobs that are gone (checked live: the cache may lag).
        let active: Vec<ObjectReference> = cj.status.as_ref().and_then(|s| s.active.clone()).unwrap_or_default();
        let api: Api<Job> = Api::namespaced(self.client.clone(), &ns);
        for r in active {
            if r.uid.as_ref().is_some_and(|u| children.contains(u)) {
                continue;
            }
            let name = r.name.clone().unwrap_or_default();
            match ignore_not_found(api.get(&name).await) {
                Ok(Some(_)) => {}
                Ok(None) => {
                    self.event(
                        cj,
                        EventType::Normal,
                        "MissingJob",
                        format!("Active job went missing: {name}"),
                    );
                    remove_from_active_list(cj, r.uid.as_deref().unwrap_or(""));
                    update = true;
                }
                Err(e) => return (None, update, Err(e.into())),
            }
        }
        if cj.metadata.deletion_timestamp.is_some() {
            return (None, update, Ok(()));
        }
        let spec = cj.spec.clone();
        let mut tz = match spec.time_zone.as_deref() {
            None => k8s_openapi::jiff::tz::TimeZone::UTC,
            Some(zone) => match load_time_zone(zone) {
                Ok(tz) => tz,
                Err(e) => {
                    self.event(
                        cj,
                        EventType::Warning,
                        "UnknownTimeZone",
                        format!("invalid timeZone: {zone:?}: {e}"),
                    );
                    return (None, update, Ok(()));
                }
            },
        };
        if spec.suspend == Some(true) {
            return (None, update, Ok(()));
        }
        let schedule = match parse(&spec.schedule) {
            Ok((s, zone)) => {
                if let Some(zone) = zone
                    && let Ok(z) = load_time_zone(&zone)
                {
                    tz = z;
                }
                s
            }
            Err(e) => {
                self.event(
                    cj,
                    EventType::Warning,
                    "UnparseableSchedule",
                    format!("unparseable schedule: {:?} : {e}", spec.schedule),
                );
                return (None, update, Ok(()));
            }
        };
        let unmet = match most_recent_schedule_time(cj, now, &schedule, &tz, true) {
            Ok(u) => u,
            Err(e) => {
                self.event(
                    cj,
                    EventType::Warning,
                    "InvalidSchedule",
                    format!("invalid schedule: {} : {e}", spec.schedule),
                );
                return (None, update, Ok(()));
            }
        };
        if unmet.missed > TOO_MANY_MISSED {
            self.event(
                cj,
                EventType::Warning,
                "TooManyMissedTimes",
                format!(
                    "too many missed start times: {}. Set or decrease .spec.startingDeadlineSeconds or check clock skew",
                    unmet.missed
                ),
            );
        }
        let next = |cj: &CronJob| next_schedule_duration(cj, now, &schedule, &tz);
        let Some(scheduled) = unmet.most_recent else {
            return (next(cj), update, Ok(()));
        };
        if let Some(sds) = spec.starting_deadline_seconds
            && scheduled.as_second().saturating_add(sds) < now.as_second()
        {
            self.event(
                cj,
                EventType::Warning,
                "MissSchedule",
                format!(
                    "Missed scheduled time to start a job: {}",
                    scheduled.strftime("%a, %d %b %Y %H:%M:%S +0000")
                ),
            );
            return (next(cj), update, Ok(()));
        }
        let name = job_name(&cj.name_any(), scheduled);
        let status = cj.status.clone().unwrap_or_default();
        let already = status
            .active
            .iter()
            .flatten()
            .any(|r| r.name.as_deref() == Some(name.as_str()))
            || status.last_schedule_time.as_ref().is_some_and(|t| t.0 == scheduled);
        if already {
            return (next(cj), update, Ok(()));
        }
        let policy = spec.concurrency_policy.as_deref().unwrap_or("Allow");
        let active_count = status.active.as_ref().map_or(0, Vec::len);
        if policy == "Forbid" && active_count > 0 {
            self.event(
                cj,
                EventType::Normal,
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is Forbid".into(),
            );
            return (next(cj), update, Ok(()));
        }
        if policy == "Replace" {
            for r in status.active.iter().flatten() {
                let jname = r.name.clone().unwrap_or_default();
                match self.delete_job(cj, &jname).await {
                    Ok(()) => {
                        remove_from_active_list(cj, r.uid.as_deref().unwrap_or(""));
                        update = true;
                    }
                    Err(e) => return (None, update, Err(e)),
                }
            }
        }
        let job = job_from_template(cj, scheduled, &tz);
        let created = match api.create(&PostParams::default(), &job).await {
            Ok(j) => {
                self.event(
                    cj,
                    EventType::Normal,
                    "SuccessfulCreate",
                    format!("Created job {}", j.name_any()),
                );
                j
            }
            Err(e) if is_already_exists(&e) => {
                // Created before (a crash before the status write, or by
                // someone else): adopt it into the status if it is ours.
                let existing = match api.get(&name).await {
                    Ok(j) => j,
                    Err(e) => return (None, update, Err(e.into())),
                };
                let ours = controller_of(&existing.metadata).is_some_and(|r| Some(&r.uid) == cj.metadata.uid.as_ref());
                if !ours || in_active_list(cj, existing.metadata.uid.as_deref().unwrap_or("")) {
                    return (None, update, Ok(()));
                }
                existing
            }
            Err(e) => {
                self.event(
                    cj,
                    EventType::Warning,
                    "FailedCreate",
                    format!("Error creating job: {e}"),
                );
                return (None, update, Err(e.into()));
            }
        };
        let status = cj.status.get_or_insert_with(Default::default);
        status.active.get_or_insert_with(Vec::new).push(job_reference(&created));
        status.last_schedule_time = Some(Time(scheduled));
        (next(cj), true, Ok(()))
    }

    /// Deletes a Job (background propagation), recording the event.
    async fn delete_job(&self, cj: &CronJob, name: &str) -> Result<(), Error> {
        let api: Api<Job> = Api::namespaced(self.client.clone(), &cj.namespace().unwrap_or_default());
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        match api.delete(name, &dp).await {
            Ok(_) => {
                self.event(cj, EventType::Normal, "SuccessfulDelete", format!("Deleted job {name}"));
                Ok(())
            }
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => {
                self.event(cj, EventType::Warning, "FailedDelete", format!("Deleted job: {e}"));
                Err(e.into())
            }
        }
    }

    /// Deletes finished Jobs past the history limits; returns whether the
    /// active list changed.
    async fn cleanup_finished_jobs(&self, cj: &mut CronJob, jobs: &[Arc<Job>]) -> bool {
        let mut changed = false;
        for j in jobs_past_history_limits(cj, jobs) {
            if self.delete_job(cj, &j.name_any()).await.is_ok() {
                let uid = j.metadata.uid.clone().unwrap_or_default();
                if in_active_list(cj, &uid) {
                    remove_from_active_list(cj, &uid);
                    changed = true;
                }
            }
        }
        changed
    }
}
