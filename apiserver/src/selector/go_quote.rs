//! Go's `%q`: how upstream quotes user input in selector error messages
//! (`"Gt" is not a valid label selector operator`).

use std::fmt::Write as _;

/// `s` quoted as Go's `strconv.Quote` (and `%q`) does: printable characters
/// as they are, `"` and `\` escaped, the rest as `\n`, `\x1b`, `\u00a0`, ...
///
/// Go decides "printable" from Unicode tables; this uses the same categories
/// except that unassigned code points count as printable.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if is_go_printable(c) => out.push(c),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0b}' => out.push_str("\\v"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if u32::from(c) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => {
                let _ = write!(out, "\\U{:08x}", u32::from(c));
            }
        }
    }
    out.push('"');
    out
}

/// Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and
/// the ASCII space; not controls, other spaces, format characters, private
/// use or noncharacters.
fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = u32::from(c);
    let format = matches!(
        u,
        0xAD | 0x600..=0x605
            | 0x61C
            | 0x6DD
            | 0x70F
            | 0x890..=0x891
            | 0x8E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    );
    let private_use = matches!(u, 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD);
    let noncharacter = matches!(u, 0xFDD0..=0xFDEF) || (u & 0xFFFE) == 0xFFFE;
    !(format || private_use || noncharacter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_go() {
        let check = |input: &str, expected: &str| assert_eq!(go_quote(input), expected, "{input:?}");
        check("", r#""""#);
        check("a b", r#""a b""#);
        check(r#"say "hi"\"#, r#""say \"hi\"\\""#);
        check("tab\there\n", r#""tab\there\n""#);
        check("\u{1b}[0m\u{7f}", r#""\x1b[0m\x7f""#);
        check("\u{7}\u{8}\u{b}\u{c}\r", r#""\a\b\v\f\r""#);
        check("\u{85}", r#""\u0085""#);
        check("nbsp\u{a0}zw\u{200b}", r#""nbsp\u00a0zw\u200b""#);
        check("é€日本", "\"é€日本\"");
        check("\u{F0000}", r#""\U000f0000""#);
    }
}
