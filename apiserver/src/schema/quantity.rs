//! The syntax check of `resource.ParseQuantity`, with its three errors.
//!
//! Upstream's `Quantity.UnmarshalJSON` strips the quotes of a JSON string
//! (or takes a number's text as is), trims spaces and parses; any failure
//! rejects the whole body. This port decides only whether a quantity
//! parses and which error it gets; the value is kept as written (upstream
//! would re-encode it in canonical form, e.g. `0.5` as `500m`).

/// `resource.ErrFormatWrong`.
pub(crate) const ERR_FORMAT_WRONG: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
/// `resource.ErrNumeric`.
pub(crate) const ERR_NUMERIC: &str = "unable to parse numeric part of quantity";
/// `resource.ErrSuffix`.
pub(crate) const ERR_SUFFIX: &str = "unable to parse quantity's suffix";

/// The pieces `parseQuantityString` finds.
struct Parts<'a> {
    /// Sign, digits and fraction: what precedes the suffix.
    value: &'a [u8],
    num: &'a [u8],
    denom: &'a [u8],
    suffix: &'a [u8],
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    DecimalExponent,
    BinarySi,
    DecimalSi,
}

/// Checks a quantity as `ParseQuantity(strings.TrimSpace(s))` would.
pub(crate) fn check(s: &str) -> Result<(), &'static str> {
    // strings.TrimSpace and str::trim both trim Unicode White_Space.
    let s = s.trim().as_bytes();
    if s.is_empty() {
        return Err(ERR_FORMAT_WRONG);
    }
    if s == b"0" {
        return Ok(());
    }
    let parts = split(s).ok_or(ERR_FORMAT_WRONG)?;
    let (exponent, format) = interpret(parts.suffix).ok_or(ERR_SUFFIX)?;
    // Upstream's fast path (int64 arithmetic) takes every quantity short
    // enough; the rest go through inf.Dec, which needs a digit.
    let precision = match format {
        Format::DecimalExponent | Format::DecimalSi => 18 - (parts.num.len() + parts.denom.len()) as i64,
        Format::BinarySi if exponent >= 0 && parts.denom.is_empty() => {
            15 - parts.num.len() as i64 - ((exponent as f32) * 3.0 / 10.0) as i64 - 1
        }
        Format::BinarySi => -1,
    };
    let scale = if format == Format::BinarySi { 0 } else { exponent } - parts.denom.len() as i64;
    let fast = precision >= 0 && scale >= -9;
    if !fast && !parts.value.iter().any(u8::is_ascii_digit) {
        return Err(ERR_NUMERIC);
    }
    Ok(())
}

/// `parseQuantityString`: `None` is `ErrFormatWrong`.
fn split(s: &[u8]) -> Option<Parts<'_>> {
    let end = s.len();
    let mut pos = 0;
    if matches!(s.first(), Some(b'-' | b'+')) {
        pos += 1;
    }
    // Leading zeros.
    while pos < end && s[pos] == b'0' {
        pos += 1;
    }
    if pos >= end {
        return Some(Parts {
            value: b"0",
            num: b"0",
            denom: b"",
            suffix: b"",
        });
    }
    let start = pos;
    while pos < end && s[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos >= end {
        return Some(Parts {
            value: s,
            num: &s[start..],
            denom: b"",
            suffix: b"",
        });
    }
    let num: &[u8] = if pos == start { b"0" } else { &s[start..pos] };
    let mut denom: &[u8] = b"";
    if s[pos] == b'.' {
        pos += 1;
        let dstart = pos;
        while pos < end && s[pos].is_ascii_digit() {
            pos += 1;
        }
        if pos >= end {
            return Some(Parts {
                value: s,
                num,
                denom: &s[dstart..],
                suffix: b"",
            });
        }
        denom = &s[dstart..pos];
    }
    let value = &s[..pos];
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&s[pos]) {
        pos += 1;
    }
    if pos >= end {
        return Some(Parts {
            value,
            num,
            denom,
            suffix: &s[suffix_start..],
        });
    }
    if matches!(s[pos], b'-' | b'+') {
        pos += 1;
    }
    while pos < end && s[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos >= end {
        return Some(Parts {
            value,
            num,
            denom,
            suffix: &s[suffix_start..],
        });
    }
    None
}

/// `suffixHandler.interpret`: the power of the suffix and the format.
fn interpret(suffix: &[u8]) -> Option<(i64, Format)> {
    let decimal = match suffix {
        b"n" => Some(-9),
        b"u" => Some(-6),
        b"m" => Some(-3),
        b"" => Some(0),
        b"k" => Some(3),
        b"M" => Some(6),
        b"G" => Some(9),
        b"T" => Some(12),
        b"P" => Some(15),
        b"E" => Some(18),
        _ => None,
    };
    if let Some(e) = decimal {
        return Some((e, Format::DecimalSi));
    }
    let binary = match suffix {
        b"Ki" => Some(10),
        b"Mi" => Some(20),
        b"Gi" => Some(30),
        b"Ti" => Some(40),
        b"Pi" => Some(50),
        b"Ei" => Some(60),
        _ => None,
    };
    if let Some(e) = binary {
        return Some((e, Format::BinarySi));
    }
    if suffix.len() > 1 && matches!(suffix[0], b'e' | b'E') {
        // strconv.ParseInt(suffix[1:], 10, 64), then truncated to int32.
        let text = std::str::from_utf8(&suffix[1..]).ok()?;
        let parsed: i64 = text.parse().ok()?;
        return Some((i64::from(parsed as i32), Format::DecimalExponent));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_like_parse_quantity() {
        for ok in [
            "0", "1", "100m", "1.5", "0.5Gi", "128Mi", "1e3", "1E+3", "-1", "+2k", " 1 ", ".", "1.", "12E", "1e-20",
            "007",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok:?}");
        }
        for (bad, err) in [
            ("", ERR_FORMAT_WRONG),
            ("abc", ERR_FORMAT_WRONG),
            ("true", ERR_FORMAT_WRONG),
            ("1 Gi", ERR_FORMAT_WRONG),
            ("1Gix", ERR_FORMAT_WRONG),
            ("{}", ERR_FORMAT_WRONG),
            ("32MMi", ERR_SUFFIX),
            ("1e", ERR_SUFFIX),
            ("1Ki2", ERR_SUFFIX),
            ("e", ERR_SUFFIX),
            (".e-20", ERR_NUMERIC),
        ] {
            assert_eq!(check(bad), Err(err), "{bad:?}");
        }
    }
}
