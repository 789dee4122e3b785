//! The LIST scenario: the namespace is filled up to `--objects` Pods of
//! about 2 KiB, then one client times full LISTs (to the last byte of the
//! body) and paginated LISTs (`limit=--page-size`, all pages, one operation
//! per walk). Runs are sequential: this measures the latency of a big read,
//! not concurrency. Bodies are parsed after the clock stops, only to check
//! the item count.

use std::time::{Duration, Instant};

use http::Method;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::client::{self, OpError, collection, request, send};
use super::closed_loop::{self, Measured};
use super::config::{Budget, Scenario};
use super::cpu::CpuClock;
use super::crud::row;
use super::latency::Recorder;
use super::objects::{self, now_ns};
use super::report::Row;
use super::{Ctx, PRELOAD_CLIENTS};

#[derive(Deserialize)]
struct ListMeta {
    #[serde(rename = "continue", default)]
    continue_token: Option<String>,
}

#[derive(Deserialize)]
struct List {
    metadata: ListMeta,
    items: Vec<IgnoredAny>,
}

/// One page (JSON or protobuf): its items and the continue token.
fn parse(body: &[u8]) -> Result<(usize, Option<String>), OpError> {
    if body.starts_with(rkube_apiserver::protobuf::MAGIC) {
        let list = client::decode(body)?;
        let items = list["items"].as_array().map_or(0, Vec::len);
        let token = list["metadata"]["continue"].as_str().filter(|t| !t.is_empty());
        return Ok((items, token.map(str::to_string)));
    }
    let list: List = serde_json::from_slice(body).map_err(|e| OpError(format!("unreadable list: {e}")))?;
    let token = list.metadata.continue_token.filter(|t| !t.is_empty());
    Ok((list.items.len(), token))
}

/// A full LIST: (items, bytes, time to the last byte).
async fn full_list(c: &kube::Client, uri: &str) -> Result<(usize, usize, Duration), OpError> {
    let req = request(Method::GET, uri, Vec::new()).map_err(|e| OpError(format!("{e:#}")))?;
    let (res, elapsed) = send(c, req).await;
    let body = res?;
    let (items, _) = parse(&body)?;
    Ok((items, body.len(), elapsed))
}

/// A paginated LIST: (items, pages, time for all pages, excluding parsing).
async fn paged_list(c: &kube::Client, uri: &str, limit: u32) -> Result<(usize, usize, Duration), OpError> {
    let (mut items, mut pages, mut elapsed) = (0, 0, Duration::ZERO);
    let mut token: Option<String> = None;
    let deadline = Instant::now() + super::config::REQUEST_TIMEOUT;
    loop {
        let mut page_uri = format!("{uri}?limit={limit}");
        if let Some(t) = &token {
            page_uri.push_str("&continue=");
            page_uri.extend(form_urlencoded::byte_serialize(t.as_bytes()));
        }
        let req = request(Method::GET, &page_uri, Vec::new()).map_err(|e| OpError(format!("{e:#}")))?;
        let (res, took) = send(c, req).await;
        elapsed += took;
        let (n, next) = parse(&res?)?;
        items += n;
        pages += 1;
        match next {
            Some(t) if Instant::now() < deadline => token = Some(t),
            Some(_) => return Err(OpError("paginated LIST did not finish in time".into())),
            None => return Ok((items, pages, elapsed)),
        }
    }
}

/// Runs `op` one at a time under `budget` (at least once).
async fn sequential<F, Fut>(name: &str, budget: Budget, server_pid: Option<u32>, mut op: F) -> Measured
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Duration, OpError>>,
{
    let mut recorder = Recorder::new();
    let cpu = CpuClock::start(server_pid);
    let start = Instant::now();
    let mut runs = 0u64;
    loop {
        match op().await {
            Ok(took) => recorder.success(took),
            Err(e) => recorder.failure(&e),
        }
        runs += 1;
        let more = match budget {
            Budget::Count(n) => runs < n,
            Budget::Duration(d) => start.elapsed() < d,
        };
        if !more {
            break;
        }
    }
    let s = recorder.summary();
    eprintln!(
        "kube-load: {name}: {runs} runs, p50 {:.1} ms, p99 {:.1} ms",
        s.p50_ms, s.p99_ms
    );
    Measured {
        recorder,
        elapsed: start.elapsed(),
        cpu: cpu.stop(),
    }
}

pub async fn list(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let objects = ctx.objects(Scenario::List);
    let uri = collection(&ctx.namespace, "pods");
    let (existing, _, _) = full_list(&ctx.client, &uri)
        .await
        .map_err(|e| anyhow::anyhow!("list: counting pods: {e}"))?;
    if existing < objects {
        let (c, u, run) = (ctx.client.clone(), uri.clone(), ctx.run.clone());
        closed_loop::preload("list: preload pods", objects - existing, PRELOAD_CLIENTS, move |i| {
            let (c, u) = (c.clone(), u.clone());
            let body = objects::pod(&format!("list-{run}-{i}"), &run, now_ns());
            async move { client::create(&c, &u, body, true).await }
        })
        .await?;
    }
    // A warm-up list (also the count every later list must return).
    let (want, bytes, _) = full_list(&ctx.client, &uri)
        .await
        .map_err(|e| anyhow::anyhow!("list: warm-up: {e}"))?;
    eprintln!(
        "kube-load: list: {want} pods, {:.1} MiB per full list",
        bytes as f64 / 1048576.0
    );
    let check = |items: usize| {
        if items == want {
            Ok(())
        } else {
            Err(OpError(format!("list returned {items} items, expected {want}")))
        }
    };

    let c = ctx.client.clone();
    let full = sequential("list (full)", ctx.budget, ctx.server_pid, || async {
        let (items, _, took) = full_list(&c, &uri).await?;
        check(items).map(|()| took)
    })
    .await;
    let limit = ctx.page_size;
    let pages_seen = std::cell::Cell::new(0);
    let paged = sequential("list (paginated)", ctx.budget, ctx.server_pid, || async {
        let (items, pages, took) = paged_list(&c, &uri, limit).await?;
        pages_seen.set(pages);
        check(items).map(|()| took)
    })
    .await;
    Ok(vec![
        row(
            Scenario::List,
            format!("LIST {want} pods, full ({:.1} MiB)", bytes as f64 / 1048576.0),
            1,
            &full,
        ),
        row(
            Scenario::List,
            format!(
                "LIST {want} pods, limit={limit} ({} pages, time for all)",
                pages_seen.get()
            ),
            1,
            &paged,
        ),
    ])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn parses_pages() {
        assert_eq!(
            parse(br#"{"kind":"PodList","metadata":{"resourceVersion":"5","continue":"abc"},"items":[{"a":1},{}]}"#)
                .unwrap(),
            (2, Some("abc".into()))
        );
        assert_eq!(parse(br#"{"metadata":{"continue":""},"items":[]}"#).unwrap(), (0, None));
        assert_eq!(parse(br#"{"metadata":{},"items":[]}"#).unwrap(), (0, None));
        assert!(parse(b"{").is_err());
        let list = serde_json::json!({"apiVersion": "v1", "kind": "PodList",
            "metadata": {"resourceVersion": "5", "continue": "abc"},
            "items": [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}]});
        let pb = rkube_apiserver::protobuf::encode_object(list.as_object().unwrap()).unwrap();
        assert_eq!(parse(&pb).unwrap(), (2, Some("abc".into())));
    }

    #[tokio::test]
    async fn sequential_respects_budget() {
        let m = sequential("t", Budget::Count(3), None, || async { Ok(Duration::from_millis(1)) }).await;
        assert_eq!(m.recorder.ok, 3);
        let m = sequential("t", Budget::Duration(Duration::ZERO), None, || async {
            Err(OpError("x".into()))
        })
        .await;
        assert_eq!((m.recorder.ok, m.recorder.errors), (0, 1));
    }
}
