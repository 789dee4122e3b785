//! CPU and memory of the cluster's processes over a benchmark run, shared
//! by `bench-controllers` and `bench-scale`: each gets `--component
//! NAME=PID` per process (the apiserver, the controller manager, the
//! scheduler, the simulated nodes), reads their CPU time
//! (`/proc/PID/stat` utime + stime) when the run starts and when it ends,
//! and reports CPU seconds, average cores and CPU milliseconds per pod
//! over that window, with resident memory at the end and its peak
//! (VmHWM, over the process's life).
//!
//! CPU ms per pod depends little on what else the machine runs (unlike
//! latencies), so it is the figure to compare across runs on a shared
//! machine. Start-up (node registration, informer sync) is outside the
//! window.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::load::{cpu, rss};

/// One process to measure, from `NAME=PID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub name: String,
    pub pid: u32,
}

/// Parses `NAME=PID` (the `--component` flag).
pub fn parse_component(s: &str) -> Result<Component, String> {
    let (name, pid) = s.rsplit_once('=').ok_or_else(|| format!("{s:?}: want NAME=PID"))?;
    let pid = pid.trim().parse().map_err(|e| format!("{s:?}: pid: {e}"))?;
    if name.trim().is_empty() {
        return Err(format!("{s:?}: empty name"));
    }
    Ok(Component {
        name: name.trim().to_string(),
        pid,
    })
}

fn cpu_secs(pid: u32) -> Option<f64> {
    cpu::parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// What one process used over the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComponentUsage {
    pub name: String,
    /// CPU seconds over the run (None if its `/proc` entry was unreadable).
    pub cpu_secs: Option<f64>,
    /// Average cores busy over the run.
    pub cores: Option<f64>,
    /// CPU milliseconds per pod of the run.
    pub cpu_ms_per_pod: Option<f64>,
    pub rss_mib: Option<f64>,
    pub peak_rss_mib: Option<f64>,
}

/// CPU times of every component at the start of a run.
#[derive(Debug, Clone)]
pub struct ComponentClock {
    start: Vec<(Component, Option<f64>)>,
    wall: Instant,
}

impl ComponentClock {
    pub fn start(components: &[Component]) -> ComponentClock {
        ComponentClock {
            start: components.iter().map(|c| (c.clone(), cpu_secs(c.pid))).collect(),
            wall: Instant::now(),
        }
    }

    /// Each component's usage since [`ComponentClock::start`], per pod
    /// of the `pods` the run made.
    pub fn stop(&self, pods: usize) -> Vec<ComponentUsage> {
        let wall = self.wall.elapsed().as_secs_f64();
        self.start
            .iter()
            .map(|(c, before)| {
                let used = match (before, cpu_secs(c.pid)) {
                    (Some(b), Some(a)) => Some(a - b),
                    _ => None,
                };
                let mem = rss::read(c.pid);
                usage(&c.name, used, wall, pods, mem)
            })
            .collect()
    }
}

fn usage(name: &str, cpu_secs: Option<f64>, wall: f64, pods: usize, mem: Option<rss::Memory>) -> ComponentUsage {
    ComponentUsage {
        name: name.to_string(),
        cpu_secs,
        cores: cpu_secs.filter(|_| wall > 0.0).map(|s| s / wall),
        cpu_ms_per_pod: cpu_secs.filter(|_| pods > 0).map(|s| s * 1000.0 / pods as f64),
        rss_mib: mem.map(|m| rss::mib(m.rss_kib)),
        peak_rss_mib: mem.map(|m| rss::mib(m.hwm_kib)),
    }
}

/// The usage table, one row per component.
pub fn markdown(usages: &[ComponentUsage]) -> String {
    let opt = |v: Option<f64>, prec: usize| v.map_or("-".to_string(), |v| format!("{v:.prec$}"));
    let mut out = String::from(
        "| process | CPU s in the run | cores | CPU ms per pod | RSS at the end MiB | peak (VmHWM) MiB |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for u in usages {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            u.name,
            opt(u.cpu_secs, 1),
            opt(u.cores, 2),
            opt(u.cpu_ms_per_pod, 2),
            opt(u.rss_mib, 0),
            opt(u.peak_rss_mib, 0),
        ));
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn components_are_parsed() {
        assert_eq!(
            parse_component("controller manager=42"),
            Ok(Component {
                name: "controller manager".into(),
                pid: 42
            })
        );
        assert!(parse_component("apiserver").is_err());
        assert!(parse_component("apiserver=x").is_err());
        assert!(parse_component("=12").is_err());
    }

    #[test]
    fn usage_is_per_pod_and_per_second() {
        let mem = rss::Memory {
            rss_kib: 2048,
            hwm_kib: 4096,
        };
        let u = usage("scheduler", Some(3.0), 10.0, 1000, Some(mem));
        assert_eq!(u.cores, Some(0.3));
        assert_eq!(u.cpu_ms_per_pod, Some(3.0));
        assert_eq!((u.rss_mib, u.peak_rss_mib), (Some(2.0), Some(4.0)));
        let none = usage("gone", None, 10.0, 0, None);
        assert_eq!((none.cores, none.cpu_ms_per_pod, none.rss_mib), (None, None, None));
        let md = markdown(&[u, none]);
        assert!(md.contains("| scheduler | 3.0 | 0.30 | 3.00 | 2 | 4 |"), "{md}");
        assert!(md.contains("| gone | - | - | - | - | - |"), "{md}");
    }

    #[test]
    fn this_process_is_measured() {
        let me = Component {
            name: "me".into(),
            pid: std::process::id(),
        };
        let clock = ComponentClock::start(&[me]);
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed().as_millis() < 30 {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        let u = clock.stop(10);
        assert!(u[0].cpu_secs.is_some() && u[0].peak_rss_mib.is_some(), "{u:?}");
    }
}
