//! The Job, CronJob and TTL-after-finished controllers against the real
//! apiserver binary, with the scheduler and controller manager in-process
//! and simulated nodes running the pods (pods exit when the test sets
//! `sim.rkube.io/exit-after-seconds` / `exit-code` on them): a Job with
//! parallelism 3 replaces its one failed pod and completes, counting each
//! pod once; an Indexed Job names pods by index, completes every index and
//! is deleted by its TTL; suspending a Job deletes its pods and resuming
//! recreates them, with the Suspended condition; a CronJob on a one-minute
//! schedule creates its Job and records it (`cronjobs.rs` drives the
//! CronJob controller with a test clock instead).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use rkube_e2e::controllers_support::{Controllers, Env, EnvOptions, sim_nodes, wait_for};
use rkube_e2e::simnodes::pods::{EXIT_AFTER_ANNOTATION, EXIT_CODE_ANNOTATION};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

/// Two simulated nodes, the scheduler and the controller manager.
async fn env(ns: &str) -> Env {
    Env::start(EnvOptions {
        namespace: Some(ns.into()),
        nodes: vec![sim_nodes("job-node-", 2)],
        scheduler: true,
        controllers: Controllers::InProcess,
        ..EnvOptions::default()
    })
    .await
    .expect("environment starts")
}

async fn job_pods(pods: &Api<Pod>, job: &str) -> anyhow::Result<Vec<Pod>> {
    let lp = ListParams::default().labels(&format!("batch.kubernetes.io/job-name={job}"));
    Ok(pods.list(&lp).await?.items)
}

fn phase(p: &Pod) -> &str {
    p.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

/// Makes the pod's containers exit now with `code`.
async fn exit(pods: &Api<Pod>, name: &str, code: i32) {
    let patch =
        json!({"metadata": {"annotations": {EXIT_AFTER_ANNOTATION: "0", EXIT_CODE_ANNOTATION: code.to_string()}}});
    pods.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

fn condition<'a>(job: &'a Job, type_: &str) -> Option<&'a k8s_openapi::api::batch::v1::JobCondition> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
}

fn job(name: &str, spec: Value, pod_annotations: Value) -> Job {
    let mut spec = spec;
    spec["template"] = json!({"metadata": {"annotations": pod_annotations},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "work", "image": "busybox"}]}});
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_job_replaces_a_failed_pod_and_completes() {
    let e = env("jobs").await;
    let jobs: Api<Job> = Api::namespaced(e.client.clone(), "jobs");
    let pods: Api<Pod> = Api::namespaced(e.client.clone(), "jobs");
    jobs.create(
        &PostParams::default(),
        &job(
            "work",
            json!({"parallelism": 3, "completions": 3, "backoffLimit": 2}),
            json!({}),
        ),
    )
    .await
    .unwrap();
    let running = wait_for("3 running pods", WAIT, || async {
        let ps = job_pods(&pods, "work").await?;
        Ok((ps.iter().filter(|p| phase(p) == "Running").count() == 3).then_some(ps))
    })
    .await
    .unwrap();
    for p in &running {
        assert!(
            p.finalizers().iter().any(|f| f == "batch.kubernetes.io/job-tracking"),
            "{:?}",
            p.finalizers()
        );
        assert!(p.name_any().starts_with("work-"));
    }
    let status = wait_for("status.active 3, ready 3", WAIT, || async {
        let s = jobs.get("work").await?.status.unwrap_or_default();
        Ok((s.active == Some(3) && s.ready == Some(3)).then_some(s))
    })
    .await
    .unwrap();
    assert!(status.start_time.is_some());

    // One pod fails: counted once, replaced after the back-off (10 s).
    let victim = running[0].name_any();
    exit(&pods, &victim, 1).await;
    wait_for("failed 1", WAIT, || async {
        let s = jobs.get("work").await?.status.unwrap_or_default();
        Ok((s.failed == Some(1)).then_some(()))
    })
    .await
    .unwrap();
    let all = wait_for("a replacement pod runs", WAIT, || async {
        let ps = job_pods(&pods, "work").await?;
        Ok((ps.len() == 4 && ps.iter().filter(|p| phase(p) == "Running").count() == 3).then_some(ps))
    })
    .await
    .unwrap();
    let failed = all.iter().find(|p| p.name_any() == victim).unwrap();
    assert_eq!(phase(failed), "Failed");
    assert!(failed.finalizers().is_empty(), "counted pods lose the finalizer");

    // The three running pods succeed: the Job completes.
    for p in all.iter().filter(|p| phase(p) == "Running") {
        exit(&pods, &p.name_any(), 0).await;
    }
    let done = wait_for("Complete", WAIT, || async {
        let j = jobs.get("work").await?;
        Ok(condition(&j, "Complete").is_some().then_some(j))
    })
    .await
    .unwrap();
    let s = done.status.clone().unwrap();
    assert_eq!((s.succeeded, s.failed, s.active), (Some(3), Some(1), Some(0)));
    assert!(s.completion_time.is_some());
    let complete = condition(&done, "Complete").unwrap();
    assert_eq!(complete.reason.as_deref(), Some("CompletionsReached"));
    assert_eq!(
        complete.message.as_deref(),
        Some("Reached expected number of succeeded pods")
    );
    assert!(condition(&done, "SuccessCriteriaMet").is_some());
    let uncounted = s.uncounted_terminated_pods.unwrap_or_default();
    assert!(uncounted.succeeded.unwrap_or_default().is_empty() && uncounted.failed.unwrap_or_default().is_empty());
    for p in job_pods(&pods, "work").await.unwrap() {
        assert!(p.finalizers().is_empty(), "{} keeps {:?}", p.name_any(), p.finalizers());
    }
    let events: Api<Event> = Api::namespaced(e.client.clone(), "jobs");
    let reasons = wait_for("Completed event", WAIT, || async {
        let reasons: Vec<String> = events
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter(|ev| ev.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("work"))
            .filter_map(|ev| ev.reason)
            .collect();
        Ok(reasons.iter().any(|r| r == "Completed").then_some(reasons))
    })
    .await
    .unwrap();
    assert_eq!(
        reasons.iter().filter(|r| *r == "SuccessfulCreate").count(),
        4,
        "{reasons:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexed_job_completes_every_index_and_its_ttl_deletes_it() {
    let e = env("indexed").await;
    let jobs: Api<Job> = Api::namespaced(e.client.clone(), "indexed");
    let pods: Api<Pod> = Api::namespaced(e.client.clone(), "indexed");
    jobs.create(
        &PostParams::default(),
        &job(
            "idx",
            json!({"completionMode": "Indexed", "completions": 3, "parallelism": 3, "ttlSecondsAfterFinished": 2}),
            json!({EXIT_AFTER_ANNOTATION: "1", EXIT_CODE_ANNOTATION: "0"}),
        ),
    )
    .await
    .unwrap();
    let created = wait_for("3 pods", WAIT, || async {
        let ps = job_pods(&pods, "idx").await?;
        Ok((ps.len() == 3).then_some(ps))
    })
    .await
    .unwrap();
    let mut indexes: Vec<String> = created
        .iter()
        .map(|p| {
            let ix = p.annotations()["batch.kubernetes.io/job-completion-index"].clone();
            assert_eq!(p.labels()["batch.kubernetes.io/job-completion-index"], ix);
            assert!(p.name_any().starts_with(&format!("idx-{ix}-")), "{}", p.name_any());
            let spec = p.spec.as_ref().unwrap();
            assert_eq!(spec.hostname.as_deref(), Some(format!("idx-{ix}").as_str()));
            let env = spec.containers[0].env.as_ref().unwrap();
            assert!(env.iter().any(|e| e.name == "JOB_COMPLETION_INDEX"));
            ix
        })
        .collect();
    indexes.sort();
    assert_eq!(indexes, vec!["0", "1", "2"]);
    let done = wait_for("Complete", WAIT, || async {
        let j = jobs.get_opt("idx").await?;
        Ok(j.filter(|j| condition(j, "Complete").is_some()))
    })
    .await;
    // With a 2 s TTL the Job may already be gone; if seen, check it.
    if let Ok(j) = &done {
        let s = j.status.clone().unwrap();
        assert_eq!(s.completed_indexes.as_deref(), Some("0-2"));
        assert_eq!(s.succeeded, Some(3));
    }
    wait_for("the TTL deletes the Job", WAIT, || async {
        Ok(jobs.get_opt("idx").await?.is_none().then_some(()))
    })
    .await
    .unwrap();
    wait_for("its pods go too", WAIT, || async {
        Ok(job_pods(&pods, "idx").await?.is_empty().then_some(()))
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cronjob_fires_on_a_one_minute_schedule() {
    let e = env("cron").await;
    let cronjobs: Api<CronJob> = Api::namespaced(e.client.clone(), "cron");
    let jobs: Api<Job> = Api::namespaced(e.client.clone(), "cron");
    let template = job(
        "unused",
        json!({}),
        json!({EXIT_AFTER_ANNOTATION: "1", EXIT_CODE_ANNOTATION: "0"}),
    );
    let cj: CronJob = serde_json::from_value(json!({
        "metadata": {"name": "tick"},
        "spec": {"schedule": "* * * * *", "concurrencyPolicy": "Forbid",
                 "jobTemplate": {"metadata": {"labels": {"from": "tick"}}, "spec": template.spec}},
    }))
    .unwrap();
    cronjobs.create(&PostParams::default(), &cj).await.unwrap();
    // The first activation is at most a minute away.
    let fired = wait_for("a Job from the CronJob", Duration::from_secs(90), || async {
        Ok(jobs
            .list(&ListParams::default().labels("from=tick"))
            .await?
            .items
            .into_iter()
            .next())
    })
    .await
    .unwrap();
    let name = fired.name_any();
    let scheduled = fired.annotations()["batch.kubernetes.io/cronjob-scheduled-timestamp"].clone();
    let ts: k8s_openapi::jiff::Timestamp = scheduled.parse().unwrap();
    assert_eq!(name, format!("tick-{}", ts.as_second() / 60));
    let owner = fired.owner_references()[0].clone();
    assert_eq!((owner.kind.as_str(), owner.controller), ("CronJob", Some(true)));
    // The run completes: recorded as the last successful one and no
    // longer active.
    let status = wait_for("lastSuccessfulTime", WAIT, || async {
        let s = cronjobs.get("tick").await?.status.unwrap_or_default();
        Ok(s.last_successful_time.is_some().then_some(s))
    })
    .await
    .unwrap();
    assert_eq!(status.last_schedule_time.map(|t| t.0), Some(ts));
    let active = status.active.unwrap_or_default();
    assert!(
        active.iter().all(|r| r.name.as_deref() != Some(name.as_str())),
        "{active:?}"
    );
}

/// The Suspended condition's (status, reason, message).
fn suspended(job: &Job) -> Option<(String, String, String)> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Suspended")
        .map(|c| {
            (
                c.status.clone(),
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
}

fn live(ps: &[Pod]) -> Vec<String> {
    ps.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(ResourceExt::name_any)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspending_a_job_deletes_its_pods_and_resuming_recreates_them() {
    let e = env("suspend").await;
    let jobs: Api<Job> = Api::namespaced(e.client.clone(), "suspend");
    let pods: Api<Pod> = Api::namespaced(e.client.clone(), "suspend");
    // Pods that run until deleted.
    jobs.create(
        &PostParams::default(),
        &job("long", json!({"parallelism": 2, "completions": 4}), json!({})),
    )
    .await
    .unwrap();
    let first = wait_for("2 running pods", WAIT, || async {
        let ps = job_pods(&pods, "long").await?;
        Ok((ps.iter().filter(|p| phase(p) == "Running").count() == 2).then_some(live(&ps)))
    })
    .await
    .unwrap();
    let started = wait_for("status.active 2", WAIT, || async {
        let s = jobs.get("long").await?.status.unwrap_or_default();
        Ok((s.active == Some(2)).then_some(s.start_time))
    })
    .await
    .unwrap()
    .expect("startTime");

    // Suspended: the active pods are deleted, none replaces them, and the
    // Job says so.
    let suspend = |on: bool| json!({"spec": {"suspend": on}});
    jobs.patch("long", &PatchParams::default(), &Patch::Merge(suspend(true)))
        .await
        .unwrap();
    let j = wait_for("suspended with no pods", WAIT, || async {
        let j = jobs.get("long").await?;
        let s = j.status.clone().unwrap_or_default();
        let gone = job_pods(&pods, "long").await?.is_empty();
        Ok((gone && s.active == Some(0) && suspended(&j).is_some()).then_some(j))
    })
    .await
    .unwrap();
    assert_eq!(
        suspended(&j),
        Some(("True".into(), "JobSuspended".into(), "Job suspended".into()))
    );
    let s = j.status.clone().unwrap();
    assert_eq!((s.succeeded.unwrap_or(0), s.failed.unwrap_or(0)), (0, 0), "{s:?}");
    assert!(condition(&j, "Complete").is_none() && condition(&j, "Failed").is_none());

    // Resumed: two new pods, Suspended=False, and startTime restarts (the
    // active deadline counts from the resume).
    let resumed_after =
        k8s_openapi::jiff::Timestamp::from_second(k8s_openapi::jiff::Timestamp::now().as_second()).unwrap();
    jobs.patch("long", &PatchParams::default(), &Patch::Merge(suspend(false)))
        .await
        .unwrap();
    let second = wait_for("2 new running pods", WAIT, || async {
        let ps = job_pods(&pods, "long").await?;
        Ok((ps.iter().filter(|p| phase(p) == "Running").count() == 2).then_some(live(&ps)))
    })
    .await
    .unwrap();
    assert!(second.iter().all(|p| !first.contains(p)), "{first:?} {second:?}");
    let j = wait_for("resumed", WAIT, || async {
        let j = jobs.get("long").await?;
        let active = j.status.as_ref().and_then(|s| s.active);
        Ok((active == Some(2) && suspended(&j).is_some_and(|c| c.0 == "False")).then_some(j))
    })
    .await
    .unwrap();
    assert_eq!(
        suspended(&j),
        Some(("False".into(), "JobResumed".into(), "Job resumed".into()))
    );
    let restarted = j.status.as_ref().and_then(|s| s.start_time.clone()).unwrap();
    assert!(
        restarted.0 >= resumed_after && restarted.0 >= started.0,
        "startTime {:?}, first {:?}, resumed after {resumed_after}",
        restarted.0,
        started.0
    );
    let events: Api<Event> = Api::namespaced(e.client.clone(), "suspend");
    wait_for("Suspended and Resumed events", WAIT, || async {
        let reasons: Vec<String> = events
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter(|ev| ev.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("long"))
            .filter_map(|ev| ev.reason)
            .collect();
        let both = reasons.iter().any(|r| r == "Suspended") && reasons.iter().any(|r| r == "Resumed");
        Ok(both.then_some(()))
    })
    .await
    .unwrap();
}
