//! The bytes of the write-ahead log: segment headers, frames and records.
//!
//! A segment file starts with one [`BLOCK`] holding its header; frames follow,
//! each starting on a [`BLOCK`] boundary and padded to the next one:
//!
//! - segment header: `"RKUBEWAL" [version: u32][salt: u64][base: u64]
//!   [crc32: u32]` (little-endian; the CRC covers the bytes before it).
//!   `base` is the revision of the segment's first write; `salt` is random
//!   per segment, so frames left over from an earlier use of a recycled
//!   file never pass for this one's.
//! - frame header: `[magic: u32][crc32: u32][salt: u64][first: u64]
//!   [count: u32][payload length: u32]`, then the payload: `count` records
//!   for the revisions `first..first + count`. The CRC covers everything
//!   after it up to the end of the payload.
//! - record: `[event type: u8][create_revision: i64][prev_revision: i64]
//!   [key length: u32][value length: u32][key][value]`.
//!
//! One frame is one group-commit batch: written with one `write` and made
//! durable with one `fdatasync`, so it is the unit that is acknowledged, and
//! the unit that is checked. A frame that fails its checks was never
//! acknowledged if it is the last one; see `super::replay`.

use crate::error::Result;
use crate::store::{EventType, Revision};

use super::super::pending::PendingWrite;
use super::super::schema::corrupt;

/// Alignment of frames and size of the segment header block.
pub(crate) const BLOCK: usize = 4096;
const SEGMENT_MAGIC: &[u8; 8] = b"RKUBEWAL";
const SEGMENT_VERSION: u32 = 1;
const SEGMENT_HEADER: usize = 8 + 4 + 8 + 8 + 4;
const FRAME_MAGIC: u32 = 0x5246_4b52; // "RKFR"
pub(super) const FRAME_HEADER: usize = 4 + 4 + 8 + 8 + 4 + 4;
const RECORD_HEADER: usize = 1 + 8 + 8 + 4 + 4;

/// The header of a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SegmentHeader {
    pub(super) salt: u64,
    /// The revision of the first write in the segment.
    pub(super) base: Revision,
}

impl SegmentHeader {
    /// The header block (the header then zeros up to [`BLOCK`]).
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut block = Vec::with_capacity(BLOCK);
        block.extend_from_slice(SEGMENT_MAGIC);
        block.extend_from_slice(&SEGMENT_VERSION.to_le_bytes());
        block.extend_from_slice(&self.salt.to_le_bytes());
        block.extend_from_slice(&self.base.to_le_bytes());
        let crc = crc32fast::hash(&block);
        block.extend_from_slice(&crc.to_le_bytes());
        block.resize(BLOCK, 0);
        block
    }

    /// Reads a header; `None` if it is not a valid one.
    pub(super) fn decode(bytes: &[u8]) -> Option<SegmentHeader> {
        let header = bytes.get(..SEGMENT_HEADER)?;
        let (body, crc) = header.split_at(SEGMENT_HEADER - 4);
        if !body.starts_with(SEGMENT_MAGIC) || crc32fast::hash(body) != le_u32(crc)? {
            return None;
        }
        if le_u32(&body[8..12])? != SEGMENT_VERSION {
            return None;
        }
        Some(SegmentHeader {
            salt: le_u64(&body[12..20])?,
            base: Revision::try_from(le_u64(&body[20..28])?).ok()?,
        })
    }
}

/// Builds one frame (one batch) in a reusable buffer.
#[derive(Debug, Default)]
pub(crate) struct FrameBuilder {
    buf: Vec<u8>,
    first: Revision,
    count: u32,
}

impl FrameBuilder {
    /// Starts an empty frame whose first record will be at `first`.
    pub(crate) fn start(&mut self, first: Revision) {
        self.buf.clear();
        self.buf.resize(FRAME_HEADER, 0);
        self.first = first;
        self.count = 0;
    }

    /// Appends the record of the next revision.
    pub(crate) fn push(&mut self, write: &PendingWrite) {
        let buf = &mut self.buf;
        buf.reserve(RECORD_HEADER + write.key.len() + write.value.len());
        buf.push(event_code(write.event_type));
        buf.extend_from_slice(&write.create_revision.to_le_bytes());
        buf.extend_from_slice(&write.prev_revision.to_le_bytes());
        // Keys and values are checked against `MAX_WRITE_BYTES` (1 GiB).
        buf.extend_from_slice(&(write.key.len() as u32).to_le_bytes());
        buf.extend_from_slice(&(write.value.len() as u32).to_le_bytes());
        buf.extend_from_slice(write.key.as_bytes());
        buf.extend_from_slice(&write.value);
        self.count += 1;
    }

    /// Number of records.
    pub(crate) fn count(&self) -> u32 {
        self.count
    }

    /// The revision of the first record.
    pub(crate) fn first(&self) -> Revision {
        self.first
    }

    /// Bytes [`Self::finish`] will return.
    pub(super) fn padded_len(&self) -> usize {
        self.buf.len().next_multiple_of(BLOCK)
    }

    /// Fills in the header for a segment with `salt` and pads the frame to
    /// a block boundary; returns the bytes to write.
    pub(super) fn finish(&mut self, salt: u64) -> &[u8] {
        let payload = (self.buf.len() - FRAME_HEADER) as u32;
        self.buf[0..4].copy_from_slice(&FRAME_MAGIC.to_le_bytes());
        self.buf[8..16].copy_from_slice(&salt.to_le_bytes());
        self.buf[16..24].copy_from_slice(&self.first.to_le_bytes());
        self.buf[24..28].copy_from_slice(&self.count.to_le_bytes());
        self.buf[28..32].copy_from_slice(&payload.to_le_bytes());
        let crc = crc32fast::hash(&self.buf[8..]);
        self.buf[4..8].copy_from_slice(&crc.to_le_bytes());
        self.buf.resize(self.buf.len().next_multiple_of(BLOCK), 0);
        &self.buf
    }
}

/// A frame read back.
#[derive(Debug)]
pub(super) struct Frame {
    /// The revision of the first record.
    pub(super) first: Revision,
    pub(super) writes: Vec<PendingWrite>,
    /// Bytes the frame takes in the file, padding included.
    pub(super) len: usize,
}

/// Reads the frame at the start of `bytes`; `None` if there is no valid
/// frame of a segment with `salt` there (zeros, a torn write, garbage, a
/// leftover of an earlier use of the file).
pub(super) fn decode_frame(bytes: &[u8], salt: u64) -> Option<Frame> {
    let header = bytes.get(..FRAME_HEADER)?;
    if le_u32(&header[0..4])? != FRAME_MAGIC || le_u64(&header[8..16])? != salt {
        return None;
    }
    let payload_len = usize::try_from(le_u32(&header[28..32])?).ok()?;
    let end = FRAME_HEADER.checked_add(payload_len)?;
    let checked = bytes.get(8..end)?;
    if crc32fast::hash(checked) != le_u32(&header[4..8])? {
        return None;
    }
    let first = Revision::try_from(le_u64(&header[16..24])?).ok()?;
    let count = le_u32(&header[24..28])?;
    let mut payload = &bytes[FRAME_HEADER..end];
    let mut writes = Vec::with_capacity(usize::try_from(count).ok()?.min(payload.len() / RECORD_HEADER));
    for _ in 0..count {
        let (write, rest) = decode_record(payload)?;
        writes.push(write);
        payload = rest;
    }
    if !payload.is_empty() || first < 1 {
        return None;
    }
    Some(Frame {
        first,
        writes,
        len: end.next_multiple_of(BLOCK),
    })
}

/// Checks that a record read back (checksum intact) is one this code could
/// have written at `revision`.
pub(super) fn check_record(revision: Revision, write: &PendingWrite) -> Result<()> {
    let consistent = !write.key.is_empty()
        && write.create_revision > 0
        && write.create_revision <= revision
        && match write.event_type {
            EventType::Added => write.prev_revision == 0 && write.create_revision == revision,
            EventType::Modified | EventType::Deleted => {
                write.prev_revision > 0
                    && write.prev_revision < revision
                    && write.create_revision <= write.prev_revision
            }
        }
        && (write.event_type != EventType::Deleted || write.value.is_empty());
    if consistent {
        Ok(())
    } else {
        Err(corrupt(&format!("write-ahead log record {revision} is inconsistent")))
    }
}

fn decode_record(bytes: &[u8]) -> Option<(PendingWrite, &[u8])> {
    let header = bytes.get(..RECORD_HEADER)?;
    let event_type = match header[0] {
        1 => EventType::Added,
        2 => EventType::Modified,
        3 => EventType::Deleted,
        _ => return None,
    };
    let create_revision = i64::from_le_bytes(header[1..9].try_into().ok()?);
    let prev_revision = i64::from_le_bytes(header[9..17].try_into().ok()?);
    let key_len = usize::try_from(le_u32(&header[17..21])?).ok()?;
    let value_len = usize::try_from(le_u32(&header[21..25])?).ok()?;
    let key_end = RECORD_HEADER.checked_add(key_len)?;
    let end = key_end.checked_add(value_len)?;
    let key = std::str::from_utf8(bytes.get(RECORD_HEADER..key_end)?).ok()?;
    let value = bytes::Bytes::copy_from_slice(bytes.get(key_end..end)?);
    let write = PendingWrite {
        event_type,
        create_revision,
        prev_revision,
        key: key.into(),
        value,
    };
    Some((write, &bytes[end..]))
}

fn event_code(event_type: EventType) -> u8 {
    match event_type {
        EventType::Added => 1,
        EventType::Modified => 2,
        EventType::Deleted => 3,
    }
}

fn le_u32(bytes: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

fn le_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use bytes::Bytes;

    use super::*;

    fn write(event_type: EventType, create: Revision, prev: Revision, value: &str) -> PendingWrite {
        PendingWrite {
            event_type,
            create_revision: create,
            prev_revision: prev,
            key: "/k/ü".into(),
            value: Bytes::copy_from_slice(value.as_bytes()),
        }
    }

    fn frame() -> (Vec<u8>, Vec<PendingWrite>) {
        let writes = vec![
            write(EventType::Added, 7, 0, "v7"),
            write(EventType::Modified, 7, 7, &"x".repeat(5000)),
            write(EventType::Deleted, 7, 8, ""),
        ];
        let mut builder = FrameBuilder::default();
        builder.start(7);
        for w in &writes {
            builder.push(w);
        }
        (builder.finish(42).to_vec(), writes)
    }

    #[test]
    fn frames_round_trip() {
        let (bytes, writes) = frame();
        assert_eq!(bytes.len() % BLOCK, 0);
        let decoded = decode_frame(&bytes, 42).expect("valid frame");
        assert_eq!((decoded.first, decoded.len), (7, bytes.len()));
        assert_eq!(decoded.writes, writes);
        for (rev, w) in (7..).zip(&decoded.writes) {
            check_record(rev, w).expect("consistent");
        }
    }

    #[test]
    fn damaged_frames_are_rejected() {
        let (bytes, _) = frame();
        assert!(decode_frame(&bytes, 43).is_none(), "another segment's salt");
        assert!(decode_frame(&bytes[..100], 42).is_none(), "torn");
        assert!(decode_frame(&vec![0; BLOCK], 42).is_none(), "zeros");
        for at in [0, 5, 9, 17, 25, 29, 40, 200] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x10;
            assert!(decode_frame(&bad, 42).is_none(), "flipped bit at {at}");
        }
    }

    #[test]
    fn segment_headers_round_trip() {
        let header = SegmentHeader { salt: 9, base: 1234 };
        let block = header.encode();
        assert_eq!(block.len(), BLOCK);
        assert_eq!(SegmentHeader::decode(&block), Some(header));
        let mut bad = block.clone();
        bad[21] ^= 1;
        assert_eq!(SegmentHeader::decode(&bad), None);
        assert_eq!(SegmentHeader::decode(&block[..10]), None);
    }

    #[test]
    fn inconsistent_records_are_errors() {
        assert!(check_record(5, &write(EventType::Added, 4, 0, "v")).is_err());
        assert!(check_record(5, &write(EventType::Modified, 3, 5, "v")).is_err());
        assert!(check_record(5, &write(EventType::Deleted, 3, 4, "v")).is_err());
        assert!(check_record(5, &write(EventType::Deleted, 3, 4, "")).is_ok());
    }
}
