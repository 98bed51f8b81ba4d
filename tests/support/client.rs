//! A raw HTTP/1.1 client over `TcpStream`, with a small chunked-transfer
//! decoder feeding [`ssekit::Decoder`], and bounded waiting.
//!
//! Every wait is bounded by [`TIMEOUT`]; nothing asserts on speed.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use ssekit::{Decoder, MessageEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest any single step may take before the test fails.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(5);

/// `fut`, or a panic naming `what` after [`TIMEOUT`].
pub(crate) async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(TIMEOUT, fut).await {
        Ok(output) => output,
        Err(_) => panic!("timed out: {what}"),
    }
}

/// A response read incrementally from a raw HTTP/1.1 connection.
pub(crate) struct Response {
    pub(crate) status: u16,
    headers: Vec<(String, String)>,
    stream: TcpStream,
    raw: BytesMut,
    framing: Framing,
    /// Every body byte received so far, after transfer decoding.
    pub(crate) body: Vec<u8>,
    decoder: Decoder,
    events: VecDeque<MessageEvent>,
}

enum Framing {
    Length(usize),
    /// Chunked: bytes left in the current chunk (`None`: a size line is next),
    /// and whether the chunk's trailing CRLF is still to come.
    Chunked {
        left: Option<usize>,
    },
    UntilClose,
    Done,
}

/// Sends `method target` with `headers` and `body`, and reads the response head.
pub(crate) async fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut stream = within("connect", TcpStream::connect(addr)).await.expect("connect");
    send_request(&mut stream, addr, method, target, headers, body).await;
    read_response(stream).await
}

/// Writes a request for `method target` with `headers` and `body` to `stream`.
pub(crate) async fn send_request(
    stream: &mut TcpStream,
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) {
    let mut head = format!("{method} {target} HTTP/1.1\r\nhost: {addr}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    within("write request", stream.write_all(&bytes)).await.expect("write request");
}

/// Reads the head of the response to a request sent on `stream`.
pub(crate) async fn read_response(mut stream: TcpStream) -> Response {
    let mut raw = BytesMut::with_capacity(4096);
    let end = loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let n = within("response head", stream.read_buf(&mut raw)).await.expect("read head");
        assert!(n > 0, "connection closed before the response head");
    };
    let head = String::from_utf8(raw.split_to(end + 4).to_vec()).expect("UTF-8 head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    let framing = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        Framing::Chunked { left: None }
    } else if let Some(length) = header("content-length") {
        Framing::Length(length.parse().expect("content-length"))
    } else {
        Framing::UntilClose
    };
    let mut response = Response {
        status,
        headers,
        stream,
        raw,
        framing,
        body: Vec::new(),
        decoder: Decoder::new(),
        events: VecDeque::new(),
    };
    response.decode();
    response
}

/// `GET /events?query` with optional extra headers (e.g. `last-event-id`).
pub(crate) async fn events(addr: SocketAddr, query: &str, headers: &[(&str, &str)]) -> Response {
    let response = request(addr, "GET", &format!("/events?{query}"), headers, b"").await;
    assert_eq!(response.status, 200, "GET /events?{query}");
    response
}

/// `POST target` with `body`; the status and the body parsed as JSON.
pub(crate) async fn post(addr: SocketAddr, target: &str, body: &str) -> (u16, serde_json::Value) {
    let headers = [("content-type", "application/json"), ("connection", "close")];
    let mut response = request(addr, "POST", target, &headers, body.as_bytes()).await;
    let body = response.read_to_end().await;
    (response.status, serde_json::from_slice(&body).expect("JSON body"))
}

/// `GET target`; the status and the body parsed as JSON.
pub(crate) async fn get_json(addr: SocketAddr, target: &str) -> (u16, serde_json::Value) {
    let mut response = request(addr, "GET", target, &[("connection", "close")], b"").await;
    let body = response.read_to_end().await;
    (response.status, serde_json::from_slice(&body).expect("JSON body"))
}

impl Response {
    /// The value of header `name` (lowercase).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Asserts the headers every SSE response must carry, and no compression.
    pub(crate) fn assert_sse_headers(&self) {
        assert_eq!(self.status, 200);
        assert_eq!(self.header("content-type"), Some("text/event-stream"));
        assert_eq!(self.header("cache-control"), Some("no-cache, no-transform"));
        assert_eq!(self.header("x-accel-buffering"), Some("no"));
        assert_eq!(self.header("content-encoding"), Some("identity"), "never compressed");
    }

    /// Moves what `raw` holds of the body into `body` and the SSE decoder.
    fn decode(&mut self) {
        let start = self.body.len();
        loop {
            match &mut self.framing {
                Framing::Done => break,
                Framing::UntilClose => {
                    self.body.extend_from_slice(&self.raw.split());
                    break;
                }
                Framing::Length(left) => {
                    let n = (*left).min(self.raw.len());
                    self.body.extend_from_slice(&self.raw.split_to(n));
                    *left -= n;
                    if *left == 0 {
                        self.framing = Framing::Done;
                    }
                    break;
                }
                Framing::Chunked { left: None } => {
                    let Some(end) = self.raw.windows(2).position(|w| w == b"\r\n") else { break };
                    let line = String::from_utf8_lossy(&self.raw[..end]).into_owned();
                    self.raw.advance(end + 2);
                    let size = line.split(';').next().unwrap_or_default().trim();
                    let size = usize::from_str_radix(size, 16).expect("chunk size");
                    // The last chunk; trailers are not used here.
                    self.framing = if size == 0 { Framing::Done } else { Framing::Chunked { left: Some(size) } };
                }
                Framing::Chunked { left: Some(0) } => {
                    if self.raw.len() < 2 {
                        break;
                    }
                    assert_eq!(&self.raw[..2], b"\r\n", "chunk not followed by CRLF");
                    self.raw.advance(2);
                    self.framing = Framing::Chunked { left: None };
                }
                Framing::Chunked { left: Some(left) } => {
                    if self.raw.is_empty() {
                        break;
                    }
                    let n = (*left).min(self.raw.len());
                    self.body.extend_from_slice(&self.raw.split_to(n));
                    *left -= n;
                }
            }
        }
        let events = self.decoder.feed(&self.body[start..]).expect("valid event stream");
        self.events.extend(events);
    }

    /// Reads more of the body; false when the body is complete or the
    /// connection closed.
    async fn fill(&mut self) -> bool {
        if matches!(self.framing, Framing::Done) {
            return false;
        }
        let n = within("response body", self.stream.read_buf(&mut self.raw)).await.unwrap_or(0);
        if n == 0 {
            self.framing = Framing::Done;
            return false;
        }
        self.decode();
        true
    }

    /// The next SSE event, or `None` when the stream ended.
    pub(crate) async fn try_next_event(&mut self) -> Option<MessageEvent> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Some(event);
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    /// The next SSE event; panics when the stream ends first.
    pub(crate) async fn next_event(&mut self) -> MessageEvent {
        self.try_next_event().await.expect("stream ended before the next event")
    }

    /// Reads until the body received so far from `from` on satisfies `done`.
    pub(crate) async fn read_until(&mut self, from: usize, done: impl Fn(&[u8]) -> bool) {
        while !done(&self.body[from.min(self.body.len())..]) {
            assert!(self.fill().await, "body ended while waiting");
        }
    }

    /// The connection, to send another request on once the body was read (a
    /// kept-alive connection); asserts that nothing beyond the body came.
    pub(crate) fn into_stream(self) -> TcpStream {
        assert!(self.raw.is_empty(), "bytes after the response: {:?}", self.raw);
        self.stream
    }

    /// The whole body.
    pub(crate) async fn read_to_end(&mut self) -> Vec<u8> {
        while self.fill().await {}
        std::mem::take(&mut self.body)
    }
}

/// Polls `probe` every 10 ms until it returns `expected`, for at most
/// [`TIMEOUT`] (plus the one probe under way); then asserts that it does.
pub(crate) async fn wait_for<T: PartialEq + Debug>(what: &str, expected: T, mut probe: impl AsyncFnMut() -> T) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let value = probe().await;
        if value == expected {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            assert_eq!(value, expected, "{what} after {TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Whether `body` holds a keep-alive comment.
pub(crate) fn has_comment(body: &[u8]) -> bool {
    body.starts_with(b":") || body.windows(2).any(|w| w == b"\n:")
}
