//! The request scenarios: create ConfigMaps, create Pods, GET by name,
//! and PUT (update with the last resourceVersion as precondition).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use http::Method;

use super::client::{self, OpError, collection, request, resource_version, send};
use super::closed_loop::{self, Measured};
use super::config::Scenario;
use super::objects::{self, now_ns};
use super::report::Row;
use super::{Ctx, PRELOAD_CLIENTS};

/// A request row from a closed-loop measurement.
pub fn row(scenario: Scenario, operation: impl Into<String>, clients: usize, m: &Measured) -> Row {
    Row {
        scenario,
        operation: operation.into(),
        clients,
        ops: m.ops(),
        errors: m.recorder.errors,
        elapsed_secs: m.elapsed.as_secs_f64(),
        ops_per_sec: m.ops_per_sec(),
        latency: m.recorder.summary(),
        cpu: m.cpu,
        server_rss_peak_mib: None,
        error_kinds: m.recorder.error_kinds(),
    }
}

/// N clients POST new ConfigMaps (`cm-<run>-<seq>`).
pub async fn create_config_maps(ctx: &Ctx) -> anyhow::Result<Row> {
    let (c, uri, run) = (
        ctx.client.clone(),
        collection(&ctx.namespace, "configmaps"),
        ctx.run.clone(),
    );
    let m = closed_loop::run(
        "create-configmaps",
        ctx.clients,
        ctx.budget,
        ctx.server_pid,
        move |_, seq| {
            let (c, uri) = (c.clone(), uri.clone());
            let body = objects::config_map(&format!("cm-{run}-{seq}"), &run, now_ns());
            async move { client::create(&c, &uri, body, false).await }
        },
    )
    .await;
    Ok(row(
        Scenario::CreateConfigmaps,
        "POST configmap (~0.5 KiB)",
        ctx.clients,
        &m,
    ))
}

/// N clients POST new Pods (`pod-<run>-<seq>`).
pub async fn create_pods(ctx: &Ctx) -> anyhow::Result<Row> {
    let (c, uri, run) = (ctx.client.clone(), collection(&ctx.namespace, "pods"), ctx.run.clone());
    let make = if ctx.admitted_pods {
        objects::admitted_pod
    } else {
        objects::pod
    };
    let m = closed_loop::run("create-pods", ctx.clients, ctx.budget, ctx.server_pid, move |_, seq| {
        let (c, uri) = (c.clone(), uri.clone());
        let body = make(&format!("pod-{run}-{seq}"), &run, now_ns());
        async move { client::create(&c, &uri, body, false).await }
    })
    .await;
    let what = if ctx.admitted_pods {
        "POST pod (~2.7 KiB, as admitted)"
    } else {
        "POST pod (~2 KiB)"
    };
    Ok(row(Scenario::CreatePods, what, ctx.clients, &m))
}

/// `objects` ConfigMaps `get-<i>` are made sure to exist, then N clients GET
/// random ones.
pub async fn get(ctx: &Ctx) -> anyhow::Result<Row> {
    let objects = ctx.objects(Scenario::Get);
    let uri = collection(&ctx.namespace, "configmaps");
    let (c, u, run) = (ctx.client.clone(), uri.clone(), ctx.run.clone());
    closed_loop::preload("get: preload", objects, PRELOAD_CLIENTS, move |i| {
        let (c, u) = (c.clone(), u.clone());
        let body = objects::config_map(&format!("get-{i}"), &run, now_ns());
        async move { client::create(&c, &u, body, true).await }
    })
    .await?;

    let c = ctx.client.clone();
    let m = closed_loop::run("get", ctx.clients, ctx.budget, ctx.server_pid, move |_, _| {
        let c = c.clone();
        let name = format!("{uri}/get-{}", rand::random_range(0..objects));
        async move {
            let req = request(Method::GET, &name, Vec::new()).map_err(|e| OpError(format!("{e:#}")))?;
            send(&c, req).await.0.map(drop)
        }
    })
    .await;
    Ok(row(
        Scenario::Get,
        format!("GET configmap by name (of {objects})"),
        ctx.clients,
        &m,
    ))
}

/// `max(objects, clients)` ConfigMaps `upd-<i>` are made sure to exist;
/// client `w` then updates objects `w`, `w + N`, `w + 2N`, ... in turn with
/// PUT, each carrying the resourceVersion the previous answer returned, so
/// no two clients touch the same object and conflicts mean a server bug.
pub async fn update(ctx: &Ctx) -> anyhow::Result<Row> {
    let objects = ctx.objects(Scenario::Update).max(ctx.clients);
    let uri = collection(&ctx.namespace, "configmaps");
    let versions: Arc<Vec<Mutex<String>>> = Arc::new((0..objects).map(|_| Mutex::new(String::new())).collect());

    // Create what is missing, then read every object's resourceVersion.
    let (c, u, run, v) = (ctx.client.clone(), uri.clone(), ctx.run.clone(), versions.clone());
    closed_loop::preload("update: preload", objects, PRELOAD_CLIENTS, move |i| {
        let (c, u, v) = (c.clone(), u.clone(), v.clone());
        let body = objects::config_map(&format!("upd-{i}"), &run, now_ns());
        async move {
            client::create(&c, &u, body, true).await?;
            let rv = fetch_resource_version(&c, &format!("{u}/upd-{i}")).await?;
            set(&v, i as usize, rv);
            Ok(())
        }
    })
    .await?;

    let next: Arc<Vec<AtomicU64>> = Arc::new((0..ctx.clients).map(|_| AtomicU64::new(0)).collect());
    let (c, run, clients) = (ctx.client.clone(), ctx.run.clone(), ctx.clients);
    let m = closed_loop::run("update", clients, ctx.budget, ctx.server_pid, move |worker, seq| {
        let (c, v) = (c.clone(), versions.clone());
        let k = next.get(worker).map_or(0, |n| n.fetch_add(1, Ordering::Relaxed));
        let owned = (objects - worker).div_ceil(clients) as u64;
        let i = worker + clients * (k % owned.max(1)) as usize;
        let name = format!("upd-{i}");
        let path = format!("{uri}/{name}");
        let rv = v
            .get(i)
            .and_then(|m| m.lock().ok().map(|s| s.clone()))
            .unwrap_or_default();
        let body = objects::config_map_update(&name, &run, &rv, seq);
        async move {
            let req = request(Method::PUT, &path, body).map_err(|e| OpError(format!("{e:#}")))?;
            match send(&c, req).await.0 {
                Ok(text) => {
                    let rv = resource_version(&text).ok_or_else(|| OpError("answer without resourceVersion".into()))?;
                    set(&v, i, rv);
                    Ok(())
                }
                Err(e) => {
                    // Resynchronise so one failure does not fail the rest.
                    if let Ok(rv) = fetch_resource_version(&c, &path).await {
                        set(&v, i, rv);
                    }
                    Err(e)
                }
            }
        }
    })
    .await;
    Ok(row(
        Scenario::Update,
        format!("PUT configmap (of {objects}, one writer each)"),
        ctx.clients,
        &m,
    ))
}

fn set(versions: &[Mutex<String>], i: usize, rv: String) {
    if let Some(Ok(mut slot)) = versions.get(i).map(|m| m.lock()) {
        *slot = rv;
    }
}

async fn fetch_resource_version(c: &kube::Client, path: &str) -> Result<String, OpError> {
    let req = request(Method::GET, path, Vec::new()).map_err(|e| OpError(format!("{e:#}")))?;
    let body = send(c, req).await.0?;
    resource_version(&body).ok_or_else(|| OpError(format!("GET {path}: no resourceVersion")))
}
