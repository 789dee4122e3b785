//! A real rkube control plane for whole-system tests: the `rkube-apiserver`
//! binary on a temporary data directory, on the embedded store or on a real
//! etcd, with a kubeconfig for real kubectl binaries.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rkube_storage::testing::etcd_harness::EtcdCluster;

/// The admin's bearer token in test clusters.
pub const ADMIN_TOKEN: &str = "e2e-admin-token";

/// kubectl 1.31: sends JSON bodies for every command (1.32+ sends protobuf
/// for some, which needs the protobuf codec).
pub const KUBECTL_1_31: &str = "/usr/lib/google-cloud-sdk/bin/kubectl.1.31";

/// Which storage backend the apiserver runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Etcd,
}

/// A running control plane; stopped on drop.
pub struct TestCluster {
    pub dir: tempfile::TempDir,
    pub port: u16,
    backend: Backend,
    etcd: Option<EtcdCluster>,
    apiserver: Option<Child>,
    apiserver_args: Vec<String>,
    kubectl: PathBuf,
}

/// Admission plugins off in test clusters by default, as in upstream's
/// integration tests: their controllers (service accounts, node lifecycle)
/// do not run in most tests.
pub const TEST_DISABLED_ADMISSION: &str = "--disable-admission-plugins=ServiceAccount,TaintNodesByCondition";

/// The workspace's build directory (`target/debug`), found from the test
/// executable's location (`target/debug/deps/<test>`).
pub fn target_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let deps = exe.parent().context("test executable has no directory")?;
    let dir = if deps.ends_with("deps") {
        deps.parent().context("no target dir")?
    } else {
        deps
    };
    Ok(dir.to_path_buf())
}

/// A loopback port free at the time of asking (the kernel picks it), for a
/// server a test starts.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl TestCluster {
    /// Starts etcd (for [`Backend::Etcd`]) and the apiserver, and waits
    /// until `/readyz` answers.
    pub async fn start(backend: Backend) -> Result<TestCluster> {
        Self::start_with(backend, &[TEST_DISABLED_ADMISSION]).await
    }

    /// [`Self::start`] with exactly these extra apiserver flags (none: the
    /// apiserver's defaults, every default admission plugin on).
    pub async fn start_with(backend: Backend, apiserver_args: &[&str]) -> Result<TestCluster> {
        let dir = tempfile::tempdir()?;
        std::fs::write(
            dir.path().join("tokens.csv"),
            format!("{ADMIN_TOKEN},admin,admin,\"system:masters\"\n"),
        )?;
        let etcd = match backend {
            Backend::Embedded => None,
            Backend::Etcd => Some(EtcdCluster::start(1).await?),
        };
        let kubectl = std::env::var_os("RKUBE_E2E_KUBECTL")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(KUBECTL_1_31));
        let mut cluster = TestCluster {
            dir,
            port: free_port()?,
            backend,
            etcd,
            apiserver: None,
            apiserver_args: apiserver_args.iter().map(|a| a.to_string()).collect(),
            kubectl,
        };
        cluster.start_apiserver()?;
        cluster.write_kubeconfig()?;
        Ok(cluster)
    }

    fn start_apiserver(&mut self) -> Result<()> {
        let bin = target_dir()?.join("rkube-apiserver");
        if !bin.exists() {
            bail!(
                "{} is missing: build it with `cargo build -p rkube-apiserver` (cargo nextest run --workspace does)",
                bin.display()
            );
        }
        let data = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data.join("apiserver.log"))?;
        let mut cmd = Command::new(&bin);
        cmd.arg("--data-dir")
            .arg(data)
            .args(["--secure-port", &self.port.to_string()])
            .arg("--token-auth-file")
            .arg(data.join("tokens.csv"))
            .args(&self.apiserver_args)
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(etcd) = &self.etcd {
            cmd.args([
                "--storage-backend",
                "etcd",
                "--etcd-servers",
                &etcd.client_urls().join(","),
            ]);
        }
        self.apiserver = Some(cmd.spawn().with_context(|| format!("starting {}", bin.display()))?);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = Command::new("curl")
                .args(["-sf", "--max-time", "2", "--cacert"])
                .arg(self.dir.path().join("pki/ca.crt"))
                .arg(format!("https://localhost:{}/readyz", self.port))
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if ok {
                return Ok(());
            }
            if let Some(child) = &mut self.apiserver
                && let Some(status) = child.try_wait()?
            {
                bail!("the apiserver exited with {status}; log:\n{}", self.log());
            }
            if Instant::now() > deadline {
                bail!("the apiserver did not become ready; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The apiserver's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("apiserver.log")).unwrap_or_default()
    }

    /// Client URLs of the cluster's etcd (empty on the embedded backend),
    /// for tests that read what is stored directly.
    pub fn etcd_client_urls(&self) -> Vec<String> {
        self.etcd.as_ref().map(|e| e.client_urls()).unwrap_or_default()
    }

    /// The backend this cluster runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Path of the admin kubeconfig.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    fn write_kubeconfig(&self) -> Result<()> {
        let ca = std::fs::read(self.dir.path().join("pki/ca.crt"))?;
        use base64::Engine;
        let ca = base64::engine::general_purpose::STANDARD.encode(ca);
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: rkube\n  cluster:\n    server: https://localhost:{}\n    certificate-authority-data: {ca}\nusers:\n- name: admin\n  user:\n    token: {ADMIN_TOKEN}\ncontexts:\n- name: rkube\n  context:\n    cluster: rkube\n    user: admin\ncurrent-context: rkube\n",
            self.port
        );
        std::fs::write(self.kubeconfig(), text)?;
        Ok(())
    }

    /// Stops the apiserver (SIGTERM, then waits) and starts it again on the
    /// same data.
    pub fn restart_apiserver(&mut self) -> Result<()> {
        if let Some(mut child) = self.apiserver.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while child.try_wait()?.is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.start_apiserver()
    }

    /// Uses another kubectl binary from now on.
    pub fn use_kubectl(&mut self, path: impl Into<PathBuf>) {
        self.kubectl = path.into();
    }

    /// Runs kubectl with the cluster's kubeconfig.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_with(args, None, &[])
    }

    /// Runs kubectl with optional stdin and extra environment.
    pub fn kubectl_with(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(&self.kubectl);
        cmd.arg(format!("--kubeconfig={}", self.kubeconfig().display()))
            .args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return Output {
                    status: std::os::unix::process::ExitStatusExt::from_raw(127 << 8),
                    stdout: Vec::new(),
                    stderr: format!("cannot run {}: {e}", self.kubectl.display()).into_bytes(),
                };
            }
        };
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            use std::io::Write;
            let _ = pipe.write_all(input.as_bytes());
        }
        child.wait_with_output().unwrap_or_else(|e| Output {
            status: std::os::unix::process::ExitStatusExt::from_raw(1 << 8),
            stdout: Vec::new(),
            stderr: e.to_string().into_bytes(),
        })
    }

    /// Runs kubectl and returns stdout, failing with both streams if it
    /// does not exit 0.
    pub fn ok(&self, args: &[&str]) -> Result<String> {
        let out = self.kubectl(args);
        if !out.status.success() {
            bail!(
                "kubectl {} failed ({}):\n{}{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs kubectl expecting failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> Result<String> {
        let out = self.kubectl(args);
        if out.status.success() {
            bail!(
                "kubectl {} succeeded but should have failed:\n{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout)
            );
        }
        Ok(String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if let Some(mut child) = self.apiserver.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
