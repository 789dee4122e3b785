//! Publishing `events.k8s.io/v1` Events as client-go's event broadcaster
//! does: an event identical to one sent for the same object in the last
//! 6 minutes (same reason, action and note) becomes a series (count and
//! last observed time patched) instead of a new object.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

/// How long an event may be continued as a series.
pub const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);

#[derive(Debug)]
struct Sent {
    reason: String,
    action: String,
    note: String,
    name: String,
    count: i32,
    at: Instant,
}

/// Sends events for one reporting controller and instance.
pub struct Publisher {
    client: Client,
    controller: String,
    instance: String,
    /// Recent events by the regarded object's UID.
    sent: Mutex<HashMap<String, Vec<Sent>>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("controller", &self.controller)
            .finish()
    }
}

/// What to send.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    pub regarding: &'a ObjectReference,
    pub type_: &'a str,
    pub reason: &'a str,
    pub action: &'a str,
    pub note: &'a str,
}

impl Publisher {
    /// A publisher for `controller` (`reportingController`) and `instance`.
    pub fn new(client: Client, controller: &str, instance: &str) -> Publisher {
        Publisher {
            client,
            controller: controller.into(),
            instance: instance.into(),
            sent: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Sent>>> {
        self.sent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets the series of an object (scheduled or deleted).
    pub fn forget(&self, uid: &str) {
        self.lock().remove(uid);
    }

    /// Number of objects with recent events (for tests).
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }

    /// Sends `r`: a new Event, or a series update of an identical recent one.
    pub async fn publish(&self, r: Record<'_>) -> Result<(), kube::Error> {
        let ns = r.regarding.namespace.clone().unwrap_or_else(|| "default".into());
        let uid = r.regarding.uid.clone().unwrap_or_default();
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        let now = Timestamp::now();
        let repeat = {
            let mut sent = self.lock();
            let list = sent.entry(uid.clone()).or_default();
            list.retain(|s| s.at.elapsed() < SERIES_WINDOW);
            list.iter_mut()
                .find(|s| s.reason == r.reason && s.action == r.action && s.note == r.note)
                .map(|s| {
                    s.count += 1;
                    s.at = Instant::now();
                    (s.name.clone(), s.count)
                })
        };
        if let Some((name, count)) = repeat {
            let patch = json!({"series": {"count": count, "lastObservedTime": MicroTime(now)}});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(patch)).await?;
            return Ok(());
        }
        let base = r.regarding.name.clone().unwrap_or_else(|| self.controller.clone());
        let name = format!("{base}.{:x}", now.as_nanosecond());
        let ev = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            action: Some(r.action.into()),
            reason: Some(r.reason.into()),
            note: Some(r.note.into()),
            regarding: Some(r.regarding.clone()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            type_: Some(r.type_.into()),
            ..Event::default()
        };
        api.create(&PostParams::default(), &ev).await?;
        if !uid.is_empty() {
            self.lock().entry(uid).or_default().push(Sent {
                reason: r.reason.into(),
                action: r.action.into(),
                note: r.note.into(),
                name,
                count: 1,
                at: Instant::now(),
            });
        }
        Ok(())
    }
}
