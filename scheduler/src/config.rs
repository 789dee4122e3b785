//! The scheduler's configuration: a subset of upstream's
//! `KubeSchedulerConfiguration` (`kubescheduler.config.k8s.io/v1`) read
//! from YAML or JSON, turned into one [`Framework`] per profile.
//!
//! Supported: `percentageOfNodesToScore`, `podInitialBackoffSeconds`,
//! `podMaxBackoffSeconds`, `profiles[].schedulerName`,
//! `profiles[].percentageOfNodesToScore`, `profiles[].plugins.<point>`
//! `enabled`/`disabled` (with `*`) and score weights, and
//! `pluginConfig` args: NodeResourcesFit's `scoringStrategy` (type,
//! resources and weights, requestedToCapacityRatio shape),
//! PodTopologySpread's `defaultingType` and `defaultConstraints`,
//! InterPodAffinity's `hardPodAffinityWeight`.
//! Other fields are accepted and ignored.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::framework::{Framework, Point};
use crate::plugins::{self, PluginArgs, PluginContext};
use crate::queue::QueueConfig;

/// Errors reading or applying the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("decoding the scheduler configuration: {0}")]
    Decode(String),
    #[error("unsupported apiVersion {0:?} (want kubescheduler.config.k8s.io/v1)")]
    ApiVersion(String),
    #[error("profiles[{index}].plugins: {name:?} does not exist")]
    UnknownPlugin { index: usize, name: String },
    #[error("profiles[{index}].schedulerName: Duplicate value: {name:?}")]
    DuplicateProfile { index: usize, name: String },
    #[error("percentageOfNodesToScore: Invalid value: {0}: not in valid range [0-100]")]
    Percentage(i32),
}

/// A plugin reference in a plugin set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginRef {
    pub name: String,
    #[serde(default)]
    pub weight: Option<i64>,
}

/// `enabled` and `disabled` plugins of an extension point.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginSet {
    #[serde(default)]
    pub enabled: Vec<PluginRef>,
    #[serde(default)]
    pub disabled: Vec<PluginRef>,
}

/// A profile's plugin sets by extension point.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plugins {
    #[serde(default)]
    pub multi_point: PluginSet,
    #[serde(default)]
    pub pre_enqueue: PluginSet,
    #[serde(default)]
    pub pre_filter: PluginSet,
    #[serde(default)]
    pub filter: PluginSet,
    #[serde(default)]
    pub post_filter: PluginSet,
    #[serde(default)]
    pub pre_score: PluginSet,
    #[serde(default)]
    pub score: PluginSet,
    #[serde(default)]
    pub reserve: PluginSet,
    #[serde(default)]
    pub permit: PluginSet,
    #[serde(default)]
    pub pre_bind: PluginSet,
    #[serde(default)]
    pub post_bind: PluginSet,
}

/// A plugin's arguments.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginConfig {
    pub name: String,
    #[serde(default)]
    pub args: serde_json::Value,
}

/// One scheduling profile.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    #[serde(default)]
    pub scheduler_name: Option<String>,
    #[serde(default)]
    pub percentage_of_nodes_to_score: Option<i32>,
    #[serde(default)]
    pub plugins: Option<Plugins>,
    #[serde(default)]
    pub plugin_config: Vec<PluginConfig>,
}

/// The `KubeSchedulerConfiguration` subset.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeSchedulerConfiguration {
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub percentage_of_nodes_to_score: Option<i32>,
    #[serde(default)]
    pub pod_initial_backoff_seconds: Option<u64>,
    #[serde(default)]
    pub pod_max_backoff_seconds: Option<u64>,
    #[serde(default)]
    pub profiles: Vec<Profile>,
}

impl KubeSchedulerConfiguration {
    /// Reads a YAML (or JSON) file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses YAML (JSON is YAML).
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let cfg: KubeSchedulerConfiguration =
            serde_saphyr::from_str(text).map_err(|e| ConfigError::Decode(e.to_string()))?;
        if let Some(v) = &cfg.api_version
            && v != "kubescheduler.config.k8s.io/v1"
        {
            return Err(ConfigError::ApiVersion(v.clone()));
        }
        for p in cfg
            .percentage_of_nodes_to_score
            .into_iter()
            .chain(cfg.profiles.iter().filter_map(|p| p.percentage_of_nodes_to_score))
        {
            if !(0..=100).contains(&p) {
                return Err(ConfigError::Percentage(p));
            }
        }
        Ok(cfg)
    }

    /// Queue timing from the back-off settings.
    pub fn queue_config(&self) -> QueueConfig {
        let mut q = QueueConfig::default();
        if let Some(s) = self.pod_initial_backoff_seconds {
            q.initial_backoff = Duration::from_secs(s.max(1));
        }
        if let Some(s) = self.pod_max_backoff_seconds {
            q.max_backoff = Duration::from_secs(s.max(1));
        }
        q
    }

    /// One framework per profile (the default profile when none is given),
    /// keyed by scheduler name.
    pub fn frameworks(&self, ctx: &PluginContext) -> Result<BTreeMap<String, Framework>, ConfigError> {
        let default_profile = [Profile::default()];
        let profiles: &[Profile] = if self.profiles.is_empty() {
            &default_profile
        } else {
            &self.profiles
        };
        let mut out = BTreeMap::new();
        for (index, p) in profiles.iter().enumerate() {
            let name = p
                .scheduler_name
                .clone()
                .unwrap_or_else(|| crate::DEFAULT_SCHEDULER_NAME.to_string());
            let mut fw = build_profile(index, &name, p, ctx)?;
            fw.percentage_of_nodes_to_score = p
                .percentage_of_nodes_to_score
                .or(self.percentage_of_nodes_to_score)
                .unwrap_or(0);
            if out.insert(name.clone(), fw).is_some() {
                return Err(ConfigError::DuplicateProfile { index, name });
            }
        }
        Ok(out)
    }
}

fn point_sets(plugins: &Plugins) -> [(Point, &PluginSet); 10] {
    [
        (Point::PreEnqueue, &plugins.pre_enqueue),
        (Point::PreFilter, &plugins.pre_filter),
        (Point::Filter, &plugins.filter),
        (Point::PostFilter, &plugins.post_filter),
        (Point::PreScore, &plugins.pre_score),
        (Point::Score, &plugins.score),
        (Point::Reserve, &plugins.reserve),
        (Point::Permit, &plugins.permit),
        (Point::PreBind, &plugins.pre_bind),
        (Point::PostBind, &plugins.post_bind),
    ]
}

fn build_profile(index: usize, name: &str, p: &Profile, ctx: &PluginContext) -> Result<Framework, ConfigError> {
    let plugins = p.plugins.clone().unwrap_or_default();
    let mut list: Vec<(String, i64)> = plugins::DEFAULT_PLUGINS
        .iter()
        .map(|(n, w)| (n.to_string(), *w))
        .collect();
    let mp = &plugins.multi_point;
    if mp.disabled.iter().any(|d| d.name == "*") {
        list.clear();
    }
    list.retain(|(n, _)| !mp.disabled.iter().any(|d| &d.name == n));
    let check = |n: &str| {
        if plugins::is_known(n) {
            Ok(())
        } else {
            Err(ConfigError::UnknownPlugin {
                index,
                name: n.to_string(),
            })
        }
    };
    let add = |list: &mut Vec<(String, i64)>, r: &PluginRef| -> Result<(), ConfigError> {
        check(&r.name)?;
        match list.iter_mut().find(|(n, _)| *n == r.name) {
            Some(entry) => {
                if let Some(w) = r.weight {
                    entry.1 = w;
                }
            }
            None => list.push((r.name.clone(), r.weight.unwrap_or(0))),
        }
        Ok(())
    };
    for r in &mp.enabled {
        add(&mut list, r)?;
    }
    // Per-point enabled lists add the plugin (and, for score, set weights).
    for (_, set) in point_sets(&plugins) {
        for r in &set.enabled {
            add(&mut list, r)?;
        }
    }
    let mut args = PluginArgs::default();
    for pc in &p.plugin_config {
        args.by_plugin.insert(pc.name.clone(), pc.args.clone());
    }
    let built = list
        .iter()
        .filter_map(|(n, w)| plugins::new_plugin(n, ctx, &args).map(|p| (p, *w)))
        .collect();
    let disabled = |plugin: &str, point: Point| {
        point_sets(&plugins).iter().any(|(pt, set)| {
            *pt == point
                && set.disabled.iter().any(|d| d.name == "*" || d.name == plugin)
                && !set.enabled.iter().any(|e| e.name == plugin)
        })
    };
    Ok(Framework::build(name, built, &disabled))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn default_profile_has_upstream_weights() {
        let fws = KubeSchedulerConfiguration::default()
            .frameworks(&PluginContext::default())
            .unwrap();
        let fw = &fws["default-scheduler"];
        let weights: Vec<(&str, i64)> = fw.score_plugins().iter().map(|w| (w.plugin.name(), w.weight)).collect();
        assert_eq!(
            weights,
            [
                ("TaintToleration", 3),
                ("NodeAffinity", 2),
                ("NodeResourcesFit", 1),
                ("PodTopologySpread", 2),
                ("InterPodAffinity", 2),
                ("NodeResourcesBalancedAllocation", 1),
                ("ImageLocality", 1),
            ]
        );
    }

    #[test]
    fn profiles_enable_disable_and_weigh_plugins() {
        let cfg = KubeSchedulerConfiguration::parse(
            r#"
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
percentageOfNodesToScore: 30
profiles:
- schedulerName: default-scheduler
- schedulerName: bin-packer
  plugins:
    score:
      disabled:
      - name: "*"
      enabled:
      - name: NodeResourcesFit
        weight: 5
    multiPoint:
      disabled:
      - name: ImageLocality
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
"#,
        )
        .unwrap();
        let fws = cfg.frameworks(&PluginContext::default()).unwrap();
        assert_eq!(fws.len(), 2);
        let bp = &fws["bin-packer"];
        assert_eq!(bp.percentage_of_nodes_to_score, 30);
        let weights: Vec<(&str, i64)> = bp.score_plugins().iter().map(|w| (w.plugin.name(), w.weight)).collect();
        assert_eq!(weights, [("NodeResourcesFit", 5)]);
        assert!(!bp.plugin_names().contains(&"ImageLocality"));
        // Filters are untouched.
        assert!(bp.plugin_names().contains(&"TaintToleration"));
    }

    #[test]
    fn plugin_config_read_from_a_file_changes_where_pods_go() {
        use serde_json::{Value, json};

        use crate::algorithm::schedule_pod;
        use crate::cache::Snapshot;
        use crate::framework::CycleState;
        use crate::plugins::testing::{container, node, pod, with_pods};
        // Two profiles scoring with NodeResourcesFit alone; only the
        // packer's pluginConfig sets MostAllocated.
        let yaml = r#"
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: spreader
  plugins:
    score:
      disabled:
      - name: "*"
      enabled:
      - name: NodeResourcesFit
- schedulerName: packer
  plugins:
    score:
      disabled:
      - name: "*"
      enabled:
      - name: NodeResourcesFit
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
        resources:
        - name: cpu
          weight: 1
        - name: memory
          weight: 1
"#;
        let path = std::env::temp_dir().join(format!("rkube-scheduler-config-{}.yaml", std::process::id()));
        std::fs::write(&path, yaml).unwrap();
        let read = KubeSchedulerConfiguration::from_file(&path);
        std::fs::remove_file(&path).unwrap();
        let fws = read.unwrap().frameworks(&PluginContext::default()).unwrap();
        let alloc = json!({"cpu": "4", "memory": "8Gi", "pods": "110"});
        let resident = pod("resident", json!({}), json!({"containers": [container("2", "4Gi")]}));
        let snap = Snapshot::from_nodes(vec![
            node("empty", Value::Null, alloc.clone(), json!({})),
            with_pods(node("busy", Value::Null, alloc, json!({})), vec![resident]),
        ]);
        let incoming = pod("p", json!({}), json!({"containers": [container("1", "1Gi")]}));
        let place = |profile: &str| {
            let fw = &fws[profile];
            let totals = fw.run_score(&mut CycleState::default(), &incoming, &snap.nodes, &snap);
            let scores: BTreeMap<&str, i64> = snap.nodes.iter().map(|n| n.name.as_str()).zip(totals).collect();
            let node = schedule_pod(fw, &mut CycleState::default(), &incoming, &snap, &mut 0)
                .unwrap()
                .node;
            (scores, node)
        };
        // LeastAllocated (the default): the emptier node scores higher.
        let (scores, node) = place("spreader");
        assert!(scores["empty"] > scores["busy"], "{scores:?}");
        assert_eq!(node, "empty");
        // MostAllocated from the file: the fuller node scores higher.
        let (scores, node) = place("packer");
        assert!(scores["busy"] > scores["empty"], "{scores:?}");
        assert_eq!(node, "busy");
    }

    #[test]
    fn bad_configurations_are_rejected() {
        let unknown = KubeSchedulerConfiguration::parse(
            "profiles:\n- plugins:\n    filter:\n      enabled:\n      - name: Nope\n",
        )
        .unwrap()
        .frameworks(&PluginContext::default())
        .unwrap_err();
        assert_eq!(unknown.to_string(), "profiles[0].plugins: \"Nope\" does not exist");
        assert!(KubeSchedulerConfiguration::parse("percentageOfNodesToScore: 101").is_err());
        assert!(KubeSchedulerConfiguration::parse("apiVersion: v2").is_err());
    }
}
