//! The server's resident memory, when it runs on this machine: `VmRSS` and
//! `VmHWM` from `/proc/PID/status`, sampled in the background so that each
//! scenario can report its peak.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;

/// How often the background sampler reads `/proc/PID/status`.
const SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// One reading, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// Resident set size now.
    pub rss_kib: u64,
    /// Peak resident set size over the process's life.
    pub hwm_kib: u64,
}

/// Parses `VmRSS` and `VmHWM` out of `/proc/PID/status` text.
pub fn parse_status(text: &str) -> Option<Memory> {
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        line[name.len()..].split_whitespace().next()?.parse().ok()
    };
    Some(Memory {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
    })
}

/// Reads the memory of process `pid`.
pub fn read(pid: u32) -> Option<Memory> {
    parse_status(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// KiB to MiB.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Samples a process's VmRSS and keeps the peak since the last
/// [`RssMonitor::take_peak`]. Stops when dropped.
#[derive(Debug)]
pub struct RssMonitor {
    pid: u32,
    peak_kib: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl RssMonitor {
    /// Starts sampling `pid`; `None` if it cannot be read.
    pub fn start(pid: u32) -> Option<RssMonitor> {
        let first = read(pid)?;
        let peak_kib = Arc::new(AtomicU64::new(first.rss_kib));
        let peak = peak_kib.clone();
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(SAMPLE_INTERVAL);
            loop {
                ticker.tick().await;
                match read(pid) {
                    Some(m) => {
                        peak.fetch_max(m.rss_kib, Ordering::Relaxed);
                    }
                    None => return,
                }
            }
        });
        Some(RssMonitor { pid, peak_kib, task })
    }

    /// The memory now.
    pub fn now(&self) -> Option<Memory> {
        read(self.pid)
    }

    /// The highest VmRSS seen since the last call (or the start), in KiB;
    /// the next interval starts from the current value.
    pub fn take_peak(&self) -> u64 {
        let current = read(self.pid).map(|m| m.rss_kib).unwrap_or(0);
        self.peak_kib.swap(current, Ordering::Relaxed).max(current)
    }
}

impl Drop for RssMonitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn parses_proc_status() {
        let text =
            "Name:\trkube-apiserver\nVmPeak:\t  900000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\nThreads:\t4\n";
        assert_eq!(
            parse_status(text),
            Some(Memory {
                rss_kib: 40960,
                hwm_kib: 51200
            })
        );
        assert_eq!(parse_status("Name:\tx\n"), None);
        assert_eq!(mib(40960), 40.0);
    }

    #[tokio::test]
    async fn reads_this_process() {
        let m = read(std::process::id()).expect("own /proc/self/status");
        assert!(m.rss_kib > 0 && m.hwm_kib >= m.rss_kib, "{m:?}");
        let monitor = RssMonitor::start(std::process::id()).unwrap();
        assert!(monitor.take_peak() > 0);
        assert!(RssMonitor::start(u32::MAX).is_none());
    }
}
