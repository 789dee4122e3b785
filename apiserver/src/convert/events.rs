//! `events.k8s.io/v1` Events over the core/v1 Event storage.
//!
//! Upstream keeps both APIs' Events in one store (`pkg/apis/events/v1`'s
//! conversion to and from the internal `core.Event`); here the stored form
//! is core/v1's. The fields of the same meaning under two names:
//!
//! | events.k8s.io/v1            | core/v1              |
//! |-----------------------------|----------------------|
//! | `regarding`                 | `involvedObject`     |
//! | `note`                      | `message`            |
//! | `reportingController`       | `reportingComponent` |
//! | `deprecatedSource`          | `source`             |
//! | `deprecatedFirstTimestamp`  | `firstTimestamp`     |
//! | `deprecatedLastTimestamp`   | `lastTimestamp`      |
//! | `deprecatedCount`           | `count`              |
//!
//! `series` (`count`, `lastObservedTime`), `related`, `action`, `reason`,
//! `type`, `eventTime` and `reportingInstance` are the same in both.

use serde_json::Value;

use crate::registry::kinds::events::{EventApi, validate_event};
use crate::registry::object::Object;
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::FieldErrors;

/// (events.k8s.io/v1 name, core/v1 name).
const RENAMED: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

/// events.k8s.io/v1 fields Go leaves out when empty (`omitempty` strings
/// and integers).
const OMIT_EMPTY_V1: &[&str] = &[
    "reportingController",
    "reportingInstance",
    "action",
    "reason",
    "note",
    "type",
    "deprecatedCount",
];

/// core/v1 string fields Go always writes (no `omitempty`).
const ALWAYS_CORE: &[&str] = &["reportingComponent", "reportingInstance"];

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_i64() == Some(0),
        _ => false,
    }
}

/// `series` holds only `count` and `lastObservedTime` in events.k8s.io/v1
/// (core/v1's deprecated `state` has no place there).
fn series_to_v1(obj: &mut Object) {
    if let Some(Value::Object(series)) = obj.get_mut("series") {
        series.retain(|k, _| k == "count" || k == "lastObservedTime");
    }
}

/// An events.k8s.io/v1 Event in the stored core/v1 shape.
pub fn v1_to_core(mut obj: Object) -> Object {
    for (v1, core) in RENAMED {
        // A core name the client also sent is not part of the v1 schema.
        obj.remove(*core);
        if let Some(v) = obj.remove(*v1) {
            obj.insert((*core).to_string(), v);
        }
    }
    for field in ALWAYS_CORE {
        obj.entry(*field).or_insert_with(|| Value::String(String::new()));
    }
    obj
}

/// A stored core/v1 Event in the events.k8s.io/v1 shape.
pub fn core_to_v1(mut obj: Object) -> Object {
    for (v1, core) in RENAMED {
        obj.remove(*v1);
        if let Some(v) = obj.remove(*core) {
            obj.insert((*v1).to_string(), v);
        }
    }
    for field in OMIT_EMPTY_V1 {
        if obj.get(*field).is_some_and(is_empty) {
            obj.remove(*field);
        }
    }
    series_to_v1(&mut obj);
    obj
}

/// The strategy of events.k8s.io/v1 writes to the core Event store: the
/// stored (core) shape is validated with the events.k8s.io/v1 create rules
/// (eventTime, reportingController, action... required), as upstream's
/// `ValidateEventCreate` does for that request version; updates follow the
/// legacy rules like the core API's.
#[derive(Debug)]
pub struct EventsV1OverCore(pub KindTraits);

impl Strategy for EventsV1OverCore {
    fn traits(&self) -> KindTraits {
        self.0
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_event(&core_to_v1(obj.clone()), EventApi::EventsV1)
    }

    fn validate_update(&self, new: &Object, _old: &Object) -> FieldErrors {
        validate_event(new, EventApi::Core)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Object {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn renames_both_ways() {
        let v1 = obj(json!({
            "metadata": {"name": "e", "namespace": "default"},
            "regarding": {"kind": "Pod", "name": "p", "namespace": "default"},
            "related": {"kind": "Node", "name": "n"},
            "note": "hello", "reason": "Started", "action": "Start", "type": "Normal",
            "reportingController": "example.com/ctl", "reportingInstance": "ctl-1",
            "eventTime": "2024-01-01T00:00:00.000000Z",
            "series": {"count": 2, "lastObservedTime": "2024-01-01T00:00:01.000000Z"},
            "deprecatedSource": {"component": "kubelet", "host": "n"},
            "deprecatedFirstTimestamp": "2024-01-01T00:00:00Z",
            "deprecatedLastTimestamp": "2024-01-01T00:00:02Z",
            "deprecatedCount": 3,
        }));
        let core = v1_to_core(v1.clone());
        assert_eq!(
            Value::Object(core.clone()),
            json!({
                "metadata": {"name": "e", "namespace": "default"},
                "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
                "related": {"kind": "Node", "name": "n"},
                "message": "hello", "reason": "Started", "action": "Start", "type": "Normal",
                "reportingComponent": "example.com/ctl", "reportingInstance": "ctl-1",
                "eventTime": "2024-01-01T00:00:00.000000Z",
                "series": {"count": 2, "lastObservedTime": "2024-01-01T00:00:01.000000Z"},
                "source": {"component": "kubelet", "host": "n"},
                "firstTimestamp": "2024-01-01T00:00:00Z",
                "lastTimestamp": "2024-01-01T00:00:02Z",
                "count": 3,
            })
        );
        assert_eq!(core_to_v1(core), v1);
    }

    #[test]
    fn empty_fields_follow_each_versions_json() {
        // A legacy Event, as core/v1 writes it.
        let core = obj(json!({
            "involvedObject": {"kind": "Pod"}, "message": "m", "reason": "R", "type": "Normal",
            "source": {"component": "kubelet"}, "count": 1, "firstTimestamp": "2024-01-01T00:00:00Z",
            "lastTimestamp": "2024-01-01T00:00:00Z", "eventTime": null,
            "reportingComponent": "", "reportingInstance": "",
            "series": {"count": 2, "lastObservedTime": "2024-01-01T00:00:01.000000Z", "state": "Ongoing"},
        }));
        let v1 = core_to_v1(core);
        assert!(!v1.contains_key("reportingController"), "{v1:?}");
        assert!(!v1.contains_key("reportingInstance"));
        assert_eq!(v1["eventTime"], Value::Null);
        assert_eq!(v1["deprecatedCount"], 1);
        assert_eq!(v1["deprecatedSource"], json!({"component": "kubelet"}));
        assert!(v1["series"].get("state").is_none());
        // core/v1 always writes the reporting fields.
        let back = v1_to_core(obj(json!({"note": "x"})));
        assert_eq!(back["reportingComponent"], "");
        assert_eq!(back["reportingInstance"], "");
        assert_eq!(back["message"], "x");
        // A core spelling sent to events.k8s.io is not a v1 field.
        let mixed = v1_to_core(obj(json!({"message": "stray", "note": "kept"})));
        assert_eq!(mixed["message"], "kept");
        let stray = v1_to_core(obj(json!({"message": "stray"})));
        assert!(!stray.contains_key("message"));
    }
}

#[cfg(test)]
mod http_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use axum::http::StatusCode;
    use serde_json::{Value, json};

    use crate::testing::TestServer;

    const CORE: &str = "/api/v1/namespaces/default/events";
    const V1: &str = "/apis/events.k8s.io/v1/namespaces/default/events";

    fn core_event(name: &str, pod: &str) -> Value {
        json!({"metadata": {"name": name}, "involvedObject": {"kind": "Pod", "name": pod, "namespace": "default"},
               "reason": "Started", "message": "started", "type": "Normal", "count": 1,
               "source": {"component": "kubelet", "host": "n1"}})
    }

    fn v1_event(name: &str, pod: &str) -> Value {
        json!({"metadata": {"name": name}, "eventTime": "2024-01-02T03:04:05.000000Z",
               "reportingController": "example.com/ctl", "reportingInstance": "ctl-1", "action": "Scale",
               "reason": "Scaled", "type": "Warning", "note": "scaled",
               "regarding": {"kind": "Pod", "name": pod, "namespace": "default"}})
    }

    fn names(list: &Value) -> Vec<&str> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap())
            .collect()
    }

    #[tokio::test]
    async fn one_store_for_both_apis() {
        let s = TestServer::new().await;
        let (code, created) = s.post(CORE, core_event("legacy", "p1")).await;
        assert_eq!(code, StatusCode::CREATED, "{created}");
        let (code, created) = s.post(V1, v1_event("modern", "p2")).await;
        assert_eq!(code, StatusCode::CREATED, "{created}");
        assert_eq!(created["apiVersion"], "events.k8s.io/v1");
        assert_eq!(created["note"], "scaled");
        assert_eq!(created["regarding"]["name"], "p2");
        assert!(created.get("message").is_none(), "{created}");

        // A core-created Event read through events.k8s.io, and back.
        let (code, got) = s.get(&format!("{V1}/legacy")).await;
        assert_eq!(code, StatusCode::OK, "{got}");
        assert_eq!(got["apiVersion"], "events.k8s.io/v1");
        assert_eq!(got["regarding"]["name"], "p1");
        assert_eq!(got["note"], "started");
        assert_eq!(got["deprecatedCount"], 1);
        assert_eq!(got["deprecatedSource"]["component"], "kubelet");
        assert!(got.get("involvedObject").is_none(), "{got}");
        let (_, got) = s.get(&format!("{CORE}/modern")).await;
        assert_eq!(got["apiVersion"], "v1");
        assert_eq!(got["involvedObject"]["name"], "p2");
        assert_eq!(got["message"], "scaled");
        assert_eq!(got["reportingComponent"], "example.com/ctl");

        // Lists through both APIs see both, each in its own shape.
        s.registry().cache.wait_ready().await;
        let (_, list) = s.get(V1).await;
        assert_eq!(list["apiVersion"], "events.k8s.io/v1");
        assert_eq!(names(&list), ["legacy", "modern"]);
        assert_eq!(list["items"][0]["regarding"]["name"], "p1");
        let (_, list) = s.get(CORE).await;
        assert_eq!(names(&list), ["legacy", "modern"]);
        assert_eq!(list["items"][1]["involvedObject"]["name"], "p2");

        // Field selectors under each API's names.
        let (code, list) = s.get(&format!("{V1}?fieldSelector=regarding.name%3Dp1")).await;
        assert_eq!(code, StatusCode::OK, "{list}");
        assert_eq!(names(&list), ["legacy"]);
        let (_, list) = s
            .get(&format!("{V1}?fieldSelector=reportingController%3Dexample.com/ctl"))
            .await;
        assert_eq!(names(&list), ["modern"]);
        let (_, list) = s.get(&format!("{CORE}?fieldSelector=involvedObject.name%3Dp2")).await;
        assert_eq!(names(&list), ["modern"]);
        let (code, _) = s.get(&format!("{V1}?fieldSelector=involvedObject.name%3Dp2")).await;
        assert_eq!(code, StatusCode::BAD_REQUEST);

        // An update through events.k8s.io keeps the stored core shape.
        let (_, mut got) = s.get(&format!("{V1}/legacy")).await;
        got["note"] = json!("restarted");
        let (code, updated) = s.put(&format!("{V1}/legacy"), got).await;
        assert_eq!(code, StatusCode::OK, "{updated}");
        assert_eq!(updated["note"], "restarted");
        let (_, got) = s.get(&format!("{CORE}/legacy")).await;
        assert_eq!(got["message"], "restarted");

        // Deleted through one API, gone from the other.
        let (code, _) = s.delete(&format!("{CORE}/modern")).await;
        assert_eq!(code, StatusCode::OK);
        let (code, _) = s.get(&format!("{V1}/modern")).await;
        assert_eq!(code, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn events_k8s_io_keeps_its_stricter_create_rules() {
        let s = TestServer::new().await;
        let loose = json!({"metadata": {"name": "loose"}, "type": "Normal", "reason": "R",
                           "regarding": {"kind": "Pod", "name": "p", "namespace": "default"}});
        let (code, status) = s.post(V1, loose.clone()).await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{status}");
        assert_eq!(
            status["message"],
            "Event \"loose\" is invalid: eventTime: Required value"
        );
        let mut v1 = v1_event("odd", "p");
        v1["type"] = json!("Odd");
        v1["deprecatedCount"] = json!(2);
        let (code, status) = s.post(V1, v1).await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{status}");
        assert_eq!(
            status["message"],
            "Event \"odd\" is invalid: [type: Invalid value: \"\": has invalid value: Odd, count: Invalid value: \"\": needs to be unset]"
        );
        // The core API keeps the legacy rules for the same content.
        let core = json!({"metadata": {"name": "loose"}, "type": "Normal", "reason": "R",
                          "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"}});
        let (code, created) = s.post(CORE, core).await;
        assert_eq!(code, StatusCode::CREATED, "{created}");
        // And an events.k8s.io update of a legacy Event is allowed.
        let (_, mut got) = s.get(&format!("{V1}/loose")).await;
        got["note"] = json!("more");
        let (code, updated) = s.put(&format!("{V1}/loose"), got).await;
        assert_eq!(code, StatusCode::OK, "{updated}");
    }

    #[tokio::test]
    async fn watch_through_events_k8s_io_sees_core_events() {
        let s = TestServer::new().await;
        let (code, created) = s.post(CORE, core_event("w", "p1")).await;
        assert_eq!(code, StatusCode::CREATED, "{created}");
        s.registry().cache.wait_ready().await;
        for query in ["", "&fieldSelector=regarding.name%3Dp1"] {
            let (code, events) = s.get(&format!("{V1}?watch=1&timeoutSeconds=1{query}")).await;
            assert_eq!(code, StatusCode::OK);
            let text = match events {
                Value::String(t) => t,
                other => other.to_string(),
            };
            let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
            assert_eq!(first["type"], "ADDED");
            assert_eq!(first["object"]["apiVersion"], "events.k8s.io/v1");
            assert_eq!(first["object"]["regarding"]["name"], "p1");
            assert_eq!(first["object"]["note"], "started");
        }
    }
}
