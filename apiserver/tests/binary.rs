//! The real `rkube-apiserver` binary, driven by real clients (curl, kubectl)
//! on the embedded store and on a real etcd.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rkube_storage::testing::etcd_harness::EtcdCluster;

const TOKEN: &str = "test-admin-token";

/// A running apiserver process, killed on drop.
struct Server {
    child: Child,
    port: u16,
    data: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Server {
    fn start(data: &Path, extra: &[&str]) -> Server {
        std::fs::create_dir_all(data).unwrap();
        std::fs::write(
            data.join("tokens.csv"),
            format!("{TOKEN},admin,admin,\"system:masters\"\n"),
        )
        .unwrap();
        let port = free_port();
        let log = std::fs::File::create(data.join("apiserver.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_rkube-apiserver"))
            .arg("--data-dir")
            .arg(data)
            .args(["--secure-port", &port.to_string()])
            .arg("--token-auth-file")
            .arg(data.join("tokens.csv"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let server = Server {
            child,
            port,
            data: data.to_path_buf(),
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(out) = self.curl(&["-f", "/readyz"])
                && out.status.success()
            {
                return;
            }
            assert!(Instant::now() < deadline, "not ready; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.data.join("apiserver.log")).unwrap_or_default()
    }

    /// curl against the server, trusting the generated CA; the last argument is the path.
    fn curl(&self, args: &[&str]) -> std::io::Result<Output> {
        let (path, flags) = args.split_last().unwrap();
        Command::new("curl")
            .args(["-sS", "--max-time", "10", "--cacert"])
            .arg(self.data.join("pki/ca.crt"))
            .args(flags)
            .arg(format!("https://localhost:{}{}", self.port, path))
            .output()
    }

    fn get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let auth = token.map(|t| format!("Authorization: Bearer {t}"));
        let mut args = vec!["-w", "\n%{http_code}"];
        if let Some(a) = &auth {
            args.extend(["-H", a.as_str()]);
        }
        args.push(path);
        let out = self.curl(&args).unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.parse().unwrap(), body.to_string())
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .arg(format!("--server=https://localhost:{}", self.port))
            .arg(format!(
                "--certificate-authority={}",
                self.data.join("pki/ca.crt").display()
            ))
            .arg(format!("--token={TOKEN}"))
            .args(args)
            .output()
            .unwrap()
    }

    /// SIGTERM, and the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn check_endpoints(s: &Server) {
    let (code, body) = s.get("/version", None);
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((v["major"].as_str(), v["minor"].as_str()), (Some("1"), Some("36")));
    assert_eq!(v["gitVersion"].as_str(), Some("v1.36.0-rkube"));

    let (code, body) = s.get("/readyz?verbose", Some(TOKEN));
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("[+]etcd ok") && body.trim_end().ends_with("readyz check passed"),
        "{body}"
    );
    assert_eq!(s.get("/livez", None), (200, "ok".to_string()));
    assert_eq!(s.get("/healthz/etcd", Some(TOKEN)), (200, "ok".to_string()));
    // As upstream: system:public-info-viewer covers /healthz but not its checks.
    assert_eq!(s.get("/healthz/etcd", None).0, 403);

    let (code, body) = s.get("/version", Some("wrong-token"));
    assert_eq!(code, 401);
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (
            status["kind"].as_str(),
            status["reason"].as_str(),
            status["code"].as_u64()
        ),
        (Some("Status"), Some("Unauthorized"), Some(401))
    );

    let (code, body) = s.get("/no/such/path", Some(TOKEN));
    assert_eq!(code, 404);
    assert!(body.contains("\"reason\":\"NotFound\""), "{body}");

    let (code, body) = s.get("/metrics", Some(TOKEN));
    assert_eq!(code, 200);
    assert!(
        body.contains("apiserver_request_total{verb=\"GET\",resource=\"\",code=\"401\"} 1"),
        "{body}"
    );
    assert!(body.contains("process_resident_memory_bytes"), "{body}");

    let out = s.kubectl(&["version"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Server Version: v1.36.0-rkube"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn serves_on_the_embedded_store_and_restarts_with_the_same_ca() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    check_endpoints(&s);
    let ca = std::fs::read(dir.path().join("pki/ca.crt")).unwrap();
    assert!(s.terminate().success(), "graceful shutdown exits 0");

    let s = Server::start(dir.path(), &[]);
    assert_eq!(
        std::fs::read(dir.path().join("pki/ca.crt")).unwrap(),
        ca,
        "the CA survives restarts"
    );
    check_endpoints(&s);
}

#[test]
fn serves_on_etcd_and_reports_it_unready_when_etcd_dies() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut etcd = rt.block_on(EtcdCluster::start(1)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let servers = etcd.client_urls().join(",");
    let s = Server::start(dir.path(), &["--storage-backend", "etcd", "--etcd-servers", &servers]);
    check_endpoints(&s);
    etcd.kill(0);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, body) = s.get("/readyz?verbose", None);
        if code == 500 {
            assert!(body.contains("[-]etcd failed: reason withheld"), "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "still ready after etcd died: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn bad_flags_fail_with_a_clear_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_rkube-apiserver"))
        .args(["--storage-backend", "sqlite"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown storage backend \"sqlite\""), "{err}");
}
