//! Self-checking values for the crash test, shared with
//! `tests/crash_embedded.rs` (which includes this file by path).
//!
//! A value is `key|writer|sequence|filler|checksum`, where `checksum` is the
//! 64-bit FNV-1a hash of everything before the last `|`, in 16 hex digits. A
//! torn, mixed up or misplaced value fails [`verify`].

/// 64-bit FNV-1a.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The value written by `writer` as its `sequence`-th write to `key`, with
/// `filler` bytes of padding, and its checksum.
pub fn make(key: &str, writer: usize, sequence: u64, filler: usize) -> (Vec<u8>, u64) {
    let mut value = format!("{key}|{writer}|{sequence}|").into_bytes();
    value.extend((0..filler).map(|i| b'a' + ((sequence as usize).wrapping_add(i) % 26) as u8));
    let checksum = fnv1a(&value);
    value.extend_from_slice(format!("|{checksum:016x}").as_bytes());
    (value, checksum)
}

/// Checks that `value` is intact and belongs to `key`; returns its checksum.
pub fn verify(key: &str, value: &[u8]) -> Result<u64, String> {
    let split = value
        .iter()
        .rposition(|&b| b == b'|')
        .ok_or_else(|| format!("value of {key} has no checksum"))?;
    let (body, tail) = value.split_at(split);
    let stored = std::str::from_utf8(&tail[1..])
        .ok()
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .ok_or_else(|| format!("value of {key} has a malformed checksum"))?;
    if fnv1a(body) != stored {
        return Err(format!("value of {key} fails its checksum"));
    }
    if !body.starts_with(format!("{key}|").as_bytes()) {
        return Err(format!("value of {key} belongs to another key"));
    }
    Ok(stored)
}

/// A small xorshift generator (the writer needs no better randomness).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}
