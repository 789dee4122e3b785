//! The scheduling framework: the extension points of a scheduling cycle and
//! the [`Plugin`] trait behind which every scheduling rule lives.
//!
//! A cycle runs PreFilter, then Filter per node, then (when no node fits)
//! PostFilter, then PreScore, Score and NormalizeScore on the feasible
//! nodes, then Reserve and Permit on the chosen one; the binding cycle
//! (asynchronous) waits for a pod Permit held ([`waiting`]), then runs
//! PreBind, the bind itself, then PostBind. Plugins are pure: they
//! read the [`Snapshot`] and the [`CycleState`] and return a [`Status`];
//! all API calls are the scheduler's.

pub mod runtime;
pub mod waiting;

use std::any::Any;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use crate::cache::Snapshot;
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;

pub use runtime::Framework;

/// The highest score a Score plugin gives after normalization.
pub const MAX_NODE_SCORE: i64 = 100;

/// A plugin's verdict (upstream's `framework.Code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// The plugin agrees.
    Success,
    /// An internal error; the pod is retried with back-off.
    Error,
    /// The pod does not fit now; preemption may help.
    Unschedulable,
    /// The pod does not fit and preemption cannot help.
    UnschedulableAndUnresolvable,
    /// The plugin has nothing to do for this pod (PreFilter/PreScore): its
    /// Filter/Score is skipped.
    Skip,
    /// The pod waits for something outside the scheduler (PreEnqueue).
    Pending,
    /// Permit: hold the pod (in the binding cycle) until it is allowed,
    /// rejected or its wait runs out.
    Wait,
}

/// A status with the reasons shown in FailedScheduling messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    pub reasons: Vec<String>,
    /// The plugin that returned it (set by the framework).
    pub plugin: &'static str,
}

impl Status {
    /// Success.
    pub fn success() -> Status {
        Status::new(Code::Success, Vec::new())
    }

    /// A status with one reason.
    pub fn with(code: Code, reason: impl Into<String>) -> Status {
        Status::new(code, vec![reason.into()])
    }

    /// A status with reasons.
    pub fn new(code: Code, reasons: Vec<String>) -> Status {
        Status {
            code,
            reasons,
            plugin: "",
        }
    }

    /// Skip.
    pub fn skip() -> Status {
        Status::new(Code::Skip, Vec::new())
    }

    /// True for Success.
    pub fn is_success(&self) -> bool {
        self.code == Code::Success
    }

    /// True for Unschedulable and UnschedulableAndUnresolvable.
    pub fn is_rejected(&self) -> bool {
        matches!(self.code, Code::Unschedulable | Code::UnschedulableAndUnresolvable)
    }

    /// The reasons joined with ", " (`Status.Message()`).
    pub fn message(&self) -> String {
        self.reasons.join(", ")
    }
}

/// Per-cycle data plugins compute in PreFilter/PreScore and read later.
/// Filter reads it once per node and plugin, so its maps hash with
/// foldhash rather than SipHash (keys are plugin constants, not input).
#[derive(Default)]
pub struct CycleState {
    data: HashMap<&'static str, Box<dyn Any + Send + Sync>, FastHash>,
    pub(crate) skip_filter: HashSet<&'static str, FastHash>,
    pub(crate) skip_score: HashSet<&'static str, FastHash>,
}

type FastHash = foldhash::fast::RandomState;

impl std::fmt::Debug for CycleState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CycleState").field("keys", &self.data.keys()).finish()
    }
}

impl CycleState {
    /// Stores a value under `key`.
    pub fn write<T: Any + Send + Sync>(&mut self, key: &'static str, value: T) {
        self.data.insert(key, Box::new(value));
    }

    /// Reads the value stored under `key`.
    pub fn read<T: Any + Send + Sync>(&self, key: &'static str) -> Option<&T> {
        self.data.get(key).and_then(|v| v.downcast_ref())
    }
}

/// The extension points a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Point {
    PreEnqueue,
    PreFilter,
    Filter,
    PostFilter,
    PreScore,
    Score,
    Reserve,
    Permit,
    PreBind,
    PostBind,
}

/// Cluster changes that can make a rejected pod schedulable; a plugin lists
/// the ones that matter for what it rejects (upstream's EventsToRegister).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClusterEvent {
    NodeAdd,
    /// A node's labels, taints, allocatable, images or schedulability changed.
    NodeUpdate,
    /// A bound pod appeared (or was assumed).
    AssignedPodAdd,
    /// A bound pod's labels changed.
    AssignedPodUpdate,
    /// A bound pod went away (deleted or finished).
    AssignedPodDelete,
    /// A namespace's labels changed.
    NamespaceUpdate,
    /// The pod itself changed.
    UnscheduledPodUpdate,
    /// A PersistentVolumeClaim, PersistentVolume or StorageClass changed.
    StorageChange,
}

/// What PreFilter may narrow the candidates to.
pub type PreFilterResult = Option<BTreeSet<String>>;

/// Filter outcomes of the nodes that were evaluated, by name.
pub type NodeStatuses = HashMap<String, Status>;

/// What a PostFilter (preemption) decided.
#[derive(Debug, Default)]
pub struct PostFilterResult {
    /// The node where the pod will fit once the victims are gone.
    pub nominated_node: Option<String>,
    /// The pods to evict for it.
    pub victims: Vec<Arc<PodInfo>>,
}

/// A scheduling rule at one or more extension points. Every method has a
/// neutral default, so a plugin implements only its points (listed by
/// [`Plugin::points`]).
pub trait Plugin: Send + Sync {
    /// The name used in configuration, logs and metrics.
    fn name(&self) -> &'static str;

    /// The extension points this plugin implements.
    fn points(&self) -> &'static [Point];

    /// Events that may make a pod this plugin rejected schedulable.
    fn events(&self) -> &'static [ClusterEvent] {
        &[]
    }

    /// Whether the pod may enter the active queue at all.
    fn pre_enqueue(&self, _pod: &PodInfo) -> Status {
        Status::success()
    }

    /// Computes per-cycle state; may narrow the nodes, reject the pod or skip.
    fn pre_filter(&self, _state: &mut CycleState, _pod: &PodInfo, _snapshot: &Snapshot) -> (Status, PreFilterResult) {
        (Status::success(), None)
    }

    /// Whether the pod can run on the node.
    fn filter(&self, _state: &CycleState, _pod: &PodInfo, _node: &NodeInfo) -> Status {
        Status::success()
    }

    /// Runs when no node fits (preemption).
    fn post_filter(
        &self,
        _fw: &Framework,
        _pod: &PodInfo,
        _snapshot: &Snapshot,
        _statuses: &NodeStatuses,
    ) -> (Status, PostFilterResult) {
        (Status::with(Code::Unschedulable, ""), PostFilterResult::default())
    }

    /// Computes per-cycle scoring state for the feasible nodes.
    fn pre_score(
        &self,
        _state: &mut CycleState,
        _pod: &PodInfo,
        _nodes: &[Arc<NodeInfo>],
        _snapshot: &Snapshot,
    ) -> Status {
        Status::success()
    }

    /// The node's raw score.
    fn score(&self, _state: &CycleState, _pod: &PodInfo, _node: &NodeInfo) -> i64 {
        0
    }

    /// Rescales raw scores to 0..=MAX_NODE_SCORE (`scores[i]` is `nodes[i]`'s).
    fn normalize_score(&self, _state: &CycleState, _pod: &PodInfo, _nodes: &[Arc<NodeInfo>], _scores: &mut [i64]) {}

    /// Reserves what the pod will use on `node`.
    fn reserve(&self, _state: &CycleState, _pod: &PodInfo, _node: &str) -> Status {
        Status::success()
    }

    /// Undoes `reserve` after a later failure.
    fn unreserve(&self, _state: &CycleState, _pod: &PodInfo, _node: &str) {}

    /// Approves, denies, or (with [`Code::Wait`]) holds the binding for at
    /// most the returned time (capped at
    /// [`waiting::MAX_PERMIT_WAIT`]); a held pod is allowed or rejected
    /// through [`Framework::waiting_pods`].
    fn permit(&self, _state: &CycleState, _pod: &PodInfo, _node: &str) -> (Status, std::time::Duration) {
        (Status::success(), std::time::Duration::ZERO)
    }

    /// Runs in the binding cycle before the Bind call (e.g. provisioning).
    fn pre_bind(&self, _pod: &PodInfo, _node: &str) -> Status {
        Status::success()
    }

    /// Runs after a successful bind (informational).
    fn post_bind(&self, _pod: &PodInfo, _node: &str) {}
}

/// `DefaultNormalizeScore`: scales so the highest score is MAX_NODE_SCORE,
/// reversed (`MAX - s`) when `reverse`.
pub fn default_normalize_score(max_priority: i64, reverse: bool, scores: &mut [i64]) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = max_priority);
        }
        return;
    }
    for s in scores.iter_mut() {
        *s = max_priority * *s / max;
        if reverse {
            *s = max_priority - *s;
        }
    }
}
