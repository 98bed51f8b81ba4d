//! Servers under hostile clients, over raw HTTP/1.1: a client that never reads
//! (an axum server of the test's own around `Hub::sse`, in-process, since the
//! demo has no flags for the log's size and the lag policy), connection churn
//! and hostile `/publish` requests (the axum demo app, run as its own process).
//! Nothing is lost, nothing grows without bound, nobody stalls the others.
//!
//! Memory is measured as the server process's resident set (VmRSS in
//! `/proc/<pid>/status`, Linux only; elsewhere those checks are skipped), so the
//! tests of this file run one at a time and the bounds are generous: they catch
//! growth with the published volume or the number of connections, not noise.
#![cfg(feature = "axum")]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use ssekit::{Event, EventId, Hub, LagPolicy};
use support::client::{self, Response, within};
use support::demo::{Demo, DemoApp};
use support::server::{self, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;

/// Held by every test of this file: the memory figures are the process's.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The bound on the loops that move megabytes or run thousands of connections
/// through a debug build: only a guard against a stall of the whole loop, far
/// above how long they take (about a second), since every step inside has its
/// own [`client::TIMEOUT`]. It must not turn a slow machine into a failure.
const LONG: Duration = Duration::from_secs(600);

/// An axum server of `/events?topic=T` over `hub`, in this process.
fn start(hub: Hub) -> Server {
    Server::start(hub, |listener, hub, shutdown| server::serve_axum(listener, server::events_app(hub), shutdown))
}

/// The resident set of `process` (a pid, or `self`) in bytes, if the platform tells it.
fn rss(process: impl std::fmt::Display) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{process}/status")).ok()?;
    let kib = status.lines().find_map(|line| line.strip_prefix("VmRSS:"))?;
    Some(kib.trim().trim_end_matches("kB").trim().parse::<u64>().ok()? * 1024)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

fn offset(event: &ssekit::MessageEvent) -> u64 {
    event.last_event_id.parse::<EventId>().expect("an id the hub issued").offset()
}

// ---- A client that never reads ------------------------------------------------------------------

const EVENTS: u64 = 1000;
const EVENT_DATA: usize = 10 * 1024;
const LOG_BYTES: usize = 1 << 20;
/// How far (in events) the test lets the publisher run ahead of the reading
/// client: well within the log (about 100 events of 10 KiB).
const AHEAD: u64 = 40;

/// A stuck client, the normal client and the server after 1 000 events of 10 KiB.
struct Stuck {
    server: Server,
    /// The connection that sent its request and read nothing since.
    stuck: TcpStream,
    normal: Response,
}

/// Connects a client with a small receive buffer that sends `GET /events?topic=t`
/// and never reads, and a client that reads everything; publishes 1 000 events
/// of 10 KiB; checks that publishing completed, that the reading client got
/// every event in order, and that memory stayed bounded by the log.
async fn publish_past_a_stuck_client(policy: LagPolicy) -> Stuck {
    let server = start(Hub::builder().max_bytes(LOG_BYTES).lag_policy(policy).build());
    let (addr, hub) = (server.addr, server.hub.clone());

    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("small receive buffer");
    let mut stuck = within("connect", socket.connect(addr)).await.expect("connect");
    client::send_request(&mut stuck, addr, "GET", "/events?topic=t", &[], b"").await;
    server::wait_subscribers(&hub, "t", 1).await;
    let mut normal = client::events(addr, "topic=t", &[]).await;
    server::wait_subscribers(&hub, "t", 2).await;

    // The reading client reports its progress so that the test can keep it
    // within the log; the hub itself never waits for anyone.
    let (progress, mut read) = watch::channel(0u64);
    let reader = tokio::spawn(async move {
        for expected in 1..=EVENTS {
            let event = normal.next_event().await;
            // Keep only what the decoder still needs: the body would hold 10 MB.
            normal.body.clear();
            assert_eq!(offset(&event), expected, "the reading client got every event in order");
            assert_eq!(event.data.len(), EVENT_DATA);
            progress.send_replace(expected);
        }
        normal
    });

    let before = rss("self");
    let (mut rss_peak, mut retained_peak) = (before.unwrap_or(0), 0);
    let data = "x".repeat(EVENT_DATA);
    let published = tokio::time::timeout(LONG, async {
        for n in 1..=EVENTS {
            while n > *read.borrow_and_update() + AHEAD {
                read.changed().await.expect("the reader is running");
            }
            hub.try_publish("t", Event::new().data(data.as_str())).expect("publish");
            retained_peak = retained_peak.max(hub.metrics().retained_bytes);
            if n % 50 == 0 {
                rss_peak = rss_peak.max(rss("self").unwrap_or(0));
            }
        }
    })
    .await;
    assert!(published.is_ok(), "publishing 1 000 events completed");
    let normal = tokio::time::timeout(LONG, reader).await.expect("the reading client finished").expect("reader");

    let metrics = hub.metrics();
    assert_eq!((metrics.published, metrics.subscribers), (EVENTS, 2));
    assert!(retained_peak <= LOG_BYTES, "retained {retained_peak} bytes, log limit {LOG_BYTES}");
    assert!(metrics.retained_bytes > LOG_BYTES / 2, "the log is full: {} bytes", metrics.retained_bytes);
    let published_bytes = EVENTS * EVENT_DATA as u64;
    if let Some(before) = before {
        let growth = rss_peak.saturating_sub(before);
        println!(
            "stuck client ({policy:?}): published {:.1} MiB; log holds {:.2} MiB (peak {:.2}); \
             RSS {:.1} MiB before, peak {:.1} MiB, growth {:.1} MiB",
            mib(published_bytes),
            mib(metrics.retained_bytes as u64),
            mib(retained_peak as u64),
            mib(before),
            mib(rss_peak),
            mib(growth),
        );
        // The log (1 MiB), the stuck connection's buffers (socket and server
        // write buffer) and the allocator's slack; far below the 10 MB published.
        assert!(growth < 8 << 20, "RSS grew by {:.1} MiB", mib(growth));
    }
    Stuck { server, stuck, normal }
}

/// Reads what the stuck client was sent before it stopped reading: events in
/// order from the first. Returns the response and how many there were, with
/// the first event after them (`None`: the stream ended).
async fn read_buffered(stuck: TcpStream) -> (Response, u64, Option<ssekit::MessageEvent>) {
    let mut response = client::read_response(stuck).await;
    response.assert_sse_headers();
    let mut buffered = 0;
    loop {
        let event = tokio::time::timeout(LONG, response.try_next_event()).await.expect("the stuck client reads on");
        response.body.clear();
        match event {
            Some(event) if event.event == "message" && offset(&event) == buffered + 1 => buffered += 1,
            other => return (response, buffered, other),
        }
    }
}

#[tokio::test]
async fn stuck_client_is_reset_and_continues() {
    let _serial = SERIAL.lock().await;
    let Stuck { server, stuck, normal } = publish_past_a_stuck_client(LagPolicy::Reset).await;
    assert_eq!(server.hub.metrics().resets_lagged, 0, "counted when the subscription is next polled");

    let (mut stuck, buffered, reset) = read_buffered(stuck).await;
    let reset = reset.expect("a reset after the buffered events");
    assert_eq!(reset.event, "reset", "{reset:?}");
    assert_eq!(reset.data, r#"{"reason":"lagged"}"#);
    let first = offset(&reset) + 1;
    assert!(first > buffered + 1, "events were skipped: {buffered} buffered, continues at {first}");
    println!("stuck client: {buffered} events were buffered, reset, then continued at {first}");
    // Then every retained event in order, then live ones.
    for expected in first..=EVENTS {
        let event = within("retained event", stuck.next_event()).await;
        stuck.body.clear();
        assert_eq!(offset(&event), expected);
    }
    server::publish(&server.hub, "t", "live");
    let live = within("live event", stuck.next_event()).await;
    assert_eq!((live.data.as_str(), offset(&live)), ("live", EVENTS + 1));

    let metrics = server.hub.metrics();
    assert_eq!((metrics.resets_lagged, metrics.disconnects_lagged), (1, 0));
    drop(normal);
    drop(stuck);
    server::wait_subscribers(&server.hub, "t", 0).await;
    server.shutdown().await;
}

#[tokio::test]
async fn stuck_client_is_disconnected_under_that_policy() {
    let _serial = SERIAL.lock().await;
    let Stuck { server, stuck, normal } = publish_past_a_stuck_client(LagPolicy::Disconnect).await;

    let (_stuck, buffered, next) = read_buffered(stuck).await;
    assert!(next.is_none(), "the stream ends after the buffered events: {next:?}");
    assert!(buffered < EVENTS, "the stuck client fell behind");
    println!("stuck client: {buffered} events were buffered, then its stream ended");
    server::wait_subscribers(&server.hub, "t", 1).await;
    let metrics = server.hub.metrics();
    assert_eq!((metrics.disconnects_lagged, metrics.resets_lagged), (1, 0));
    drop(normal);
    server.shutdown().await;
}

// ---- Churn --------------------------------------------------------------------------------------

const CYCLES: usize = 10_000;
const CONCURRENT: usize = 64;

/// Ids to resume from: of a topic with 1 000 events of 1 KiB (the replay is
/// about 1 MB), and of one with 16 events of 64 KiB.
struct Filled {
    replay: Vec<String>,
    big: String,
}

async fn fill(demo: &Demo) -> Filled {
    let mut replay = Vec::new();
    for i in 0..1000 {
        replay.push(demo.publish("replay", &format!("{i:04} {}", "r".repeat(1019))).await);
    }
    let big = demo.publish("big", &"b".repeat(64 * 1024)).await;
    for _ in 1..16 {
        demo.publish("big", &"b".repeat(64 * 1024)).await;
    }
    Filled { replay, big }
}

/// Cycle `i` of the churn: one connection to `/events`, dropped at one of four points.
async fn cycle(addr: SocketAddr, filled: &Filled, i: usize) {
    let mut stream = within("connect", TcpStream::connect(addr)).await.expect("connect");
    match i % 4 {
        // Dropped right after sending the request.
        0 => client::send_request(&mut stream, addr, "GET", &format!("/events?topic=c{i}"), &[], b"").await,
        // Mid-replay: resumes into the filled log, reads a little, leaves.
        1 => {
            let id = &filled.replay[i % 900];
            client::send_request(&mut stream, addr, "GET", "/events?topic=replay", &[("last-event-id", id)], b"").await;
            let mut buf = [0; 4096];
            within("mid-replay read", stream.read(&mut buf)).await.expect("read");
        }
        // Mid-event: a part of the first 64 KiB event.
        2 => {
            let headers = [("last-event-id", filled.big.as_str())];
            client::send_request(&mut stream, addr, "GET", "/events?topic=big", &headers, b"").await;
            let mut buf = [0; 1024];
            within("mid-event read", stream.read(&mut buf)).await.expect("read");
        }
        // A topic of its own, a malformed id: the reset, then gone.
        _ => {
            client::send_request(&mut stream, addr, "GET", &format!("/events?topic=c{i}&lastEventId=nope"), &[], b"")
                .await;
            let mut response = client::read_response(stream).await;
            let reset = within("reset", response.next_event()).await;
            assert_eq!((reset.event.as_str(), reset.data.as_str()), ("reset", r#"{"reason":"malformed"}"#));
        }
    }
}

/// Runs `cycles` cycles, `CONCURRENT` at a time, then waits (bounded) until
/// every subscription is gone.
async fn churn(demo: &Demo, filled: &std::sync::Arc<Filled>, cycles: usize) {
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..CONCURRENT {
        let (addr, filled) = (demo.addr, filled.clone());
        tasks.spawn(async move {
            for i in (worker..cycles).step_by(CONCURRENT) {
                cycle(addr, &filled, i).await;
            }
        });
    }
    let all = tokio::time::timeout(LONG, async {
        while let Some(done) = tasks.join_next().await {
            done.expect("churn worker");
        }
    });
    assert!(all.await.is_ok(), "{cycles} cycles completed");
    client::wait_for("subscribers: every disconnect was noticed", 0, async || demo.subscribers().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_churn_leaves_nothing_behind() {
    let _serial = SERIAL.lock().await;
    // The demo's defaults are those of `Hub::new()`.
    let demo = Demo::start(DemoApp::Axum, &[]);
    let filled = std::sync::Arc::new(fill(&demo).await);
    let baseline = demo.health().await;
    assert_eq!(baseline["topics"], 2);

    // A warm-up round populates the allocator's arenas and the runtime's pools.
    churn(&demo, &filled, 1000).await;
    let before = rss(demo.pid());
    churn(&demo, &filled, CYCLES).await;
    let after = rss(demo.pid());

    let metrics = demo.health().await;
    assert_eq!(metrics["topics"], baseline["topics"], "topics without events are gone");
    assert_eq!(metrics["retained_bytes"], baseline["retained_bytes"]);
    assert_eq!(metrics["published"], baseline["published"]);
    assert_eq!(metrics["resets_malformed"], (1000 + CYCLES as u64) / 4, "every fourth cycle was reset");
    if let (Some(before), Some(after)) = (before, after) {
        let growth = after.saturating_sub(before);
        println!(
            "churn: {CYCLES} cycles ({CONCURRENT} at a time) after 1 000 of warm-up; RSS {:.1} MiB before, \
             {:.1} MiB after, growth {:.1} MiB",
            mib(before),
            mib(after),
            mib(growth)
        );
        assert!(growth < 16 << 20, "RSS grew by {:.1} MiB over {CYCLES} connections", mib(growth));
    }
    // The server still serves.
    let mut sse = client::events(demo.addr, "topic=after", &[]).await;
    demo.publish("after", "still here").await;
    assert_eq!(within("event", sse.next_event()).await.data, "still here");
    demo.shutdown().await;
}

// ---- Hostile /publish requests ------------------------------------------------------------------

/// `POST target` with a body that need not be UTF-8: the status and the body.
async fn post_bytes(addr: SocketAddr, target: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let headers = [("content-type", "application/json"), ("connection", "close")];
    let mut response = client::request(addr, "POST", target, &headers, body).await;
    let body = within("response body", response.read_to_end()).await;
    (response.status, body)
}

/// Asserts a 400 with a JSON `{"error": "..."}`.
#[track_caller]
fn assert_refused(what: &str, status: u16, body: &[u8]) {
    assert_eq!(status, 400, "{what}: {}", String::from_utf8_lossy(body));
    let reply: serde_json::Value = serde_json::from_slice(body).expect("a JSON error");
    assert!(reply["error"].as_str().is_some_and(|e| !e.is_empty()), "{what}: {reply}");
}

/// `POST /publish` with a 2 MiB body, written while the answer is read: the
/// server answers at the limit and may close before the client has written it all.
async fn post_oversized(addr: SocketAddr) -> (u16, Vec<u8>) {
    let stream = within("connect", TcpStream::connect(addr)).await.expect("connect");
    let (mut read, mut write) = stream.into_split();
    let body = vec![b'x'; 2 << 20];
    let head = format!(
        "POST /publish?topic=bad HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let writer = tokio::spawn(async move {
        // The server may stop reading at the limit: a failed write is expected.
        let _ = write.write_all(head.as_bytes()).await;
        let _ = write.write_all(&body).await;
        write
    });
    let mut raw = Vec::new();
    let _ = within("oversized answer", read.read_to_end(&mut raw)).await;
    let _ = within("writer", writer).await;
    let text = String::from_utf8_lossy(&raw);
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
    let body = text.split_once("\r\n\r\n").map(|(_, body)| body.as_bytes().to_vec()).unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn hostile_publish_requests_are_refused() {
    let _serial = SERIAL.lock().await;
    let demo = Demo::start(DemoApp::Axum, &["--history", "4"]);
    let addr = demo.addr;
    // Invalid input the adapter tests do not cover already.
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let bad: [(&str, &[u8]); 17] = [
        ("empty body", b""),
        ("a JSON array", br#"["data", "x"]"#),
        ("a JSON string", br#""x""#),
        ("JSON null", b"null"),
        ("a JSON number", b"42"),
        ("null data", br#"{"data": null}"#),
        ("array data", br#"{"data": ["x"]}"#),
        ("object data", br#"{"data": {"x": 1}}"#),
        ("boolean data", br#"{"data": true}"#),
        ("numeric event", br#"{"event": 5, "data": "x"}"#),
        ("CRLF in event", br#"{"event": "a\r\nb", "data": "x"}"#),
        ("LF at the end of event", br#"{"event": "a\n", "data": "x"}"#),
        ("a lone CR as event", br#"{"event": "\r", "data": "x"}"#),
        ("trailing garbage", br#"{"data": "x"} {"data": "y"}"#),
        ("invalid UTF-8", b"{\"data\": \"\xff\xfe\"}"),
        ("a lone surrogate", br#"{"data": "\ud800"}"#),
        ("nesting 100 000 deep", nested.as_bytes()),
    ];
    for (what, body) in bad {
        let (status, reply) = post_bytes(addr, "/publish?topic=bad", body).await;
        assert_refused(what, status, &reply);
    }

    let (status, reply) = post_oversized(addr).await;
    assert_refused("a 2 MiB body", status, &reply);

    // Topic names: empty, over the hub's limit of 256 bytes, 60 000 bytes.
    for topic in [String::new(), "t".repeat(257), "t".repeat(60_000)] {
        let (status, reply) = post_bytes(addr, &format!("/publish?topic={topic}"), br#"{"data": "x"}"#).await;
        assert_refused(&format!("topic of {} bytes", topic.len()), status, &reply);
        let mut events = client::request(addr, "GET", &format!("/events?topic={topic}"), &[], b"").await;
        let reply = within("events answer", events.read_to_end()).await;
        assert_refused(&format!("subscribing to a topic of {} bytes", topic.len()), events.status, &reply);
    }
    // A request target over 64 KiB is refused by the HTTP server before the
    // demo sees it (hyper: 414), with the connection closed.
    let huge = format!("/publish?topic={}", "t".repeat(64 * 1024));
    let mut response = client::request(addr, "POST", &huge, &[], br#"{"data": "x"}"#).await;
    assert_eq!(response.status, 414, "a 64 KiB query");
    within("414 body", response.read_to_end()).await;

    let metrics = demo.health().await;
    let counts = (metrics["published"].as_u64(), metrics["topics"].as_u64(), metrics["subscribers"].as_u64());
    assert_eq!(counts, (Some(0), Some(0), Some(0)), "nothing published: {metrics}");

    // NUL is legal in data and in an event name on the wire (only an id may not
    // hold one): both round-trip. The server still serves after all of the above.
    let mut sse = client::events(addr, "topic=nul", &[]).await;
    let (status, reply) =
        client::post(addr, "/publish?topic=nul", r#"{"event": "a\u0000b", "data": "x\u0000y"}"#).await;
    assert_eq!(status, 200, "{reply}");
    let event = within("NUL event", sse.next_event()).await;
    assert_eq!((event.event.as_str(), event.data.as_str()), ("a\0b", "x\0y"));
    assert_eq!(Some(event.last_event_id.as_str()), reply["id"].as_str());
    assert_eq!(demo.metric("published").await, 1);
    demo.shutdown().await;
}
