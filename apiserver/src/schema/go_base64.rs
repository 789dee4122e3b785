//! Go's `base64.StdEncoding.Decode`, which decodes `[]byte` fields, with
//! the offset its `CorruptInputError` reports (`illegal base64 data at
//! input byte 4`). Padding is required; `\r` and `\n` are skipped; unused
//! trailing bits are not checked (the encoding is not strict).

/// The value of a base64 character, if it is one.
fn sextet(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

fn is_newline(c: u8) -> bool {
    c == b'\n' || c == b'\r'
}

/// Decodes `src`, or returns the offset Go reports.
pub(crate) fn decode(src: &[u8]) -> Result<Vec<u8>, usize> {
    let mut out = Vec::with_capacity(src.len() / 4 * 3);
    let mut si = 0;
    while si < src.len() {
        let (next, done) = quantum(src, si, &mut out)?;
        si = next;
        if done {
            break;
        }
    }
    Ok(out)
}

/// Go's `decodeQuantum`: decodes one group of four characters starting at
/// `si`; returns where the next starts and whether the input ended.
fn quantum(src: &[u8], mut si: usize, out: &mut Vec<u8>) -> Result<(usize, bool), usize> {
    let mut buf = [0u8; 4];
    let mut len = 4;
    let mut ended = false;
    let mut j = 0;
    while j < 4 {
        if si == src.len() {
            if j == 0 {
                return Ok((si, true));
            }
            // Padding is required.
            return Err(si - j);
        }
        let c = src[si];
        si += 1;
        if let Some(v) = sextet(c) {
            buf[j] = v;
            j += 1;
            continue;
        }
        if is_newline(c) {
            continue;
        }
        if c != b'=' {
            return Err(si - 1);
        }
        // Padding: `=` ends the input.
        match j {
            0 | 1 => return Err(si - 1),
            2 => {
                while si < src.len() && is_newline(src[si]) {
                    si += 1;
                }
                if si == src.len() {
                    return Err(src.len());
                }
                if src[si] != b'=' {
                    return Err(si - 1);
                }
                si += 1;
            }
            _ => {}
        }
        while si < src.len() && is_newline(src[si]) {
            si += 1;
        }
        if si < src.len() {
            return Err(si);
        }
        len = j;
        ended = true;
        break;
    }
    let val = u32::from(buf[0]) << 18 | u32::from(buf[1]) << 12 | u32::from(buf[2]) << 6 | u32::from(buf[3]);
    let bytes = [(val >> 16) as u8, (val >> 8) as u8, val as u8];
    out.extend_from_slice(&bytes[..len - 1]);
    Ok((si, ended))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_reports_offsets_like_go() {
        assert_eq!(decode(b""), Ok(vec![]));
        assert_eq!(decode(b"aGVsbG8="), Ok(b"hello".to_vec()));
        assert_eq!(decode(b"aGVs\nbG8="), Ok(b"hello".to_vec()));
        assert_eq!(decode(b"YQ=="), Ok(b"a".to_vec()));
        assert_eq!(decode(b"YR=="), Ok(b"a".to_vec()), "trailing bits are not checked");
        for (bad, at) in [
            (&b"aGVsbG8"[..], 4),
            (b"a", 0),
            (b"ab!d", 2),
            (b"ab=d", 2),
            (b"a===", 1),
            (b"YQ=", 3),
            (b"YQ==YQ==", 4),
            (b"hello world", 5),
            (b"YWJj\xff", 4),
        ] {
            assert_eq!(decode(bad), Err(at), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
