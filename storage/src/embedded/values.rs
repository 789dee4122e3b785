//! Values on disk, in chunks that pack redb's 4 KiB pages.
//!
//! redb stores a pair in one leaf, and a leaf that does not fit a page takes
//! the next power-of-two size: a 2 KiB value then fills a 4 KiB page alone,
//! a 4 KiB value an 8 KiB one. Cut into chunks of [`CHUNK`] bytes, four
//! chunks fill a page, so the bytes written per commit (and the file size)
//! stay close to the bytes of the values. A value is the chunks
//! `(revision, 0..n)` of `VALUES`, in order; an empty value is one empty
//! chunk, so every stored value has at least one row.

use bytes::{Bytes, BytesMut};
use redb::{ReadableTable, Table};

use super::schema::{OrInternal, corrupt, revision_to_u64};
use crate::error::Result;
use crate::store::Revision;

/// Bytes per chunk: four chunks and their per-pair overhead (a 4-byte
/// length and the 12-byte key) fit one 4 KiB page with its 4-byte header.
pub(super) const CHUNK: usize = 1000;

/// A `VALUES` key: the revision of the write and the chunk's position.
pub(super) type ChunkKey = (u64, u32);

/// Stores `value` as the value written at `revision`.
pub(super) fn insert(values: &mut Table<'_, ChunkKey, &'static [u8]>, revision: Revision, value: &[u8]) -> Result<()> {
    let row = revision_to_u64(revision);
    if value.is_empty() {
        values.insert((row, 0), &[][..]).or_internal()?;
        return Ok(());
    }
    for (n, chunk) in value.chunks(CHUNK).enumerate() {
        let n = u32::try_from(n).map_err(|_| corrupt("value of more than 4 billion chunks"))?;
        values.insert((row, n), chunk).or_internal()?;
    }
    Ok(())
}

/// The value written at `revision`.
pub(super) fn get<T: ReadableTable<ChunkKey, &'static [u8]>>(values: &T, revision: Revision) -> Result<Bytes> {
    let row = revision_to_u64(revision);
    let mut chunks = values.range((row, 0)..=(row, u32::MAX)).or_internal()?;
    let missing = || corrupt(&format!("the value written at revision {revision} is missing"));
    let (_, first) = chunks.next().ok_or_else(missing)?.or_internal()?;
    if first.value().len() < CHUNK {
        // The common case: a value of one chunk, copied once.
        return Ok(Bytes::copy_from_slice(first.value()));
    }
    let mut value = BytesMut::with_capacity(2 * CHUNK);
    value.extend_from_slice(first.value());
    for (expected, entry) in (1u32..).zip(chunks) {
        let (key, chunk) = entry.or_internal()?;
        if key.value().1 != expected {
            return Err(corrupt(&format!("value at revision {revision} lacks chunk {expected}")));
        }
        value.extend_from_slice(chunk.value());
    }
    Ok(value.freeze())
}

/// Removes the value written at `revision`.
pub(super) fn remove(values: &mut Table<'_, ChunkKey, &'static [u8]>, revision: Revision) -> Result<()> {
    let row = revision_to_u64(revision);
    values.retain_in((row, 0)..=(row, u32::MAX), |_, _| false).or_internal()
}

#[cfg(test)]
mod tests {
    use redb::{Database, ReadableDatabase};

    use super::*;
    use crate::StorageError;
    use crate::embedded::schema::VALUES;

    #[test]
    fn values_round_trip_in_chunks() -> Result<()> {
        let dir = tempfile::tempdir().map_err(StorageError::internal)?;
        let db = Database::create(dir.path().join("v.redb")).or_internal()?;
        let sizes = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2500, 3 << 19];
        let value = |size: usize| (0..size).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>();
        let txn = db.begin_write().or_internal()?;
        {
            let mut table = txn.open_table(VALUES).or_internal()?;
            for (rev, size) in (2..).zip(sizes) {
                insert(&mut table, rev, &value(size))?;
            }
            // A value with a hole: chunk 1 of 3 lost.
            insert(&mut table, 100, &value(2500))?;
            table.remove((100, 1)).or_internal()?;
            // Removing one value leaves its neighbours alone.
            insert(&mut table, 50, &value(2500))?;
            remove(&mut table, 50)?;
        }
        txn.commit().or_internal()?;

        let txn = db.begin_read().or_internal()?;
        let table = txn.open_table(VALUES).or_internal()?;
        for (rev, size) in (2..).zip(sizes) {
            assert_eq!(get(&table, rev)?, value(size), "value of {size} bytes");
        }
        for rev in [50, 100, 7777] {
            assert!(
                matches!(get(&table, rev), Err(StorageError::Internal(_))),
                "revision {rev}"
            );
        }
        Ok(())
    }
}
