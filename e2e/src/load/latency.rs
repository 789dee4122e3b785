//! Latencies (HDR histogram, microseconds) and errors of one measurement.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::client::OpError;

/// Distinct error messages kept per measurement (the rest are counted).
const MAX_ERROR_KINDS: usize = 8;

/// Largest latency recorded exactly (1 hour); longer ones are clamped.
const MAX_MICROS: u64 = 3_600_000_000;

/// Successful operations' latencies and failed operations' errors.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// Allocated at the first success (a recorder that only sees errors,
    /// or one of a thousand watchers' that sees nothing, costs nothing).
    latency: Option<Histogram<u64>>,
    /// Significant digits of `latency`.
    digits: u8,
    pub ok: u64,
    pub errors: u64,
    /// Error message (truncated) to how often it happened.
    error_kinds: BTreeMap<String, u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    /// 3 significant digits (~0.1 %, about 260 KiB once used).
    pub fn new() -> Recorder {
        Recorder::with_digits(3)
    }

    /// 2 significant digits (~1 %, about 33 KiB once used): for the
    /// thousands of per-watcher recorders, whose size otherwise costs
    /// memory and cache misses in the load generator.
    pub fn coarse() -> Recorder {
        Recorder::with_digits(2)
    }

    fn with_digits(digits: u8) -> Recorder {
        Recorder {
            latency: None,
            digits,
            ok: 0,
            errors: 0,
            error_kinds: BTreeMap::new(),
        }
    }

    fn histogram(&mut self) -> &mut Histogram<u64> {
        let digits = self.digits;
        // 1 µs to 1 hour with 2 or 3 digits: constant, valid bounds.
        self.latency
            .get_or_insert_with(|| Histogram::new_with_bounds(1, MAX_MICROS, digits).expect("valid histogram bounds"))
    }

    /// Records a success taking `elapsed`.
    pub fn success(&mut self, elapsed: Duration) {
        self.ok += 1;
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX).max(1);
        self.histogram().saturating_record(micros);
    }

    /// Records a failure.
    pub fn failure(&mut self, e: &OpError) {
        self.errors += 1;
        let mut kind: String = e.0.chars().take(160).collect();
        if !self.error_kinds.contains_key(&kind) && self.error_kinds.len() >= MAX_ERROR_KINDS {
            kind = "(other errors)".to_string();
        }
        *self.error_kinds.entry(kind).or_default() += 1;
    }

    /// Records `res`.
    pub fn record<T>(&mut self, res: &Result<T, OpError>, elapsed: Duration) {
        match res {
            Ok(_) => self.success(elapsed),
            Err(e) => self.failure(e),
        }
    }

    /// Adds another recorder's counts.
    pub fn merge(&mut self, other: &Recorder) {
        if let Some(h) = &other.latency {
            let _ = self.histogram().add(h);
        }
        self.ok += other.ok;
        self.errors += other.errors;
        for (kind, n) in &other.error_kinds {
            *self.error_kinds.entry(kind.clone()).or_default() += n;
        }
    }

    /// Quantiles of the successful operations' latency.
    pub fn summary(&self) -> LatencySummary {
        let Some(latency) = self.latency.as_ref().filter(|h| !h.is_empty()) else {
            return LatencySummary::default();
        };
        let ms = |us: u64| us as f64 / 1000.0;
        LatencySummary {
            p50_ms: ms(latency.value_at_quantile(0.50)),
            p99_ms: ms(latency.value_at_quantile(0.99)),
            max_ms: ms(latency.max()),
            mean_ms: latency.mean() / 1000.0,
        }
    }

    /// Error messages with their counts, most frequent first.
    pub fn error_kinds(&self) -> Vec<String> {
        let mut kinds: Vec<(&String, &u64)> = self.error_kinds.iter().collect();
        kinds.sort_by(|a, b| b.1.cmp(a.1));
        kinds.into_iter().map(|(k, n)| format!("{n}× {k}")).collect()
    }
}

/// p50/p99/max/mean in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn quantiles_and_merge() {
        let mut a = Recorder::new();
        for ms in 1..=100 {
            a.success(Duration::from_millis(ms));
        }
        let mut b = Recorder::new();
        b.failure(&OpError("500 InternalError: boom".into()));
        b.failure(&OpError("500 InternalError: boom".into()));
        a.merge(&b);
        let s = a.summary();
        assert!((s.p50_ms - 50.0).abs() < 0.1, "{s:?}");
        assert!((s.p99_ms - 99.0).abs() < 0.1, "{s:?}");
        assert!((s.max_ms - 100.0).abs() < 0.1, "{s:?}");
        assert_eq!((a.ok, a.errors), (100, 2));
        assert_eq!(a.error_kinds(), ["2× 500 InternalError: boom"]);
    }

    #[test]
    fn error_kinds_are_bounded() {
        let mut r = Recorder::new();
        for i in 0..20 {
            r.failure(&OpError(format!("error {i}")));
        }
        assert_eq!(r.errors, 20);
        assert_eq!(r.error_kinds().len(), MAX_ERROR_KINDS + 1);
        assert_eq!(r.error_kinds()[0], "12× (other errors)");
    }

    #[test]
    fn coarse_merges_into_fine() {
        let mut c = Recorder::coarse();
        c.success(Duration::from_millis(20));
        let mut f = Recorder::new();
        f.merge(&c);
        assert!((f.summary().p50_ms - 20.0).abs() < 0.2, "{:?}", f.summary());
    }

    #[test]
    fn empty() {
        assert_eq!(Recorder::new().summary(), LatencySummary::default());
    }
}
