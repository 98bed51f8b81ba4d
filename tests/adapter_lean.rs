//! The lean front (`ssekit::lean`): the demo contract through the axum demo's
//! `--lean` path (SSE by the front, the rest by axum on the same port), and a
//! server of the tests' own for the front's limits: a slow head, an oversized
//! head, requests handed to the router on one kept-alive connection,
//! authorization, refusals and shutdown with streams open.
#![cfg(all(feature = "lean", feature = "axum"))]

#[macro_use]
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use http::StatusCode;
use http::request::Parts;
use hyper_util::service::TowerToHyperService;
use ssekit::lean::{Lean, Refusal};
use ssekit::{Hub, Resume, SseConfig};
use support::checks;
use support::client::{has_comment, read_response, request, send_request, within};
use support::demo::{Demo, DemoApp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

fn start() -> Demo {
    Demo::start(DemoApp::Lean, checks::CONTRACT_FLAGS)
}

contract_tests!(#[tokio::test], detect: checks::Detect::Read);

/// The cookie the test route asks for.
const SESSION: &str = "session=ok";

/// A lean front on `127.0.0.1:0`: `GET /events/{topic}` is the front's (for a
/// client with the [`SESSION`] cookie), the rest goes to an axum router.
struct Front {
    addr: SocketAddr,
    hub: Hub,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Front {
    fn start(lean: Lean, hub: Hub) -> Self {
        let router = Router::new()
            .route("/hello", get(|| async { "hello" }))
            .route("/echo", post(|body: String| async move { body }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("address");
        let (stop, stopped) = oneshot::channel::<()>();
        let service = TowerToHyperService::new(router);
        // The session cookie, then the topic's stream with a 200 ms keep-alive,
        // resuming from `Last-Event-ID`.
        let events = hub.clone();
        let route = move |head: Parts| {
            let topic = head.uri.path().strip_prefix("/events/")?.to_owned();
            let hub = events.clone();
            Some(async move {
                let cookies = head.headers.get_all(http::header::COOKIE);
                let session =
                    |cookie: &[u8]| cookie.split(|&b| b == b';').any(|c| c.trim_ascii() == SESSION.as_bytes());
                if !cookies.iter().any(|cookie| session(cookie.as_bytes())) {
                    return Err(Refusal::new(StatusCode::FORBIDDEN));
                }
                let resume = Resume::from_request(&head.headers, head.uri.query());
                let config = SseConfig::new().keep_alive(Some(Duration::from_millis(200)));
                Ok(hub.sse(&topic, resume).await?.with_config(config))
            })
        };
        let task = tokio::spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            lean.serve(listener, route, service, async move {
                let _ = stopped.await;
            })
            .await
        });
        Self { addr, hub, stop, task }
    }

    /// Stops the front (the hub stays open) and waits, bounded, until `serve` returned.
    async fn stop(self) {
        let _ = self.stop.send(());
        within("serve returns", self.task).await.expect("serve task").expect("serve");
    }
}

fn lean() -> Lean {
    Lean::new().head_timeout(Duration::from_millis(500)).drain(Duration::from_millis(500))
}

/// Reads until the server closes (or 5 s pass): what it sent.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut answer = Vec::new();
    within("close", stream.read_to_end(&mut answer)).await.expect("read until closed");
    answer
}

#[tokio::test]
async fn streams_resume_and_keep_alive_for_an_authorized_client() {
    let front = Front::start(lean(), Hub::new());
    let mut sse = request(front.addr, "GET", "/events/news", &[("cookie", "theme=dark; session=ok")], b"").await;
    sse.assert_sse_headers();
    assert_eq!(sse.header("connection"), Some("close"));
    assert_eq!(sse.header("transfer-encoding"), None, "each frame is written as it is");
    support::server::wait_subscribers(&front.hub, "news", 1).await;
    let first = support::server::publish(&front.hub, "news", "one");
    assert_eq!(sse.next_event().await.data, "one");
    let from = sse.body.len();
    sse.read_until(from, has_comment).await;

    support::server::publish(&front.hub, "news", "two");
    let mut resumed =
        request(front.addr, "GET", "/events/news", &[("cookie", SESSION), ("last-event-id", &first)], b"").await;
    assert_eq!(resumed.next_event().await.data, "two");
    drop(sse);
    drop(resumed);
    support::server::wait_subscribers(&front.hub, "news", 0).await;
    front.stop().await;
}

/// What a streaming client sends after its head is read and dropped (1 MiB
/// here): the stream goes on, and the client's close is still seen.
#[tokio::test]
async fn input_after_the_head_is_dropped() {
    let front = Front::start(lean(), Hub::new());
    let mut stream = within("connect", TcpStream::connect(front.addr)).await.expect("connect");
    send_request(&mut stream, front.addr, "GET", "/events/noisy", &[("cookie", SESSION)], b"").await;
    let junk = vec![b'x'; 64 * 1024];
    for _ in 0..16 {
        within("junk", stream.write_all(&junk)).await.expect("the front reads what it is sent");
    }
    let mut sse = read_response(stream).await;
    sse.assert_sse_headers();
    support::server::wait_subscribers(&front.hub, "noisy", 1).await;
    support::server::publish(&front.hub, "noisy", "heard");
    assert_eq!(sse.next_event().await.data, "heard");
    drop(sse);
    support::server::wait_subscribers(&front.hub, "noisy", 0).await;
    front.stop().await;
}

#[tokio::test]
async fn authorization_refuses_before_any_subscription() {
    let front = Front::start(lean(), Hub::new());
    for headers in [&[][..], &[("cookie", "session=forged")][..]] {
        let mut refused = request(front.addr, "GET", "/events/news", headers, b"").await;
        assert_eq!(refused.status, 403);
        assert_eq!(refused.header("connection"), Some("close"));
        assert!(refused.read_to_end().await.is_empty());
    }
    assert_eq!(front.hub.metrics().subscribers, 0);
    assert_eq!(front.hub.metrics().topics, 0, "no topic was made for a refused client");
    front.stop().await;
}

#[tokio::test]
async fn subscribe_errors_answer_as_the_adapters_do() {
    let front = Front::start(lean(), Hub::builder().max_topic_len(8).build());
    let mut too_long = request(front.addr, "GET", "/events/much-too-long", &[("cookie", SESSION)], b"").await;
    assert_eq!(too_long.status, 400);
    assert!(!too_long.read_to_end().await.is_empty(), "the error as text");
    front.hub.close();
    let mut later = request(front.addr, "GET", "/events/news", &[("cookie", SESSION)], b"").await;
    later.assert_sse_headers();
    let body = String::from_utf8(later.read_to_end().await).expect("UTF-8");
    assert!(body.starts_with("retry: ") && body.ends_with("\n\n"), "a retry hint alone: {body:?}");
    front.stop().await;
}

#[tokio::test]
async fn other_requests_reach_the_router_on_one_kept_alive_connection() {
    let front = Front::start(lean(), Hub::new());
    let mut stream = within("connect", TcpStream::connect(front.addr)).await.expect("connect");
    // The head and the body in one write: the front reads both, and hands both on.
    send_request(&mut stream, front.addr, "POST", "/echo", &[], b"echoed").await;
    let mut echo = read_response(stream).await;
    assert_eq!(echo.status, 200);
    assert_eq!(echo.read_to_end().await, b"echoed");
    // The second request on the same connection: hyper's now.
    let mut stream = echo.into_stream();
    send_request(&mut stream, front.addr, "GET", "/hello", &[], b"").await;
    let mut hello = read_response(stream).await;
    assert_eq!(hello.status, 200);
    assert_eq!(hello.read_to_end().await, b"hello");
    // And a third, that the router does not know.
    let mut stream = hello.into_stream();
    send_request(&mut stream, front.addr, "GET", "/nowhere", &[], b"").await;
    assert_eq!(read_response(stream).await.status, 404);
    front.stop().await;
}

/// Without HTTP keep-alive on handed connections, the router's answer closes
/// its connection, so the client's next request (an `EventSource` after the
/// page, say) comes to the front on a new one.
#[tokio::test]
async fn without_http_keep_alive_every_request_starts_at_the_front() {
    let front = Front::start(lean().http_keep_alive(false), Hub::new());
    let mut stream = within("connect", TcpStream::connect(front.addr)).await.expect("connect");
    send_request(&mut stream, front.addr, "GET", "/hello", &[], b"").await;
    let mut hello = read_response(stream).await;
    assert_eq!(hello.header("connection"), Some("close"));
    assert_eq!(hello.read_to_end().await, b"hello");
    let mut stream = hello.into_stream();
    assert!(read_until_closed(&mut stream).await.is_empty(), "closed after the answer");
    let sse = request(front.addr, "GET", "/events/news", &[("cookie", SESSION)], b"").await;
    sse.assert_sse_headers();
    support::server::wait_subscribers(&front.hub, "news", 1).await;
    drop(sse);
    front.stop().await;
}

#[tokio::test]
async fn a_slow_head_is_dropped_after_the_timeout() {
    let front = Front::start(lean(), Hub::new());
    checks::check_slow_head_dropped_at(front.addr).await;
    assert_eq!(front.hub.metrics().subscribers, 0);
    front.stop().await;
}

#[tokio::test]
async fn an_oversized_head_is_refused_and_closed() {
    let front = Front::start(lean().max_head(2048), Hub::new());
    let mut stream = within("connect", TcpStream::connect(front.addr)).await.expect("connect");
    let head = format!("GET /events/news HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n", "a".repeat(8192));
    // The server may close before it has read everything.
    let _ = stream.write_all(head.as_bytes()).await;
    let answer = String::from_utf8_lossy(&read_until_closed(&mut stream).await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer:?}");

    // So is a head of too many lines, and a head that is no HTTP/1.x.
    let mut lines = String::from("GET /hello HTTP/1.1\r\n");
    for i in 0..101 {
        lines.push_str(&format!("x-{i}: y\r\n"));
    }
    lines.push_str("\r\n");
    for (head, status) in [(lines.as_str(), "431"), ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "400")] {
        let mut stream = within("connect", TcpStream::connect(front.addr)).await.expect("connect");
        let _ = stream.write_all(head.as_bytes()).await;
        let answer = String::from_utf8_lossy(&read_until_closed(&mut stream).await).into_owned();
        assert!(answer.starts_with(&format!("HTTP/1.1 {status} ")), "{answer:?}");
    }
    front.stop().await;
}

#[tokio::test]
async fn shutdown_ends_open_streams_and_handed_connections() {
    let front = Front::start(lean(), Hub::new());
    let mut clients = Vec::new();
    for _ in 0..3 {
        let sse = request(front.addr, "GET", "/events/bye", &[("cookie", SESSION)], b"").await;
        sse.assert_sse_headers();
        clients.push(sse);
    }
    support::server::wait_subscribers(&front.hub, "bye", 3).await;
    support::server::publish(&front.hub, "bye", "last");
    // A connection handed to the router, kept alive and idle.
    let mut idle = within("connect", TcpStream::connect(front.addr)).await.expect("connect");
    send_request(&mut idle, front.addr, "GET", "/hello", &[], b"").await;
    let mut hello = read_response(idle).await;
    assert_eq!(hello.read_to_end().await, b"hello");
    let mut idle = hello.into_stream();

    // The hub stays open: the front itself ends the streams.
    let hub = front.hub.clone();
    front.stop().await;
    for client in &mut clients {
        assert_eq!(client.next_event().await.data, "last");
        assert!(within("stream end", client.try_next_event()).await.is_none());
    }
    assert!(read_until_closed(&mut idle).await.is_empty(), "the idle kept-alive connection is closed");
    support::server::wait_subscribers(&hub, "bye", 0).await;
}
