//! Upstream's wording for patch bodies that do not decode.
//!
//! kube-apiserver decodes patch bodies with Go's `encoding/json` (through
//! `sigs.k8s.io/json`), and returns the decoder's error text in the 400
//! Status: `invalid character 'x' looking for beginning of value`,
//! `unexpected end of JSON input`, `json: cannot unmarshal array into Go value
//! of type map[string]interface {}`. serde_json decides whether a body is
//! valid; this module only finds the words Go would use. The scanner is
//! iterative, so hostile nesting cannot overflow the stack.

use serde_json::Value;

/// The message Go's decoder gives for `input`, which serde_json rejected
/// with `err`. Falls back to serde_json's own message where Go would have
/// accepted the input (nesting deeper than serde_json's limit, invalid
/// UTF-8, numbers out of range).
pub(crate) fn decode_error(input: &[u8], err: &serde_json::Error) -> String {
    syntax_error(input).unwrap_or_else(|| err.to_string())
}

/// Go's `UnmarshalTypeError` text for a value of the wrong JSON type at the
/// top level: `json: cannot unmarshal array into Go value of type <go_type>`.
pub(crate) fn type_error(v: &Value, go_type: &str) -> String {
    format!(
        "json: cannot unmarshal {} into Go value of type {go_type}",
        json_kind(v)
    )
}

/// Go's `UnmarshalTypeError` text for a struct field of the wrong JSON type:
/// `json: cannot unmarshal number into Go struct field jsonPatchOp.path of type string`.
pub(crate) fn field_type_error(v: &Value, field: &str, go_type: &str) -> String {
    format!(
        "json: cannot unmarshal {} into Go struct field {field} of type {go_type}",
        json_kind(v)
    )
}

/// The JSON type name Go's decoder uses in messages.
fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

const UNEXPECTED_END: &str = "unexpected end of JSON input";

#[derive(Clone, Copy)]
enum Container {
    Object,
    Array,
}

/// Where a syntax error was found: the offending byte and what the scanner
/// was doing.
type Found = Result<(), String>;

fn invalid(c: u8, context: &str) -> String {
    format!("invalid character {} {context}", quote_char(c))
}

/// Go's `quoteChar`: the byte in single quotes, escaped like a Go string.
fn quote_char(c: u8) -> String {
    match c {
        b'\'' => r"'\''".to_string(),
        b'"' => "'\"'".to_string(),
        b'\\' => r"'\\'".to_string(),
        0x07 => r"'\a'".to_string(),
        0x08 => r"'\b'".to_string(),
        0x0c => r"'\f'".to_string(),
        b'\n' => r"'\n'".to_string(),
        b'\r' => r"'\r'".to_string(),
        b'\t' => r"'\t'".to_string(),
        0x0b => r"'\v'".to_string(),
        0x00..=0x1f | 0x7f => format!(r"'\x{c:02x}'"),
        0x80..=0xa0 | 0xad => format!(r"'\u{c:04x}'"),
        _ => format!("'{}'", char::from(c)),
    }
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn skip_space(&mut self) {
        while self.i < self.b.len() && is_space(self.b[self.i]) {
            self.i += 1;
        }
    }

    /// The next byte, or the end-of-input error.
    fn peek(&self) -> Result<u8, String> {
        self.b.get(self.i).copied().ok_or_else(|| UNEXPECTED_END.to_string())
    }

    fn bump(&mut self) -> Result<u8, String> {
        let c = self.peek()?;
        self.i += 1;
        Ok(c)
    }

    /// A string, with the opening quote at the cursor.
    fn string(&mut self) -> Found {
        self.i += 1;
        loop {
            match self.bump()? {
                b'"' => return Ok(()),
                b'\\' => match self.bump()? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                    b'u' => {
                        for _ in 0..4 {
                            let c = self.bump()?;
                            if !c.is_ascii_hexdigit() {
                                return Err(invalid(c, r"in \u hexadecimal character escape"));
                            }
                        }
                    }
                    c => return Err(invalid(c, "in string escape code")),
                },
                c if c < 0x20 => return Err(invalid(c, "in string literal")),
                _ => {}
            }
        }
    }

    fn digits(&mut self) {
        while self.i < self.b.len() && self.b[self.i].is_ascii_digit() {
            self.i += 1;
        }
    }

    /// A number, with its first byte (`-` or a digit) at the cursor.
    fn number(&mut self) -> Found {
        if self.b[self.i] == b'-' {
            self.i += 1;
            let c = self.peek()?;
            if !c.is_ascii_digit() {
                return Err(invalid(c, "in numeric literal"));
            }
        }
        if self.bump()? != b'0' {
            self.digits();
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            let c = self.peek()?;
            if !c.is_ascii_digit() {
                return Err(invalid(c, "after decimal point in numeric literal"));
            }
            self.digits();
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            let c = self.peek()?;
            if !c.is_ascii_digit() {
                return Err(invalid(c, "in exponent of numeric literal"));
            }
            self.digits();
        }
        Ok(())
    }

    /// `true`, `false` or `null`, with its first byte at the cursor.
    fn literal(&mut self, word: &str) -> Found {
        self.i += 1;
        for expected in word.bytes().skip(1) {
            let c = self.bump()?;
            if c != expected {
                return Err(invalid(
                    c,
                    &format!("in literal {word} (expecting {})", quote_char(expected)),
                ));
            }
        }
        Ok(())
    }

    /// An object key and its colon, with the key's opening quote expected
    /// at the cursor.
    fn key(&mut self) -> Found {
        let c = self.peek()?;
        if c != b'"' {
            return Err(invalid(c, "looking for beginning of object key string"));
        }
        self.string()?;
        self.skip_space();
        let c = self.bump()?;
        if c != b':' {
            return Err(invalid(c, "after object key"));
        }
        Ok(())
    }
}

/// Go's syntax error for `input`, or `None` when Go's scanner accepts it.
pub(crate) fn syntax_error(input: &[u8]) -> Option<String> {
    scan(input).err()
}

fn scan(input: &[u8]) -> Found {
    let mut s = Scanner { b: input, i: 0 };
    let mut stack: Vec<Container> = Vec::new();
    'value: loop {
        s.skip_space();
        match s.peek()? {
            b'{' => {
                s.i += 1;
                s.skip_space();
                if s.peek()? != b'}' {
                    s.key()?;
                    stack.push(Container::Object);
                    continue 'value;
                }
                s.i += 1;
            }
            b'[' => {
                s.i += 1;
                s.skip_space();
                if s.peek()? != b']' {
                    stack.push(Container::Array);
                    continue 'value;
                }
                s.i += 1;
            }
            b'"' => s.string()?,
            b'-' | b'0'..=b'9' => s.number()?,
            b't' => s.literal("true")?,
            b'f' => s.literal("false")?,
            b'n' => s.literal("null")?,
            c => return Err(invalid(c, "looking for beginning of value")),
        }
        // After a complete value: close containers until one wants more.
        loop {
            s.skip_space();
            match stack.last() {
                None => {
                    return match s.b.get(s.i) {
                        None => Ok(()),
                        Some(&c) => Err(invalid(c, "after top-level value")),
                    };
                }
                Some(Container::Object) => match s.bump()? {
                    b',' => {
                        s.skip_space();
                        s.key()?;
                        continue 'value;
                    }
                    b'}' => {
                        stack.pop();
                    }
                    c => return Err(invalid(c, "after object key:value pair")),
                },
                Some(Container::Array) => match s.bump()? {
                    b',' => continue 'value,
                    b']' => {
                        stack.pop();
                    }
                    c => return Err(invalid(c, "after array element")),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_read_like_go() {
        let cases: &[(&str, Option<&str>)] = &[
            ("", Some("unexpected end of JSON input")),
            ("   ", Some("unexpected end of JSON input")),
            ("{", Some("unexpected end of JSON input")),
            ("x", Some("invalid character 'x' looking for beginning of value")),
            (
                "{x",
                Some("invalid character 'x' looking for beginning of object key string"),
            ),
            (r#"{"a" 1}"#, Some("invalid character '1' after object key")),
            (
                r#"{"a":1 "b"}"#,
                Some("invalid character '\"' after object key:value pair"),
            ),
            ("[1 2]", Some("invalid character '2' after array element")),
            ("[1,]", Some("invalid character ']' looking for beginning of value")),
            ("{} x", Some("invalid character 'x' after top-level value")),
            ("01", Some("invalid character '1' after top-level value")),
            ("-x", Some("invalid character 'x' in numeric literal")),
            (
                "1.x",
                Some("invalid character 'x' after decimal point in numeric literal"),
            ),
            ("1ex", Some("invalid character 'x' in exponent of numeric literal")),
            ("tru", Some("unexpected end of JSON input")),
            ("trux", Some("invalid character 'x' in literal true (expecting 'e')")),
            ("nul1", Some("invalid character '1' in literal null (expecting 'l')")),
            ("\"a\\x\"", Some("invalid character 'x' in string escape code")),
            (
                "\"\\u12g4\"",
                Some("invalid character 'g' in \\u hexadecimal character escape"),
            ),
            ("\"a\nb\"", Some("invalid character '\\n' in string literal")),
            (
                "{'a':1}",
                Some("invalid character '\\'' looking for beginning of object key string"),
            ),
            (r#"{"a":[1,{"b":null}],"c":-1.5e+3}"#, None),
            ("[]", None),
            (" {} ", None),
        ];
        for (input, want) in cases {
            assert_eq!(syntax_error(input.as_bytes()).as_deref(), *want, "{input:?}");
        }
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let deep = "[".repeat(1_000_000);
        assert_eq!(syntax_error(deep.as_bytes()).as_deref(), Some(UNEXPECTED_END));
    }
}
