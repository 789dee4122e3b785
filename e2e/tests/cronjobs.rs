//! The CronJob controller alone against the real apiserver binary, on a
//! test clock the test moves from one activation to the next (no real
//! minute waits): `concurrencyPolicy: Forbid` starts no second Job while
//! one is active, `Replace` deletes the active Job and starts the new one,
//! and a suspended CronJob starts nothing until resumed, then only the
//! most recent missed activation. No Job controller runs, so the Jobs it
//! creates stay active.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use rkube_controllers::controllers::cronjob::{self, Clock};
use rkube_controllers::metrics::Metrics;
use rkube_controllers::{Config, ControllerContext};
use rkube_e2e::controllers_support::{Env, EnvOptions, wait_for};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);
const NS: &str = "cron";

/// A clock that stands still until the test moves it.
struct TestClock(Mutex<Timestamp>);

impl TestClock {
    fn set(&self, t: Timestamp) {
        *self.0.lock().unwrap() = t;
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

fn cronjob(name: &str, policy: &str, suspend: bool) -> CronJob {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "schedule": "* * * * *",
            "concurrencyPolicy": policy,
            "suspend": suspend,
            "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "work", "image": "busybox"}],
            }}}},
        },
    }))
    .unwrap()
}

/// The Job name of the activation at `t`, as upstream names it.
fn job_name(cronjob: &str, t: Timestamp) -> String {
    format!("{cronjob}-{}", t.as_second() / 60)
}

/// The names of the Jobs whose names start with `cronjob-`.
async fn jobs_of(jobs: &Api<Job>, cronjob: &str) -> anyhow::Result<Vec<String>> {
    let mut names: Vec<String> = jobs
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .map(ResourceExt::name_any)
        .filter(|n| n.starts_with(&format!("{cronjob}-")))
        .collect();
    names.sort();
    Ok(names)
}

/// The names in `status.active`.
async fn active(cronjobs: &Api<CronJob>, name: &str) -> anyhow::Result<Vec<String>> {
    let cj = cronjobs.get(name).await?;
    Ok(cj
        .status
        .and_then(|s| s.active)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| r.name)
        .collect())
}

/// Changes an annotation so the controller syncs the CronJob now (it
/// re-queues itself on the real clock, not the test's).
async fn touch(cronjobs: &Api<CronJob>, name: &str, tick: u32) {
    let patch = json!({"metadata": {"annotations": {"test.rkube.io/tick": tick.to_string()}}});
    cronjobs
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

/// Waits for an event about `cronjob` with `reason`; returns its note.
async fn event(events: &Api<Event>, cronjob: &str, reason: &str) -> String {
    wait_for(&format!("{reason} event of {cronjob}"), WAIT, || async {
        Ok(events
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .find(|ev| {
                ev.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(cronjob)
                    && ev.reason.as_deref() == Some(reason)
            })
            .map(|ev| ev.note.unwrap_or_default()))
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_policies_and_suspend_on_a_test_clock() {
    let e = Env::start(EnvOptions {
        namespace: Some(NS.into()),
        ..EnvOptions::default()
    })
    .await
    .expect("environment starts");
    let clock = Arc::new(TestClock(Mutex::new(Timestamp::now())));
    let config = Config::new(Some(e.cluster.kubeconfig()));
    let ctx = ControllerContext::new(e.client.clone(), Arc::new(Metrics::new()), &config);
    let controller = tokio::spawn(cronjob::run(ctx, clock.clone()));

    let cronjobs: Api<CronJob> = Api::namespaced(e.client.clone(), NS);
    let jobs: Api<Job> = Api::namespaced(e.client.clone(), NS);
    let events: Api<Event> = Api::namespaced(e.client.clone(), NS);
    let mut created = Timestamp::UNIX_EPOCH;
    for cj in [
        cronjob("forbid", "Forbid", false),
        cronjob("replace", "Replace", false),
        cronjob("paused", "Allow", true),
    ] {
        let cj = cronjobs.create(&PostParams::default(), &cj).await.unwrap();
        created = created.max(cj.metadata.creation_timestamp.unwrap().0);
    }
    // The activations after the creations, and times 5 s past them.
    let minute = SignedDuration::from_secs(60);
    let m1 = Timestamp::from_second(created.as_second() - created.as_second().rem_euclid(60)).unwrap() + minute;
    let m2 = m1 + minute;
    let past = |t: Timestamp| t + SignedDuration::from_secs(5);

    // First activation: Forbid and Replace start their Jobs.
    clock.set(past(m1));
    for name in ["forbid", "replace", "paused"] {
        touch(&cronjobs, name, 1).await;
    }
    for name in ["forbid", "replace"] {
        let want = vec![job_name(name, m1)];
        wait_for(&format!("{name} starts its first Job"), WAIT, || async {
            Ok((active(&cronjobs, name).await? == want).then_some(()))
        })
        .await
        .unwrap();
        assert_eq!(jobs_of(&jobs, name).await.unwrap(), want);
        let cj = cronjobs.get(name).await.unwrap();
        assert_eq!(cj.status.unwrap().last_schedule_time.map(|t| t.0), Some(m1));
    }
    // The suspended one starts nothing. To know a sync ran at this time,
    // give it an active Job that does not exist: the sync that drops it
    // from status.active (a status write, so its cache held suspend=true)
    // is the one that would have started a Job.
    let mut paused = cronjobs.get_status("paused").await.unwrap();
    paused.status.get_or_insert_with(Default::default).active = Some(vec![
        serde_json::from_value(json!({
            "apiVersion": "batch/v1", "kind": "Job", "namespace": NS, "name": "paused-ghost",
            "uid": "7b3c1e9a-0000-4000-8000-000000000001",
        }))
        .unwrap(),
    ]);
    cronjobs
        .replace_status("paused", &PostParams::default(), &paused)
        .await
        .unwrap();
    wait_for("the suspended CronJob drops its missing Job", WAIT, || async {
        Ok(active(&cronjobs, "paused").await?.is_empty().then_some(()))
    })
    .await
    .unwrap();
    assert_eq!(
        event(&events, "paused", "MissingJob").await,
        "Active job went missing: paused-ghost"
    );
    assert_eq!(jobs_of(&jobs, "paused").await.unwrap(), Vec::<String>::new());

    // Second activation while the first Jobs still run.
    clock.set(past(m2));
    for name in ["forbid", "replace"] {
        touch(&cronjobs, name, 2).await;
    }
    // Forbid: no second Job, and an event saying why.
    assert_eq!(
        event(&events, "forbid", "JobAlreadyActive").await,
        "Not starting job because prior execution is running and concurrency policy is Forbid"
    );
    assert_eq!(jobs_of(&jobs, "forbid").await.unwrap(), vec![job_name("forbid", m1)]);
    assert_eq!(active(&cronjobs, "forbid").await.unwrap(), vec![job_name("forbid", m1)]);
    // Replace: the running Job is deleted and the new one started.
    let want = vec![job_name("replace", m2)];
    wait_for("replace swaps its Job", WAIT, || async {
        Ok((active(&cronjobs, "replace").await? == want && jobs_of(&jobs, "replace").await? == want).then_some(()))
    })
    .await
    .unwrap();
    assert_eq!(
        event(&events, "replace", "SuccessfulDelete").await,
        format!("Deleted job {}", job_name("replace", m1))
    );
    let cj = cronjobs.get("replace").await.unwrap();
    assert_eq!(cj.status.unwrap().last_schedule_time.map(|t| t.0), Some(m2));

    // Resumed: only the most recent missed activation runs.
    cronjobs
        .patch(
            "paused",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspend": false}})),
        )
        .await
        .unwrap();
    let want = vec![job_name("paused", m2)];
    wait_for("the resumed CronJob starts the latest activation", WAIT, || async {
        Ok((active(&cronjobs, "paused").await? == want).then_some(()))
    })
    .await
    .unwrap();
    assert_eq!(jobs_of(&jobs, "paused").await.unwrap(), want);
    controller.abort();
}
