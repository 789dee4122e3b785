//! `hack/local-up.sh --simulated-nodes 3`, as a user runs it, against the
//! debug binaries the test build made (`RKUBE_BIN_DIR`): the control plane
//! and three simulated nodes come up on free ports and a temporary data
//! directory, kubectl with the printed kubeconfig sees three Ready nodes
//! and runs a Deployment whose pods get IPs, then `--down` stops every
//! process and `--clean` removes the data. A failing test still runs
//! `--clean` (on drop), which stops whatever the pid files name.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use rkube_e2e::cluster::{KUBECTL_1_31, free_port, target_dir};

const WAIT: Duration = Duration::from_secs(90);

/// One local cluster: the script's environment; cleaned up on drop.
struct LocalUp {
    _dir: tempfile::TempDir,
    data: PathBuf,
    env: Vec<(&'static str, String)>,
}

impl LocalUp {
    fn new() -> LocalUp {
        let bins = target_dir().unwrap();
        for b in [
            "rkube-apiserver",
            "rkube-controllers",
            "rkube-scheduler",
            "rkube-simnodes",
        ] {
            assert!(
                bins.join(b).exists(),
                "{} is missing: build the binaries first (`cargo build --workspace --bins`)",
                bins.join(b).display()
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("cluster");
        let env = vec![
            ("RKUBE_BIN_DIR", bins.display().to_string()),
            ("RKUBE_DATA_DIR", data.display().to_string()),
            ("RKUBE_PORT", free_port().unwrap().to_string()),
            ("RKUBE_CONTROLLERS_PORT", free_port().unwrap().to_string()),
            ("RKUBE_SCHEDULER_PORT", free_port().unwrap().to_string()),
        ];
        LocalUp { _dir: dir, data, env }
    }

    fn script(&self, args: &[&str]) -> Output {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        Command::new("bash")
            .arg(repo.join("hack/local-up.sh"))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap()
    }

    /// The pids of the components still running, from their pid files.
    fn running(&self) -> Vec<(String, u32)> {
        ["apiserver", "controllers", "scheduler", "simnodes"]
            .iter()
            .filter_map(|c| {
                let pid: u32 = std::fs::read_to_string(self.data.join(format!("{c}.pid")))
                    .ok()?
                    .trim()
                    .parse()
                    .ok()?;
                alive(pid).then(|| (c.to_string(), pid))
            })
            .collect()
    }

    fn logs(&self) -> String {
        ["apiserver", "controllers", "scheduler", "simnodes"]
            .iter()
            .map(|c| {
                let log = std::fs::read_to_string(self.data.join(format!("{c}.log"))).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                format!("--- {c}.log (last lines, newest first)\n{}", tail.join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for LocalUp {
    fn drop(&mut self) {
        let _ = self.script(&["--clean"]);
    }
}

/// True while the process exists and is not a zombie (the script's
/// children are orphans, reaped by whoever adopts them).
fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, None | Some('Z' | 'X'))
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Polls `f` every 500 ms until it returns `Some`, or fails with `what`.
fn wait_for<T>(what: &str, up: &LocalUp, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}\n{}", up.logs());
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn local_up_with_simulated_nodes_runs_a_deployment() {
    let up = LocalUp::new();
    let out = up.script(&["--simulated-nodes", "3"]);
    assert!(out.status.success(), "{}\n{}", text(&out), up.logs());
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let kubeconfig = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("export KUBECONFIG="))
        .unwrap_or_else(|| panic!("no KUBECONFIG line in {stdout}"))
        .to_string();
    assert_eq!(Path::new(&kubeconfig), up.data.join("kubeconfig"));
    assert_eq!(up.running().len(), 4, "{:?}", up.running());

    let kubectl_bin = std::env::var("RKUBE_E2E_KUBECTL").unwrap_or_else(|_| KUBECTL_1_31.to_string());
    let kubectl = |args: &[&str]| -> Output {
        Command::new(&kubectl_bin)
            .args(args)
            .env("KUBECONFIG", &kubeconfig)
            .output()
            .unwrap()
    };
    let ok = |args: &[&str]| -> String {
        let out = kubectl(args);
        assert!(out.status.success(), "kubectl {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    // Three simulated nodes, Ready.
    let ready = r#"{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}"#;
    let nodes = wait_for("three Ready nodes", &up, || {
        let out = kubectl(&["get", "nodes", "-o", &format!("jsonpath={ready}")]);
        let listed = String::from_utf8_lossy(&out.stdout).into_owned();
        let lines: Vec<String> = listed.lines().map(str::to_string).collect();
        (lines.len() == 3 && lines.iter().all(|l| l.ends_with("=True"))).then_some(lines)
    });
    assert_eq!(nodes, ["sim-node-0=True", "sim-node-1=True", "sim-node-2=True"]);

    // A Deployment's pods are scheduled onto them, run and get IPs.
    let created = ok(&[
        "create",
        "deployment",
        "web",
        "--image=registry.k8s.io/pause:3.10",
        "--replicas=2",
    ]);
    assert_eq!(created.trim(), "deployment.apps/web created");
    let pods = r#"{range .items[*]}{.status.phase} {.status.podIP} {.spec.nodeName}{"\n"}{end}"#;
    let running = wait_for("the Deployment's pods to run", &up, || {
        let out = kubectl(&["get", "pods", "-l", "app=web", "-o", &format!("jsonpath={pods}")]);
        let listed = String::from_utf8_lossy(&out.stdout).into_owned();
        let lines: Vec<String> = listed.lines().map(str::to_string).collect();
        (lines.len() == 2 && lines.iter().all(|l| l.starts_with("Running 10.64."))).then_some(lines)
    });
    for line in &running {
        let node = line.split(' ').nth(2).unwrap();
        assert!(node.starts_with("sim-node-"), "{running:?}");
    }
    assert_ne!(
        running[0].split(' ').nth(1),
        running[1].split(' ').nth(1),
        "{running:?}"
    );

    // --down stops every component; --clean removes the data.
    let pids = up.running();
    let down = up.script(&["--down"]);
    assert!(down.status.success(), "{}", text(&down));
    for (name, pid) in pids {
        assert!(!alive(pid), "{name} (pid {pid}) still runs");
    }
    assert!(up.data.join("kubeconfig").exists(), "--down keeps the data");
    let clean = up.script(&["--clean"]);
    assert!(clean.status.success(), "{}", text(&clean));
    assert!(!up.data.exists(), "--clean removes {}", up.data.display());
}
