//! Hostile input at the library level, through the public API only: forged and
//! malformed `Last-Event-ID`s, hostile topic names and counts, events that would
//! inject fields, malformed frames, an endless line, and a subscriber that never
//! reads. Nothing panics, nothing is replayed that should not be, nothing grows
//! without bound, and nobody else is stalled.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{FutureExt, StreamExt};
use http::{HeaderMap, HeaderValue};
use ssekit::{
    DecodeError, Decoder, Event, EventError, EventId, Frame, FrameError, Hub, LagPolicy, LastEventId, LastEventIdError,
    MessageEvent, PublishError, Resume, SubscribeError, Subscription, TopicError,
};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

async fn next(subscription: &mut Subscription) -> Option<Bytes> {
    timeout(WAIT, subscription.next()).await.expect("a subscription answers in time")
}

fn decode(chunk: &[u8]) -> Vec<MessageEvent> {
    Decoder::new().feed(chunk).expect("the hub sends valid frames")
}

fn header(value: &[u8]) -> Resume {
    let mut headers = HeaderMap::new();
    headers.insert("last-event-id", HeaderValue::from_bytes(value).expect("a value a header can hold"));
    Resume::from_request(&headers, None)
}

/// A hub with three events on `t`, and the id of the last one.
fn hub_with_events() -> (Hub, EventId) {
    let hub = Hub::new();
    let mut last = None;
    for n in 1..=3 {
        last = Some(hub.try_publish("t", Event::new().data(format!("e{n}"))).unwrap());
    }
    (hub, last.unwrap())
}

/// Subscribing with `resume` gives one `reset` for `reason` and no replayed
/// event, then live events. Returns the id of the live event it published.
async fn assert_resets(hub: &Hub, last: EventId, resume: Resume, reason: &str) -> EventId {
    let mut subscription = hub.try_subscribe("t", resume.clone()).unwrap();
    let events = decode(&next(&mut subscription).await.unwrap());
    assert_eq!(events.len(), 1, "{resume:?}: {events:?}");
    assert_eq!(events[0].event, "reset", "{resume:?}");
    assert_eq!(events[0].data, format!(r#"{{"reason":"{reason}"}}"#), "{resume:?}");
    assert_eq!(events[0].last_event_id, last.to_string(), "{resume:?}");
    assert!(subscription.next().now_or_never().is_none(), "{resume:?}: nothing replayed after the reset");

    let id = hub.try_publish("t", Event::new().data("live")).unwrap();
    let events = decode(&next(&mut subscription).await.unwrap());
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].data.as_str(), events[0].last_event_id.clone()), ("live", id.to_string()));
    id
}

#[tokio::test]
async fn last_event_id_huge() {
    let (hub, mut last) = hub_with_events();
    let resume = header(&vec![b'7'; 1 << 20]);
    assert_eq!(resume, Resume::Invalid(LastEventIdError::TooLong { len: 1 << 20, limit: LastEventId::MAX_LEN }));
    last = assert_resets(&hub, last, resume, "malformed").await;
    // Just over the limit, and a query parameter of 1 MiB, too.
    last = assert_resets(&hub, last, header(&[b'1'; LastEventId::MAX_LEN + 1]), "malformed").await;
    let query = format!("lastEventId={}", "%41".repeat(1 << 18));
    let resume = Resume::from_request(&HeaderMap::new(), Some(&query));
    assert!(matches!(resume, Resume::Invalid(LastEventIdError::TooLong { .. })), "{resume:?}");
    assert_resets(&hub, last, resume, "malformed").await;
    assert_eq!(hub.metrics().resets_malformed, 3);
}

#[tokio::test]
async fn last_event_id_not_utf8() {
    let (hub, mut last) = hub_with_events();
    for bytes in [&b"\xff"[..], b"\xc3", b"1-\xe2\x82", b"\xed\xa0\x80-1", b"\xc0\xaf"] {
        let resume = header(bytes);
        assert_eq!(resume, Resume::Invalid(LastEventIdError::InvalidUtf8));
        last = assert_resets(&hub, last, resume, "malformed").await;
    }
}

#[tokio::test]
async fn last_event_id_with_control_characters() {
    let (hub, mut last) = hub_with_events();
    // Those no header can hold: through the parser, as a server with its own header type would.
    for bytes in [&b"1-1\r\n"[..], b"\n", b"\r", b"a\0b", b"\0", b"1-1\r\ndata: forged"] {
        let parsed = LastEventId::parse(bytes);
        assert_eq!(parsed, Err(LastEventIdError::ControlCharacter), "{bytes:?}");
        last = assert_resets(&hub, last, Resume::from(parsed.map(Some)), "malformed").await;
    }
    // Other control characters are well-formed ids, just not ours.
    let all: Vec<u8> = (1..0x20).filter(|b| !matches!(b, b'\r' | b'\n')).chain([0x7f]).collect();
    let resume = Resume::from(LastEventId::parse(&all).map(Some));
    assert!(matches!(resume, Resume::After(_)));
    last = assert_resets(&hub, last, resume, "malformed").await;
    let tab = format!("{:x}-\t1", last.epoch());
    assert_resets(&hub, last, header(tab.as_bytes()), "malformed").await;
}

#[tokio::test]
async fn last_event_id_forged_epoch() {
    let (hub, mut last) = hub_with_events();
    let epoch = last.epoch();
    for forged in [epoch ^ 1, epoch + 1, 0, u64::MAX, epoch << 4] {
        let id = format!("{forged:x}-2");
        last = assert_resets(&hub, last, header(id.as_bytes()), "epoch").await;
    }
    assert_eq!(hub.metrics().resets_epoch, 5);
}

#[tokio::test]
async fn last_event_id_offsets_out_of_range() {
    let (hub, mut last) = hub_with_events();
    let epoch = last.epoch();
    for (offset, reason) in [
        (u64::MAX.to_string(), "future"),
        ((u64::MAX - 1).to_string(), "future"),
        ("18446744073709551616".to_owned(), "malformed"),
        ("99999999999999999999".to_owned(), "malformed"),
        ("999999999999999999999999".to_owned(), "malformed"),
    ] {
        let id = format!("{epoch:x}-{offset}");
        last = assert_resets(&hub, last, header(id.as_bytes()), reason).await;
    }
    // One past the last event.
    let id = format!("{epoch:x}-{}", last.offset() + 1);
    last = assert_resets(&hub, last, header(id.as_bytes()), "future").await;
    // Epochs past 64 bits, too.
    let id = format!("1{epoch:016x}-1");
    assert_resets(&hub, last, header(id.as_bytes()), "malformed").await;
}

#[tokio::test]
async fn last_event_id_non_canonical_forms() {
    // An epoch with a hex letter, so that its uppercase form differs.
    let (hub, mut last) = (0..200)
        .map(|_| hub_with_events())
        .find(|(_, last)| format!("{:x}", last.epoch()).bytes().any(|b| b.is_ascii_alphabetic()))
        .expect("an epoch with a letter among 200");
    let epoch = last.epoch();
    for id in [
        format!("0{epoch:x}-1"),
        format!("{epoch:x}-01"),
        format!("{epoch:x}-00"),
        format!("{epoch:X}-1"),
        format!("{epoch:#x}-1"),
        format!("{epoch:x}--1"),
        format!("-{epoch:x}-1"),
        format!("{epoch:x}-+1"),
        format!("{epoch:x}- 1"),
        format!(" {epoch:x}-1"),
        format!("{epoch:x}-1 "),
        format!("{epoch:x}-1-1"),
        format!("{epoch:x}_1"),
        format!("{epoch:x}"),
        "-1".to_owned(),
        "-".to_owned(),
        "1".to_owned(),
    ] {
        last = assert_resets(&hub, last, header(id.as_bytes()), "malformed").await;
    }
    // The canonical form of the same position replays.
    let mut subscription = hub.try_subscribe("t", header(format!("{epoch:x}-2").as_bytes())).unwrap();
    let events = decode(&next(&mut subscription).await.unwrap());
    assert_eq!(events.first().map(|e| e.data.as_str()), Some("e3"));
}

#[tokio::test]
async fn topic_names_empty_and_huge() {
    let hub = Hub::new();
    let huge = "t".repeat(1 << 20);
    for name in ["", huge.as_str()] {
        assert!(matches!(
            hub.try_subscribe(name, Resume::Live),
            Err(SubscribeError::Topic(TopicError::InvalidName { .. }))
        ));
        assert!(matches!(
            hub.try_publish(name, Event::new().data("x")),
            Err(PublishError::Topic(TopicError::InvalidName { .. }))
        ));
    }
    assert_eq!(hub.metrics().topics, 0);
    assert_eq!(hub.metrics().published, 0);
}

#[tokio::test]
async fn topic_count_is_capped() {
    let cap = 100;
    // Refusing at the limit (the default replaces idle topics: see below).
    let hub = Hub::builder().max_topics(cap).replace_idle_topics(false).build();
    let mut refused = 0;
    for n in 0..100_000 {
        match hub.try_publish(&format!("topic-{n}"), Event::new().data("x")) {
            Ok(_) => assert!(n < cap),
            Err(PublishError::Topic(TopicError::Limit { limit })) => {
                assert_eq!(limit, cap);
                refused += 1;
            }
            Err(err) => panic!("{err}"),
        }
        if n % 10_000 == 0 {
            assert!(hub.metrics().topics <= cap);
        }
    }
    assert_eq!(refused, 100_000 - cap);
    assert_eq!(hub.metrics().topics, cap);
    assert_eq!(hub.metrics().published, cap as u64);
    // Subscribers cannot create more either, and the existing topics still work.
    assert!(matches!(
        hub.try_subscribe("one-more", Resume::Live),
        Err(SubscribeError::Topic(TopicError::Limit { .. }))
    ));
    let mut subscription = hub.try_subscribe("topic-0", Resume::Live).unwrap();
    hub.try_publish("topic-0", Event::new().data("still here")).unwrap();
    assert!(next(&mut subscription).await.unwrap().starts_with(b"data: still here\n"));
}

/// A flood of fresh topic names at the limit (10 000 publishes, what filled the
/// default limit in under a second) cannot lock new topics out: the least
/// recently used topics without subscribers give their places; topics with
/// subscribers keep theirs; a client of a replaced topic gets a reset.
#[tokio::test]
async fn a_flood_of_fresh_topics_replaces_idle_ones_never_followed_ones() {
    let cap = 100;
    let hub = Hub::builder().max_topics(cap).build();
    let mut followed = hub.try_subscribe("followed", Resume::Live).unwrap();
    let kept = hub.try_publish("published-early", Event::new().data("x")).unwrap();
    for n in 0..10_000 {
        hub.try_publish(&format!("flood-{n}"), Event::new().data("x")).expect("an idle topic gives its place");
        assert!(hub.metrics().topics <= cap);
    }
    assert_eq!(hub.metrics().topics, cap);
    // The most recent flood topics are held with their event; the oldest went first.
    let mut latest = hub.try_subscribe_many(&["flood-9999"], Resume::Live, 1).unwrap();
    assert!(next(&mut latest).await.unwrap().starts_with(b"data: x\n"), "the latest topic kept its event");
    drop(latest);
    let mut oldest = hub.try_subscribe_many(&["flood-0"], Resume::Live, 1).unwrap();
    assert!(oldest.next().now_or_never().is_none(), "the oldest topic went: created anew, empty");
    drop(oldest);
    hub.try_publish("followed", Event::new().data("still here")).unwrap();
    assert!(next(&mut followed).await.unwrap().starts_with(b"data: still here\n"));

    // A client of a replaced topic comes back: a reset, then live events.
    let mut back = hub
        .try_subscribe("published-early", Resume::After(LastEventId::parse(kept.to_string().as_bytes()).unwrap()))
        .unwrap();
    let reset = next(&mut back).await.unwrap();
    assert!(reset.starts_with(b"event: reset\n"), "{:?}", String::from_utf8_lossy(&reset));
    assert!(String::from_utf8_lossy(&reset).contains(r#""reason":"epoch""#), "{:?}", String::from_utf8_lossy(&reset));

    // With every topic followed, a new one is refused.
    let held: Vec<_> =
        (0..cap).map(|n| hub.try_subscribe(&format!("held-{n}"), Resume::Live)).take_while(Result::is_ok).collect();
    assert!(hub.metrics().topics == cap && held.len() < cap);
    assert!(matches!(
        hub.try_publish("one-more", Event::new().data("x")),
        Err(PublishError::Topic(TopicError::Limit { .. }))
    ));
    drop(held);
    assert!(hub.try_publish("one-more", Event::new().data("x")).is_ok(), "room again once they leave");
}

#[tokio::test]
async fn topics_of_subscribers_vanish_when_they_leave() {
    let hub = Hub::builder().max_topics(1_000).build();
    for n in 0..100_000 {
        let subscription = hub.try_subscribe(&format!("topic-{n}"), Resume::Live).unwrap();
        assert_eq!(hub.metrics().topics, 1);
        drop(subscription);
    }
    assert_eq!(hub.metrics().topics, 0);
    assert_eq!(hub.metrics().subscribers, 0);

    // Held subscriptions count against the cap; dropping them frees it.
    let held: Vec<_> = (0..1_000).map(|n| hub.try_subscribe(&format!("held-{n}"), Resume::Live).unwrap()).collect();
    assert!(matches!(hub.try_subscribe("over", Resume::Live), Err(SubscribeError::Topic(TopicError::Limit { .. }))));
    assert_eq!(hub.metrics().topics, 1_000);
    drop(held);
    assert_eq!(hub.metrics().topics, 0);
}

#[tokio::test]
async fn injecting_events_are_refused_with_nothing_published() {
    let hub = Hub::new();
    let mut subscription = hub.try_subscribe("t", Resume::Live).unwrap();
    let before = hub.metrics().published;
    for name in ["a\nb", "a\rb", "a\r\nb", "\n", "\r", "x\ndata: forged\n\nevent: y"] {
        let refused = hub.try_publish("t", Event::new().event(name).data("x"));
        assert!(matches!(refused, Err(PublishError::Event(EventError::EventLineBreak))), "{name:?}: {refused:?}");
    }
    for id in ["a\nb", "a\rb", "a\0b", "\0", "1\r\nretry: 1"] {
        let refused = hub.try_publish("t", Event::new().id(id).data("x"));
        assert!(matches!(refused, Err(PublishError::Event(EventError::IdLineBreak | EventError::IdNul))), "{id:?}");
    }
    // Any id is refused: the hub assigns them.
    assert!(matches!(hub.try_publish("t", Event::new().id("7").data("x")), Err(PublishError::IdSet)));
    assert!(matches!(hub.try_publish_frame("t", Frame::from_static("id: 7\ndata: x\n\n")), Err(PublishError::IdSet)));
    assert_eq!(hub.metrics().published, before);
    assert!(subscription.next().now_or_never().is_none(), "nothing reached the subscriber");

    // NUL in an event name cannot forge a field: it is sent as is.
    let id = hub.try_publish("t", Event::new().event("a\0b").data("x")).unwrap();
    let events = decode(&next(&mut subscription).await.unwrap());
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].event.as_str(), events[0].last_event_id.clone()), ("a\0b", id.to_string()));
}

#[test]
fn malformed_frames_are_refused() {
    let cases: &[(&[u8], FrameError)] = &[
        (b"data: \xff\n\n", FrameError::InvalidUtf8),
        (b"data: \xc3\n\n", FrameError::InvalidUtf8),
        (b"\xef\xbb\n\n", FrameError::InvalidUtf8),
        (b"data: a\r\n\r\n", FrameError::CarriageReturn),
        (b"data: a\rdata: b\n\n", FrameError::CarriageReturn),
        (b"data: a\n\r", FrameError::CarriageReturn),
        (b"\r\r", FrameError::CarriageReturn),
        (b"", FrameError::Unterminated),
        (b"\n", FrameError::Unterminated),
        (b"data: a", FrameError::Unterminated),
        (b"data: a\n", FrameError::Unterminated),
        (b"data: a\n \n", FrameError::Unterminated),
        (b"\n\n", FrameError::Empty),
        (b"\n\n\n", FrameError::SeveralEvents),
        (b"data: a\n\n\n", FrameError::SeveralEvents),
        (b"data: a\n\ndata: b\n\n", FrameError::SeveralEvents),
        (b"\ndata: a\n\n", FrameError::SeveralEvents),
        (b"id: 1\0\n\n", FrameError::IdNul),
        (b"id:\0\n\n", FrameError::IdNul),
        (b"data: a\nid: \0\n\n", FrameError::IdNul),
    ];
    for (bytes, err) in cases {
        assert_eq!(Frame::new(Bytes::from_static(bytes)).as_ref(), Err(err), "{bytes:?}");
    }
    // Every prefix and every single-byte corruption of a good frame: an answer, never a panic.
    let good = b"event: e\ndata: a\nid: 1\nretry: 5\n: c\n\n";
    for end in 0..good.len() {
        assert!(Frame::new(good[..end].to_vec()).is_err(), "prefix {end}");
    }
    for at in 0..good.len() {
        for byte in [0, b'\r', b'\n', 0xff, b':'] {
            let mut bytes = good.to_vec();
            bytes[at] = byte;
            let _ = Frame::new(bytes);
        }
    }
    // A large frame is checked as well.
    let mut big = b"data: ".to_vec();
    big.extend(std::iter::repeat_n(b'x', 10 << 20));
    big.extend_from_slice(b"\r\n\n");
    assert_eq!(Frame::new(big), Err(FrameError::CarriageReturn));
}

#[test]
fn decoder_stops_a_10_mib_line_at_its_limit() {
    let limit = 1 << 20;
    let piece = vec![b'a'; 64 * 1024];
    let total = 10 << 20;

    // With the caller's buffer: the error comes once the buffered line passes the limit.
    let mut decoder = Decoder::new();
    let mut buf = BytesMut::new();
    let mut sent = 0;
    let err = loop {
        assert!(sent < total, "no error after the whole line");
        buf.extend_from_slice(&piece);
        sent += piece.len();
        match decoder.decode(&mut buf) {
            Ok(None) => assert!(buf.len() <= limit),
            Ok(Some(event)) => panic!("{event:?}"),
            Err(err) => break err,
        }
    };
    assert_eq!(err, DecodeError::LineTooLong { limit });
    assert!(sent <= limit + piece.len(), "read {sent} bytes");
    assert_eq!(decoder.decode(&mut buf), Err(err), "poisoned");

    // Through `feed`, in pieces and in one chunk.
    let mut decoder = Decoder::new();
    let mut fed = 0;
    let err = loop {
        assert!(fed < total);
        fed += piece.len();
        if let Err(err) = decoder.feed(&piece) {
            break err;
        }
    };
    assert_eq!(err, DecodeError::LineTooLong { limit });
    assert!(fed <= limit + piece.len());
    let line = vec![b'a'; total];
    assert_eq!(Decoder::new().feed(&line), Err(DecodeError::LineTooLong { limit }));
    // Data split over many lines stops at the event limit.
    let lines = "data: 0123456789abcdef\n".repeat(total / 23);
    assert_eq!(Decoder::new().feed(lines.as_bytes()), Err(DecodeError::EventTooLarge { limit }));
}

/// The index written at the start of an event's data.
fn index(event: &MessageEvent) -> usize {
    event.data[..4].parse().unwrap()
}

fn padded(n: usize) -> String {
    let mut data = format!("{n:04}");
    data.extend(std::iter::repeat_n('.', 10 * 1024 - 4));
    data
}

/// 1 000 events of 10 KiB on a log of 1 MiB, one subscriber reading each as it
/// comes and one never polled. Returns the slow subscription and the first
/// index it can still get.
async fn publish_past_a_sleeper(hub: &Hub) -> Subscription {
    let slow = hub.try_subscribe("t", Resume::Live).unwrap();
    let mut fast = hub.try_subscribe("t", Resume::Live).unwrap();
    for n in 0..1_000 {
        let id = hub.try_publish("t", Event::new().data(padded(n))).unwrap();
        let events = decode(&next(&mut fast).await.unwrap());
        assert_eq!(events.len(), 1);
        assert_eq!((index(&events[0]), events[0].last_event_id.clone()), (n, id.to_string()), "fast missed one");
    }
    assert!(fast.next().now_or_never().is_none());
    // The log kept at most 1 MiB: the first events are gone for anyone resuming.
    let epoch = slow.position().epoch();
    let mut resumed = hub.try_subscribe("t", header(format!("{epoch:x}-1").as_bytes())).unwrap();
    let events = decode(&next(&mut resumed).await.unwrap());
    assert_eq!((events.len(), events[0].event.as_str()), (1, "reset"));
    assert_eq!(events[0].data, r#"{"reason":"evicted"}"#);
    slow
}

#[tokio::test]
async fn slow_subscriber_is_reset_and_memory_stays_bounded() {
    let max_bytes = 1 << 20;
    let hub = Hub::builder().history(100_000).max_bytes(max_bytes).build();
    let mut slow = publish_past_a_sleeper(&hub).await;

    let events = decode(&next(&mut slow).await.unwrap());
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event, "reset");
    assert_eq!(events[0].data, r#"{"reason":"lagged"}"#);
    assert_eq!(hub.metrics().resets_lagged, 1);

    // What it gets next is everything the log retained: at most `max_bytes`, in order, to the end.
    let (mut retained, mut got) = (0, Vec::new());
    while got.last() != Some(&999) {
        let chunk = next(&mut slow).await.unwrap();
        retained += chunk.len();
        got.extend(decode(&chunk).iter().map(index));
        assert!(retained <= max_bytes, "the log held over {retained} bytes");
    }
    assert!(got.len() >= 90, "a 1 MiB log holds about 100 such events, got {}", got.len());
    assert!(got.windows(2).all(|w| w[1] == w[0] + 1), "no gap after the reset");
    assert!(slow.next().now_or_never().is_none());
}

#[tokio::test]
async fn slow_subscriber_is_disconnected_under_that_policy() {
    let hub = Hub::builder().history(100_000).max_bytes(1 << 20).lag_policy(LagPolicy::Disconnect).build();
    let mut slow = publish_past_a_sleeper(&hub).await;
    assert_eq!(next(&mut slow).await, None);
    assert_eq!(hub.metrics().disconnects_lagged, 1);
    assert_eq!(hub.metrics().resets_lagged, 0);
    // Its client reconnects with the last id it saw and is told what happened.
    let resume = header(slow.position().to_string().as_bytes());
    let mut again = hub.try_subscribe("t", resume).unwrap();
    let events = decode(&next(&mut again).await.unwrap());
    assert_eq!((events.len(), events[0].data.as_str()), (1, r#"{"reason":"evicted"}"#));
}
