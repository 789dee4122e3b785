//! The log backend (`--audit-log-path`): one JSON event per line, to a file
//! or to standard output (`-`). Like upstream's lumberjack logger, a file
//! past `--audit-log-maxsize` megabytes is renamed to
//! `<name>-<timestamp><ext>` and a new one started; backups beyond
//! `--audit-log-maxbackup` or older than `--audit-log-maxage` days are
//! removed.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// Where events go.
#[derive(Debug)]
pub struct LogBackend {
    out: Mutex<Output>,
    max_size: u64,
    max_backups: usize,
    max_age: Option<Duration>,
}

#[derive(Debug)]
enum Output {
    Stdout,
    File { path: PathBuf, file: File, size: u64 },
}

impl LogBackend {
    /// Opens (appending) `path`, or standard output for `-`. `max_size_mb`,
    /// `max_backups` and `max_age_days` of 0 mean no limit.
    pub fn open(path: &Path, max_size_mb: u64, max_backups: usize, max_age_days: u64) -> std::io::Result<LogBackend> {
        let out = if path == Path::new("-") {
            Output::Stdout
        } else {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let file = OpenOptions::new().create(true).append(true).open(path)?;
            let size = file.metadata()?.len();
            Output::File {
                path: path.to_path_buf(),
                file,
                size,
            }
        };
        Ok(LogBackend {
            out: Mutex::new(out),
            max_size: max_size_mb.saturating_mul(1024 * 1024),
            max_backups,
            max_age: (max_age_days > 0).then(|| Duration::from_secs(max_age_days * 86400)),
        })
    }

    /// Appends one line (a newline is added).
    pub fn write_line(&self, line: &[u8]) {
        let mut out = match self.out.lock() {
            Ok(o) => o,
            Err(poisoned) => poisoned.into_inner(),
        };
        let result = match &mut *out {
            Output::Stdout => {
                let mut s = std::io::stdout().lock();
                s.write_all(line).and_then(|_| s.write_all(b"\n"))
            }
            Output::File { path, file, size } => {
                let len = line.len() as u64 + 1;
                if self.max_size > 0 && *size > 0 && *size + len > self.max_size {
                    match rotate(path) {
                        Ok(f) => {
                            *file = f;
                            *size = 0;
                            self.prune(path);
                        }
                        Err(e) => tracing::error!(error = %e, "rotating the audit log"),
                    }
                }
                *size += len;
                let mut buf = Vec::with_capacity(line.len() + 1);
                buf.extend_from_slice(line);
                buf.push(b'\n');
                file.write_all(&buf)
            }
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "writing the audit log");
        }
    }

    /// Removes backups beyond the count and age limits, oldest first.
    fn prune(&self, path: &Path) {
        let mut backups = backups(path);
        backups.sort_by_key(|b| std::cmp::Reverse(b.1));
        for (i, (p, modified)) in backups.iter().enumerate() {
            let too_many = self.max_backups > 0 && i >= self.max_backups;
            let too_old = self
                .max_age
                .is_some_and(|age| modified.elapsed().is_ok_and(|e| e > age));
            if too_many || too_old {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

/// `audit.log` -> (`audit`, `.log`).
fn split_name(path: &Path) -> (String, String) {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    (stem, ext)
}

fn rotate(path: &Path) -> std::io::Result<File> {
    let (stem, ext) = split_name(path);
    let now = time::OffsetDateTime::now_utc();
    let stamp = format!(
        "{:04}-{:02}-{:02}T{:02}-{:02}-{:02}.{:03}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.millisecond()
    );
    let mut backup = path.with_file_name(format!("{stem}-{stamp}{ext}"));
    let mut n = 1;
    while backup.exists() {
        backup = path.with_file_name(format!("{stem}-{stamp}-{n}{ext}"));
        n += 1;
    }
    std::fs::rename(path, &backup)?;
    OpenOptions::new().create(true).append(true).open(path)
}

fn backups(path: &Path) -> Vec<(PathBuf, SystemTime)> {
    let (stem, ext) = split_name(path);
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(&format!("{stem}-")) && name.ends_with(&ext) && e.path() != path
        })
        .filter_map(|e| Some((e.path(), e.metadata().ok()?.modified().ok()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_and_keeps_max_backups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        // 1 MiB limit; lines of 300 KiB: three fit, the fourth rotates.
        let log = LogBackend::open(&path, 1, 2, 0).unwrap();
        let line = vec![b'x'; 300 * 1024];
        for _ in 0..12 {
            log.write_line(&line);
        }
        let len = std::fs::metadata(&path).unwrap().len();
        assert!(len <= 1024 * 1024 && len > 0, "{len}");
        let backups = backups(&path);
        assert_eq!(backups.len(), 2, "{backups:?}");
        for (p, _) in backups {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            assert!(name.starts_with("audit-") && name.ends_with(".log"), "{name}");
            assert_eq!(std::fs::metadata(&p).unwrap().len(), 3 * (300 * 1024 + 1));
        }
    }

    #[test]
    fn appends_to_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/audit.log");
        LogBackend::open(&path, 0, 0, 0).unwrap().write_line(b"{\"a\":1}");
        LogBackend::open(&path, 0, 0, 0).unwrap().write_line(b"{\"a\":2}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n{\"a\":2}\n");
    }
}
