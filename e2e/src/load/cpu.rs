//! CPU time of the server and of kube-load itself over a measurement, from
//! `/proc/PID/stat` (utime + stime): on a small machine both share the
//! cores, and this tells how much each used.

use std::time::Instant;

use serde::{Deserialize, Serialize};

/// Clock ticks per second of `/proc/PID/stat` times (`USER_HZ`, 100 on
/// every Linux architecture rkube builds for).
const USER_HZ: f64 = 100.0;

/// utime + stime in seconds, from `/proc/PID/stat` text.
pub fn parse_stat(text: &str) -> Option<f64> {
    // The command name (field 2) is in parentheses and may hold spaces;
    // fields after it start with the state (field 3).
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

fn cpu_secs(path: &str) -> Option<f64> {
    parse_stat(&std::fs::read_to_string(path).ok()?)
}

/// Average cores busy over a measurement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuUsage {
    /// The server's (with `--server-pid`).
    pub server_cores: Option<f64>,
    /// kube-load's own.
    pub load_cores: Option<f64>,
}

/// CPU times at the start of a measurement.
#[derive(Debug, Clone, Copy)]
pub struct CpuClock {
    server_pid: Option<u32>,
    server: Option<f64>,
    own: Option<f64>,
    wall: Instant,
}

impl CpuClock {
    pub fn start(server_pid: Option<u32>) -> CpuClock {
        CpuClock {
            server_pid,
            server: server_pid.and_then(|pid| cpu_secs(&format!("/proc/{pid}/stat"))),
            own: cpu_secs("/proc/self/stat"),
            wall: Instant::now(),
        }
    }

    /// Average cores used since [`CpuClock::start`].
    pub fn stop(&self) -> CpuUsage {
        let wall = self.wall.elapsed().as_secs_f64();
        let cores = |before: Option<f64>, after: Option<f64>| match (before, after) {
            (Some(b), Some(a)) if wall > 0.0 => Some((a - b) / wall),
            _ => None,
        };
        CpuUsage {
            server_cores: cores(
                self.server,
                self.server_pid.and_then(|pid| cpu_secs(&format!("/proc/{pid}/stat"))),
            ),
            load_cores: cores(self.own, cpu_secs("/proc/self/stat")),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn parses_stat() {
        let text = "4242 (rkube apiserver) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 8 0 100 1000000 5000 18446744073709551615";
        assert_eq!(parse_stat(text), Some(3.0));
        assert_eq!(parse_stat("4242 (x) S 1"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn measures_this_process() {
        let clock = CpuClock::start(Some(std::process::id()));
        let mut x = 0u64;
        let t = Instant::now();
        while t.elapsed().as_millis() < 50 {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        let usage = clock.stop();
        assert!(usage.load_cores.is_some() && usage.server_cores.is_some(), "{usage:?}");
        assert!(CpuClock::start(None).stop().server_cores.is_none());
    }
}
