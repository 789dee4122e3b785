//! ImageLocality: favors nodes that already hold the pod's images, weighted
//! by image size and by how widely the image is spread across nodes.

use crate::cache::Snapshot;
use crate::framework::{CycleState, MAX_NODE_SCORE, Plugin, Point, Status};
use crate::node_info::{NodeInfo, normalized_image_name};
use crate::pod_info::PodInfo;
use std::sync::Arc;

/// The ImageLocality plugin.
#[derive(Debug, Default)]
pub struct ImageLocality;

/// The plugin's name.
pub const NAME: &str = "ImageLocality";
const MB: i64 = 1024 * 1024;
const MIN_THRESHOLD: i64 = 23 * MB;
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;
const STATE_KEY: &str = "PreScoreImageLocality";

struct State {
    total_nodes: usize,
    image_nodes: Arc<std::collections::HashMap<String, usize>>,
    /// The pod's images, normalized, one per container.
    images: Vec<String>,
}

impl Plugin for ImageLocality {
    fn name(&self) -> &'static str {
        NAME
    }
    fn points(&self) -> &'static [Point] {
        &[Point::PreScore, Point::Score]
    }
    fn pre_score(&self, state: &mut CycleState, pod: &PodInfo, _n: &[Arc<NodeInfo>], snapshot: &Snapshot) -> Status {
        let images = pod
            .pod
            .spec
            .iter()
            .flat_map(|spec| spec.init_containers.iter().flatten().chain(&spec.containers))
            .filter_map(|c| c.image.as_deref())
            .map(normalized_image_name)
            .collect();
        state.write(
            STATE_KEY,
            State {
                total_nodes: snapshot.nodes.len(),
                image_nodes: snapshot.image_nodes.clone(),
                images,
            },
        );
        Status::success()
    }
    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(st) = state.read::<State>(STATE_KEY) else {
            return 0;
        };
        let mut sum = 0f64;
        if !node.images.is_empty() {
            for name in &st.images {
                if let Some((_, size)) = node.images.iter().find(|(n, _)| n == name) {
                    let spread = st.image_nodes.get(name).copied().unwrap_or(1) as f64 / st.total_nodes.max(1) as f64;
                    sum += *size as f64 * spread;
                }
            }
        }
        let containers = &st.images;
        let max = MAX_CONTAINER_THRESHOLD * containers.len() as i64;
        let sum = (sum as i64).clamp(MIN_THRESHOLD, max.max(MIN_THRESHOLD));
        if max <= MIN_THRESHOLD {
            return 0;
        }
        MAX_NODE_SCORE * (sum - MIN_THRESHOLD) / (max - MIN_THRESHOLD)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use serde_json::{Value, json};

    use super::*;
    use crate::plugins::testing::{node, pod, score_all};

    fn with_images(name: &str, images: Value) -> NodeInfo {
        let mut n = node(name, Value::Null, Value::Null, json!({}));
        let mut obj = (**n.node.as_ref().unwrap()).clone();
        obj.status.as_mut().unwrap().images = Some(serde_json::from_value(images).unwrap());
        n.set_node(Arc::new(obj));
        n
    }

    #[test]
    fn two_images_spread_on_two_nodes() {
        // gcr.io/40 (40MB) on a, gcr.io/300 (300MB) on b; the pod uses both,
        // each on 1 of 2 nodes, so each counts half its size.
        let snap = Snapshot::from_nodes(vec![
            with_images("a", json!([{"names": ["gcr.io/40:latest"], "sizeBytes": 40 * MB}])),
            with_images("b", json!([{"names": ["gcr.io/300:latest"], "sizeBytes": 300 * MB}])),
        ]);
        let p = pod(
            "p",
            json!({}),
            json!({"containers": [{"name": "a", "image": "gcr.io/40"}, {"name": "b", "image": "gcr.io/300"}]}),
        );
        // a: (20MB clamped to 23MB) -> 0; b: 150MB -> 100*(150-23)/(2000-23) = 6
        assert_eq!(score_all(Arc::new(ImageLocality), &p, &snap), [0, 6]);
    }
}
