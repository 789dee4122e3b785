//! Events, of both APIs: the legacy `core/v1` Event and the
//! `events.k8s.io/v1` Event (upstream's `ValidateEventCreate`, which runs on
//! the internal type, so error paths use the internal field names such as
//! `involvedObject.namespace` and `reportingController`).

use std::sync::Arc;

use serde_json::Value;

use crate::registry::object::{self, Object};
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::names::{is_dns1123_subdomain, is_qualified_name};
use crate::validation::{FieldError, FieldErrors};

/// Which API an Event arrives through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventApi {
    /// `v1` (legacy rules only).
    Core,
    /// `events.k8s.io/v1` (legacy plus strict rules).
    EventsV1,
}

/// The Event strategy of one API.
#[derive(Debug)]
pub struct EventStrategy {
    pub api: EventApi,
    pub traits: KindTraits,
}

/// The strategy of `resource` when it has its own.
pub fn strategy_for(resource: &str) -> Option<Arc<dyn Strategy>> {
    match resource {
        "events" => Some(Arc::new(EventStrategy {
            api: EventApi::EventsV1,
            traits: super::default_traits("events.k8s.io", "events"),
        })),
        _ => None,
    }
}

fn s<'a>(obj: &'a Object, field: &str) -> &'a str {
    obj.get(field).and_then(Value::as_str).unwrap_or("")
}

fn set(v: Option<&Value>) -> bool {
    v.is_some_and(|v| !v.is_null() && v != "" && v != 0)
}

/// `ValidateEventCreate` for the request's API.
pub fn validate_event(ev: &Object, api: EventApi) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let (involved, message, reporting_field) = match api {
        EventApi::Core => ("involvedObject", "message", "reportingComponent"),
        EventApi::EventsV1 => ("regarding", "note", "reportingController"),
    };
    let namespace = object::namespace(ev);
    let involved_ns = ev
        .get(involved)
        .and_then(|o| o.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let mismatch = || {
        FieldError::invalid(
            "involvedObject.namespace",
            involved_ns,
            "does not match event.namespace",
        )
    };
    let event_time = set(ev.get("eventTime"));
    if !event_time {
        let ok = if involved_ns.is_empty() {
            namespace.is_empty() || namespace == "default"
        } else {
            namespace == involved_ns
        };
        if !ok {
            errs.push(mismatch());
        }
    } else {
        if involved_ns.is_empty() && namespace != "default" && namespace != "kube-system" {
            errs.push(mismatch());
        }
        let controller = s(ev, "reportingController");
        let controller = if controller.is_empty() {
            s(ev, "reportingComponent")
        } else {
            controller
        };
        if controller.is_empty() {
            errs.push(FieldError::required(reporting_field, ""));
        }
        for m in is_qualified_name(controller) {
            errs.push(FieldError::invalid(reporting_field, controller, m));
        }
        let limits = [("reportingInstance", 128), ("action", 128), ("reason", 128)];
        for (field, limit) in limits {
            let v = s(ev, field);
            if v.is_empty() {
                errs.push(FieldError::required(field, ""));
            }
            if v.len() > limit {
                errs.push(FieldError::invalid(
                    field,
                    "",
                    format!("can have at most {limit} characters"),
                ));
            }
        }
        if s(ev, message).len() > 1024 {
            errs.push(FieldError::invalid("message", "", "can have at most 1024 characters"));
        }
    }
    for m in is_dns1123_subdomain(namespace) {
        errs.push(FieldError::invalid("namespace", namespace, m));
    }
    if api == EventApi::EventsV1 {
        if !event_time {
            errs.push(FieldError::required("eventTime", ""));
        }
        let ty = s(ev, "type");
        if ty != "Normal" && ty != "Warning" {
            errs.push(FieldError::invalid("type", "", format!("has invalid value: {ty}")));
        }
        for (field, internal) in [
            ("deprecatedFirstTimestamp", "firstTimestamp"),
            ("deprecatedLastTimestamp", "lastTimestamp"),
            ("deprecatedCount", "count"),
        ] {
            if set(ev.get(field)) {
                errs.push(FieldError::invalid(internal, "", "needs to be unset"));
            }
        }
        let source = ev.get("deprecatedSource");
        if ["component", "host"].iter().any(|f| {
            source
                .and_then(|s| s.get(*f))
                .and_then(Value::as_str)
                .is_some_and(|v| !v.is_empty())
        }) {
            errs.push(FieldError::invalid("source", "", "needs to be unset"));
        }
        if let Some(series) = ev.get("series").filter(|v| !v.is_null()) {
            if series.get("count").and_then(Value::as_i64).unwrap_or(0) < 2 {
                errs.push(FieldError::invalid("series.count", "", "should be at least 2"));
            }
            if !set(series.get("lastObservedTime")) {
                errs.push(FieldError::required("series.lastObservedTime", ""));
            }
        }
    }
    errs
}

impl Strategy for EventStrategy {
    fn traits(&self) -> KindTraits {
        self.traits
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_event(obj, self.api)
    }

    fn validate_update(&self, new: &Object, _old: &Object) -> FieldErrors {
        // Upstream re-runs the create rules in the legacy form on update.
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
    fn namespaces_and_strict_fields() {
        let legacy = obj(json!({"metadata": {"namespace": "a"}, "involvedObject": {"namespace": "b"}}));
        assert_eq!(
            validate_event(&legacy, EventApi::Core).summary(),
            "involvedObject.namespace: Invalid value: \"b\": does not match event.namespace"
        );
        let ok = obj(json!({"metadata": {"namespace": "default"}, "involvedObject": {"kind": "Node"}}));
        assert!(validate_event(&ok, EventApi::Core).is_empty());
        let v1 = obj(
            json!({"metadata": {"namespace": "default"}, "regarding": {"namespace": "default"},
            "eventTime": "2024-01-01T00:00:00.000000Z", "reportingController": "me/x", "reportingInstance": "i",
            "action": "Do", "reason": "Why", "type": "Odd", "deprecatedCount": 3}),
        );
        assert_eq!(
            validate_event(&v1, EventApi::EventsV1).summary(),
            "[type: Invalid value: \"\": has invalid value: Odd, count: Invalid value: \"\": needs to be unset]"
        );
        let no_time = obj(json!({"metadata": {"namespace": "default"}, "type": "Normal"}));
        assert_eq!(
            validate_event(&no_time, EventApi::EventsV1).summary(),
            "eventTime: Required value"
        );
    }
}
