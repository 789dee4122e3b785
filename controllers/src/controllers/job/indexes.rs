//! Completion indexes of Indexed Jobs: the interval lists of
//! `status.completedIndexes`, `status.failedIndexes` and success policy
//! rules (`"1,3-5,7"`), the index a pod carries, and which indexes still
//! need a pod (upstream's `indexed_job_utils.go`).

use std::fmt;

use crate::cached_pod::CachedPod;

/// The annotation (and label) holding a pod's completion index.
pub const COMPLETION_INDEX_ANNOTATION: &str = "batch.kubernetes.io/job-completion-index";

/// One closed range of indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub first: i32,
    pub last: i32,
}

/// Sorted, disjoint, non-adjacent intervals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderedIntervals(pub Vec<Interval>);

impl OrderedIntervals {
    /// Parses `"1,3-5"`, keeping only indexes below `completions`; a
    /// malformed element is skipped, as upstream does.
    pub fn parse(s: &str, completions: i32) -> Self {
        let mut out: Vec<Interval> = Vec::new();
        for part in s.split(',').filter(|p| !p.is_empty()) {
            let (first, last) = match part.split_once('-') {
                Some((a, b)) => (a.parse::<i32>(), b.parse::<i32>()),
                None => (part.parse::<i32>(), part.parse::<i32>()),
            };
            let (Ok(first), Ok(mut last)) = (first, last) else {
                continue;
            };
            if first < 0 || last < first {
                continue;
            }
            if first >= completions {
                break;
            }
            if last >= completions {
                last = completions - 1;
            }
            match out.last_mut() {
                Some(prev) if prev.last + 1 >= first => prev.last = prev.last.max(last),
                _ => out.push(Interval { first, last }),
            }
        }
        OrderedIntervals(out)
    }

    /// These intervals plus `indexes`.
    pub fn with_indexes(&self, indexes: impl IntoIterator<Item = i32>) -> Self {
        let mut all: Vec<i32> = indexes.into_iter().collect();
        all.sort_unstable();
        all.dedup();
        let mut merged: Vec<Interval> = Vec::with_capacity(self.0.len() + all.len());
        let mut existing = self.0.iter().peekable();
        let mut new = all.into_iter().map(|i| Interval { first: i, last: i }).peekable();
        loop {
            let next = match (existing.peek(), new.peek()) {
                (Some(a), Some(b)) if a.first <= b.first => existing.next().copied(),
                (Some(_), Some(_)) | (None, Some(_)) => new.next(),
                (Some(_), None) => existing.next().copied(),
                (None, None) => break,
            };
            let Some(iv) = next else { break };
            match merged.last_mut() {
                Some(prev) if prev.last + 1 >= iv.first => prev.last = prev.last.max(iv.last),
                _ => merged.push(iv),
            }
        }
        OrderedIntervals(merged)
    }

    /// The union with `other`.
    pub fn merge(&self, other: &OrderedIntervals) -> Self {
        let mut v = self.0.clone();
        v.extend(other.0.iter().copied());
        v.sort_by_key(|i| i.first);
        let mut merged: Vec<Interval> = Vec::with_capacity(v.len());
        for iv in v {
            match merged.last_mut() {
                Some(prev) if prev.last + 1 >= iv.first => prev.last = prev.last.max(iv.last),
                _ => merged.push(iv),
            }
        }
        OrderedIntervals(merged)
    }

    pub fn has(&self, ix: i32) -> bool {
        self.0.iter().any(|i| i.first <= ix && ix <= i.last)
    }

    /// How many indexes.
    pub fn total(&self) -> i32 {
        self.0.iter().map(|i| i.last - i.first + 1).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every index, in order.
    pub fn iter(&self) -> impl Iterator<Item = i32> + '_ {
        self.0.iter().flat_map(|i| i.first..=i.last)
    }
}

/// Upstream's form: `first-last`, but two adjacent indexes as `a,b`.
impl fmt::Display for OrderedIntervals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, iv) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}", iv.first)?;
            if iv.last > iv.first {
                let sep = if iv.last == iv.first + 1 { "," } else { "-" };
                write!(f, "{sep}{}", iv.last)?;
            }
        }
        Ok(())
    }
}

/// The pod's completion index, if its annotation holds a valid one.
pub fn completion_index(pod: &CachedPod) -> Option<i32> {
    let v = pod.metadata.annotations.as_ref()?.get(COMPLETION_INDEX_ANNOTATION)?;
    v.parse::<i32>().ok().filter(|i| *i >= 0)
}

/// The pod's completion index when it is below `completions`.
pub fn valid_index(pod: &CachedPod, completions: i32) -> Option<i32> {
    completion_index(pod).filter(|i| *i < completions)
}

/// The lowest `count` indexes below `completions` that are not in
/// `non_pending` (succeeded, failed, or with an active pod).
pub fn first_pending_indexes(non_pending: &OrderedIntervals, count: usize, completions: i32) -> Vec<i32> {
    let mut result = Vec::with_capacity(count);
    let mut candidate = 0;
    for iv in &non_pending.0 {
        while candidate < completions && result.len() < count && candidate < iv.first {
            result.push(candidate);
            candidate += 1;
        }
        candidate = candidate.max(iv.last + 1);
    }
    while candidate < completions && result.len() < count {
        result.push(candidate);
        candidate += 1;
    }
    result
}

/// `<job>-<index>-`, shortened like upstream so that the generated name
/// (five random characters added) stays within 63 characters.
pub fn generate_name_with_index(job: &str, index: i32) -> String {
    const MAX_GENERATED_NAME_LENGTH: usize = 58;
    let suffix = format!("-{index}-");
    let prefix = format!("{job}{suffix}");
    if prefix.len() <= MAX_GENERATED_NAME_LENGTH {
        return prefix;
    }
    let keep = MAX_GENERATED_NAME_LENGTH.saturating_sub(suffix.len());
    let mut cut = keep.min(job.len());
    while !job.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{suffix}", &job[..cut])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn parse_and_format_round_trip_in_upstream_form() {
        for (input, completions, want) in [
            ("", 10, ""),
            ("0", 10, "0"),
            ("0,1", 10, "0,1"),
            ("0-1", 10, "0,1"),
            ("1,3-5,7", 10, "1,3-5,7"),
            ("1-3,4,5", 10, "1-5"),
            ("3-9", 5, "3,4"),
            ("x,2,a-b,4", 10, "2,4"),
            ("7,8", 5, ""),
        ] {
            assert_eq!(OrderedIntervals::parse(input, completions).to_string(), want, "{input}");
        }
    }

    #[test]
    fn adding_indexes_merges_neighbours() {
        let base = OrderedIntervals::parse("1,5-6", 100);
        assert_eq!(base.with_indexes([0, 2, 9, 4]).to_string(), "0-2,4-6,9");
        assert_eq!(base.with_indexes([]).to_string(), "1,5,6");
        assert_eq!(base.merge(&OrderedIntervals::parse("2-4,8", 100)).to_string(), "1-6,8");
        let all = base.with_indexes([3]);
        assert!(all.has(3) && all.has(6) && !all.has(4));
        assert_eq!(all.total(), 4);
        assert_eq!(all.iter().collect::<Vec<_>>(), vec![1, 3, 5, 6]);
    }

    #[test]
    fn first_pending_skips_non_pending() {
        let non_pending = OrderedIntervals::parse("0,2-3,6", 100);
        assert_eq!(first_pending_indexes(&non_pending, 3, 10), vec![1, 4, 5]);
        assert_eq!(first_pending_indexes(&non_pending, 10, 8), vec![1, 4, 5, 7]);
        assert_eq!(first_pending_indexes(&OrderedIntervals::default(), 2, 10), vec![0, 1]);
        assert!(first_pending_indexes(&non_pending, 0, 10).is_empty());
    }

    #[test]
    fn indexed_generate_names_fit() {
        assert_eq!(generate_name_with_index("job", 3), "job-3-");
        let long = "a".repeat(60);
        let name = generate_name_with_index(&long, 12);
        assert_eq!(name.len(), 58);
        assert!(name.ends_with("a-12-"));
    }
}
