//! The part of Go's `encoding/pem` the CSR checks need: blocks with their
//! type, headers and decoded bytes, found the way `pem.Decode` finds them
//! (text around and between blocks is skipped, and a block whose body is
//! not base64 is passed over).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// One PEM block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub kind: String,
    pub has_headers: bool,
    pub bytes: Vec<u8>,
}

/// Every decodable block of `data`, in order.
pub fn decode_all(data: &[u8]) -> Vec<Block> {
    let text = String::from_utf8_lossy(data);
    let mut blocks = Vec::new();
    let mut rest: &str = &text;
    while let Some(start) = find_begin(rest) {
        rest = &rest[start + "-----BEGIN ".len()..];
        let Some(type_end) = rest.find("-----") else { break };
        let kind = rest[..type_end].to_string();
        let after_type = &rest[type_end + 5..];
        // The BEGIN line must end there.
        let Some(line_end) = after_type.find('\n') else { break };
        if !after_type[..line_end].trim().is_empty() {
            rest = after_type;
            continue;
        }
        let body_start = &after_type[line_end + 1..];
        let end_marker = format!("-----END {kind}-----");
        let Some(end) = body_start.find(&end_marker) else {
            rest = body_start;
            continue;
        };
        let body = &body_start[..end];
        let (has_headers, b64) = split_headers(body);
        let compact: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
        rest = &body_start[end + end_marker.len()..];
        if let Ok(bytes) = STANDARD.decode(compact.as_bytes()) {
            blocks.push(Block {
                kind,
                has_headers,
                bytes,
            });
        }
    }
    blocks
}

/// The first decodable block, like `pem.Decode`.
pub fn decode_first(data: &[u8]) -> Option<Block> {
    decode_all(data).into_iter().next()
}

fn find_begin(s: &str) -> Option<usize> {
    if s.starts_with("-----BEGIN ") {
        return Some(0);
    }
    s.find("\n-----BEGIN ").map(|i| i + 1)
}

/// Headers are `Key: value` lines before a blank line.
fn split_headers(body: &str) -> (bool, &str) {
    let first = body.lines().next().unwrap_or("");
    if first.contains(':')
        && let Some(blank) = body.find("\n\n")
    {
        return (true, &body[blank + 2..]);
    }
    (false, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_blocks() {
        let data = b"junk\n-----BEGIN CERTIFICATE REQUEST-----\naGVsbG8=\n-----END CERTIFICATE REQUEST-----\n-----BEGIN X-----\n!!\n-----END X-----\n-----BEGIN Y-----\nd29ybGQ=\n-----END Y-----\n";
        let blocks = decode_all(data);
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].kind, "CERTIFICATE REQUEST");
        assert_eq!(blocks[0].bytes, b"hello");
        assert_eq!(blocks[1].kind, "Y");
        assert!(decode_first(b"no pem here").is_none());
    }
}
