//! SchedulingGates: a pod with `spec.schedulingGates` waits outside the
//! active queue until the gates are removed.

use crate::framework::{ClusterEvent, Code, Plugin, Point, Status};
use crate::pod_info::PodInfo;

/// The SchedulingGates plugin.
#[derive(Debug, Default)]
pub struct SchedulingGates;

/// The plugin's name.
pub const NAME: &str = "SchedulingGates";

impl Plugin for SchedulingGates {
    fn name(&self) -> &'static str {
        NAME
    }
    fn points(&self) -> &'static [Point] {
        &[Point::PreEnqueue]
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[ClusterEvent::UnscheduledPodUpdate]
    }
    fn pre_enqueue(&self, pod: &PodInfo) -> Status {
        let gates: Vec<&str> = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduling_gates.as_ref())
            .into_iter()
            .flatten()
            .map(|g| g.name.as_str())
            .collect();
        if gates.is_empty() {
            Status::success()
        } else {
            Status::with(
                Code::UnschedulableAndUnresolvable,
                format!("waiting for scheduling gates: [{}]", gates.join(" ")),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use serde_json::json;

    use super::*;
    use crate::plugins::testing::pod;

    #[test]
    fn gated_pods_wait() {
        assert!(
            SchedulingGates
                .pre_enqueue(&pod("p", json!({}), json!({})))
                .is_success()
        );
        let gated = pod(
            "p",
            json!({}),
            json!({"schedulingGates": [{"name": "a"}, {"name": "b"}]}),
        );
        assert_eq!(
            SchedulingGates.pre_enqueue(&gated).message(),
            "waiting for scheduling gates: [a b]"
        );
    }
}
