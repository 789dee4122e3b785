//! Protobuf wire primitives: varints, tags, length-delimited slices.

use super::ProtoError;

/// Wire types.
pub const VARINT: u8 = 0;
pub const FIXED64: u8 = 1;
pub const LEN: u8 = 2;
pub const FIXED32: u8 = 5;

/// Reads a message's bytes front to back.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn varint(&mut self) -> Result<u64, ProtoError> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(ProtoError::new("unexpected EOF in a varint"));
            };
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(ProtoError::new("integer overflow in a varint"));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(ProtoError::new("integer overflow in a varint"))
    }

    /// A tag: (field number, wire type).
    pub fn tag(&mut self) -> Result<(u32, u8), ProtoError> {
        let t = self.varint()?;
        let number = t >> 3;
        if number == 0 || number > u64::from(u32::MAX >> 3) {
            return Err(ProtoError::new(format!("illegal field number {number}")));
        }
        Ok((number as u32, (t & 7) as u8))
    }

    pub fn bytes(&mut self) -> Result<&'a [u8], ProtoError> {
        let n = self.varint()?;
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| self.pos.checked_add(n))
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| ProtoError::new("length-delimited field runs past the end of its message"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], ProtoError> {
        let s = self
            .buf
            .get(self.pos..self.pos + N)
            .ok_or_else(|| ProtoError::new("unexpected EOF in a fixed-size field"))?;
        self.pos += N;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub fn fixed64(&mut self) -> Result<u64, ProtoError> {
        self.fixed::<8>().map(u64::from_le_bytes)
    }

    pub fn fixed32(&mut self) -> Result<u32, ProtoError> {
        self.fixed::<4>().map(u32::from_le_bytes)
    }

    /// Skips a field's value of wire type `wt`.
    pub fn skip(&mut self, wt: u8) -> Result<(), ProtoError> {
        match wt {
            VARINT => self.varint().map(drop),
            FIXED64 => self.fixed64().map(drop),
            LEN => self.bytes().map(drop),
            FIXED32 => self.fixed32().map(drop),
            other => Err(ProtoError::new(format!("unsupported wire type {other}"))),
        }
    }
}

/// How many bytes `v` takes as a varint.
pub fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Appends a varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn put_tag(out: &mut Vec<u8>, number: u32, wt: u8) {
    put_varint(out, (u64::from(number) << 3) | u64::from(wt));
}

pub fn put_bytes(out: &mut Vec<u8>, number: u32, b: &[u8]) {
    put_tag(out, number, LEN);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}
