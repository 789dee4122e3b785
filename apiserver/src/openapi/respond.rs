//! Writing one representation of an OpenAPI document: the conditional
//! request checks of Go's `http.ServeContent` (`If-None-Match`, then
//! `If-Modified-Since`, answering 304), `ETag` and `Last-Modified`, and the
//! body either as the stored gzip bytes (`Content-Encoding: gzip`) or
//! decompressed on the fly in small chunks, so a document is never held
//! whole in memory.

use std::io::Read;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;

/// HTTP dates (RFC 9110 IMF-fixdate): `Sun, 06 Nov 1994 08:49:37 GMT`.
const HTTP_DATE: &[FormatItem<'static>] =
    format_description!("[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT");

/// Size of the chunks a decompressed body is streamed in.
const CHUNK: usize = 64 * 1024;

/// What to send: the stored (gzip-compressed) bytes and their metadata.
pub struct Representation {
    pub gzip: &'static [u8],
    pub content_type: &'static str,
    /// The ETag, without quotes.
    pub etag: String,
    pub last_modified: SystemTime,
    /// Whether the client takes `Content-Encoding: gzip`.
    pub gzip_ok: bool,
}

/// Sets a header if `value` is a valid header value (it always is for the
/// ASCII values written here).
pub fn set(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

/// Formats an HTTP date.
pub fn http_date(t: SystemTime) -> String {
    OffsetDateTime::from(t).format(HTTP_DATE).unwrap_or_default()
}

fn parse_http_date(s: &str) -> Option<SystemTime> {
    let t = time::PrimitiveDateTime::parse(s.trim(), HTTP_DATE).ok()?;
    Some(t.assume_utc().into())
}

/// Whether `If-None-Match` names `etag` (weak comparison, `*` matches).
fn none_match(headers: &HeaderMap, etag: &str) -> Option<bool> {
    let value = headers.get(header::IF_NONE_MATCH)?.to_str().ok()?;
    Some(
        value
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag).trim_matches('"') == etag),
    )
}

/// Whether the document is unchanged since `If-Modified-Since` (compared
/// at second precision, like HTTP dates).
fn not_modified_since(headers: &HeaderMap, modified: SystemTime) -> bool {
    let Some(since) = headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date)
    else {
        return false;
    };
    let secs = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs()
    };
    secs(modified) <= secs(since)
}

/// The response for `rep`, with the headers already in `headers` (Vary,
/// Cache-Control...) kept.
pub fn respond(req: &HeaderMap, mut headers: HeaderMap, rep: Representation) -> Response {
    set(&mut headers, header::ETAG, &format!("\"{}\"", rep.etag));
    let unchanged = match none_match(req, &rep.etag) {
        Some(matched) => matched,
        None => not_modified_since(req, rep.last_modified),
    };
    if unchanged {
        // As Go's writeNotModified: no entity headers, and Last-Modified
        // only without an ETag (which is always present here).
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
        *resp.headers_mut() = headers;
        return resp;
    }
    set(&mut headers, header::LAST_MODIFIED, &http_date(rep.last_modified));
    set(&mut headers, header::CONTENT_TYPE, rep.content_type);
    let body = if rep.gzip_ok {
        set(&mut headers, header::CONTENT_ENCODING, "gzip");
        Body::from(Bytes::from_static(rep.gzip))
    } else {
        inflate(rep.gzip)
    };
    let mut resp = Response::new(body);
    *resp.headers_mut() = headers;
    resp
}

/// A body that decompresses `gzip` chunk by chunk as it is sent.
pub fn inflate(gzip: &'static [u8]) -> Body {
    let decoder = flate2::read::GzDecoder::new(gzip);
    let chunks = futures::stream::unfold(Some(decoder), |state| async move {
        let mut decoder = state?;
        let mut buf = vec![0u8; CHUNK];
        let mut filled = 0;
        while filled < CHUNK {
            match decoder.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) => return Some((Err(e), None)),
            }
        }
        if filled == 0 {
            return None;
        }
        buf.truncate(filled);
        Some((Ok(Bytes::from(buf)), Some(decoder)))
    });
    Body::from_stream(chunks)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn http_dates_round_trip() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(784111777);
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(t));
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn conditional_headers() {
        let mut req = HeaderMap::new();
        assert_eq!(none_match(&req, "ABC"), None);
        req.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"X\", W/\"ABC\""));
        assert_eq!(none_match(&req, "ABC"), Some(true));
        assert_eq!(none_match(&req, "AB"), Some(false));
        req.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert_eq!(none_match(&req, "ABC"), Some(true));

        let modified = SystemTime::UNIX_EPOCH + Duration::from_millis(784_111_777_500);
        let mut req = HeaderMap::new();
        req.insert(
            header::IF_MODIFIED_SINCE,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert!(not_modified_since(&req, modified));
        req.insert(
            header::IF_MODIFIED_SINCE,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:36 GMT"),
        );
        assert!(!not_modified_since(&req, modified));
    }
}
