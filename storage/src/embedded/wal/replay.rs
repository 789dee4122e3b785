//! Reading the log back at open.
//!
//! Segments are read in base order. In each, frames are taken while they
//! are valid (magic, the segment's salt, checksum, records that parse) and
//! continue the revisions without a gap. The first frame that is not is the
//! end of the log: the writer appends a frame only after the previous one
//! was synced, so at most the last frame can be torn, and a torn frame was
//! never acknowledged. Writes before the checkpointed revision are already
//! in redb and only checked.
//!
//! What would mean *acknowledged* writes are damaged is an error, never
//! skipped: a valid frame of the same segment after the end (a damaged
//! frame in the middle of the log), or a segment that starts after a gap.

use std::path::{Path, PathBuf};

use super::frame::{BLOCK, SegmentHeader, check_record, decode_frame};
use super::{SPARE_NAME, SPARE_TEMP_NAME, parse_segment_name};
use crate::embedded::pending::PendingWrite;
use crate::embedded::schema::corrupt;
use crate::error::{Result, StorageError};
use crate::store::Revision;

/// What the log holds.
#[derive(Debug, Default)]
pub(crate) struct Replayed {
    /// The writes after the checkpointed revision, in order (the first is
    /// at the checkpointed revision + 1).
    pub(crate) writes: Vec<PendingWrite>,
    /// Every segment file, oldest first: all of them can go once the
    /// writes are in redb.
    pub(crate) segments: Vec<PathBuf>,
    /// A spare segment left by the previous run.
    pub(crate) spare: Option<PathBuf>,
}

/// Reads every segment in `dir`.
pub(crate) fn replay(dir: &Path, checkpointed: Revision) -> Result<Replayed> {
    let io = |e: std::io::Error| StorageError::Internal(format!("write-ahead log in {}: {e}", dir.display()));
    let mut segments = Vec::new();
    let mut replayed = Replayed::default();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(base) = parse_segment_name(name) {
            segments.push((base, entry.path()));
        } else if name == SPARE_NAME {
            replayed.spare = Some(entry.path());
        } else if name == SPARE_TEMP_NAME {
            std::fs::remove_file(entry.path()).map_err(io)?;
        }
    }
    segments.sort();
    for (base, path) in segments {
        let bytes = std::fs::read(&path).map_err(io)?;
        replay_segment(&path, base, &bytes, checkpointed, &mut replayed.writes)?;
        replayed.segments.push(path);
    }
    Ok(replayed)
}

/// Adds the writes of one segment to `writes`.
fn replay_segment(
    path: &Path,
    base: Revision,
    bytes: &[u8],
    checkpointed: Revision,
    writes: &mut Vec<PendingWrite>,
) -> Result<()> {
    let held = |writes: &Vec<PendingWrite>| checkpointed + 1 + writes.len() as Revision;
    let next = held(writes);
    if base > next {
        return Err(corrupt(&format!(
            "write-ahead log segment {} starts at revision {base}, but revisions from {next} are missing",
            path.display()
        )));
    }
    // A segment starts right after the last acknowledged write; anything
    // an older segment holds from `base` on was never acknowledged.
    writes.truncate(usize::try_from(base - checkpointed - 1).unwrap_or(0));
    let header = match SegmentHeader::decode(bytes) {
        Some(header) if header.base == base => header,
        _ => {
            // Renamed into place, then the process died before the header
            // and the first frame were synced: nothing in it was
            // acknowledged.
            tracing::warn!(segment = %path.display(), "write-ahead log segment without a valid header; ignored");
            return Ok(());
        }
    };
    let mut offset = BLOCK;
    let mut expected = base;
    while let Some(frame) = bytes.get(offset..).and_then(|rest| decode_frame(rest, header.salt)) {
        if frame.first != expected {
            break;
        }
        for write in frame.writes {
            check_record(expected, &write)?;
            if expected >= held(writes) {
                writes.push(write);
            }
            expected += 1;
        }
        offset += frame.len;
    }
    // The end of the log. Any valid frame after it was written after this
    // point was acknowledged.
    let mut probe = offset;
    while probe < bytes.len() {
        if let Some(frame) = decode_frame(&bytes[probe..], header.salt) {
            return Err(corrupt(&format!(
                "write-ahead log segment {} is damaged at offset {offset} (revision {expected}), \
                 but holds acknowledged writes after it (revision {} at offset {probe})",
                path.display(),
                frame.first
            )));
        }
        probe += BLOCK;
    }
    tracing::debug!(segment = %path.display(), offset, next = expected, "write-ahead log segment read");
    Ok(())
}
