//! [`Refusal`]: the answer to an SSE request that gets no stream, and the
//! complete responses the lean front writes itself.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response, StatusCode, header};

use crate::hub::SubscribeError;

/// Why an SSE request of the lean front gets no stream, and what it is told.
///
/// - from a status ([`Refusal::new`]) or a whole response
///   ([`Refusal::response`]): written as is, with `content-length` and
///   `connection: close`, then the connection is closed;
/// - [`Refusal::try_later`]: a `200` stream that sets a retry delay of 2 to 5 s
///   and ends, so that `EventSource` comes back (any other status stops it for
///   good);
/// - from a [`SubscribeError`] (so `?` works on [`Hub::sse`](crate::Hub::sse)):
///   [`Refusal::try_later`] when the error is temporary, else `400` with the
///   error as text — what the axum and actix-web adapters answer.
///
/// # Examples
///
/// ```
/// use http::StatusCode;
/// use ssekit::lean::Refusal;
///
/// let forbidden = Refusal::new(StatusCode::FORBIDDEN);
/// let json = Refusal::response(
///     http::Response::builder().status(401).header("content-type", "application/json").body(r#"{"error":"log in"}"#.into())?,
/// );
/// # Ok::<(), http::Error>(())
/// ```
#[derive(Debug)]
pub struct Refusal(pub(super) Answer);

#[derive(Debug)]
pub(super) enum Answer {
    Response(Response<Bytes>),
    TryLater,
}

impl Refusal {
    /// `status` with an empty body.
    pub fn new(status: StatusCode) -> Self {
        let mut response = Response::new(Bytes::new());
        *response.status_mut() = status;
        Self(Answer::Response(response))
    }

    /// This response (its `content-length`, `transfer-encoding` and
    /// `connection` headers are the front's to set).
    pub fn response(response: Response<Bytes>) -> Self {
        Self(Answer::Response(response))
    }

    /// A `200` stream with a retry hint of 2 to 5 s that ends at once: "come
    /// back later" as `EventSource` understands it.
    pub fn try_later() -> Self {
        Self(Answer::TryLater)
    }
}

impl From<StatusCode> for Refusal {
    fn from(status: StatusCode) -> Self {
        Self::new(status)
    }
}

impl From<Response<Bytes>> for Refusal {
    fn from(response: Response<Bytes>) -> Self {
        Self::response(response)
    }
}

impl From<SubscribeError> for Refusal {
    fn from(error: SubscribeError) -> Self {
        if error.is_temporary() {
            return Self::try_later();
        }
        let mut response = Response::new(Bytes::from(error.to_string()));
        *response.status_mut() = StatusCode::BAD_REQUEST;
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        Self::response(response)
    }
}

/// The bytes of `response` on an HTTP/1.1 connection that closes after it.
pub(super) fn encode(response: &Response<Bytes>) -> Vec<u8> {
    let body = response.body();
    let headers = response
        .headers()
        .iter()
        .filter(|(name, _)| !matches!(**name, header::CONTENT_LENGTH | header::TRANSFER_ENCODING | header::CONNECTION));
    let mut out = head(response.status(), headers, Some(body.len()));
    out.extend_from_slice(body);
    out
}

/// A response head with `status` and `headers`, then `content-length` if
/// given (else the body ends with the connection) and `connection: close`.
pub(super) fn head<'a>(
    status: StatusCode,
    headers: impl IntoIterator<Item = (&'a HeaderName, &'a HeaderValue)>,
    length: Option<usize>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
    out.extend_from_slice(b"\r\n");
    let line = |out: &mut Vec<u8>, name: &[u8], value: &[u8]| {
        for part in [name, b": ", value, b"\r\n"] {
            out.extend_from_slice(part);
        }
    };
    for (name, value) in headers {
        line(&mut out, name.as_str().as_bytes(), value.as_bytes());
    }
    if let Some(length) = length {
        line(&mut out, b"content-length", length.to_string().as_bytes());
    }
    line(&mut out, b"connection", b"close");
    out.extend_from_slice(b"\r\n");
    out
}

/// The answer to a head the front could not read: `status`, empty.
pub(super) fn status_only(status: StatusCode) -> Vec<u8> {
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = status;
    encode(&response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_sets_length_and_close() {
        let response = Response::builder()
            .status(403)
            .header("content-length", "99")
            .header("x-why", "no")
            .body(Bytes::from_static(b"nope"))
            .unwrap();
        let text = String::from_utf8(encode(&response)).unwrap();
        assert_eq!(text, "HTTP/1.1 403 Forbidden\r\nx-why: no\r\ncontent-length: 4\r\nconnection: close\r\n\r\nnope");
    }
}
