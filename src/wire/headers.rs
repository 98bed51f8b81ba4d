//! The response headers every SSE response carries, shared by all adapters.

use http::{HeaderMap, HeaderName, HeaderValue, header};

/// `Content-Type: text/event-stream`, `Cache-Control: no-cache` and
/// `X-Accel-Buffering: no` (which stops nginx from buffering the stream).
///
/// Nothing here enables compression: a compressing proxy or middleware would
/// hold events back until its buffer fills.
///
/// # Examples
///
/// ```
/// let mut response = http::Response::new(());
/// for (name, value) in ssekit::RESPONSE_HEADERS {
///     response.headers_mut().insert(name, value);
/// }
/// assert_eq!(response.headers()["content-type"], "text/event-stream");
/// ```
pub const RESPONSE_HEADERS: [(HeaderName, HeaderValue); 3] = [
    (header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream")),
    (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    (HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no")),
];

/// Inserts [`RESPONSE_HEADERS`] into `headers`, replacing values already there.
///
/// # Examples
///
/// ```
/// let mut headers = http::HeaderMap::new();
/// ssekit::insert_response_headers(&mut headers);
/// assert_eq!(headers["cache-control"], "no-cache");
/// ```
pub fn insert_response_headers(headers: &mut HeaderMap) {
    for (name, value) in RESPONSE_HEADERS {
        headers.insert(name, value);
    }
}
