//! The checks every adapter must pass: the demo contract, run against a demo
//! app's process ([`contract_tests!`]), and the checks of a test's own
//! in-process server (per-request streams, refusals).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ssekit::{Event, Hub, Sse, SseConfig};
use tokio::sync::mpsc;

use super::client::{Response, events, get_json, has_comment, post, request, within};
use super::demo::Demo;
use super::server::{Server, wait_subscribers};

/// The demo flags of the contract tests: a short history so that ids get
/// evicted; short head and stall timeouts, so that the checks of both are quick.
pub(crate) const CONTRACT_FLAGS: &[&str] =
    &["--history", "4", "--header-timeout", "1", "--stall-timeout", "2", "--max-topics", "50"];

/// The stall timeout of [`CONTRACT_FLAGS`].
const STALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Headers, then events published over `/publish` arrive one at a time: each is
/// read before the next is published.
pub(crate) async fn check_events_one_by_one(demo: &Demo) {
    let mut sse = events(demo.addr, "topic=one", &[]).await;
    sse.assert_sse_headers();
    let (status, health) = get_json(demo.addr, "/health").await;
    assert_eq!((status, health["subscribers"].as_u64()), (200, Some(1)));
    for i in 0..5 {
        let (status, reply) = post(demo.addr, "/publish?topic=one", &format!(r#"{{"data": "n{i}"}}"#)).await;
        assert_eq!(status, 200, "{reply}");
        let event = sse.next_event().await;
        assert_eq!((event.event.as_str(), event.data.as_str()), ("message", format!("n{i}").as_str()));
        assert_eq!(Some(event.last_event_id.as_str()), reply["id"].as_str());
    }
    let (status, reply) = post(demo.addr, "/publish?topic=one", r#"{"event": "note", "data": "named"}"#).await;
    assert_eq!(status, 200, "{reply}");
    let event = sse.next_event().await;
    assert_eq!((event.event.as_str(), event.data.as_str()), ("note", "named"));
}

/// `Last-Event-ID` (header or query) replays exactly the missed events; an
/// evicted id gets the `reset` event.
pub(crate) async fn check_resume(demo: &Demo) {
    let mut ids = Vec::new();
    for i in 1..=6 {
        ids.push(demo.publish("resume", &format!("e{i}")).await);
    }

    let mut sse = events(demo.addr, "topic=resume", &[("last-event-id", &ids[3])]).await;
    for (i, id) in ids.iter().enumerate().skip(4) {
        let event = sse.next_event().await;
        assert_eq!((event.data.as_str(), event.last_event_id.as_str()), (format!("e{}", i + 1).as_str(), id.as_str()));
    }
    let live = demo.publish("resume", "e7").await;
    let event = sse.next_event().await;
    assert_eq!((event.data.as_str(), event.last_event_id.as_str()), ("e7", live.as_str()));

    // The query parameter when there is no header.
    let mut sse = events(demo.addr, &format!("topic=resume&lastEventId={}", ids[5]), &[]).await;
    let event = sse.next_event().await;
    assert_eq!((event.data.as_str(), event.last_event_id.as_str()), ("e7", live.as_str()));

    // History is 4: the first id is gone.
    let mut sse = events(demo.addr, "topic=resume", &[("last-event-id", &ids[0])]).await;
    let reset = sse.next_event().await;
    assert_eq!(reset.event, "reset");
    assert!(reset.data.contains("evicted"), "{}", reset.data);
    // Then live, from the reset's id on.
    let live = demo.publish("resume", "e8").await;
    let next = sse.next_event().await;
    assert_eq!((next.data.as_str(), next.last_event_id.as_str()), ("e8", live.as_str()));
}

/// `GET /events?topic=A&topic=B…`: one stream of several topics, each event's
/// id naming its topic by index; one `Last-Event-ID` resumes every topic
/// exactly; an evicted topic gets one `reset` that names it while the others
/// resume; `history=N` for a new client; over 8 topics a `400`.
pub(crate) async fn check_several_topics(demo: &Demo) {
    let query = "topic=x&topic=y&topic=z";
    let mut sse = events(demo.addr, query, &[]).await;
    sse.assert_sse_headers();
    let mut last = String::new();
    for (n, topic) in ["x", "y", "z", "y"].iter().enumerate() {
        demo.publish(topic, &format!("{topic}{n}")).await;
        let event = sse.next_event().await;
        assert_eq!(event.data, format!("{topic}{n}"));
        let index = ["x", "y", "z"].iter().position(|t| t == topic).unwrap();
        assert!(event.last_event_id.starts_with(&format!("{index}.")), "{} names {topic}", event.last_event_id);
        last = event.last_event_id;
    }
    assert!(last.len() <= 50, "a short id: {last}");
    drop(sse);

    // Missed while away: x twice, z once. The history is 4 per topic, so y,
    // with 5 more, is evicted: one reset names it, the others resume exactly.
    demo.publish("x", "x-missed-1").await;
    demo.publish("x", "x-missed-2").await;
    demo.publish("z", "z-missed").await;
    for n in 0..5 {
        demo.publish("y", &format!("y-gone-{n}")).await;
    }
    let mut sse = events(demo.addr, query, &[("last-event-id", &last)]).await;
    let mut got = Vec::new();
    for _ in 0..4 {
        let event = sse.next_event().await;
        got.push((event.event, event.data));
    }
    got.sort();
    assert_eq!(
        got,
        [
            ("message".to_owned(), "x-missed-1".to_owned()),
            ("message".to_owned(), "x-missed-2".to_owned()),
            ("message".to_owned(), "z-missed".to_owned()),
            ("reset".to_owned(), r#"{"topic":"y","reason":"evicted"}"#.to_owned()),
        ]
    );
    drop(sse);

    // A new client asks for history: the last 2 of each topic first.
    let mut sse = events(demo.addr, "topic=x&topic=z&history=2", &[]).await;
    let mut recent = Vec::new();
    for _ in 0..4 {
        recent.push(sse.next_event().await.data);
    }
    recent.sort();
    assert_eq!(recent, ["x-missed-1", "x-missed-2", "z-missed", "z2"]);
    drop(sse);

    // Over the limit of 8 topics: refused whole, as a client error.
    let nine: Vec<String> = (0..9).map(|n| format!("topic=t{n}")).collect();
    let (status, reply) = get_json(demo.addr, &format!("/events?{}", nine.join("&"))).await;
    assert_eq!(status, 400, "{reply}");
    assert!(reply["error"].as_str().is_some_and(|error| error.contains('8')), "{reply}");
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

/// A client that goes away is unsubscribed (within the bound), and counted as a
/// client that left. (Its stream is the demo's only one: the counts over all
/// topics are those of its topic.)
pub(crate) async fn check_disconnect(demo: &Demo, detect: Detect) {
    let sse = events(demo.addr, "topic=gone", &[]).await;
    assert_eq!(demo.subscribers().await, 1);
    let left_before = demo.metric("disconnects_client").await;
    drop(sse);
    super::client::wait_for("subscribers once the client left", 0, async || {
        if detect == Detect::Write {
            demo.publish("gone", "anyone there?").await;
        }
        demo.subscribers().await
    })
    .await;
    assert_eq!(demo.metric("disconnects_client").await, left_before + 1, "counted as a client that left");
}

/// An invalid `/publish` body is answered 400 with a JSON error, and nothing is published.
pub(crate) async fn check_invalid_publish(demo: &Demo) {
    let bad = [
        r#"{"event": "a\nb", "data": "x"}"#,
        r#"{"event": "a\rb", "data": "x"}"#,
        r#"{"data": 5}"#,
        r#"{"event": "x"}"#,
        "not json",
    ];
    for body in bad {
        let (status, reply) = post(demo.addr, "/publish?topic=bad", body).await;
        assert_eq!(status, 400, "{body}");
        assert!(reply["error"].is_string(), "{reply}");
    }
    let too_big = format!(r#"{{"data": "{}"}}"#, "x".repeat((1 << 20) + 1));
    let (status, _) = post(demo.addr, "/publish?topic=bad", &too_big).await;
    assert_eq!(status, 400, "body over the limit");
    assert_eq!(demo.metric("published").await, 0);
}

/// SIGTERM while clients are connected: the demo's graceful shutdown completes
/// on its own (see [`Demo::wait_exit`]), and their streams end.
pub(crate) async fn check_shutdown(demo: Demo) {
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(events(demo.addr, "topic=bye", &[]).await);
    }
    demo.wait_subscribers(3).await;
    demo.shutdown().await;
    for client in &mut clients {
        assert!(within("stream end", client.try_next_event()).await.is_none());
    }
}

/// A client that sends its request head a byte at a time (slowloris) is
/// dropped once the head timeout has passed (the demo may answer `408` first),
/// long before its head would be complete.
pub(crate) async fn check_slow_head_dropped(demo: &Demo) {
    check_slow_head_dropped_at(demo.addr).await;
}

/// [`check_slow_head_dropped`] against a server at `addr` with a head timeout
/// of at most 1 s.
pub(crate) async fn check_slow_head_dropped_at(addr: SocketAddr) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let head = format!("GET /health HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n", "a".repeat(200));
    let mut stream = within("connect", tokio::net::TcpStream::connect(addr)).await.expect("connect");
    let mut sent = 0;
    let mut answer = Vec::new();
    // 5 bytes a second: the whole head would take over 40 s.
    let closed = loop {
        if stream.write_all(&head.as_bytes()[sent..sent + 1]).await.is_err() {
            break true;
        }
        sent += 1;
        let mut buf = [0u8; 512];
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => break true,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        if sent == head.len() {
            break false;
        }
    };
    let answer = String::from_utf8_lossy(&answer);
    assert!(closed, "a byte-a-time head was served in full: {answer:?}");
    assert!(sent < 40, "dropped after {sent} bytes, over 8 s: the head timeout is 1 s");
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer:?}");
}

/// The bytes waiting in the kernel's send queues of the demo's side of its
/// connections (`/proc/net/tcp`, Linux).
fn send_queues(demo: &Demo) -> u64 {
    let port = format!(":{:04X}", demo.addr.port());
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    let local = fields.get(1)?;
                    let queue = fields.get(4)?.split(':').next()?;
                    local.ends_with(&port).then(|| u64::from_str_radix(queue, 16).ok()).flatten()
                })
                .collect::<Vec<_>>()
        })
        .sum()
}

/// Clients that stop reading: each has a small receive buffer and reads
/// nothing after its request.
async fn stalled_clients(demo: &Demo, topic: &str, count: usize) -> Vec<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;

    let head = format!("GET /events?topic={topic} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n");
    let mut clients = Vec::with_capacity(count);
    for _ in 0..count {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("receive buffer");
        let mut stream = within("connect", socket.connect(demo.addr)).await.expect("connect");
        within("request", stream.write_all(head.as_bytes())).await.expect("request");
        clients.push(stream);
    }
    clients
}

/// Publishes `count` events of 64 KiB on `topic`, each once `reader` has the
/// one before: a backlog for clients that do not read, none for one that does.
async fn backlog(demo: &Demo, topic: &str, reader: &mut Response, count: usize) {
    let data = "x".repeat(64 * 1024);
    for i in (0..count).map(|i| i % 10) {
        let (status, reply) =
            post(demo.addr, &format!("/publish?topic={topic}"), &format!(r#"{{"data": "{i}{data}"}}"#)).await;
        assert_eq!(status, 200, "{reply}");
        let event = reader.next_event().await;
        assert_eq!((event.event.as_str(), &event.data[..i.to_string().len()]), ("message", i.to_string().as_str()));
    }
}

/// 1 000 clients that stop reading, beside one that reads: the stalled ones
/// are let go within the stall timeout (and the kernel's slack), counted as
/// stalled, and the kernel's send queues for them are freed; the reader loses
/// nothing.
pub(crate) async fn check_stalled_clients_let_go(demo: &Demo) {
    const STALLED: usize = 1000;
    let mut reader = events(demo.addr, "topic=stall", &[]).await;
    let stalled = stalled_clients(demo, "stall", STALLED).await;
    demo.wait_subscribers(STALLED as u64 + 1).await;
    backlog(demo, "stall", &mut reader, 16).await;
    let queued = send_queues(demo);
    assert!(queued > STALLED as u64 * 4096, "the stalled clients' data waits in the kernel: {queued} bytes");

    // Let go within the timeout, plus the kernel's probe interval and a margin,
    // while the topic goes on (so that events wait for them).
    let deadline = tokio::time::Instant::now() + STALL_TIMEOUT * 10;
    while demo.subscribers().await > 1 {
        assert!(tokio::time::Instant::now() < deadline, "{} still subscribed", demo.subscribers().await);
        backlog(demo, "stall", &mut reader, 1).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(demo.metric("disconnects_stalled").await, STALLED as u64, "counted as stalled");
    assert!(send_queues(demo) < 256 * 1024, "the kernel's send queues are freed: {} bytes", send_queues(demo));
    // The reader is still served, in order, without a reset.
    backlog(demo, "stall", &mut reader, 2).await;
    drop(stalled);
}

/// SIGTERM while clients that stopped reading hold a backlog: the demo exits
/// on its own, closing their connections rather than waiting for them (see
/// [`Demo::wait_exit`]).
pub(crate) async fn check_shutdown_under_backlog(demo: Demo) {
    const STALLED: usize = 200;
    let mut reader = events(demo.addr, "topic=backlog", &[]).await;
    let stalled = stalled_clients(&demo, "backlog", STALLED).await;
    demo.wait_subscribers(STALLED as u64 + 1).await;
    backlog(&demo, "backlog", &mut reader, 16).await;
    let started = std::time::Instant::now();
    demo.shutdown().await;
    eprintln!("exited {:?} after SIGTERM with {STALLED} stalled clients", started.elapsed());
    drop(stalled);
}

/// Publishes to 200 fresh topic names at a limit of 50 ([`CONTRACT_FLAGS`]):
/// every one is accepted (idle topics give their places), and a followed topic
/// keeps its place and its client.
pub(crate) async fn check_topic_flood(demo: &Demo) {
    let mut follower = events(demo.addr, "topic=followed", &[]).await;
    demo.wait_subscribers(1).await;
    for n in 0..200 {
        let (status, reply) = post(demo.addr, &format!("/publish?topic=fresh-{n}"), r#"{"data": "x"}"#).await;
        assert_eq!(status, 200, "fresh-{n}: {reply}");
    }
    assert!(demo.metric("topics").await <= 50);
    let (status, reply) = post(demo.addr, "/publish?topic=followed", r#"{"data": "still here"}"#).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(follower.next_event().await.data, "still here");
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
pub(crate) fn refusing_hub() -> Hub {
    Hub::builder().max_topics(1).max_topic_len(8).build()
}

/// A server whose `GET /events/{topic}` returns `hub.sse(topic, resume).await` as is,
/// over [`refusing_hub`]: a temporary refusal (the topic limit, a closing hub)
/// is a `200` stream with a retry hint of 2 to 5 s that ends, so `EventSource`
/// comes back; a refused name is a `400`.
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
/// `start()` starts the demo app of some framework ([`Demo::start`] with
/// [`CONTRACT_FLAGS`]); `detect` is how that framework notices a client that left.
macro_rules! contract_tests {
    (#[$test:meta], detect: $detect:expr) => {
        #[$test]
        async fn events_arrive_one_by_one() {
            let demo = start();
            support::checks::check_events_one_by_one(&demo).await;
            demo.shutdown().await;
        }

        #[$test]
        async fn resume_replays_missed_events_or_resets() {
            let demo = start();
            support::checks::check_resume(&demo).await;
            demo.shutdown().await;
        }

        #[$test]
        async fn several_topics_on_one_stream() {
            let demo = start();
            support::checks::check_several_topics(&demo).await;
            demo.shutdown().await;
        }

        #[$test]
        async fn disconnected_client_is_unsubscribed() {
            let demo = start();
            support::checks::check_disconnect(&demo, $detect).await;
            demo.shutdown().await;
        }

        #[$test]
        async fn invalid_publish_is_refused() {
            let demo = start();
            support::checks::check_invalid_publish(&demo).await;
            demo.shutdown().await;
        }

        #[$test]
        async fn graceful_shutdown_with_clients_connected() {
            support::checks::check_shutdown(start()).await;
        }

        #[$test]
        async fn a_slow_request_head_is_dropped() {
            let demo = start();
            support::checks::check_slow_head_dropped(&demo).await;
            demo.shutdown().await;
        }

        #[$test]
        async fn stalled_clients_are_let_go() {
            let demo = start();
            support::checks::check_stalled_clients_let_go(&demo).await;
            demo.shutdown().await;
        }

        #[$test]
        async fn a_flood_of_fresh_topics_locks_none_out() {
            let demo = start();
            support::checks::check_topic_flood(&demo).await;
            demo.shutdown().await;
        }

        #[$test]
        async fn shutdown_under_a_backlog_closes_stalled_clients() {
            support::checks::check_shutdown_under_backlog(start()).await;
        }
    };
}
