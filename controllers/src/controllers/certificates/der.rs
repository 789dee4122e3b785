//! The few DER encodings an X.509 certificate needs (ITU-T X.690): a
//! tag-length-value writer and the primitive types built on it. The signer
//! copies the request's subject and public key as they are, so it writes
//! certificates itself rather than through a builder that re-encodes them.

/// Universal tags used by certificates.
pub const BOOLEAN: u8 = 0x01;
pub const INTEGER: u8 = 0x02;
pub const BIT_STRING: u8 = 0x03;
pub const OCTET_STRING: u8 = 0x04;
pub const NULL: u8 = 0x05;
pub const OBJECT_IDENTIFIER: u8 = 0x06;
pub const IA5_STRING: u8 = 0x16;
pub const UTC_TIME: u8 = 0x17;
pub const GENERALIZED_TIME: u8 = 0x18;
pub const SEQUENCE: u8 = 0x30;

/// A context-specific constructed tag (`[n] EXPLICIT`).
pub fn context_constructed(n: u8) -> u8 {
    0xa0 | n
}

/// A context-specific primitive tag (`[n] IMPLICIT` of a primitive type).
pub fn context_primitive(n: u8) -> u8 {
    0x80 | n
}

/// `tag`, the definite length of `content`, then `content`.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// A SEQUENCE of already-encoded elements.
pub fn sequence(elements: &[&[u8]]) -> Vec<u8> {
    tlv(SEQUENCE, &elements.concat())
}

/// A non-negative INTEGER from big-endian magnitude bytes.
pub fn unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
    let trimmed: &[u8] = match magnitude.iter().position(|b| *b != 0) {
        Some(i) => &magnitude[i..],
        None => &[],
    };
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    tlv(INTEGER, &content)
}

/// An OBJECT IDENTIFIER from its arcs (the first two must be valid).
pub fn oid(arcs: &[u64]) -> Vec<u8> {
    let mut content = Vec::new();
    if let [first, second, rest @ ..] = arcs {
        base128(&mut content, first * 40 + second);
        for arc in rest {
            base128(&mut content, *arc);
        }
    }
    tlv(OBJECT_IDENTIFIER, &content)
}

fn base128(out: &mut Vec<u8>, mut v: u64) {
    let mut groups = vec![(v & 0x7f) as u8];
    v >>= 7;
    while v > 0 {
        groups.push(0x80 | (v & 0x7f) as u8);
        v >>= 7;
    }
    out.extend(groups.iter().rev());
}

/// A BIT STRING of named bits (bit 0 is the most significant bit of the
/// first byte), with trailing zero bits removed as DER requires.
pub fn named_bits(bits: u16) -> Vec<u8> {
    if bits == 0 {
        return tlv(BIT_STRING, &[0]);
    }
    // Bit i of `bits` is named bit i.
    let highest = 15 - bits.leading_zeros() as usize;
    let len = highest + 1;
    let mut bytes = vec![0u8; len.div_ceil(8)];
    for i in 0..len {
        if bits & (1 << i) != 0 {
            bytes[i / 8] |= 0x80 >> (i % 8);
        }
    }
    let unused = (bytes.len() * 8 - len) as u8;
    let mut content = vec![unused];
    content.extend_from_slice(&bytes);
    tlv(BIT_STRING, &content)
}

/// A BIT STRING holding whole bytes (a signature).
pub fn bit_string_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(bytes.len() + 1);
    content.push(0);
    content.extend_from_slice(bytes);
    tlv(BIT_STRING, &content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_use_the_short_and_long_forms() {
        assert_eq!(tlv(OCTET_STRING, &[1, 2]), vec![0x04, 2, 1, 2]);
        let long = tlv(OCTET_STRING, &[0; 200]);
        assert_eq!(&long[..3], &[0x04, 0x81, 200]);
        let longer = tlv(OCTET_STRING, &[0; 300]);
        assert_eq!(&longer[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }

    #[test]
    fn integers_are_minimal_and_positive() {
        assert_eq!(unsigned_integer(&[0, 0, 5]), vec![0x02, 1, 5]);
        assert_eq!(unsigned_integer(&[0x80]), vec![0x02, 2, 0, 0x80]);
        assert_eq!(unsigned_integer(&[]), vec![0x02, 1, 0]);
    }

    #[test]
    fn oids_encode_arcs_in_base_128() {
        // 1.2.840.10045.4.3.2 (ecdsa-with-SHA256).
        assert_eq!(
            oid(&[1, 2, 840, 10045, 4, 3, 2]),
            vec![0x06, 8, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]
        );
        assert_eq!(oid(&[2, 5, 29, 15]), vec![0x06, 3, 0x55, 0x1d, 0x0f]);
    }

    #[test]
    fn named_bits_drop_trailing_zeros() {
        // digitalSignature only: one bit used, seven unused.
        assert_eq!(named_bits(0b1), vec![0x03, 2, 7, 0x80]);
        // digitalSignature + keyEncipherment: bits 0 and 2.
        assert_eq!(named_bits(0b101), vec![0x03, 2, 5, 0xa0]);
        // decipherOnly (bit 8) needs a second byte.
        assert_eq!(named_bits(1 << 8), vec![0x03, 3, 7, 0x00, 0x80]);
        assert_eq!(named_bits(0), vec![0x03, 1, 0]);
    }
}
