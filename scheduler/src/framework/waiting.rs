//! Pods whose Permit plugins asked them to wait (upstream's waiting pods):
//! the binding cycle holds such a pod until every waiting plugin allows it,
//! one rejects it, or a plugin's wait runs out (a rejection naming that
//! plugin). Plugins and tests reach them through
//! [`Framework::waiting_pods`](super::Framework::waiting_pods).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{Code, Status};

/// The longest a Permit plugin may make a pod wait (upstream's
/// `maxTimeout`).
pub const MAX_PERMIT_WAIT: Duration = Duration::from_secs(15 * 60);

/// A pod held at Permit.
#[derive(Debug)]
pub struct WaitingPod {
    /// The pod's uid and name, and the node it was assumed on.
    pub uid: String,
    pub name: String,
    pub node: String,
    started: Instant,
    state: Mutex<WaitState>,
    changed: tokio::sync::Notify,
}

#[derive(Debug)]
struct WaitState {
    /// Plugins still to allow the pod, with their deadlines.
    pending: BTreeMap<&'static str, Instant>,
    /// Set once: success when the last plugin allowed, else the rejection.
    verdict: Option<Status>,
}

impl WaitingPod {
    fn lock(&self) -> MutexGuard<'_, WaitState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The plugins that have not allowed the pod yet.
    pub fn pending_plugins(&self) -> Vec<&'static str> {
        self.lock().pending.keys().copied().collect()
    }

    /// `plugin` allows the pod; the last allowance lets it bind.
    pub fn allow(&self, plugin: &str) {
        let mut state = self.lock();
        state.pending.remove(plugin);
        if state.pending.is_empty() && state.verdict.is_none() {
            state.verdict = Some(Status::success());
            self.changed.notify_one();
        }
    }

    /// `plugin` rejects the pod (the first verdict stands).
    pub fn reject(&self, plugin: &'static str, message: &str) {
        let mut state = self.lock();
        if state.verdict.is_none() {
            let mut s = Status::with(Code::Unschedulable, message);
            s.plugin = plugin;
            state.verdict = Some(s);
            self.changed.notify_one();
        }
    }

    /// Waits for the verdict, rejecting for the first pending plugin whose
    /// wait runs out.
    async fn verdict(&self) -> Status {
        loop {
            let next = {
                let state = self.lock();
                if let Some(v) = &state.verdict {
                    return v.clone();
                }
                state.pending.iter().min_by_key(|(_, d)| **d).map(|(p, d)| (*p, *d))
            };
            match next {
                Some((plugin, deadline)) => {
                    tokio::select! {
                        () = self.changed.notified() => {}
                        () = tokio::time::sleep_until(deadline.into()) => {
                            let waited = deadline.saturating_duration_since(self.started);
                            self.reject(plugin, &format!("rejected due to timeout after waiting {waited:?} at plugin {plugin}"));
                        }
                    }
                }
                None => self.changed.notified().await,
            }
        }
    }
}

/// The waiting pods of one profile, by uid.
#[derive(Debug, Default)]
pub struct WaitingPods {
    pods: Mutex<HashMap<String, Arc<WaitingPod>>>,
}

impl WaitingPods {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<WaitingPod>>> {
        self.pods.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds a pod for `waits` (plugin -> how long it may wait, capped at
    /// [`MAX_PERMIT_WAIT`]), from `now`.
    pub fn add(&self, uid: &str, name: &str, node: &str, waits: BTreeMap<&'static str, Duration>, now: Instant) {
        let pending = waits
            .into_iter()
            .map(|(p, d)| (p, now + d.min(MAX_PERMIT_WAIT)))
            .collect();
        let pod = WaitingPod {
            uid: uid.to_string(),
            name: name.to_string(),
            node: node.to_string(),
            started: now,
            state: Mutex::new(WaitState { pending, verdict: None }),
            changed: tokio::sync::Notify::new(),
        };
        self.lock().insert(uid.to_string(), Arc::new(pod));
    }

    /// The waiting pod with this uid.
    pub fn get(&self, uid: &str) -> Option<Arc<WaitingPod>> {
        self.lock().get(uid).cloned()
    }

    /// Every waiting pod.
    pub fn list(&self) -> Vec<Arc<WaitingPod>> {
        self.lock().values().cloned().collect()
    }

    /// Waits for the pod's verdict (success when it is not waiting) and
    /// forgets it: a rejection as given, anything else as an error.
    pub async fn wait_on_permit(&self, uid: &str) -> Status {
        let Some(pod) = self.get(uid) else {
            return Status::success();
        };
        let verdict = pod.verdict().await;
        self.lock().remove(uid);
        if verdict.is_success() || verdict.is_rejected() {
            return verdict;
        }
        let mut s = Status::with(Code::Error, format!("waiting on permit for pod: {}", verdict.message()));
        s.plugin = verdict.plugin;
        s
    }
}
