//! The checkpointer's side of the log's files: retiring the segments whose
//! writes are all in redb, and keeping a preallocated spare ready for the
//! writer's next rotation.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use super::{SPARE_NAME, SPARE_TEMP_NAME, WalShared};
use crate::error::{Result, StorageError};
use crate::store::Revision;

/// Removes the sealed segments whose writes are all at or below
/// `checkpointed`, keeping one as the spare when none is ready. Losing a
/// removal in a crash is harmless: replay skips writes already in redb.
pub(crate) fn retire_segments(dir: &Path, shared: &WalShared, checkpointed: Revision) -> Result<()> {
    let retired: Vec<_> = {
        let mut files = shared.lock();
        let split = files.sealed.partition_point(|s| s.last <= checkpointed);
        files.sealed.drain(..split).collect()
    };
    for segment in retired {
        let io = |e: std::io::Error| {
            StorageError::Internal(format!(
                "retiring write-ahead log segment {}: {e}",
                segment.path.display()
            ))
        };
        // Held across the rename: the writer takes the spare under it.
        let mut files = shared.lock();
        if segment.reusable && files.spare.is_none() {
            let spare = dir.join(SPARE_NAME);
            std::fs::rename(&segment.path, &spare).map_err(io)?;
            files.spare = Some(spare);
            files.want_spare = false;
        } else {
            drop(files);
            std::fs::remove_file(&segment.path).map_err(io)?;
        }
    }
    Ok(())
}

/// Writes a zero-filled spare of `size` bytes when the writer wants one
/// and none is ready. Zeros (not `fallocate`) so that the blocks are
/// written, not just reserved: see the module docs of `super`.
pub(crate) fn prepare_spare(dir: &Path, shared: &WalShared, size: u64) -> Result<()> {
    {
        let files = shared.lock();
        if files.spare.is_some() || !files.want_spare {
            return Ok(());
        }
    }
    let temp = dir.join(SPARE_TEMP_NAME);
    let io = |e: std::io::Error| StorageError::Internal(format!("preparing write-ahead log spare: {e}"));
    let mut file = File::create(&temp).map_err(io)?;
    let zeros = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(zeros.len() as u64);
        file.write_all(&zeros[..n as usize]).map_err(io)?;
        left -= n;
    }
    file.sync_all().map_err(io)?;
    let spare = dir.join(SPARE_NAME);
    let mut files = shared.lock();
    if files.spare.is_some() {
        // A retired segment became the spare meanwhile.
        drop(files);
        return std::fs::remove_file(&temp).map_err(io);
    }
    std::fs::rename(&temp, &spare).map_err(io)?;
    files.spare = Some(spare);
    files.want_spare = false;
    Ok(())
}
