//! Writing a new segment file's blocks with zeros, so that the log's later
//! overwrites and `fdatasync`s touch data only (see the module docs of
//! `super`).
//!
//! The zeros go out with direct I/O (`O_DIRECT`) where the filesystem
//! allows it: from one aligned buffer straight to the device. Written
//! through the page cache instead, every megabyte is copied into fresh
//! cache pages, written back from there and later reclaimed, which costs
//! several times the CPU and leaves the zero pages in the cache. Where
//! direct I/O is refused (tmpfs, some FUSE and network filesystems), or
//! for a size that is not a whole number of blocks, plain writes do it.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use super::BLOCK;

/// Bytes per write.
const CHUNK: usize = 1 << 20;

/// Writes `size` bytes of zeros from the start of `file` (at `path`) and
/// syncs it (data and size).
pub(super) fn write_zeros(path: &Path, file: &File, size: u64) -> io::Result<()> {
    let buf = vec![0u8; CHUNK + BLOCK];
    let start = buf.as_ptr().align_offset(BLOCK);
    let (zeros, aligned) = match buf.get(start..start + CHUNK) {
        Some(zeros) => (zeros, true),
        None => (&buf[..CHUNK], false),
    };
    let mut done = 0;
    let direct_end = size - size % BLOCK as u64;
    if aligned && direct_end > 0 {
        match direct_writer(path) {
            Ok(direct) => done = write_range(&direct, zeros, 0, direct_end)?,
            Err(e) if refused(&e) => {}
            Err(e) => return Err(e),
        }
    }
    write_range(file, zeros, done, size)?;
    file.sync_all()
}

/// A second, direct-I/O handle on the file.
fn direct_writer(path: &Path) -> io::Result<File> {
    File::options().write(true).custom_flags(libc::O_DIRECT).open(path)
}

/// Writes zeros over `[from, to)`; stops early (returning where) if the
/// file refuses direct I/O half-way, so plain writes can finish.
fn write_range(file: &File, zeros: &[u8], from: u64, to: u64) -> io::Result<u64> {
    let mut at = from;
    while at < to {
        let n = usize::try_from(to - at).map_or(zeros.len(), |left| left.min(zeros.len()));
        match file.write_all_at(&zeros[..n], at) {
            Ok(()) => at += n as u64,
            Err(e) if refused(&e) => return Ok(at),
            Err(e) => return Err(e),
        }
    }
    Ok(at)
}

/// Whether the error is the filesystem declining direct I/O.
fn refused(error: &io::Error) -> bool {
    error.raw_os_error() == Some(libc::EINVAL)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn files_of_any_size_are_all_zeros() {
        let dir = tempfile::tempdir().unwrap();
        for size in [
            0,
            1,
            BLOCK as u64,
            3 * BLOCK as u64 + 17,
            CHUNK as u64 + BLOCK as u64,
            3 * CHUNK as u64,
        ] {
            let path = dir.path().join(format!("z{size}"));
            // Garbage first: the zeros must overwrite it, not just extend.
            std::fs::write(&path, vec![0x5a; usize::try_from(size).unwrap() + 100]).unwrap();
            let file = File::options().read(true).write(true).open(&path).unwrap();
            write_zeros(&path, &file, size).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            assert!(bytes[..size as usize].iter().all(|&b| b == 0), "size {size}");
            assert!(
                bytes[size as usize..].iter().all(|&b| b == 0x5a),
                "size {size}: past the end"
            );
        }
    }
}
