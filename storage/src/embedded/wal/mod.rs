//! The write-ahead log: what makes a write durable before it is acknowledged.
//!
//! The writer thread appends each batch as one checksummed frame (see
//! [`frame`]) to the active segment file and `fdatasync`s it once, then
//! answers the batch. The checkpointer (`super::checkpoint`) later copies the
//! logged writes into redb in big transactions and retires the segments
//! whose writes are all in redb.
//!
//! Files in the data directory:
//!
//! - `wal-<base, 20 digits>.log`: a segment whose first write is at revision
//!   `base`. Only the newest is appended to; older ones are *sealed*.
//! - `wal.spare`: a file of [`WalOptions::segment_size`] bytes already
//!   written (a retired segment, or zeros: see [`zeros`]), renamed into
//!   place at the next rotation. Overwriting blocks that are already
//!   allocated and written lets `fdatasync` flush data only: appending to a
//!   growing file, or writing into `fallocate`d (unwritten) extents, also
//!   commits the filesystem journal on every sync (1.5x to 16x fewer
//!   syncs/s measured at 8 KiB, see `docs/benchmarks.md`). Segments are
//!   recycled: a retired one becomes the spare when none is ready; the
//!   frames of its earlier life stay in it until overwritten, and only the
//!   per-segment salt in every frame keeps them from passing for the new
//!   life's (see [`frame`]).
//!
//! Architecture invariant: only the writer thread appends and rotates; only
//! the checkpointer retires segments and prepares spares; they meet in
//! [`WalFiles`].

mod frame;
mod replay;
mod spare;
#[cfg(test)]
mod tests;
mod zeros;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

pub(crate) use frame::{BLOCK, FrameBuilder};
pub(super) use replay::{Replayed, replay};
pub(super) use spare::{prepare_spare, retire_segments, spare_awaits_checkpoint};

use frame::SegmentHeader;

use crate::error::{Result, StorageError};
use crate::store::Revision;

/// Name of the spare segment file.
const SPARE_NAME: &str = "wal.spare";
/// Name under which a spare is zero-filled before it is renamed.
const SPARE_TEMP_NAME: &str = "wal.spare.tmp";
/// Size of a segment zero-filled on the spot when no spare is ready: small,
/// so that creating it holds up the writer briefly (and opening a store
/// costs little); the log moves to a full-size spare soon.
const SMALL_SEGMENT_SIZE: u64 = 1 << 20;

/// Tuning of the log.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WalOptions {
    /// Bytes per preallocated segment.
    pub(crate) segment_size: u64,
}

/// The file name of the segment starting at `base`.
fn segment_name(base: Revision) -> String {
    format!("wal-{base:020}.log")
}

/// The base revision of a segment file name.
fn parse_segment_name(name: &str) -> Option<Revision> {
    let digits = name.strip_prefix("wal-")?.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A segment that is no longer appended to.
#[derive(Debug, Clone)]
pub(super) struct SealedSegment {
    pub(super) path: PathBuf,
    /// Its newest write: once redb holds it, the file can go.
    pub(super) last: Revision,
    /// Whether the file is big enough to be reused as the spare.
    pub(super) reusable: bool,
}

/// The log's files, shared by the writer (rotation) and the checkpointer
/// (retiring, spares).
#[derive(Debug, Default)]
pub(super) struct WalFiles {
    /// A preallocated file ready to become the next segment.
    pub(super) spare: Option<PathBuf>,
    /// Segments waiting to be retired, oldest first.
    pub(super) sealed: Vec<SealedSegment>,
    /// The active segment is filling up and no spare is ready: one is worth
    /// preparing.
    pub(super) want_spare: bool,
}

/// [`WalFiles`] behind a lock.
#[derive(Debug, Default)]
pub(super) struct WalShared(Mutex<WalFiles>);

impl WalShared {
    pub(super) fn lock(&self) -> MutexGuard<'_, WalFiles> {
        // Nothing panics while holding it; the state stays consistent.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The segment being appended to.
struct ActiveSegment {
    file: File,
    path: PathBuf,
    salt: u64,
    /// Where the next frame goes.
    offset: u64,
    /// Rotate before a frame would end past this.
    capacity: u64,
    /// The file is full-size, so it can be recycled as a spare.
    reusable: bool,
    /// The newest revision in the segment (`base - 1` when empty).
    last: Revision,
    /// A spare was asked for while this segment was active.
    asked_spare: bool,
}

/// The appending side of the log, owned by the writer thread.
pub(super) struct Wal {
    dir: PathBuf,
    options: WalOptions,
    active: ActiveSegment,
    shared: Arc<WalShared>,
    /// Set by the first failed write or sync: nothing more is appended
    /// (what reached the disk is unknown, see [`Wal::append`]).
    failed: Option<StorageError>,
}

impl Wal {
    /// Starts a new segment at `base` in `dir` (after recovery).
    pub(super) fn create(dir: &Path, base: Revision, options: WalOptions, shared: Arc<WalShared>) -> Result<Wal> {
        let active = open_segment(dir, base, &shared, options)?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            options,
            active,
            shared,
            failed: None,
        })
    }

    /// Appends the frame and makes it durable. After an error the log
    /// refuses every later append: an `fdatasync` that failed may have
    /// dropped the data it was flushing while reporting it clean, and a
    /// frame that half reached the disk must stay the last one, so the
    /// store has to be reopened (recovery then finds what is really there).
    pub(super) fn append(&mut self, frame: &mut FrameBuilder) -> Result<()> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let result = self.try_append(frame);
        if let Err(error) = &result {
            tracing::error!(%error, "embedded store write-ahead log failed; writes are refused until reopened");
            self.failed = Some(StorageError::Unavailable(format!(
                "embedded store write-ahead log failed ({error}); reopen the store"
            )));
        }
        result
    }

    fn try_append(&mut self, frame: &mut FrameBuilder) -> Result<()> {
        let last = frame.first() + Revision::from(frame.count()) - 1;
        let len = frame.padded_len() as u64;
        if self.active.offset > BLOCK as u64 && self.active.offset + len > self.active.capacity {
            self.rotate(frame.first())?;
        }
        let bytes = frame.finish(self.active.salt);
        let io =
            |e: std::io::Error| StorageError::Internal(format!("write-ahead log {}: {e}", self.active.path.display()));
        self.active.file.write_all_at(bytes, self.active.offset).map_err(io)?;
        self.active.file.sync_data().map_err(io)?;
        self.active.offset += len;
        self.active.last = last;
        let filling = if self.active.reusable {
            self.active.offset >= self.active.capacity / 2
        } else {
            self.active.offset >= self.active.capacity / 4
        };
        if filling && !self.active.asked_spare {
            self.active.asked_spare = true;
            let mut files = self.shared.lock();
            files.want_spare = files.spare.is_none();
        }
        Ok(())
    }

    /// Seals the active segment and starts one at `base`.
    fn rotate(&mut self, base: Revision) -> Result<()> {
        let next = open_segment(&self.dir, base, &self.shared, self.options)?;
        let old = std::mem::replace(&mut self.active, next);
        self.shared.lock().sealed.push(SealedSegment {
            path: old.path,
            last: old.last,
            reusable: old.reusable,
        });
        Ok(())
    }
}

/// Creates the segment starting at `base` from the spare if there is one,
/// as a small zero-filled file otherwise, writes its header and makes its
/// name durable.
fn open_segment(dir: &Path, base: Revision, shared: &WalShared, options: WalOptions) -> Result<ActiveSegment> {
    let path = dir.join(segment_name(base));
    let io = |e: std::io::Error| StorageError::Internal(format!("write-ahead log segment {}: {e}", path.display()));
    let file = {
        // Held across the rename: the checkpointer renames files to the
        // spare's name under the same lock.
        let mut files = shared.lock();
        match files.spare.take() {
            Some(spare) => {
                std::fs::rename(&spare, &path).map_err(io)?;
                File::options().read(true).write(true).open(&path).map_err(io)?
            }
            None => {
                drop(files);
                let file = File::options()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .map_err(io)?;
                // Written blocks, like a spare's (see the module docs).
                zeros::write_zeros(&path, &file, SMALL_SEGMENT_SIZE.min(options.segment_size)).map_err(io)?;
                file
            }
        }
    };
    let capacity = file.metadata().map_err(io)?.len();
    let header = SegmentHeader {
        salt: random_salt(),
        base,
    };
    file.write_all_at(&header.encode(), 0).map_err(io)?;
    // The header reaches the disk with the first frame's sync; the name
    // must be durable before any write in the file is acknowledged.
    File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(ActiveSegment {
        file,
        path,
        salt: header.salt,
        offset: BLOCK as u64,
        capacity,
        reusable: capacity >= options.segment_size,
        last: base - 1,
        asked_spare: false,
    })
}

/// A salt that differs between segments (not a secret).
fn random_salt() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}
