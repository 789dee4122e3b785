//! Evaluating a pod (or pod template) against a level and version
//! (`policy.checkRegistry` and `AggregateCheckResults`): the baseline
//! checks, then either the baseline checks a restricted check replaces
//! (at baseline) or the restricted checks (at restricted), each check
//! choosing its behaviour by the version, in upstream's order.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::policy::{Level, LevelVersion, Version};
use super::{baseline, restricted};

/// The metadata and spec of a pod or a pod template.
#[derive(Debug, Clone, Copy)]
pub struct PodView<'a> {
    pub metadata: Option<&'a Map<String, Value>>,
    pub spec: Option<&'a Map<String, Value>>,
}

impl<'a> PodView<'a> {
    /// The view of an object with `metadata` and `spec` (a pod, or a
    /// template).
    pub fn of(obj: &'a Value) -> Self {
        PodView {
            metadata: obj.get("metadata").and_then(Value::as_object),
            spec: obj.get("spec").and_then(Value::as_object),
        }
    }

    /// The view of a stored object (a pod).
    pub fn of_object(obj: &'a Map<String, Value>) -> Self {
        PodView {
            metadata: obj.get("metadata").and_then(Value::as_object),
            spec: obj.get("spec").and_then(Value::as_object),
        }
    }

    /// `spec[key]`.
    pub fn spec(&self, key: &str) -> Option<&'a Value> {
        self.spec.and_then(|s| s.get(key))
    }

    /// `spec.securityContext[key]`.
    pub fn pod_sc(&self, key: &str) -> Option<&'a Value> {
        self.spec("securityContext").and_then(|sc| sc.get(key))
    }

    /// The pod's annotations.
    pub fn annotations(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.metadata
            .and_then(|m| m.get("annotations"))
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
    }

    /// Init containers, containers, then ephemeral containers, like
    /// upstream's `visitContainers`.
    pub fn containers(&self) -> impl Iterator<Item = Container<'a>> + 'a {
        let spec = self.spec;
        ["initContainers", "containers", "ephemeralContainers"]
            .into_iter()
            .flat_map(move |k| {
                spec.and_then(|s| s.get(k))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
            })
            .map(Container)
    }

    /// The pod's volumes.
    pub fn volumes(&self) -> impl Iterator<Item = &'a Map<String, Value>> + 'a {
        self.spec("volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
    }

    /// Whether the pod is for Windows (`spec.os.name`).
    pub fn is_windows(&self) -> bool {
        self.spec("os").and_then(|o| o.get("name")).and_then(Value::as_str) == Some("windows")
    }

    /// Whether the pod runs in a user namespace (`hostUsers: false`).
    pub fn in_user_namespace(&self) -> bool {
        self.spec("hostUsers").and_then(Value::as_bool) == Some(false)
    }
}

/// One container of a pod spec.
#[derive(Debug, Clone, Copy)]
pub struct Container<'a>(pub &'a Value);

impl<'a> Container<'a> {
    pub fn name(&self) -> &'a str {
        self.0.get("name").and_then(Value::as_str).unwrap_or("")
    }

    /// `securityContext[key]`.
    pub fn sc(&self, key: &str) -> Option<&'a Value> {
        self.0.get("securityContext").and_then(|sc| sc.get(key))
    }

    /// `securityContext[key]` when it is a boolean.
    pub fn sc_bool(&self, key: &str) -> Option<bool> {
        self.sc(key).and_then(Value::as_bool)
    }

    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.0.get(key)
    }
}

/// Why one check forbids a pod (`CheckResult` when not allowed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub reason: String,
    pub detail: String,
}

impl Violation {
    pub fn new(reason: impl Into<String>, detail: impl Into<String>) -> Option<Self> {
        Some(Violation {
            reason: reason.into(),
            detail: detail.into(),
        })
    }
}

/// A check: its result for a pod at a level and version (`None`: allowed,
/// or the check does not exist at that version).
pub type CheckFn = fn(&PodView<'_>, LevelVersion) -> Option<Violation>;

/// All checks' violations (`AggregateCheckResult`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Aggregate(pub Vec<Violation>);

impl Aggregate {
    pub fn allowed(&self) -> bool {
        self.0.is_empty()
    }

    /// `reason1, reason2` (used for existing pods on a namespace change).
    pub fn forbidden_reason(&self) -> String {
        self.0.iter().map(|v| v.reason.as_str()).collect::<Vec<_>>().join(", ")
    }

    /// `reason1 (detail1), reason2 (detail2)`.
    pub fn forbidden_detail(&self) -> String {
        self.0
            .iter()
            .map(|v| {
                if v.detail.is_empty() {
                    v.reason.clone()
                } else {
                    format!("{} ({})", v.reason, v.detail)
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Evaluates a pod at a level and version.
pub fn evaluate(lv: LevelVersion, pod: &PodView<'_>) -> Aggregate {
    let run = |checks: &[CheckFn]| checks.iter().filter_map(|c| c(pod, lv)).collect::<Vec<_>>();
    let mut out = Vec::new();
    match lv.level {
        Level::Privileged => {}
        Level::Baseline => {
            out.extend(run(baseline::CHECKS));
            out.extend(run(baseline::OVERLAPPING));
        }
        Level::Restricted => {
            out.extend(run(baseline::CHECKS));
            out.extend(run(restricted::CHECKS));
        }
    }
    Aggregate(out)
}

/// `"a", "b"` (upstream's `joinQuote`).
pub fn join_quote<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(|s| format!("\"{}\"", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `singular` for one, else `plural`.
pub fn pluralize<'a>(singular: &'a str, plural: &'a str, n: usize) -> &'a str {
    if n == 1 { singular } else { plural }
}

/// `container "a"` / `containers "a", "b"`.
pub fn containers_phrase<S: AsRef<str>>(names: &[S]) -> String {
    format!(
        "{} {}",
        pluralize("container", "containers", names.len()),
        join_quote(names)
    )
}

/// A sorted set's items (upstream's `sets.String.List()`).
pub fn sorted(set: &BTreeSet<String>) -> Vec<&str> {
    set.iter().map(String::as_str).collect()
}

/// Whether the version is before `v1.minor`, so a check introduced there
/// does not apply.
pub fn before(version: Version, minor: u32) -> bool {
    !version.at_least(minor)
}
