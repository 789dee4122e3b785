//! Events a controller reports about the objects it manages
//! (`kubectl describe` shows them), published as `events.k8s.io/v1`
//! Events in the background so a sync never waits for them, like
//! client-go's event recorder.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};

/// `Normal` or `Warning`, as upstream's `v1.EventTypeNormal|Warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// Publishes events for one controller (`reportingController`).
#[derive(Clone)]
pub struct EventRecorder {
    client: kube::Client,
    controller: &'static str,
}

impl EventRecorder {
    pub fn new(client: kube::Client, controller: &'static str) -> Self {
        EventRecorder { client, controller }
    }

    /// Records `reason`/`note` about `regarding` without waiting; a failure
    /// is logged, never returned (events are best effort upstream too).
    pub fn record(&self, regarding: ObjectReference, type_: EventType, reason: &str, action: &str, note: String) {
        let event = new_event(
            self.controller,
            regarding,
            type_,
            reason,
            action,
            note,
            Timestamp::now(),
        );
        let ns = event.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        let controller = self.controller;
        tokio::spawn(async move {
            if let Err(e) = api.create(&PostParams::default(), &event).await {
                tracing::debug!(controller, error = %e, "could not record event");
            }
        });
    }
}

/// The Event object for one record.
fn new_event(
    controller: &str,
    regarding: ObjectReference,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
    now: Timestamp,
) -> Event {
    let base = regarding.name.clone().unwrap_or_else(|| controller.to_string());
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{base}.{:x}", now.as_nanosecond())),
            namespace: Some(
                regarding
                    .namespace
                    .clone()
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| "default".into()),
            ),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(now)),
        type_: Some(type_.as_str().into()),
        reason: Some(reason.into()),
        action: Some(action.into()),
        note: Some(note),
        regarding: Some(regarding),
        reporting_controller: Some(controller.into()),
        reporting_instance: Some(controller.into()),
        ..Event::default()
    }
}

/// A reference to `obj` for [`EventRecorder::record`].
pub fn reference<K: kube::Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
    obj.object_ref(&())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn events_name_their_object_and_namespace() {
        let r = ObjectReference {
            kind: Some("StatefulSet".into()),
            namespace: Some("ns".into()),
            name: Some("web".into()),
            ..ObjectReference::default()
        };
        let now: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
        let e = new_event(
            "statefulset-controller",
            r,
            EventType::Warning,
            "FailedCreate",
            "Create",
            "boom".into(),
            now,
        );
        assert!(e.metadata.name.as_deref().unwrap().starts_with("web."));
        assert_eq!(e.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(e.type_.as_deref(), Some("Warning"));
        assert_eq!(e.reporting_controller.as_deref(), Some("statefulset-controller"));
        // Cluster-scoped objects' events go to "default".
        let e = new_event(
            "c",
            ObjectReference::default(),
            EventType::Normal,
            "R",
            "A",
            String::new(),
            now,
        );
        assert_eq!(e.metadata.namespace.as_deref(), Some("default"));
        assert!(e.metadata.name.as_deref().unwrap().starts_with("c."));
    }
}
