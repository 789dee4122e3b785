//! A light reader for the watch scenario's event streams: it splits the
//! body into lines and picks out the few fields a watcher needs by scanning
//! bytes, instead of decoding every event as JSON. With 1,000 watchers the
//! load tool reads hundreds of thousands of events a second on the same
//! cores as the server; a full decode per event made the tool, not the
//! server, the bottleneck.
//!
//! It relies on what every apiserver sends: compact JSON (no spaces after
//! `:`), one event per line, `type` first, `metadata.name` the first `name`
//! key of the object and `resourceVersion` the first such key. ERROR lines
//! are rare and decoded in full.

use bytes::{Bytes, BytesMut};
use futures::stream::{BoxStream, StreamExt};
use http_body_util::BodyExt;
use memchr::memmem;
use std::sync::LazyLock;

use super::objects::CREATED_NS;

/// What a watcher needs from one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scanned {
    /// ADDED or MODIFIED: the object's resourceVersion, its index if its
    /// name has the run's prefix, and its creation time if annotated.
    Changed {
        rv: Bytes,
        index: Option<u64>,
        created_ns: Option<u64>,
    },
    Deleted {
        rv: Bytes,
    },
    Bookmark {
        rv: Bytes,
    },
    /// An ERROR event's Status.
    Error {
        code: u16,
        reason: String,
        message: String,
    },
}

/// Finds the string value of one key (`"key":"value"`; the first one).
pub struct Field(memmem::Finder<'static>);

impl Field {
    pub fn new(key: &str) -> Field {
        Field(memmem::Finder::new(format!("\"{key}\":\"").as_bytes()).into_owned())
    }

    /// The byte range of the first value in `line`.
    fn find(&self, line: &[u8]) -> Option<std::ops::Range<usize>> {
        let start = self.0.find(line)? + self.0.needle().len();
        let end = start + memchr::memchr(b'"', line.get(start..)?)?;
        Some(start..end)
    }

    pub fn value<'a>(&self, line: &'a [u8]) -> Option<&'a [u8]> {
        line.get(self.find(line)?)
    }
}

/// The keys a watcher reads.
struct Fields {
    event_type: Field,
    resource_version: Field,
    name: Field,
    created_ns: Field,
}

static FIELDS: LazyLock<Fields> = LazyLock::new(|| Fields {
    event_type: Field::new("type"),
    resource_version: Field::new("resourceVersion"),
    name: Field::new("name"),
    created_ns: Field::new(CREATED_NS),
});

fn number(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 19 {
        return None;
    }
    bytes.iter().try_fold(0u64, |n, b| match b {
        b'0'..=b'9' => Some(n * 10 + u64::from(b - b'0')),
        _ => None,
    })
}

/// A resourceVersion as text.
pub fn rv_string(rv: &Bytes) -> String {
    text(rv)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Reads one event line. `prefix` is the run's object-name prefix.
pub fn scan(line: &Bytes, prefix: &str) -> Result<Scanned, String> {
    let f = &*FIELDS;
    let event_type = f
        .event_type
        .value(line)
        .ok_or_else(|| format!("not a watch event: {}", preview(line)))?;
    if event_type == b"ERROR" {
        return decode_error(line);
    }
    let rv = f
        .resource_version
        .find(line)
        .map(|r| line.slice(r))
        .ok_or_else(|| format!("event without a resourceVersion: {}", preview(line)))?;
    match event_type {
        b"ADDED" | b"MODIFIED" => {
            let index = f
                .name
                .value(line)
                .and_then(|n| n.strip_prefix(prefix.as_bytes()))
                .and_then(number);
            let created_ns = f.created_ns.value(line).and_then(number);
            Ok(Scanned::Changed { rv, index, created_ns })
        }
        b"DELETED" => Ok(Scanned::Deleted { rv }),
        b"BOOKMARK" => Ok(Scanned::Bookmark { rv }),
        other => Err(format!("unknown watch event type {:?}", text(other))),
    }
}

fn decode_error(line: &[u8]) -> Result<Scanned, String> {
    #[derive(serde::Deserialize)]
    struct Status {
        #[serde(default)]
        code: u16,
        #[serde(default)]
        reason: String,
        #[serde(default)]
        message: String,
    }
    #[derive(serde::Deserialize)]
    struct Event {
        object: Status,
    }
    let ev: Event = serde_json::from_slice(line).map_err(|e| format!("an ERROR event that is not a Status: {e}"))?;
    Ok(Scanned::Error {
        code: ev.object.code,
        reason: ev.object.reason,
        message: ev.object.message,
    })
}

fn preview(line: &[u8]) -> String {
    text(line.get(..line.len().min(120)).unwrap_or(line))
}

/// Splits a byte stream into lines (without the newline); a last line
/// without a newline is dropped, as a truncated event.
#[derive(Default)]
pub struct Lines {
    buf: BytesMut,
}

impl Lines {
    /// Adds a chunk; returns the complete lines it finished.
    pub fn push(&mut self, chunk: Bytes) -> Vec<Bytes> {
        let mut out = Vec::new();
        if self.buf.is_empty() {
            // Common case: the chunk holds whole lines; slice it, no copy.
            let mut chunk = chunk;
            while let Some(i) = memchr::memchr(b'\n', &chunk) {
                let line = chunk.split_to(i + 1);
                out.push(line.slice(..i));
            }
            self.buf.extend_from_slice(&chunk);
            return out;
        }
        self.buf.extend_from_slice(&chunk);
        while let Some(i) = memchr::memchr(b'\n', &self.buf) {
            let mut line = self.buf.split_to(i + 1);
            line.truncate(i);
            out.push(line.freeze());
        }
        out
    }
}

/// The events of a watch response body, scanned, a chunk's worth at a
/// time; an I/O error ends the stream with an error item.
pub fn events(body: kube::client::Body, prefix: String) -> BoxStream<'static, Result<Vec<Scanned>, String>> {
    body.into_data_stream()
        .scan(Lines::default(), move |lines, chunk| {
            let item = match chunk {
                Ok(chunk) => lines
                    .push(chunk)
                    .iter()
                    .filter(|l| !l.is_empty())
                    .map(|l| scan(l, &prefix))
                    .collect::<Result<Vec<_>, _>>(),
                Err(e) => Err(format!("reading the watch: {e}")),
            };
            futures::future::ready(Some(item))
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn scans_added_events() {
        let line = format!(
            r#"{{"type":"ADDED","object":{{"kind":"ConfigMap","apiVersion":"v1","metadata":{{"name":"w-r-3","namespace":"n","resourceVersion":"9","annotations":{{"{CREATED_NS}":"123"}}}},"data":{{"name":"x"}}}}}}"#
        );
        assert_eq!(
            scan(&Bytes::from(line.clone()), "w-r-").unwrap(),
            Scanned::Changed {
                rv: Bytes::from_static(b"9"),
                index: Some(3),
                created_ns: Some(123)
            }
        );
        // Another run's object: counted by nobody, but its rv is kept.
        assert_eq!(
            scan(&Bytes::from(line), "w-other-").unwrap(),
            Scanned::Changed {
                rv: Bytes::from_static(b"9"),
                index: None,
                created_ns: Some(123)
            }
        );
    }

    #[test]
    fn scans_other_event_types() {
        let bm = br#"{"type":"BOOKMARK","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"resourceVersion":"12"}}}"#;
        assert_eq!(
            scan(&Bytes::from_static(bm), "p").unwrap(),
            Scanned::Bookmark {
                rv: Bytes::from_static(b"12")
            }
        );
        let del = br#"{"type":"DELETED","object":{"metadata":{"name":"a","resourceVersion":"13"}}}"#;
        assert_eq!(
            scan(&Bytes::from_static(del), "p").unwrap(),
            Scanned::Deleted {
                rv: Bytes::from_static(b"13")
            }
        );
        let err = br#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 1 (5)","reason":"Expired","code":410}}"#;
        assert_eq!(
            scan(&Bytes::from_static(err), "p").unwrap(),
            Scanned::Error {
                code: 410,
                reason: "Expired".into(),
                message: "too old resource version: 1 (5)".into()
            }
        );
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            &b""[..],
            b"{}",
            b"not json",
            br#"{"type":"ADDED"}"#,
            br#"{"type":"ODD","x":{"resourceVersion":"1"}}"#,
            br#"{"type":"ERROR","object":3}"#,
        ] {
            assert!(
                scan(&Bytes::from_static(bad), "p").is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn lines_across_chunks() {
        let mut l = Lines::default();
        assert_eq!(
            l.push(Bytes::from_static(b"a\nbb\ncc")),
            vec![Bytes::from_static(b"a"), Bytes::from_static(b"bb")]
        );
        assert!(l.push(Bytes::from_static(b"c")).is_empty());
        assert_eq!(
            l.push(Bytes::from_static(b"c\nd\n")),
            vec![Bytes::from_static(b"cccc"), Bytes::from_static(b"d")]
        );
        assert_eq!(l.push(Bytes::from_static(b"e\n")), vec![Bytes::from_static(b"e")]);
        assert!(l.push(Bytes::new()).is_empty());
    }
}
