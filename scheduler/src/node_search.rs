//! Filter over the candidate nodes, in round-robin order from a start
//! index, until enough feasible nodes are found (upstream's
//! `findNodesThatPassFilters`). Large searches run on several threads
//! (upstream uses 16 goroutines; here as many as there are cores): workers
//! take chunks of consecutive positions in order, stop taking chunks once
//! enough feasible nodes are known, and the verdicts are then read in
//! position order up to the node that completed the count. Every position
//! before that node was evaluated (chunks are taken in order and finished),
//! so the outcome is exactly the sequential one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crate::framework::Status;
use crate::node_info::NodeInfo;

/// Positions per work item.
const CHUNK: usize = 64;
/// Searches over fewer nodes than this stay on the calling thread (a
/// thread costs more than filtering a few hundred nodes).
pub const MIN_PARALLEL_NODES: usize = 1024;

/// Threads a search may use (the calling one included).
fn parallelism() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()).min(16))
}

/// What a search found, in position order.
#[derive(Debug, Default)]
pub struct Found {
    pub feasible: Vec<Arc<NodeInfo>>,
    pub rejected: Vec<(Arc<NodeInfo>, Status)>,
    /// Nodes evaluated (the round-robin start advances by this).
    pub processed: usize,
}

/// Evaluates `nodes` from `start` (wrapping) with `filter` until `to_find`
/// pass; an internal error (neither success nor a rejection) stops the
/// search and is returned, as the first one in position order.
pub fn search<F>(nodes: &[Arc<NodeInfo>], start: usize, to_find: usize, filter: F) -> Result<Found, Status>
where
    F: Fn(&NodeInfo) -> Status + Sync,
{
    let len = nodes.len();
    let at = |i: usize| &nodes[(start + i) % len];
    let threads = parallelism();
    if threads <= 1 || len < MIN_PARALLEL_NODES {
        let mut out = Found::default();
        for i in 0..len {
            if out.feasible.len() >= to_find {
                break;
            }
            let node = at(i);
            out.processed += 1;
            let s = filter(node);
            if s.is_success() {
                out.feasible.push(node.clone());
            } else if s.is_rejected() {
                out.rejected.push((node.clone(), s));
            } else {
                return Err(s);
            }
        }
        return Ok(out);
    }
    let next_chunk = AtomicUsize::new(0);
    let found = AtomicUsize::new(0);
    // A worker's verdicts: (position, None for feasible).
    let work = || {
        let mut verdicts: Vec<(usize, Option<Status>)> = Vec::new();
        loop {
            if found.load(Ordering::Relaxed) >= to_find {
                break;
            }
            let lo = next_chunk.fetch_add(1, Ordering::Relaxed) * CHUNK;
            if lo >= len {
                break;
            }
            for i in lo..(lo + CHUNK).min(len) {
                let s = filter(at(i));
                if s.is_success() {
                    found.fetch_add(1, Ordering::Relaxed);
                    verdicts.push((i, None));
                } else {
                    let stop = !s.is_rejected();
                    verdicts.push((i, Some(s)));
                    if stop {
                        // Make everyone stop taking chunks.
                        found.store(usize::MAX / 2, Ordering::Relaxed);
                        break;
                    }
                }
            }
        }
        verdicts
    };
    let mut verdicts = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        let mut all = work();
        for h in helpers {
            // A panicking filter is a bug; resurface it here.
            match h.join() {
                Ok(v) => all.extend(v),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        all
    });
    verdicts.sort_unstable_by_key(|(i, _)| *i);
    let mut out = Found::default();
    for (expected, (i, verdict)) in verdicts.into_iter().enumerate() {
        if out.feasible.len() >= to_find || i != expected {
            // Enough found, or past an internal error (later positions
            // were not all evaluated).
            break;
        }
        out.processed += 1;
        match verdict {
            None => out.feasible.push(at(i).clone()),
            Some(s) if s.is_rejected() => out.rejected.push((at(i).clone(), s)),
            Some(s) => return Err(s),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::framework::Code;

    fn nodes(n: usize) -> Vec<Arc<NodeInfo>> {
        (0..n)
            .map(|i| {
                Arc::new(NodeInfo {
                    name: format!("n{i}"),
                    ..NodeInfo::default()
                })
            })
            .collect()
    }

    fn number(n: &NodeInfo) -> usize {
        n.name[1..].parse().unwrap()
    }

    fn names(ns: &[Arc<NodeInfo>]) -> Vec<usize> {
        ns.iter().map(|n| number(n)).collect()
    }

    /// The search one node at a time, as the reference.
    fn sequential(
        nodes: &[Arc<NodeInfo>],
        start: usize,
        to_find: usize,
        filter: &dyn Fn(&NodeInfo) -> Status,
    ) -> Result<(Vec<usize>, Vec<usize>, usize), Status> {
        let (mut feasible, mut rejected, mut processed) = (Vec::new(), Vec::new(), 0);
        for i in 0..nodes.len() {
            if feasible.len() >= to_find {
                break;
            }
            let n = &nodes[(start + i) % nodes.len()];
            processed += 1;
            let s = filter(n);
            if s.is_success() {
                feasible.push(number(n));
            } else if s.is_rejected() {
                rejected.push(number(n));
            } else {
                return Err(s);
            }
        }
        Ok((feasible, rejected, processed))
    }

    #[test]
    fn parallel_search_finds_what_the_sequential_one_finds() {
        let all = nodes(5000);
        // Feasible: every 7th node, and a dense run near the end.
        let filter = |n: &NodeInfo| {
            let i = number(n);
            if i.is_multiple_of(7) || (4700..4800).contains(&i) {
                Status::success()
            } else {
                Status::with(Code::Unschedulable, "no")
            }
        };
        for (start, to_find) in [(0, 100), (4650, 120), (1234, 5000), (4999, 1), (3000, 0)] {
            let want = sequential(&all, start, to_find, &filter).unwrap();
            let got = search(&all, start, to_find, filter).unwrap();
            let rejected: Vec<usize> = got.rejected.iter().map(|(n, _)| number(n)).collect();
            assert_eq!(
                (names(&got.feasible), rejected, got.processed),
                want,
                "start {start}, find {to_find}"
            );
        }
        // Small searches take the single-threaded path with the same result.
        let few = nodes(100);
        let want = sequential(&few, 50, 5, &filter).unwrap();
        let got = search(&few, 50, 5, filter).unwrap();
        assert_eq!((names(&got.feasible), got.processed), (want.0, want.2));
    }

    #[test]
    fn the_first_internal_error_in_order_is_returned() {
        let all = nodes(5000);
        let filter = |n: &NodeInfo| match number(n) {
            3000 | 3500 => Status::with(Code::Error, format!("broken {}", n.name)),
            _ => Status::with(Code::Unschedulable, "no"),
        };
        let err = search(&all, 2000, 10, filter).unwrap_err();
        assert_eq!(err.message(), "broken n3000");
        assert_eq!(
            sequential(&all, 2000, 10, &filter).unwrap_err().message(),
            "broken n3000"
        );
    }
}
