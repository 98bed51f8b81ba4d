//! Shared by the adapter tests: a raw HTTP/1.1 client over `TcpStream` (with a
//! small chunked-transfer decoder feeding [`ssekit::Decoder`]), a handle on a
//! demo server started in-process, and the checks every adapter must pass.
//!
//! Every wait is bounded by [`TIMEOUT`]; nothing asserts on speed.

#![allow(dead_code)] // Each test file uses its own subset.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use ssekit::{Decoder, Event, Hub, MessageEvent, Sse, SseConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Longest any single step may take before the test fails.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(5);

/// `fut`, or a panic naming `what` after [`TIMEOUT`].
pub(crate) async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(TIMEOUT, fut).await {
        Ok(output) => output,
        Err(_) => panic!("timed out: {what}"),
    }
}

/// What a test passes to a demo's `serve` as its shutdown signal.
pub(crate) type ShutdownSignal = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A demo server running in-process on `127.0.0.1:0`.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    pub(crate) hub: Hub,
    stop: oneshot::Sender<()>,
    task: JoinHandle<io::Result<()>>,
}

impl Server {
    /// Binds a port and runs `serve(listener, hub, shutdown)` on a task.
    pub(crate) fn start<F, Fut>(hub: Hub, serve: F) -> Self
    where
        F: FnOnce(std::net::TcpListener, Hub, ShutdownSignal) -> Fut,
        Fut: Future<Output = io::Result<()>> + Send + 'static,
    {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        Self::start_on(listener, hub, serve)
    }

    /// Runs `serve(listener, hub, shutdown)` on a task, on a listener the caller
    /// bound (e.g. the port of a server that was just shut down).
    pub(crate) fn start_on<F, Fut>(listener: std::net::TcpListener, hub: Hub, serve: F) -> Self
    where
        F: FnOnce(std::net::TcpListener, Hub, ShutdownSignal) -> Fut,
        Fut: Future<Output = io::Result<()>> + Send + 'static,
    {
        listener.set_nonblocking(true).expect("non-blocking listener");
        let addr = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown: ShutdownSignal = Box::pin(async move {
            let _ = stopped.await;
        });
        let task = tokio::spawn(serve(listener, hub.clone(), shutdown));
        Self { addr, hub, stop, task }
    }

    /// Closes the hub, then asks the server to shut down gracefully and waits
    /// (bounded) until it has.
    pub(crate) async fn shutdown(self) {
        self.hub.close();
        let _ = self.stop.send(());
        within("graceful shutdown", self.task).await.expect("server task").expect("server result");
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
        assert_eq!(self.header("cache-control"), Some("no-cache"));
        assert_eq!(self.header("x-accel-buffering"), Some("no"));
        assert_eq!(self.header("content-encoding"), None);
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

    /// The whole body.
    pub(crate) async fn read_to_end(&mut self) -> Vec<u8> {
        while self.fill().await {}
        std::mem::take(&mut self.body)
    }
}

/// Polls `hub.subscribers(topic)` every 10 ms until it is `expected`, for at
/// most [`TIMEOUT`].
pub(crate) async fn wait_subscribers(hub: &Hub, topic: &str, expected: usize) {
    let reached = tokio::time::timeout(TIMEOUT, async {
        while hub.subscribers(topic) != expected {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    if reached.await.is_err() {
        assert_eq!(hub.subscribers(topic), expected, "subscribers of {topic} after {TIMEOUT:?}");
    }
}

/// Whether `body` holds a keep-alive comment.
pub(crate) fn has_comment(body: &[u8]) -> bool {
    body.starts_with(b":") || body.windows(2).any(|w| w == b"\n:")
}

/// Publishes `data` on `topic` and returns the id as text.
pub(crate) fn publish(hub: &Hub, topic: &str, data: &str) -> String {
    hub.publish(topic, Event::new().data(data)).expect("publish").to_string()
}

// ---- The checks every adapter runs --------------------------------------------------------------

/// The demo hub of the tests: a short history so that ids get evicted.
pub(crate) fn test_hub() -> Hub {
    Hub::builder().history(4).build()
}

/// Headers, then events published over `/publish` arrive one at a time: each is
/// read before the next is published.
pub(crate) async fn check_events_one_by_one(server: &Server) {
    let mut sse = events(server.addr, "topic=one", &[]).await;
    sse.assert_sse_headers();
    let (status, health) = get_json(server.addr, "/health").await;
    assert_eq!((status, health["subscribers"].as_u64()), (200, Some(1)));
    for i in 0..5 {
        let (status, reply) = post(server.addr, "/publish?topic=one", &format!(r#"{{"data": "n{i}"}}"#)).await;
        assert_eq!(status, 200, "{reply}");
        let event = sse.next_event().await;
        assert_eq!((event.event.as_str(), event.data.as_str()), ("message", format!("n{i}").as_str()));
        assert_eq!(Some(event.last_event_id.as_str()), reply["id"].as_str());
    }
    let (status, reply) = post(server.addr, "/publish?topic=one", r#"{"event": "note", "data": "named"}"#).await;
    assert_eq!(status, 200, "{reply}");
    let event = sse.next_event().await;
    assert_eq!((event.event.as_str(), event.data.as_str()), ("note", "named"));
}

/// `Last-Event-ID` (header or query) replays exactly the missed events; an
/// evicted id gets the `reset` event.
pub(crate) async fn check_resume(server: &Server) {
    let hub = &server.hub;
    let ids: Vec<String> = (1..=6).map(|i| publish(hub, "resume", &format!("e{i}"))).collect();

    let mut sse = events(server.addr, "topic=resume", &[("last-event-id", &ids[3])]).await;
    for (i, id) in ids.iter().enumerate().skip(4) {
        let event = sse.next_event().await;
        assert_eq!((event.data.as_str(), event.last_event_id.as_str()), (format!("e{}", i + 1).as_str(), id.as_str()));
    }
    let live = publish(hub, "resume", "e7");
    let event = sse.next_event().await;
    assert_eq!((event.data.as_str(), event.last_event_id.as_str()), ("e7", live.as_str()));

    // The query parameter when there is no header.
    let mut sse = events(server.addr, &format!("topic=resume&lastEventId={}", ids[5]), &[]).await;
    let event = sse.next_event().await;
    assert_eq!((event.data.as_str(), event.last_event_id.as_str()), ("e7", live.as_str()));

    // History is 4: the first id is gone.
    let mut sse = events(server.addr, "topic=resume", &[("last-event-id", &ids[0])]).await;
    let reset = sse.next_event().await;
    assert_eq!(reset.event, "reset");
    assert!(reset.data.contains("evicted"), "{}", reset.data);
    // Then live, from the reset's id on.
    let live = publish(hub, "resume", "e8");
    let next = sse.next_event().await;
    assert_eq!((next.data.as_str(), next.last_event_id.as_str()), ("e8", live.as_str()));
}

/// How a server notices that a client closed its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detect {
    /// At once: the server reads the connection while it streams (hyper, axum).
    Read,
    /// Only when a write fails (actix-web): the check publishes to give the
    /// server something to write, as a keep-alive would in production.
    Write,
}

/// A client that goes away is unsubscribed (within [`TIMEOUT`]).
pub(crate) async fn check_disconnect(server: &Server, detect: Detect) {
    let sse = events(server.addr, "topic=gone", &[]).await;
    assert_eq!(server.hub.subscribers("gone"), 1);
    let left_before = server.hub.metrics().disconnects_client;
    drop(sse);
    let unsubscribed = tokio::time::timeout(TIMEOUT, async {
        while server.hub.subscribers("gone") != 0 {
            if detect == Detect::Write {
                publish(&server.hub, "gone", "anyone there?");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    if unsubscribed.await.is_err() {
        assert_eq!(server.hub.subscribers("gone"), 0, "unsubscribed within {TIMEOUT:?}");
    }
    assert_eq!(server.hub.metrics().disconnects_client, left_before + 1, "counted as a client that left");
}

/// An invalid `/publish` body is answered 400 with a JSON error, and nothing is published.
pub(crate) async fn check_invalid_publish(server: &Server) {
    let bad = [
        r#"{"event": "a\nb", "data": "x"}"#,
        r#"{"event": "a\rb", "data": "x"}"#,
        r#"{"data": 5}"#,
        r#"{"event": "x"}"#,
        "not json",
    ];
    for body in bad {
        let (status, reply) = post(server.addr, "/publish?topic=bad", body).await;
        assert_eq!(status, 400, "{body}");
        assert!(reply["error"].is_string(), "{reply}");
    }
    let too_big = format!(r#"{{"data": "{}"}}"#, "x".repeat((1 << 20) + 1));
    let (status, _) = post(server.addr, "/publish?topic=bad", &too_big).await;
    assert_eq!(status, 400, "body over the limit");
    assert_eq!(server.hub.metrics().published, 0);
}

/// Graceful shutdown completes while clients are connected, and their streams end.
pub(crate) async fn check_shutdown(server: Server) {
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(events(server.addr, "topic=bye", &[]).await);
    }
    wait_subscribers(&server.hub, "bye", 3).await;
    server.shutdown().await;
    for client in &mut clients {
        assert!(within("stream end", client.try_next_event()).await.is_none());
    }
}

/// A per-request stream (no hub) that a test feeds through a channel: the
/// route handler calls [`Feed::sse`], the test [`Feed::sender`].
#[derive(Clone, Default)]
pub(crate) struct Feed {
    sender: Arc<Mutex<Option<mpsc::Sender<Event>>>>,
}

impl Feed {
    /// The response stream of one request: keep-alive after 200 ms idle.
    pub(crate) fn sse(&self) -> Sse<ssekit::Events<tokio_stream::wrappers::ReceiverStream<Event>>> {
        let (tx, rx) = mpsc::channel(4);
        *self.sender.lock().expect("feed lock") = Some(tx);
        Sse::new(tokio_stream::wrappers::ReceiverStream::new(rx))
            .with_config(SseConfig::new().keep_alive(Some(Duration::from_millis(200))))
    }

    fn sender(&self) -> mpsc::Sender<Event> {
        self.sender.lock().expect("feed lock").take().expect("the route handler ran")
    }
}

/// `GET /stream` of a server whose `/stream` answers [`Feed::sse`]: events
/// arrive one at a time, keep-alive comments come while idle, and the stream
/// ends when the sender is dropped.
pub(crate) async fn check_per_request(addr: SocketAddr, feed: &Feed) {
    let mut sse = request(addr, "GET", "/stream", &[], b"").await;
    sse.assert_sse_headers();
    let tx = feed.sender();
    for i in 0..3 {
        tx.send(Event::new().event("tick").data(format!("t{i}"))).await.expect("send");
        let event = sse.next_event().await;
        assert_eq!((event.event.as_str(), event.data.as_str()), ("tick", format!("t{i}").as_str()));
    }
    let from = sse.body.len();
    sse.read_until(from, has_comment).await;
    tx.send(Event::new().data("after idle")).await.expect("send");
    assert_eq!(sse.next_event().await.data, "after idle");
    drop(tx);
    assert!(sse.try_next_event().await.is_none(), "the stream ends with its source");
}

/// The hub of [`check_refusals`]: one topic at most, of names up to 8 bytes.
#[allow(dead_code)] // Not every test file serves it.
pub(crate) fn refusing_hub() -> Hub {
    Hub::builder().max_topics(1).max_topic_len(8).build()
}

/// A server whose `GET /events/{topic}` returns `hub.sse(topic, resume)` as is,
/// over [`refusing_hub`]: a temporary refusal (the topic limit, a closing hub)
/// is a `200` stream with a retry hint of 2 to 5 s that ends, so `EventSource`
/// comes back; a refused name is a `400`.
#[allow(dead_code)]
pub(crate) async fn check_refusals(server: Server) {
    let addr = server.addr;
    let get = |topic: &str| {
        let target = format!("/events/{topic}");
        async move { request(addr, "GET", &target, &[], b"").await }
    };
    async fn assert_try_later(mut response: Response) {
        response.assert_sse_headers();
        let body = String::from_utf8(response.read_to_end().await).expect("UTF-8");
        let millis: u64 = body
            .strip_prefix("retry: ")
            .and_then(|rest| rest.strip_suffix("\n\n"))
            .and_then(|millis| millis.parse().ok())
            .unwrap_or_else(|| panic!("a retry hint alone: {body:?}"));
        assert!((2_000..=5_000).contains(&millis), "{millis}");
    }
    let held = get("held").await;
    held.assert_sse_headers();
    wait_subscribers(&server.hub, "held", 1).await;
    assert_try_later(get("other").await).await;
    // (Dropped at once: an idle keep-alive connection holds actix-web's graceful stop.)
    assert_eq!(get("much-too-long").await.status, 400);
    server.hub.close();
    assert_try_later(get("held").await).await;
    drop(held);
    server.shutdown().await;
}

/// The demo contract's checks as one `#[test]` each, for a test file whose
/// `start()` serves the demo on some framework; `detect` is how that framework
/// notices a client that left.
#[allow(unused_macros)]
macro_rules! contract_tests {
    (#[$test:meta], detect: $detect:expr) => {
        #[$test]
        async fn events_arrive_one_by_one() {
            let server = start();
            support::check_events_one_by_one(&server).await;
            server.shutdown().await;
        }

        #[$test]
        async fn resume_replays_missed_events_or_resets() {
            let server = start();
            support::check_resume(&server).await;
            server.shutdown().await;
        }

        #[$test]
        async fn disconnected_client_is_unsubscribed() {
            let server = start();
            support::check_disconnect(&server, $detect).await;
            server.shutdown().await;
        }

        #[$test]
        async fn invalid_publish_is_refused() {
            let server = start();
            support::check_invalid_publish(&server).await;
            server.shutdown().await;
        }

        #[$test]
        async fn graceful_shutdown_with_clients_connected() {
            support::check_shutdown(start()).await;
        }
    };
}
