//! Reading and parsing a request head: [`parse_head`] and [`HeadError`].

use std::time::Duration;

use http::request::Parts;
use http::{HeaderName, HeaderValue, Method, Request, Version};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The most header lines a request head may have (hyper's default too).
pub(super) const MAX_HEADERS: usize = 100;

/// How much more room the head buffer gets each time it is full: most heads
/// fit at once, a long one grows the buffer step by step up to the limit.
const STEP: usize = 1024;

/// Why a request head was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeadError {
    /// Longer than the limit, or more than 100 header lines (answered `431`).
    #[error("request head over the limit")]
    TooLarge,
    /// Not an HTTP/1.x request head (answered `400`).
    #[error("malformed request head: {0}")]
    Malformed(String),
}

/// Parses the request head at the start of `bytes`, as the lean front does
/// with what it read from a connection.
///
/// Returns `Ok(None)` while the head is incomplete, and `Ok(Some((parts, len)))`
/// once it is complete: the method, target, version and headers, and the
/// length of the head in `bytes` (what follows is the body or the next request).
/// Header values are kept as bytes (an `EventSource` sends `Last-Event-ID` as
/// UTF-8).
///
/// # Errors
///
/// [`HeadError::TooLarge`] for more than 100 header lines,
/// [`HeadError::Malformed`] for anything that is not an HTTP/1.x request head
/// (including HTTP/2's connection preface).
///
/// # Examples
///
/// ```
/// let (parts, len) = ssekit::lean::parse_head(b"GET /events?topic=a HTTP/1.1\r\nLast-Event-ID: 1-2\r\n\r\nrest")?
///     .expect("a complete head");
/// assert_eq!((parts.uri.path(), parts.uri.query(), len), ("/events", Some("topic=a"), 52));
/// assert_eq!(parts.headers["last-event-id"], "1-2");
/// assert!(ssekit::lean::parse_head(b"GET / HTTP/1.1\r\nHost:")?.is_none());
/// # Ok::<(), ssekit::lean::HeadError>(())
/// ```
pub fn parse_head(bytes: &[u8]) -> Result<Option<(Parts, usize)>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(bytes) {
        Ok(httparse::Status::Partial) => return Ok(None),
        Ok(httparse::Status::Complete(len)) => len,
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(err) => return Err(HeadError::Malformed(err.to_string())),
    };
    let malformed = |what: &str| HeadError::Malformed(what.to_owned());
    // A complete parse has all three.
    let (Some(method), Some(target), Some(minor)) = (request.method, request.path, request.version) else {
        return Err(malformed("incomplete request line"));
    };
    let method = Method::from_bytes(method.as_bytes()).map_err(|_| malformed("invalid method"))?;
    let version = if minor == 0 { Version::HTTP_10 } else { Version::HTTP_11 };
    let mut builder = Request::builder().method(method).uri(target).version(version);
    let Some(map) = builder.headers_mut() else {
        return Err(malformed("invalid request target"));
    };
    map.reserve(request.headers.len());
    for header in request.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes()).map_err(|_| malformed("invalid header name"))?;
        let value = HeaderValue::from_bytes(header.value).map_err(|_| malformed("invalid header value"))?;
        map.append(name, value);
    }
    let request = builder.body(()).map_err(|_| malformed("invalid request target"))?;
    Ok(Some((request.into_parts().0, len)))
}

/// Why no head was read.
#[derive(Debug)]
pub(super) enum ReadFailure {
    /// Over the limit, or malformed: answer it.
    Head(HeadError),
    /// The head did not arrive within the timeout.
    Timeout,
    /// The client closed or the connection failed before the head was complete.
    Gone,
}

/// Reads from `tcp` until a request head is complete, within `timeout` and
/// `max_len` bytes: the parsed head and every byte read (the head and whatever
/// came after it). The buffer is on the heap and freed with the returned
/// bytes, so a connection that goes on to stream holds none of it.
pub(super) async fn read_head(
    tcp: &mut TcpStream,
    max_len: usize,
    timeout: Duration,
) -> Result<(Parts, Vec<u8>), ReadFailure> {
    let read = async {
        let mut buf = Vec::new();
        loop {
            let filled = buf.len();
            if filled > max_len {
                return Err(ReadFailure::Head(HeadError::TooLarge));
            }
            // At most one byte past the limit is read: enough to know it is over.
            buf.resize((filled + STEP).min(max_len.saturating_add(1)), 0);
            let n = match tcp.read(&mut buf[filled..]).await {
                Ok(0) | Err(_) => return Err(ReadFailure::Gone),
                Ok(n) => n,
            };
            buf.truncate(filled + n);
            match parse_head(&buf[..buf.len().min(max_len)]) {
                Ok(Some((parts, _))) => return Ok((parts, buf)),
                Ok(None) => {}
                Err(err) => return Err(ReadFailure::Head(err)),
            }
        }
    };
    tokio::time::timeout(timeout, read).await.unwrap_or(Err(ReadFailure::Timeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_many_headers_is_too_large() {
        let mut head = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            head.extend_from_slice(format!("x-{i}: y\r\n").as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        assert!(matches!(parse_head(&head), Err(HeadError::TooLarge)));
    }

    #[test]
    fn http2_preface_and_garbage_are_malformed() {
        assert!(matches!(parse_head(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Err(HeadError::Malformed(_))));
        assert!(matches!(parse_head(b"\x16\x03\x01\x02\x00"), Err(HeadError::Malformed(_))));
        assert!(matches!(parse_head(b"GET /\x7f HTTP/1.1\r\n\r\n"), Err(HeadError::Malformed(_))));
    }

    #[test]
    fn utf8_header_values_are_kept_as_bytes() {
        let (parts, _) = parse_head("GET / HTTP/1.0\r\nLast-Event-ID: é\r\n\r\n".as_bytes()).unwrap().unwrap();
        assert_eq!(parts.headers["last-event-id"].as_bytes(), "é".as_bytes());
        assert_eq!(parts.version, Version::HTTP_10);
    }
}
