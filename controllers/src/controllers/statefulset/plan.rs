//! One round of a StatefulSet's update, decided without IO (upstream
//! `updateStatefulSet`): which pods to create, repair and delete, in
//! which order, and the status to report.
//!
//! Members are split into `replicas` (ordinals in range, a new pod for
//! each missing one) and `condemned` (ordinals beyond). Under
//! `OrderedReady` (monotonic) the round stops at the first pod it creates
//! or deletes, or that is not yet Running, Ready and available; under
//! `Parallel` every pod is handled at once. Scale-down removes condemned
//! pods from the highest ordinal; then RollingUpdate deletes pods of old
//! revisions from the highest ordinal down to `partition`, keeping at
//! most `maxUnavailable` members unavailable (`OnDelete` never deletes).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

use super::identity::{
    claims_for, identity_matches, in_ordinal_range, new_pod, ordinal, pod_revision, replicas, start_ordinal,
    storage_matches,
};
use super::retention::{claim_is_stale, claim_owner_up_to_date};
use crate::cached_pod::CachedPod;
use crate::controllers::pod_status::{is_available, is_ready, phase};

/// One thing to do to a member.
#[derive(Debug, Clone)]
pub enum PodAction {
    /// Delete a pod that ran to completion or failed, to recreate it.
    DeleteFinished(Arc<CachedPod>),
    /// Create the claims, then the pod.
    Create(Box<Pod>),
    /// Create a pending pod's missing claims (and fix their owners).
    CreateMissingClaims(Arc<CachedPod>),
    /// Put back the pod's identity, storage and claim owners.
    Repair(Arc<CachedPod>),
    /// Make a condemned pod's claims follow the retention policy.
    FixClaims(Arc<CachedPod>),
    /// Delete a pod beyond the set's size.
    DeleteCondemned(Arc<CachedPod>),
    /// Delete a pod of an old revision, to recreate it at the new one.
    DeleteForUpdate(Arc<CachedPod>),
}

/// Everything a round looks at.
pub struct Input<'a> {
    pub set: &'a StatefulSet,
    /// The templates of the current and update revisions, and their names.
    pub current_template: &'a PodTemplateSpec,
    pub update_template: &'a PodTemplateSpec,
    pub current_revision: &'a str,
    pub update_revision: &'a str,
    pub collision_count: i32,
    /// The set's pods (claimed).
    pub pods: &'a [Arc<CachedPod>],
    /// Claims in the set's namespace, by name.
    pub claims: &'a BTreeMap<String, Arc<PersistentVolumeClaim>>,
    pub now: Timestamp,
}

/// The round's decisions: phases run in order, each only if the previous
/// one succeeded; within a phase, actions run one by one when
/// `monotonic`, else all at once.
#[derive(Debug)]
pub struct Plan {
    pub monotonic: bool,
    pub phases: Vec<Vec<PodAction>>,
    pub status: StatefulSetStatus,
}

/// A member's place in the round: a pod that exists, or one to create.
#[derive(Debug, Clone)]
enum Slot {
    Existing(Arc<CachedPod>),
    /// The pod to create, and the same pod as the planner reads pods.
    Missing(Box<Pod>, Arc<CachedPod>),
}

impl Slot {
    fn pod(&self) -> &CachedPod {
        match self {
            Slot::Existing(p) => p,
            Slot::Missing(_, view) => view,
        }
    }
}

fn is_terminating(pod: &CachedPod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

fn running_and_ready(pod: &CachedPod) -> bool {
    phase(pod) == "Running" && is_ready(pod)
}

fn healthy(pod: &CachedPod) -> bool {
    running_and_ready(pod) && !is_terminating(pod)
}

/// Not serving: terminating, not Running and Ready, or not yet ready for
/// `minReadySeconds`.
fn unavailable(pod: &CachedPod, min_ready: i32, now: Timestamp) -> bool {
    !healthy(pod) || !is_available(pod, min_ready, now)
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// replicas, readyReplicas, availableReplicas, currentReplicas and
/// updatedReplicas from `pods` (created pods only).
fn replica_counts<'a>(
    pods: impl Iterator<Item = &'a CachedPod>,
    min_ready: i32,
    current: &str,
    update: &str,
    now: Timestamp,
) -> [i32; 5] {
    let mut c = [0usize; 5];
    for pod in pods {
        let created = !phase(pod).is_empty();
        if created {
            c[0] += 1;
        }
        if running_and_ready(pod) {
            c[1] += 1;
            if is_available(pod, min_ready, now) {
                c[2] += 1;
            }
        }
        if created && !is_terminating(pod) {
            if pod_revision(pod) == current {
                c[3] += 1;
            }
            if pod_revision(pod) == update {
                c[4] += 1;
            }
        }
    }
    c.map(count)
}

fn set_counts(status: &mut StatefulSetStatus, c: [i32; 5]) {
    status.replicas = c[0];
    status.ready_replicas = Some(c[1]);
    status.available_replicas = Some(c[2]);
    status.current_replicas = Some(c[3]);
    status.updated_replicas = Some(c[4]);
}

/// The claims of `pod` from the set's templates that exist, or `None`
/// for one missing.
fn pod_claims<'a>(input: &'a Input<'_>, pod: &CachedPod) -> Vec<Option<&'a Arc<PersistentVolumeClaim>>> {
    let Some(ord) = ordinal(pod) else {
        return Vec::new();
    };
    claims_for(input.set, ord)
        .into_iter()
        .map(|(_, c)| input.claims.get(c.metadata.name.as_deref().unwrap_or_default()))
        .collect()
}

fn claims_follow_policy(input: &Input<'_>, pod: &CachedPod) -> bool {
    pod_claims(input, pod)
        .into_iter()
        .flatten()
        .all(|c| claim_owner_up_to_date(c, input.set, pod))
}

/// Decides one round.
pub fn plan(input: &Input<'_>) -> Plan {
    let set = input.set;
    let spec = set.spec.clone().unwrap_or_default();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let monotonic = spec.pod_management_policy.as_deref() != Some("Parallel");
    let mut status = StatefulSetStatus {
        observed_generation: set.metadata.generation,
        current_revision: Some(input.current_revision.into()),
        update_revision: Some(input.update_revision.into()),
        collision_count: Some(input.collision_count),
        conditions: set.status.as_ref().and_then(|s| s.conditions.clone()),
        ..StatefulSetStatus::default()
    };
    let counts = |slots: &[Slot], condemned: &[Arc<CachedPod>]| {
        replica_counts(
            slots.iter().map(Slot::pod).chain(condemned.iter().map(|p| p.as_ref())),
            min_ready,
            input.current_revision,
            input.update_revision,
            input.now,
        )
    };
    set_counts(
        &mut status,
        replica_counts(
            input.pods.iter().map(|p| p.as_ref()),
            min_ready,
            input.current_revision,
            input.update_revision,
            input.now,
        ),
    );

    let start = start_ordinal(set);
    let n = usize::try_from(replicas(set)).unwrap_or(0);
    let mut slots: Vec<Option<Arc<CachedPod>>> = vec![None; n];
    let mut condemned: Vec<Arc<CachedPod>> = Vec::new();
    for pod in input.pods {
        let Some(ord) = ordinal(pod) else { continue };
        if in_ordinal_range(pod, set) {
            if let Ok(i) = usize::try_from(i64::from(ord) - i64::from(start))
                && let Some(slot) = slots.get_mut(i)
            {
                *slot = Some(pod.clone());
            }
        } else if ord >= 0 {
            condemned.push(pod.clone());
        }
    }
    // Missing members are created at the current revision below the
    // partition (or the current replica count without one), else at the
    // update revision.
    let rolling = spec.update_strategy.as_ref().and_then(|u| u.type_.as_deref()) != Some("OnDelete");
    let partition = spec
        .update_strategy
        .as_ref()
        .and_then(|u| u.rolling_update.as_ref())
        .map(|r| r.partition.unwrap_or(0));
    let current_count = set.status.as_ref().and_then(|s| s.current_replicas).unwrap_or(0);
    let slots: Vec<Slot> = slots
        .into_iter()
        .enumerate()
        .map(|(i, s)| match s {
            Some(p) => Slot::Existing(p),
            None => {
                let ord = start.saturating_add(count(i));
                let at_current = match partition {
                    Some(p) => ord < start.saturating_add(p),
                    None => rolling && ord < start.saturating_add(current_count),
                };
                let pod = if at_current {
                    new_pod(set, input.current_template, input.current_revision, ord)
                } else {
                    new_pod(set, input.update_template, input.update_revision, ord)
                };
                let view = Arc::new(CachedPod::from(&pod));
                Slot::Missing(Box::new(pod), view)
            }
        })
        .collect();
    condemned.sort_by_key(|p| std::cmp::Reverse(ordinal(p)));
    let first_unhealthy: Option<String> = slots
        .iter()
        .map(Slot::pod)
        .find(|p| !healthy(p))
        .or_else(|| condemned.iter().rev().map(|p| p.as_ref()).find(|p| !healthy(p)))
        .and_then(|p| p.metadata.name.clone());

    let mut plan = Plan {
        monotonic,
        phases: Vec::new(),
        status,
    };
    let finish = |mut plan: Plan, slots: &[Slot], condemned: &[Arc<CachedPod>]| {
        set_counts(&mut plan.status, counts(slots, condemned));
        plan
    };
    if set.metadata.deletion_timestamp.is_some() {
        return plan;
    }

    // Phase 1: every member in range.
    let mut actions = Vec::new();
    let mut blocked = false;
    for slot in &slots {
        match slot {
            Slot::Missing(pod, view) => {
                let stale = pod_claims(input, view)
                    .into_iter()
                    .flatten()
                    .any(|c| claim_is_stale(c, set, view));
                if stale {
                    // Wait for the garbage collector to remove the claim.
                    if monotonic {
                        blocked = true;
                        break;
                    }
                    continue;
                }
                actions.push(PodAction::Create(pod.clone()));
                if monotonic {
                    blocked = true;
                    break;
                }
            }
            Slot::Existing(pod) => {
                let ph = phase(pod);
                if ph == "Failed" || ph == "Succeeded" {
                    if !is_terminating(pod) {
                        actions.push(PodAction::DeleteFinished(pod.clone()));
                    }
                    if monotonic {
                        blocked = true;
                        break;
                    }
                    continue;
                }
                if ph == "Pending" && pod_claims(input, pod).iter().any(|c| c.is_none()) {
                    actions.push(PodAction::CreateMissingClaims(pod.clone()));
                }
                if monotonic
                    && (is_terminating(pod) || !running_and_ready(pod) || !is_available(pod, min_ready, input.now))
                {
                    blocked = true;
                    break;
                }
                if !(identity_matches(set, pod) && storage_matches(set, pod) && claims_follow_policy(input, pod)) {
                    actions.push(PodAction::Repair(pod.clone()));
                }
            }
        }
    }
    plan.phases.push(actions);
    if blocked {
        return finish(plan, &slots, &condemned);
    }

    // Phase 2: condemned members' claims follow the policy before they go.
    let fixes: Vec<PodAction> = condemned
        .iter()
        .filter(|p| !claims_follow_policy(input, p))
        .map(|p| PodAction::FixClaims(p.clone()))
        .collect();
    plan.phases.push(fixes);

    // Phase 3: scale down from the highest ordinal.
    let mut deletions = Vec::new();
    for pod in &condemned {
        if is_terminating(pod) {
            if monotonic {
                blocked = true;
                break;
            }
            continue;
        }
        let is_first_unhealthy = first_unhealthy.as_deref() == pod.metadata.name.as_deref();
        if monotonic && !is_first_unhealthy && (!running_and_ready(pod) || !is_available(pod, min_ready, input.now)) {
            blocked = true;
            break;
        }
        deletions.push(PodAction::DeleteCondemned(pod.clone()));
        if monotonic {
            blocked = true;
            break;
        }
    }
    plan.phases.push(deletions);
    if blocked || !rolling {
        return finish(plan, &slots, &condemned);
    }
    plan = finish(plan, &slots, &condemned);

    // Phase 4: rolling update.
    let update_min = usize::try_from(partition.unwrap_or(0)).unwrap_or(0);
    let max_unavailable = spec
        .update_strategy
        .as_ref()
        .and_then(|u| u.rolling_update.as_ref())
        .map_or(1, |r| max_unavailable(r.max_unavailable.as_ref(), n));
    let pods: Vec<&CachedPod> = slots.iter().map(Slot::pod).collect();
    let old = |p: &CachedPod| pod_revision(p) != input.update_revision && !is_terminating(p);
    let mut unavailable_count = 0usize;
    let mut unavailable_old = 0usize;
    for p in &pods {
        if unavailable(p, min_ready, input.now) {
            unavailable_count += 1;
            if !monotonic && old(p) {
                unavailable_old += 1;
            }
        }
    }
    let mut updates = Vec::new();
    if unavailable_count >= max_unavailable && unavailable_old == 0 {
        plan.phases.push(updates);
        return plan;
    }
    let existing = |i: usize| match &slots[i] {
        Slot::Existing(p) => Some(p.clone()),
        Slot::Missing(..) => None,
    };
    if !monotonic {
        // Parallel: first replace old pods that are unavailable anyway,
        // then spend what is left of the budget on available ones.
        for i in (update_min..n).rev() {
            if old(pods[i])
                && !is_available(pods[i], min_ready, input.now)
                && let Some(p) = existing(i)
            {
                updates.push(PodAction::DeleteForUpdate(p));
            }
        }
        let mut budget = max_unavailable.saturating_sub(unavailable_count);
        for i in (update_min..n).rev() {
            if budget == 0 {
                break;
            }
            if old(pods[i])
                && is_available(pods[i], min_ready, input.now)
                && let Some(p) = existing(i)
            {
                updates.push(PodAction::DeleteForUpdate(p));
                budget -= 1;
            }
        }
    } else {
        let mut budget = max_unavailable - unavailable_count;
        for i in (update_min..n).rev() {
            if budget == 0 {
                break;
            }
            if old(pods[i])
                && let Some(p) = existing(i)
            {
                updates.push(PodAction::DeleteForUpdate(p));
                budget -= 1;
            }
        }
    }
    let deleted = count(updates.len());
    if let Some(c) = plan.status.current_replicas.as_mut() {
        *c = c.saturating_sub(deleted);
    }
    plan.phases.push(updates);
    plan
}

/// `maxUnavailable` of `replicas` (default 1, percentages rounded down,
/// at least 1).
pub fn max_unavailable(v: Option<&IntOrString>, replicas: usize) -> usize {
    let n = match v {
        None => 1,
        Some(IntOrString::Int(i)) => usize::try_from(*i).unwrap_or(0),
        Some(IntOrString::String(s)) => {
            let pct = s.strip_suffix('%').and_then(|p| p.parse::<usize>().ok()).unwrap_or(0);
            pct.saturating_mul(replicas) / 100
        }
    };
    n.max(1)
}

/// When a rolling update is done (every replica updated and ready), the
/// update revision becomes the current one (upstream
/// `completeRollingUpdate`).
pub fn complete_rolling_update(set: &StatefulSet, status: &mut StatefulSetStatus) {
    let spec = set.spec.as_ref();
    let rolling = spec
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.type_.as_deref())
        != Some("OnDelete");
    let want = replicas(set);
    if rolling
        && status.updated_replicas.unwrap_or(0) == want
        && status.ready_replicas.unwrap_or(0) == want
        && status.replicas == want
    {
        status.current_replicas = status.updated_replicas;
        status.current_revision = status.update_revision.clone();
    }
}

/// Whether `new` differs from the set's recorded status in what upstream
/// compares (`inconsistentStatus`).
pub fn status_changed(set: &StatefulSet, new: &StatefulSetStatus) -> bool {
    let Some(old) = set.status.as_ref() else {
        return true;
    };
    let n = |v: Option<i32>| v.unwrap_or(0);
    new.observed_generation.unwrap_or(0) > old.observed_generation.unwrap_or(0)
        || new.replicas != old.replicas
        || n(new.current_replicas) != n(old.current_replicas)
        || n(new.ready_replicas) != n(old.ready_replicas)
        || n(new.updated_replicas) != n(old.updated_replicas)
        || n(new.available_replicas) != n(old.available_replicas)
        || new.current_revision != old.current_revision
        || new.update_revision != old.update_revision
        || n(new.collision_count) != n(old.collision_count)
}

#[cfg(test)]
mod tests;
