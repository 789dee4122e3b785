//! Real etcd members for tests, e2e tests and benchmarks.
//!
//! [`EtcdCluster::start`] runs N etcd processes on free loopback ports, each
//! with its own data directory inside one temporary directory, and returns
//! once every member answers `/health` with `true`. Each member's output goes
//! to `etcd.log` in its directory, not to the test's stdout; start-up errors
//! quote the tail of that log. Dropping the cluster kills every member, reaps
//! it and removes the data.
//!
//! Writes keep fsync on: benchmarks compare durable writes.
//!
//! Every member runs under a small `/bin/sh` wrapper whose only job is to
//! SIGKILL etcd when the pipe from this process closes, so members do not
//! outlive a test process that is itself killed (e.g. by a test timeout).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where etcd is installed by Debian's `etcd-server` package.
const DEFAULT_ETCD_BIN: &str = "/usr/bin/etcd";
/// How long [`EtcdCluster::start`] waits for every member to be healthy.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How often start-up polls `/health`.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How many times start-up is tried again when a port picked as free was
/// taken by another process before etcd bound it.
const START_ATTEMPTS: usize = 3;
/// Large enough for the 1.5 MiB values of the conformance suite plus the
/// request around them.
const MAX_REQUEST_BYTES: u64 = 10 * 1024 * 1024;
/// Lines of a member's log quoted in start-up errors.
const LOG_TAIL_LINES: usize = 40;

/// Runs etcd, ending it with SIGKILL when stdin (a pipe from this process)
/// closes: on [`EtcdCluster::kill`], on drop, or when this process dies.
/// `$0` is the etcd binary and `$@` its flags.
const WRAPPER: &str = r#"exec 3<&0 0</dev/null
"$0" "$@" 3<&- &
etcd=$!
( while read -r _ <&3; do :; done; kill -9 "$etcd" 2>/dev/null ) &
watchdog=$!
exec 3<&-
wait "$etcd"
status=$?
kill "$watchdog" 2>/dev/null
exit "$status"
"#;

/// A running etcd cluster of one or more members, for tests.
pub struct EtcdCluster {
    members: Vec<Member>,
    /// Holds every member's directory; removed after the members are killed
    /// (fields drop after [`Drop::drop`] ran).
    _dir: TempDir,
}

impl std::fmt::Debug for EtcdCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdCluster")
            .field("client_urls", &self.client_urls())
            .field("dir", &self._dir.path())
            .finish()
    }
}

/// One etcd process.
struct Member {
    name: String,
    client_url: String,
    dir: PathBuf,
    /// `None` once the member was killed and reaped.
    process: Mutex<Option<Process>>,
}

/// The wrapper process of a member and the pipe that keeps etcd alive.
struct Process {
    child: Child,
    /// Closing it makes the wrapper SIGKILL etcd.
    lifeline: Option<ChildStdin>,
}

impl Member {
    fn log_path(&self) -> PathBuf {
        self.dir.join("etcd.log")
    }

    fn process(&self) -> MutexGuard<'_, Option<Process>> {
        // Only kill/is_running take the lock and neither can leave the
        // state half-changed, so a poisoned lock is still usable.
        self.process.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// SIGKILLs etcd and reaps the wrapper. Idempotent.
    fn kill(&self) {
        let Some(mut process) = self.process().take() else {
            return;
        };
        // Closing the pipe makes the wrapper SIGKILL etcd and exit once
        // etcd is reaped, so no pid is signalled after it was reused.
        drop(process.lifeline.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match process.child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                Ok(None) | Err(_) => break,
            }
        }
        tracing::warn!(member = %self.name, "etcd wrapper did not exit after its pipe closed; killing it");
        let _ = process.child.kill();
        let _ = process.child.wait();
    }

    /// `Some(status)` if the member exited, `None` while it runs.
    fn exit_status(&self) -> Option<String> {
        let mut guard = self.process();
        let Some(process) = guard.as_mut() else {
            return Some("killed".to_string());
        };
        match process.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown ({e})")),
        }
    }

    /// The last lines of the member's log.
    fn log_tail(&self) -> String {
        log_tail(&self.log_path(), LOG_TAIL_LINES)
    }
}

impl EtcdCluster {
    /// Starts a cluster of `members` etcd processes and waits until every
    /// one is healthy.
    ///
    /// The binary is `$ETCD_BIN`, else `/usr/bin/etcd`, else `etcd` on the
    /// `PATH`. Members use fast raft timing (50 ms heartbeats, 500 ms
    /// elections; 10/100 ms for a single member) and accept requests of up
    /// to 10 MiB.
    pub async fn start(members: usize) -> io::Result<EtcdCluster> {
        if members == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an etcd cluster needs at least one member",
            ));
        }
        let bin = find_etcd()?;
        let mut attempt = 1;
        loop {
            match start_once(&bin, members).await {
                Ok(cluster) => return Ok(cluster),
                Err(StartError::PortTaken(e)) if attempt < START_ATTEMPTS => {
                    tracing::debug!(attempt, error = %e, "etcd port was taken; retrying with new ports");
                    attempt += 1;
                }
                Err(StartError::PortTaken(e) | StartError::Other(e)) => return Err(e),
            }
        }
    }

    /// The client URL of every member (`http://127.0.0.1:PORT`), in member
    /// order, including members that were killed.
    pub fn client_urls(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// How many members the cluster was started with.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the cluster has no members (never true for a started cluster).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// SIGKILLs member `member` and waits (blocking, a few milliseconds)
    /// until it is reaped. Idempotent; an index out of range is ignored.
    pub fn kill(&mut self, member: usize) {
        match self.members.get(member) {
            Some(m) => {
                tracing::info!(member = %m.name, "killing etcd member");
                m.kill();
            }
            None => tracing::warn!(member, members = self.members.len(), "no such etcd member to kill"),
        }
    }

    /// Whether member `member` is still running (`false` once killed, after
    /// it exited on its own, or for an index out of range).
    pub fn is_running(&self, member: usize) -> bool {
        self.members.get(member).is_some_and(|m| m.exit_status().is_none())
    }

    /// The path of member `member`'s log file.
    pub fn log_path(&self, member: usize) -> Option<PathBuf> {
        self.members.get(member).map(Member::log_path)
    }

    /// The index of the current raft leader, asked of the running members
    /// through the maintenance status API.
    pub async fn leader(&self) -> io::Result<usize> {
        let mut errors = Vec::new();
        for (i, m) in self.members.iter().enumerate() {
            if m.exit_status().is_some() {
                continue;
            }
            match member_status(&m.client_url).await {
                Ok((id, leader)) if id == leader => return Ok(i),
                Ok(_) => {}
                Err(e) => errors.push(format!("{}: {e}", m.name)),
            }
        }
        Err(io::Error::other(format!(
            "no running etcd member reports itself as leader{}",
            if errors.is_empty() {
                String::new()
            } else {
                format!(" ({})", errors.join("; "))
            }
        )))
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for m in &self.members {
            m.kill();
        }
    }
}

/// Why one start-up attempt failed.
enum StartError {
    /// A member could not bind its port: worth trying again.
    PortTaken(io::Error),
    Other(io::Error),
}

impl From<io::Error> for StartError {
    fn from(e: io::Error) -> Self {
        StartError::Other(e)
    }
}

async fn start_once(bin: &Path, count: usize) -> Result<EtcdCluster, StartError> {
    let dir = tempfile::Builder::new().prefix("rkube-etcd-").tempdir()?;
    let ports = free_ports(2 * count)?;
    let names: Vec<String> = (0..count).map(|i| format!("m{i}")).collect();
    let peer_urls: Vec<String> = (0..count)
        .map(|i| format!("http://127.0.0.1:{}", ports[2 * i + 1]))
        .collect();
    let initial_cluster = names
        .iter()
        .zip(&peer_urls)
        .map(|(n, u)| format!("{n}={u}"))
        .collect::<Vec<_>>()
        .join(",");
    // A single member has no peers to wait for, so it can elect itself fast.
    let (heartbeat, election) = if count == 1 { (10, 100) } else { (50, 500) };
    let token = format!(
        "rkube-{}-{}",
        std::process::id(),
        dir.path().file_name().and_then(|n| n.to_str()).unwrap_or("cluster")
    );

    let mut members = Vec::with_capacity(count);
    for i in 0..count {
        let member_dir = dir.path().join(&names[i]);
        std::fs::create_dir_all(&member_dir)?;
        let client_url = format!("http://127.0.0.1:{}", ports[2 * i]);
        let log = File::create(member_dir.join("etcd.log"))?;
        let args: Vec<String> = vec![
            format!("--name={}", names[i]),
            format!("--data-dir={}", member_dir.join("data").display()),
            format!("--listen-client-urls={client_url}"),
            format!("--advertise-client-urls={client_url}"),
            format!("--listen-peer-urls={}", peer_urls[i]),
            format!("--initial-advertise-peer-urls={}", peer_urls[i]),
            format!("--initial-cluster={initial_cluster}"),
            "--initial-cluster-state=new".to_string(),
            format!("--initial-cluster-token={token}"),
            format!("--heartbeat-interval={heartbeat}"),
            format!("--election-timeout={election}"),
            format!("--max-request-bytes={MAX_REQUEST_BYTES}"),
            "--logger=zap".to_string(),
            "--log-outputs=stderr".to_string(),
        ];
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(WRAPPER)
            .arg(bin)
            .args(&args)
            .current_dir(&member_dir)
            .stdin(Stdio::piped())
            .stdout(log.try_clone()?)
            .stderr(log)
            // etcd reads ETCD_* variables as flags and warns about unknown ones.
            .env_remove("ETCD_BIN");
        if let Some(arch) = unsupported_arch() {
            cmd.env("ETCD_UNSUPPORTED_ARCH", arch);
        }
        let mut child = cmd.spawn()?;
        let lifeline = child.stdin.take();
        members.push(Member {
            name: names[i].clone(),
            client_url,
            dir: member_dir,
            process: Mutex::new(Some(Process { child, lifeline })),
        });
    }
    // From here on, dropping the cluster kills whatever was started.
    let cluster = EtcdCluster { members, _dir: dir };
    wait_healthy(&cluster).await?;
    tracing::debug!(members = count, urls = ?cluster.client_urls(), "etcd cluster is healthy");
    Ok(cluster)
}

/// Waits until every member answers `/health` with `true`.
async fn wait_healthy(cluster: &EtcdCluster) -> Result<(), StartError> {
    let started = Instant::now();
    let mut healthy = vec![false; cluster.members.len()];
    loop {
        for (i, m) in cluster.members.iter().enumerate() {
            if healthy[i] {
                continue;
            }
            if let Some(status) = m.exit_status() {
                let tail = m.log_tail();
                let e = io::Error::other(format!(
                    "etcd member {} ({}) exited during start-up with {status}; log tail:\n{tail}",
                    m.name, m.client_url
                ));
                return Err(if tail.contains("address already in use") {
                    StartError::PortTaken(e)
                } else {
                    StartError::Other(e)
                });
            }
            healthy[i] = is_healthy(&m.client_url).await;
        }
        if healthy.iter().all(|h| *h) {
            return Ok(());
        }
        if started.elapsed() > START_TIMEOUT {
            let report: Vec<String> = cluster
                .members
                .iter()
                .zip(&healthy)
                .filter(|(_, h)| !**h)
                .map(|(m, _)| {
                    format!(
                        "member {} ({}) is not healthy; log {}:\n{}",
                        m.name,
                        m.client_url,
                        m.log_path().display(),
                        m.log_tail()
                    )
                })
                .collect();
            return Err(StartError::Other(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "etcd cluster not healthy after {START_TIMEOUT:?}:\n{}",
                    report.join("\n")
                ),
            )));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Whether `GET {client_url}/health` answers `{"health":"true"}`.
async fn is_healthy(client_url: &str) -> bool {
    let Some(addr) = client_url.strip_prefix("http://") else {
        return false;
    };
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
            .await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        io::Result::Ok(response)
    };
    match tokio::time::timeout(Duration::from_secs(2), probe).await {
        Ok(Ok(response)) => {
            let text = String::from_utf8_lossy(&response);
            text.starts_with("HTTP/1.1 200") && text.contains(r#""health":"true""#)
        }
        _ => false,
    }
}

/// `(own member id, leader member id)` from the maintenance status API.
async fn member_status(client_url: &str) -> io::Result<(u64, u64)> {
    let request = async {
        let options = etcd_client::ConnectOptions::new().with_connect_timeout(Duration::from_secs(2));
        let mut client = etcd_client::Client::connect([client_url], Some(options)).await?;
        let status = client.status().await?;
        let id = status.header().map_or(0, |h| h.member_id());
        Ok::<_, etcd_client::Error>((id, status.leader()))
    };
    match tokio::time::timeout(Duration::from_secs(5), request).await {
        Ok(Ok(ids)) => Ok(ids),
        Ok(Err(e)) => Err(io::Error::other(e.to_string())),
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "status request timed out")),
    }
}

/// `n` distinct loopback ports that were free a moment ago (the OS picks
/// them when binding port 0; all are held until every one is chosen).
fn free_ports(n: usize) -> io::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<io::Result<Vec<_>>>()?;
    listeners.iter().map(|l| l.local_addr().map(|a| a.port())).collect()
}

/// The etcd binary: `$ETCD_BIN` (unless empty), `/usr/bin/etcd`, or `etcd`
/// on the `PATH`.
fn find_etcd() -> io::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("ETCD_BIN").filter(|b| !b.is_empty()) {
        let bin = PathBuf::from(bin);
        return if bin.is_file() {
            Ok(bin)
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("ETCD_BIN={} is not a file", bin.display()),
            ))
        };
    }
    let default = PathBuf::from(DEFAULT_ETCD_BIN);
    if default.is_file() {
        return Ok(default);
    }
    if let Some(path) = std::env::var_os("PATH")
        && let Some(bin) = std::env::split_paths(&path)
            .map(|dir| dir.join("etcd"))
            .find(|p| p.is_file())
    {
        return Ok(bin);
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        "etcd binary not found (looked at $ETCD_BIN, /usr/bin/etcd and the PATH): \
         run hack/test.sh as root, or `apt-get install etcd-server`",
    ))
}

/// etcd 3.4 refuses to run on architectures other than amd64 unless told to.
fn unsupported_arch() -> Option<&'static str> {
    match std::env::consts::ARCH {
        "x86_64" => None,
        "aarch64" => Some("arm64"),
        "powerpc64" => Some("ppc64le"),
        "s390x" => Some("s390x"),
        other => Some(other),
    }
}

/// The last `lines` lines of the file at `path` (reads at most its last
/// 64 KiB).
fn log_tail(path: &Path, lines: usize) -> String {
    let read = || -> io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)))?;
        let mut buf = Vec::new();
        file.read_to_end(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    };
    match read() {
        Ok(text) if text.trim().is_empty() => format!("({} is empty)", path.display()),
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}
