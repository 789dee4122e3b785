//! Facts about the machine and the build, for the report header, so a
//! number in `docs/benchmarks.md` always says where it came from.

use std::path::Path;
use std::process::Command;

use serde::Serialize;

/// The etcd binary the harness runs.
const ETCD_BINARY: &str = "/usr/bin/etcd";

/// Where and on what the benchmark ran. A fact that cannot be read is
/// `"unknown"` rather than an error: it must not stop the measurement.
#[derive(Debug, Clone, Serialize)]
pub struct MachineFacts {
    /// UTC date and time of the run.
    pub date: String,
    pub cpu: String,
    /// CPUs this process may use.
    pub nproc: usize,
    pub memory: String,
    /// 1, 5 and 15 minute load averages when the run started: other work
    /// on the machine skews the numbers.
    pub load_average: String,
    pub kernel: String,
    pub os: String,
    /// `git describe`-like commit of the rkube tree, `-dirty` if modified.
    pub rkube_commit: String,
    /// etcd's version and binary, from `etcd --version`.
    pub etcd_version: String,
    /// The embedded backend's scratch directory.
    pub data_dir: String,
    /// Filesystem type and device of `data_dir` (from `df`).
    pub data_filesystem: String,
}

impl MachineFacts {
    /// Reads the facts; `data_dir` is where the embedded backend writes.
    pub async fn collect(data_dir: &Path) -> MachineFacts {
        let data_dir = data_dir.to_path_buf();
        tokio::task::spawn_blocking(move || MachineFacts::collect_blocking(&data_dir))
            .await
            .unwrap_or_else(|_| MachineFacts::unknown())
    }

    fn collect_blocking(data_dir: &Path) -> MachineFacts {
        let commit = command_line("git", &["rev-parse", "--short=12", "HEAD"]);
        let dirty = command_output("git", &["status", "--porcelain", "--untracked-files=no"])
            .is_some_and(|s| !s.trim().is_empty());
        MachineFacts {
            date: command_line("date", &["-u", "+%Y-%m-%d %H:%M:%S UTC"]),
            cpu: proc_field("/proc/cpuinfo", "model name").unwrap_or_else(unknown),
            nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory: proc_field("/proc/meminfo", "MemTotal")
                .and_then(|v| v.trim_end_matches("kB").trim().parse::<u64>().ok())
                .map_or_else(unknown, |kib| format!("{:.1} GiB", kib as f64 / (1024.0 * 1024.0))),
            load_average: std::fs::read_to_string("/proc/loadavg").map_or_else(
                |_| unknown(),
                |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
            ),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or_else(|_| unknown(), |s| s.trim().to_string()),
            os: os_release().unwrap_or_else(unknown),
            rkube_commit: if dirty { format!("{commit}-dirty") } else { commit },
            etcd_version: etcd_version(),
            data_dir: data_dir.display().to_string(),
            data_filesystem: filesystem_of(data_dir).unwrap_or_else(unknown),
        }
    }

    fn unknown() -> MachineFacts {
        MachineFacts {
            date: unknown(),
            cpu: unknown(),
            nproc: 0,
            memory: unknown(),
            load_average: unknown(),
            kernel: unknown(),
            os: unknown(),
            rkube_commit: unknown(),
            etcd_version: unknown(),
            data_dir: unknown(),
            data_filesystem: unknown(),
        }
    }
}

fn unknown() -> String {
    "unknown".to_string()
}

/// Stdout of a command that succeeded.
fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The first line of a command's stdout, or `unknown`.
fn command_line(program: &str, args: &[&str]) -> String {
    command_output(program, args)
        .and_then(|s| s.lines().next().map(|l| l.trim().to_string()))
        .filter(|l| !l.is_empty())
        .unwrap_or_else(unknown)
}

/// `3.4.23 (/usr/bin/etcd)`, from the first line of `etcd --version`.
fn etcd_version() -> String {
    let line = command_line(ETCD_BINARY, &["--version"]);
    let version = line.strip_prefix("etcd Version:").map_or(line.as_str(), str::trim);
    format!("{version} ({ETCD_BINARY})")
}

/// The value of the first `name: value` line of a `/proc` file.
fn proc_field(path: &str, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == name).then(|| v.trim().to_string())
    })
}

fn os_release() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
}

/// `ext4 on /dev/vda` for the filesystem holding `path`.
fn filesystem_of(path: &Path) -> Option<String> {
    let out = command_output("df", &["--output=fstype,source", &path.display().to_string()])?;
    let line = out.lines().nth(1)?;
    let mut fields = line.split_whitespace();
    let (fstype, source) = (fields.next()?, fields.next()?);
    Some(format!("{fstype} on {source}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn facts_are_filled_in() {
        let dir = std::env::temp_dir();
        let facts = MachineFacts::collect(&dir).await;
        assert!(facts.nproc > 0);
        assert_ne!(facts.kernel, "unknown");
        assert_ne!(facts.memory, "unknown");
        assert_ne!(facts.data_filesystem, "unknown");
    }
}
