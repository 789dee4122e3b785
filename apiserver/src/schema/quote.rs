//! Go's two ways of quoting text in the messages this module reproduces.

use std::fmt::Write;

/// `strconv.Quote`, used for field paths in strict decoding errors
/// (`unknown field "spec.foo"`). Printable characters are kept; Go's
/// `unicode.IsPrint` is approximated by excluding controls, non-ASCII
/// spaces, format characters and private-use code points.
pub(crate) fn strconv_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_print(c) => out.push(c),
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    let n = c as u32;
    !(c.is_control()
        || c.is_whitespace()
        || n == 0xad
        || (0x600..=0x605).contains(&n)
        || (0x200b..=0x200f).contains(&n)
        || (0x202a..=0x202e).contains(&n)
        || (0x2060..=0x206f).contains(&n)
        || n == 0xfeff
        || (0xfff9..=0xfffb).contains(&n)
        || (0xe000..=0xf8ff).contains(&n)
        || n >= 0xf0000)
}

/// The `time` package's own quoting (`parsing time "x" as ...`): bytes
/// outside printable ASCII become `\xNN`; `"` and `\` are escaped.
pub(crate) fn time_quote(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for &b in s {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            b if !(0x20..0x80).contains(&b) => {
                let _ = write!(out, "\\x{b:02x}");
            }
            b => out.push(b as char),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_go() {
        assert_eq!(strconv_quote("spec.foo"), r#""spec.foo""#);
        assert_eq!(strconv_quote("a\"b\\c\n\u{1}\u{7f}"), r#""a\"b\\c\n\x01\x7f""#);
        assert_eq!(strconv_quote("é\u{a0}\u{200b}😀"), "\"é\\u00a0\\u200b😀\"");
        assert_eq!(time_quote(b"a\"\\\x01"), r#""a\"\\\x01""#);
        assert_eq!(time_quote("é".as_bytes()), r#""\xc3\xa9""#);
    }
}
