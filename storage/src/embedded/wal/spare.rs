//! The checkpointer's side of the log's files: retiring the segments whose
//! writes are all in redb, and keeping a preallocated spare ready for the
//! writer's next rotation.

use std::fs::File;
use std::path::Path;

use super::zeros::write_zeros;
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

/// Whether the writer wants a spare and none is ready, while a sealed
/// segment that could become it only waits for a checkpoint to cover its
/// writes: checkpointing then recycles it instead of zero-filling a new
/// file (writes that fill half a segment between two checkpoints would
/// otherwise cost a zero-filled spare per segment).
pub(crate) fn spare_awaits_checkpoint(shared: &WalShared) -> bool {
    let files = shared.lock();
    files.want_spare && files.spare.is_none() && files.sealed.iter().any(|s| s.reusable)
}

/// Writes a zero-filled spare of `size` bytes when the writer wants one
/// and none is ready. Zeros (not `fallocate`) so that the blocks are
/// written, not just reserved: see the module docs of `super` and
/// [`write_zeros`].
pub(crate) fn prepare_spare(dir: &Path, shared: &WalShared, size: u64) -> Result<()> {
    {
        let files = shared.lock();
        if files.spare.is_some() || !files.want_spare {
            return Ok(());
        }
    }
    let temp = dir.join(SPARE_TEMP_NAME);
    let io = |e: std::io::Error| StorageError::Internal(format!("preparing write-ahead log spare: {e}"));
    let file = File::create(&temp).map_err(io)?;
    write_zeros(&temp, &file, size).map_err(io)?;
    drop(file);
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::path::PathBuf;

    use super::super::SealedSegment;
    use super::*;

    #[test]
    fn a_sealed_reusable_segment_is_awaited_instead_of_zeros() {
        let check = |want_spare: bool, spare: bool, reusable: Option<bool>, expected: bool| {
            let shared = WalShared::default();
            {
                let mut files = shared.lock();
                files.want_spare = want_spare;
                files.spare = spare.then(|| PathBuf::from("spare"));
                files.sealed = reusable
                    .map(|reusable| SealedSegment {
                        path: PathBuf::from("sealed"),
                        last: 9,
                        reusable,
                    })
                    .into_iter()
                    .collect();
            }
            assert_eq!(
                spare_awaits_checkpoint(&shared),
                expected,
                "want {want_spare}, spare {spare}, sealed {reusable:?}"
            );
        };
        check(true, false, Some(true), true);
        check(true, false, Some(false), false);
        check(true, false, None, false);
        check(true, true, Some(true), false);
        check(false, false, Some(true), false);
    }
}
