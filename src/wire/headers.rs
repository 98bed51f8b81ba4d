//! The response headers every SSE response carries, shared by all adapters.

use http::{HeaderMap, HeaderName, HeaderValue, header};

/// `Content-Type: text/event-stream`, `Cache-Control: no-cache, no-transform`,
/// `Content-Encoding: identity` and `X-Accel-Buffering: no` (which stops nginx
/// from buffering the stream).
///
/// A compressor holds bytes back until its buffer fills, which for a stream
/// of small events can be never: `Content-Encoding: identity` tells
/// compression middleware the body is already encoded as it should be (actix-web's
/// `Compress` leaves such a response alone; tower-http's `CompressionLayer` also
/// skips `text/event-stream` by its type), and `no-transform` asks proxies not
/// to recode it either.
///
/// # Examples
///
/// ```
/// let mut response = http::Response::new(());
/// for (name, value) in ssekit::RESPONSE_HEADERS {
///     response.headers_mut().insert(name, value);
/// }
/// assert_eq!(response.headers()["content-type"], "text/event-stream");
/// assert_eq!(response.headers()["content-encoding"], "identity");
/// ```
pub const RESPONSE_HEADERS: [(HeaderName, HeaderValue); 4] = [
    (header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream")),
    (header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-transform")),
    (header::CONTENT_ENCODING, HeaderValue::from_static("identity")),
    (HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no")),
];

/// Inserts [`RESPONSE_HEADERS`] into `headers`, replacing values already there.
///
/// # Examples
///
/// ```
/// let mut headers = http::HeaderMap::new();
/// ssekit::insert_response_headers(&mut headers);
/// assert_eq!(headers["cache-control"], "no-cache, no-transform");
/// ```
pub fn insert_response_headers(headers: &mut HeaderMap) {
    for (name, value) in RESPONSE_HEADERS {
        headers.insert(name, value);
    }
}
