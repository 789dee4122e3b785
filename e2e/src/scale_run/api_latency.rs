//! API call latency from the apiserver's `/metrics`, as cluster-loader2's
//! APIResponsivenessPrometheus measures it: the
//! `apiserver_request_duration_seconds` histograms (WATCH and CONNECT
//! excluded), read before and after the run, their difference taken, and
//! the 99th percentile interpolated within a bucket as Prometheus'
//! `histogram_quantile` does.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

const METRIC: &str = "apiserver_request_duration_seconds_bucket";
/// Long-running verbs the SLO does not cover.
const EXCLUDED_VERBS: &[&str] = &["WATCH", "WATCHLIST", "CONNECT"];

/// Cumulative bucket counts by upper bound (seconds; `+Inf` as infinity).
pub type Buckets = Vec<(f64, f64)>;

/// Histograms by (verb, resource).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histograms(pub BTreeMap<(String, String), Buckets>);

/// The label `name` of a sample's label set `{a="x",b="y"}`.
fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = labels;
    while let Some(eq) = rest.find("=\"") {
        let key = rest[..eq].trim_start_matches([',', ' ']);
        let value_start = eq + 2;
        let end = rest[value_start..].find('"')? + value_start;
        if key == name {
            return Some(&rest[value_start..end]);
        }
        rest = &rest[end + 1..];
    }
    None
}

impl Histograms {
    /// Reads the request duration buckets of a Prometheus text exposition.
    pub fn parse(text: &str) -> Histograms {
        let mut out: BTreeMap<(String, String), Buckets> = BTreeMap::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(METRIC) else {
                continue;
            };
            let Some(rest) = rest.strip_prefix('{') else { continue };
            let Some((labels, value)) = rest.split_once('}') else {
                continue;
            };
            let (Some(verb), Some(le)) = (label(labels, "verb"), label(labels, "le")) else {
                continue;
            };
            if EXCLUDED_VERBS.contains(&verb) {
                continue;
            }
            let resource = label(labels, "resource").unwrap_or("").to_string();
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                let Ok(le) = le.parse() else { continue };
                le
            };
            let Some(count) = value.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()) else {
                continue;
            };
            out.entry((verb.to_string(), resource)).or_default().push((le, count));
        }
        for b in out.values_mut() {
            b.sort_by(|x, y| x.0.total_cmp(&y.0));
        }
        Histograms(out)
    }

    /// The requests made between `before` and `self`.
    pub fn since(&self, before: &Histograms) -> Histograms {
        let mut out = BTreeMap::new();
        for (key, after) in &self.0 {
            let prev = before.0.get(key);
            let diff: Buckets = after
                .iter()
                .map(|(le, c)| {
                    let old = prev
                        .and_then(|p| p.iter().find(|(l, _)| l == le))
                        .map_or(0.0, |(_, c)| *c);
                    (*le, (c - old).max(0.0))
                })
                .collect();
            if diff.last().is_some_and(|(_, c)| *c > 0.0) {
                out.insert(key.clone(), diff);
            }
        }
        Histograms(out)
    }

    /// Per verb: the request count, the p99 of all its requests, and the
    /// resource with the worst p99 (cluster-loader2 checks the SLO per
    /// resource and verb).
    pub fn by_verb(&self) -> Vec<VerbLatency> {
        let mut verbs: BTreeMap<&str, Vec<(&str, &Buckets)>> = BTreeMap::new();
        for ((verb, resource), b) in &self.0 {
            verbs.entry(verb).or_default().push((resource, b));
        }
        verbs
            .into_iter()
            .map(|(verb, resources)| {
                let mut total: Buckets = Vec::new();
                for (_, b) in &resources {
                    for (le, c) in b.iter() {
                        match total.iter_mut().find(|(l, _)| l == le) {
                            Some(slot) => slot.1 += c,
                            None => total.push((*le, *c)),
                        }
                    }
                }
                total.sort_by(|x, y| x.0.total_cmp(&y.0));
                let worst = resources
                    .iter()
                    .map(|(r, b)| (r.to_string(), quantile(0.99, b)))
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                    .unwrap_or_default();
                VerbLatency {
                    verb: verb.to_string(),
                    requests: total.last().map_or(0, |(_, c)| *c as u64),
                    p99_ms: quantile(0.99, &total) * 1000.0,
                    worst_resource: worst.0,
                    worst_p99_ms: worst.1 * 1000.0,
                }
            })
            .collect()
    }
}

/// One verb's latency over the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VerbLatency {
    pub verb: String,
    pub requests: u64,
    pub p99_ms: f64,
    pub worst_resource: String,
    pub worst_p99_ms: f64,
}

/// `histogram_quantile(q, ...)` of cumulative buckets: linear within the
/// bucket holding the rank; the largest finite bound when it falls in
/// `+Inf`; 0 without samples.
pub fn quantile(q: f64, buckets: &Buckets) -> f64 {
    let Some(&(_, total)) = buckets.last() else { return 0.0 };
    if total <= 0.0 {
        return 0.0;
    }
    let rank = q * total;
    let mut prev_le = 0.0;
    let mut prev_count = 0.0;
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return prev_le;
            }
            if count == prev_count {
                return le;
            }
            return prev_le + (le - prev_le) * (rank - prev_count) / (count - prev_count);
        }
        prev_le = le;
        prev_count = count;
    }
    prev_le
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const BEFORE: &str = r#"# HELP apiserver_request_duration_seconds Response latency
# TYPE apiserver_request_duration_seconds histogram
apiserver_request_duration_seconds_sum{verb="POST",resource="pods"} 1.0
apiserver_request_duration_seconds_count{verb="POST",resource="pods"} 10
apiserver_request_duration_seconds_bucket{le="0.005",verb="POST",resource="pods"} 10
apiserver_request_duration_seconds_bucket{le="0.025",verb="POST",resource="pods"} 10
apiserver_request_duration_seconds_bucket{le="+Inf",verb="POST",resource="pods"} 10
"#;

    const AFTER: &str = r#"apiserver_request_duration_seconds_bucket{le="0.005",verb="POST",resource="pods"} 10
apiserver_request_duration_seconds_bucket{le="0.025",verb="POST",resource="pods"} 110
apiserver_request_duration_seconds_bucket{le="+Inf",verb="POST",resource="pods"} 110
apiserver_request_duration_seconds_bucket{le="0.005",verb="POST",resource="pods/binding"} 50
apiserver_request_duration_seconds_bucket{le="0.025",verb="POST",resource="pods/binding"} 100
apiserver_request_duration_seconds_bucket{le="+Inf",verb="POST",resource="pods/binding"} 100
apiserver_request_duration_seconds_bucket{le="0.005",verb="WATCH",resource="pods"} 3
apiserver_request_duration_seconds_bucket{le="+Inf",verb="WATCH",resource="pods"} 3
apiserver_request_duration_seconds_bucket{le="0.005",verb="GET",resource="nodes"} 0
apiserver_request_duration_seconds_bucket{le="1",verb="GET",resource="nodes"} 0
apiserver_request_duration_seconds_bucket{le="+Inf",verb="GET",resource="nodes"} 4
"#;

    #[test]
    fn quantiles_interpolate_like_prometheus() {
        let b = vec![(0.1, 50.0), (0.2, 100.0), (f64::INFINITY, 100.0)];
        assert!((quantile(0.5, &b) - 0.1).abs() < 1e-9);
        assert!((quantile(0.99, &b) - 0.198).abs() < 1e-9);
        // In +Inf: the largest finite bound.
        assert_eq!(quantile(0.99, &vec![(1.0, 0.0), (f64::INFINITY, 4.0)]), 1.0);
        assert_eq!(quantile(0.99, &Vec::new()), 0.0);
    }

    #[test]
    fn the_run_is_the_difference_per_verb_without_watches() {
        let run = Histograms::parse(AFTER).since(&Histograms::parse(BEFORE));
        let verbs = run.by_verb();
        let names: Vec<&str> = verbs.iter().map(|v| v.verb.as_str()).collect();
        assert_eq!(names, ["GET", "POST"]);
        let post = &verbs[1];
        // 100 new pod creates in (5, 25] ms and 100 bindings, half <= 5 ms.
        assert_eq!(post.requests, 200);
        assert!((post.p99_ms - (5.0 + 20.0 * 148.0 / 150.0)).abs() < 1e-6, "{post:?}");
        // Pods: 24.8 ms; bindings (half in the first bucket): 24.6 ms.
        assert_eq!(post.worst_resource, "pods");
        assert!((post.worst_p99_ms - (5.0 + 20.0 * 0.99)).abs() < 1e-6, "{post:?}");
        assert_eq!(verbs[0].p99_ms, 1000.0);
    }

    #[test]
    fn labels_are_found_in_any_order() {
        assert_eq!(label(r#"le="0.5",verb="GET""#, "verb"), Some("GET"));
        assert_eq!(label(r#"verb="GET",le="+Inf""#, "le"), Some("+Inf"));
        assert_eq!(label(r#"verb="GET""#, "resource"), None);
    }
}
