//! The official Python client (`kubernetes` from PyPI) against rkube: it
//! lists and watches pods and creates a Deployment (`e2e/python/client_check.py`).
//! Uses `target/pyenv/bin/python3` when `hack/test.sh` made it, else
//! `python3`; skipped when neither can `import kubernetes`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use rkube_e2e::cluster::{Backend, TestCluster, target_dir};

fn python() -> Option<PathBuf> {
    let venv = target_dir().ok()?.parent()?.join("pyenv/bin/python3");
    [venv, PathBuf::from("python3")].into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import kubernetes"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[tokio::test]
async fn python_client_lists_watches_and_creates() {
    let Some(python) = python() else {
        eprintln!("skipping: no python3 with the `kubernetes` package (hack/test.sh installs it in target/pyenv)");
        return;
    };
    let c = TestCluster::start(Backend::Embedded).await.expect("cluster starts");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/client_check.py");
    let out = tokio::task::spawn_blocking({
        let kubeconfig = c.kubeconfig();
        move || Command::new(python).arg(script).arg(kubeconfig).output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}\napiserver log:\n{}", c.log());
    assert_eq!(stdout.trim(), "ok");
}
