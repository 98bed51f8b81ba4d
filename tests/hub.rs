//! The hub through the public API: ids, fan-out, resume, lag, limits, errors, closing.
//!
//! What a subscription yields is read back with ssekit's own `Decoder`, since one chunk may
//! carry several frames.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use ssekit::{
    Decoder, Event, EventError, EventId, Frame, Hub, LagPolicy, LastEventId, LastEventIdError, MessageEvent,
    PublishError, Resume, Sse, SseConfig, SubscribeError, Subscription, TopicError,
};
use tokio::time::timeout;

/// Longest wait for something that should be ready: a hang fails the test instead of stalling it.
const PATIENCE: Duration = Duration::from_secs(5);

fn after(id: impl ToString) -> Resume {
    Resume::After(LastEventId::parse(id.to_string().as_bytes()).expect("valid last-event-id"))
}

fn data(text: impl Into<String>) -> Event {
    Event::new().data(text)
}

fn id_of(event: &MessageEvent) -> EventId {
    event.last_event_id.parse().expect("hub ids parse")
}

/// A subscription and the decoder of what it yielded so far.
struct Reader {
    subscription: Subscription,
    decoder: Decoder,
}

impl Reader {
    fn new(subscription: Subscription) -> Self {
        Self { subscription, decoder: Decoder::new() }
    }

    /// The events of the next chunk; `None` when the subscription ended.
    async fn chunk(&mut self) -> Option<Vec<MessageEvent>> {
        let chunk = timeout(PATIENCE, self.subscription.next()).await.expect("a chunk within the patience")?;
        let events = self.decoder.feed(&chunk).expect("hub output decodes");
        assert!(!events.is_empty(), "a chunk carries whole frames: {chunk:?}");
        Some(events)
    }

    /// Exactly the next `n` events (over as many chunks as it takes).
    async fn take(&mut self, n: usize) -> Vec<MessageEvent> {
        let mut events = Vec::new();
        while events.len() < n {
            events.extend(self.chunk().await.expect("subscription still open"));
        }
        assert_eq!(events.len(), n, "no more than the events expected: {events:?}");
        events
    }

    /// Asserts that nothing is ready now.
    fn assert_idle(&mut self) {
        if let Some(chunk) = self.subscription.next().now_or_never() {
            panic!("expected nothing ready, got {chunk:?}");
        }
    }

    /// Asserts that the subscription has ended.
    async fn assert_ended(&mut self) {
        assert_eq!(timeout(PATIENCE, self.subscription.next()).await.expect("ends within the patience"), None);
    }
}

fn datas(events: &[MessageEvent]) -> Vec<&str> {
    events.iter().map(|e| e.data.as_str()).collect()
}

fn offsets(events: &[MessageEvent]) -> Vec<u64> {
    events.iter().map(|e| id_of(e).offset()).collect()
}

/// Asserts `event` is a default `reset` event for `reason`, and returns its id.
#[track_caller]
fn assert_reset(event: &MessageEvent, reason: &str) -> EventId {
    assert_eq!(event.event, "reset", "{event:?}");
    assert_eq!(event.data, format!(r#"{{"reason":"{reason}"}}"#));
    id_of(event)
}

/// A hub keeping `history` events, with `count` events `e1`.. published on `t`.
fn hub_with(history: usize, count: u64) -> (Hub, u64) {
    let hub = Hub::builder().history(history).build();
    let mut epoch = 0;
    for i in 1..=count {
        let id = hub.publish("t", data(format!("e{i}"))).unwrap();
        assert_eq!(id.offset(), i);
        epoch = id.epoch();
    }
    (hub, epoch)
}

#[tokio::test]
async fn publish_reaches_live_subscriber_with_the_returned_id() {
    let hub = Hub::new();
    let mut reader = Reader::new(hub.subscribe("news", Resume::Live).unwrap());
    reader.assert_idle();
    let mut ids = Vec::new();
    for i in 1..=3 {
        let id = hub.publish("news", Event::new().event("headline").data(format!("n{i}"))).unwrap();
        ids.push(id);
        let events = reader.take(1).await;
        assert_eq!(events[0].event, "headline");
        assert_eq!(events[0].data, format!("n{i}"));
        assert_eq!(events[0].last_event_id, id.to_string());
    }
    assert_eq!(ids.iter().map(EventId::offset).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(ids.iter().all(|id| id.epoch() == ids[0].epoch()), "one epoch per topic log: {ids:?}");
    assert!(ids[0].to_string().len() <= EventId::MAX_LEN && ids[0].to_string().is_ascii());

    // Another topic has its own log: offsets from 1, its own epoch.
    let other = hub.publish("sport", data("s1")).unwrap();
    assert_eq!(other.offset(), 1);
    assert_ne!(other.epoch(), ids[0].epoch());
    assert_eq!(hub.publish("news", data("n4")).unwrap(), EventId::new(ids[0].epoch(), 4));
    assert_eq!(hub.metrics().published, 5);
}

#[tokio::test]
async fn frames_are_shared_between_subscribers() {
    let hub = Hub::new();
    let mut a = hub.subscribe("t", Resume::Live).unwrap();
    let mut b = hub.subscribe("t", Resume::Live).unwrap();
    let id = hub.publish("t", data("shared")).unwrap();
    let (a, b): (Bytes, Bytes) = (a.next().await.unwrap(), b.next().await.unwrap());
    assert_eq!(a, format!("data: shared\nid: {id}\n\n"));
    assert_eq!(a, b);
    assert_eq!(a.as_ptr(), b.as_ptr(), "one encoded frame, shared by reference");

    // A replaying subscriber gets the same frame too.
    let mut c = hub.subscribe("t", after(EventId::new(id.epoch(), 0))).unwrap();
    assert_eq!(c.next().await.unwrap().as_ptr(), a.as_ptr());
}

#[tokio::test]
async fn resume_from_each_position_in_the_window() {
    // History 5 of 8 events: offsets 4..=8 retained, so resuming after 3..=8 is exact.
    for last_seen in 3..=8u64 {
        let (hub, epoch) = hub_with(5, 8);
        let mut reader = Reader::new(hub.subscribe("t", after(EventId::new(epoch, last_seen))).unwrap());
        let missed = reader.take((8 - last_seen) as usize).await;
        assert_eq!(offsets(&missed), (last_seen + 1..=8).collect::<Vec<_>>(), "resume after {last_seen}");
        assert!(missed.iter().all(|e| e.event == "message"));
        reader.assert_idle();
        let id = hub.publish("t", data("live")).unwrap();
        let live = reader.take(1).await;
        assert_eq!((live[0].data.as_str(), id_of(&live[0])), ("live", id));
        reader.assert_idle();
        assert_eq!(hub.metrics().resets_evicted, 0);
    }
}

#[tokio::test]
async fn resume_at_the_window_edge_after_eviction() {
    // History 3 of 5 events: offsets 3..=5 retained.
    let (hub, epoch) = hub_with(3, 5);
    let mut exact = Reader::new(hub.subscribe("t", after(EventId::new(epoch, 2))).unwrap());
    assert_eq!(datas(&exact.take(3).await), ["e3", "e4", "e5"]);
    exact.assert_idle();

    for evicted in [1, 0] {
        let mut reader = Reader::new(hub.subscribe("t", after(EventId::new(epoch, evicted))).unwrap());
        let reset = reader.take(1).await;
        assert_eq!(assert_reset(&reset[0], "evicted"), EventId::new(epoch, 5), "continues live");
        reader.assert_idle();
    }
    hub.publish("t", data("e6")).unwrap();
    assert_eq!(datas(&exact.take(1).await), ["e6"]);
    // Offsets 4..=6 now: the edge moved with the eviction.
    let mut reader = Reader::new(hub.subscribe("t", after(EventId::new(epoch, 2))).unwrap());
    assert_eq!(assert_reset(&reader.take(1).await[0], "evicted"), EventId::new(epoch, 6));
    let mut reader = Reader::new(hub.subscribe("t", after(EventId::new(epoch, 3))).unwrap());
    assert_eq!(datas(&reader.take(3).await), ["e4", "e5", "e6"]);
    reader.assert_idle();
    assert_eq!(hub.metrics().resets_evicted, 3);
}

#[tokio::test]
async fn resume_from_another_epoch_resets_then_continues_live() {
    let (hub, epoch) = hub_with(10, 3);
    let other = EventId::new(epoch ^ 1, 2);
    let mut reader = Reader::new(hub.subscribe("t", after(other)).unwrap());
    let reset = reader.take(1).await;
    assert_eq!(assert_reset(&reset[0], "epoch"), EventId::new(epoch, 3));
    reader.assert_idle();
    hub.publish("t", data("e4")).unwrap();
    assert_eq!(datas(&reader.take(1).await), ["e4"]);
    assert_eq!(hub.metrics().resets_epoch, 1);
}

#[tokio::test]
async fn malformed_ids_reset() {
    let (hub, epoch) = hub_with(10, 2);
    let malformed = [
        after("not-an-id"),
        after("3"),
        after(format!("{epoch:x}-01")),
        // (Uppercase hex is tested in `tests/hostile.rs`, on an epoch known to have a letter:
        // a random epoch may be all digits, and then its uppercase form is the canonical id.)
        after(format!("{epoch:x}-1-1")),
        after(""),
        Resume::Invalid(LastEventIdError::InvalidUtf8),
        Resume::Invalid(LastEventIdError::ControlCharacter),
    ];
    let count = malformed.len() as u64;
    for resume in malformed {
        let mut reader = Reader::new(hub.subscribe("t", resume.clone()).unwrap());
        let reset = reader.take(1).await;
        assert_eq!(assert_reset(&reset[0], "malformed"), EventId::new(epoch, 2), "{resume:?}");
        reader.assert_idle();
    }
    // From a request: an id header that is not UTF-8.
    let mut headers = http::HeaderMap::new();
    headers.insert(ssekit::LAST_EVENT_ID, http::HeaderValue::from_bytes(b"\xff\xfe").unwrap());
    let mut reader = Reader::new(hub.subscribe("t", Resume::from_request(&headers, None)).unwrap());
    assert_reset(&reader.take(1).await[0], "malformed");
    assert_eq!(hub.metrics().resets_malformed, count + 1);
}

#[tokio::test]
async fn ids_from_the_future_reset() {
    let (hub, epoch) = hub_with(10, 3);
    for offset in [4, 5, u64::MAX] {
        let mut reader = Reader::new(hub.subscribe("t", after(EventId::new(epoch, offset))).unwrap());
        let reset = reader.take(1).await;
        assert_eq!(assert_reset(&reset[0], "future"), EventId::new(epoch, 3), "offset {offset}");
        reader.assert_idle();
    }
    assert_eq!(hub.metrics().resets_future, 3);
    // On an empty topic, too.
    let mut reader = Reader::new(hub.subscribe("empty", after(EventId::new(epoch, 1))).unwrap());
    let reset = &reader.take(1).await[0];
    assert_eq!(reset.event, "reset");
    assert_eq!(id_of(reset).offset(), 0);
}

#[tokio::test]
async fn reset_event_is_configurable_and_its_id_resumes_exactly() {
    let hub =
        Hub::builder().history(2).reset_event("resync").reset_data(|topic, reason| format!("{topic}/{reason}")).build();
    for i in 1..=5 {
        hub.publish("room", data(format!("e{i}"))).unwrap();
    }
    let epoch = hub.publish("room", data("e6")).unwrap().epoch();
    let mut reader = Reader::new(hub.subscribe("room", after(EventId::new(epoch, 1))).unwrap());
    let reset = reader.take(1).await.remove(0);
    assert_eq!((reset.event.as_str(), reset.data.as_str()), ("resync", "room/evicted"));
    let reset_id = id_of(&reset);
    assert_eq!(reset_id, EventId::new(epoch, 6));

    // A client that saw the reset resumes from its id exactly: no reset, only what follows.
    let next = hub.publish("room", data("after reset")).unwrap();
    let mut resumed = Reader::new(hub.subscribe("room", after(reset_id)).unwrap());
    let events = resumed.take(1).await;
    assert_eq!((events[0].event.as_str(), id_of(&events[0])), ("message", next));
    resumed.assert_idle();
    assert_eq!(datas(&reader.take(1).await), ["after reset"]);

    // The other reasons, on fresh topics of the same hub.
    for (i, (reason, make)) in [
        ("epoch", Box::new(|e: u64| after(EventId::new(e ^ 1, 1))) as Box<dyn Fn(u64) -> Resume>),
        ("malformed", Box::new(|_| Resume::Invalid(LastEventIdError::InvalidUtf8))),
        ("future", Box::new(|e| after(EventId::new(e, 50)))),
    ]
    .into_iter()
    .enumerate()
    {
        let topic = format!("fresh{i}");
        let epoch = hub.publish(&topic, data("a")).unwrap().epoch();
        let last = hub.publish(&topic, data("b")).unwrap();
        let mut reader = Reader::new(hub.subscribe(&topic, make(epoch)).unwrap());
        let reset = reader.take(1).await.remove(0);
        assert_eq!((reset.event.as_str(), reset.data.clone()), ("resync", format!("{topic}/{reason}")));
        assert_eq!(id_of(&reset), last);
        let next = hub.publish(&topic, data("c")).unwrap();
        let mut resumed = Reader::new(hub.subscribe(&topic, after(id_of(&reset))).unwrap());
        assert_eq!(offsets(&resumed.take(1).await), [next.offset()]);
        resumed.assert_idle();
    }
}

#[tokio::test]
async fn a_lagging_subscriber_is_reset_and_continues_from_the_oldest_retained() {
    let hub = Hub::builder().history(4).build();
    let mut reader = Reader::new(hub.subscribe("t", Resume::Live).unwrap());
    let mut epoch = 0;
    for i in 1..=10 {
        epoch = hub.publish("t", data(format!("e{i}"))).unwrap().epoch();
    }
    let events = reader.take(5).await;
    assert_eq!(assert_reset(&events[0], "lagged"), EventId::new(epoch, 6));
    assert_eq!(datas(&events[1..]), ["e7", "e8", "e9", "e10"]);
    reader.assert_idle();
    hub.publish("t", data("e11")).unwrap();
    assert_eq!(datas(&reader.take(1).await), ["e11"]);
    let metrics = hub.metrics();
    assert_eq!((metrics.resets_lagged, metrics.disconnects_lagged), (1, 0));
    assert_eq!(reader.subscription.position(), EventId::new(epoch, 11));
}

#[tokio::test]
async fn a_lagging_subscriber_is_disconnected_under_that_policy() {
    let hub = Hub::builder().history(4).lag_policy(LagPolicy::Disconnect).build();
    let mut slow = Reader::new(hub.subscribe("t", Resume::Live).unwrap());
    let mut fast = Reader::new(hub.subscribe("t", Resume::Live).unwrap());
    for i in 1..=4 {
        hub.publish("t", data(format!("e{i}"))).unwrap();
    }
    assert_eq!(fast.take(4).await.len(), 4);
    hub.publish("t", data("e5")).unwrap();
    assert_eq!(datas(&fast.take(1).await), ["e5"]);
    slow.assert_ended().await;
    fast.assert_idle();
    let metrics = hub.metrics();
    assert_eq!((metrics.resets_lagged, metrics.disconnects_lagged), (0, 1));
    // The client reconnects with its last id and learns of the gap.
    let mut back = Reader::new(hub.subscribe("t", after(slow.subscription.position())).unwrap());
    assert_reset(&back.take(1).await[0], "evicted");
}

#[tokio::test]
async fn publishing_never_waits_for_a_subscriber() {
    let hub = Hub::builder().history(16).build();
    let mut stalled = Reader::new(hub.subscribe("t", Resume::Live).unwrap());
    let mut last = None;
    for i in 0..100_000u32 {
        last = Some(hub.publish("t", data(i.to_string())).unwrap());
    }
    let last = last.unwrap();
    assert_eq!(last.offset(), 100_000);
    let events = stalled.take(17).await;
    assert_eq!(assert_reset(&events[0], "lagged").offset(), 100_000 - 16);
    assert_eq!(offsets(&events[1..]), (100_000 - 15..=100_000).collect::<Vec<_>>());
    stalled.assert_idle();
    assert_eq!(hub.metrics().published, 100_000);
}

#[tokio::test]
async fn max_bytes_evicts_and_bounds_the_event_size() {
    const MAX: usize = 300;
    let hub = Hub::builder().history(1000).max_bytes(MAX).build();
    let mut lagging = hub.subscribe("t", Resume::Live).unwrap();
    let mut sizes = Vec::new();
    let mut epoch = 0;
    for i in 1..=20 {
        epoch = hub.publish("t", data(format!("{i:02}-{}", "x".repeat(40)))).unwrap().epoch();
        sizes.push(format!("data: {i:02}-{}\nid: {}\n\n", "x".repeat(40), EventId::new(epoch, i)).len());
    }
    // Whatever is retained fits the limit, and one more (older) frame would not.
    let reset = lagging.next().await.unwrap();
    let reset = Decoder::new().feed(&reset).unwrap().remove(0);
    let first = assert_reset(&reset, "lagged").offset() + 1;
    let retained: usize = sizes[first as usize - 1..].iter().sum();
    assert!(retained <= MAX, "{retained} retained bytes");
    assert!(retained + sizes[first as usize - 2] > MAX, "evicted only what it had to");
    let mut reader = Reader::new(lagging);
    let replay = reader.take(21 - first as usize).await;
    assert_eq!(offsets(&replay), (first..=20).collect::<Vec<_>>());

    // Too large for the log: refused, nothing published, no id used.
    let err = hub.publish("t", data("y".repeat(MAX))).unwrap_err();
    assert!(matches!(err, PublishError::TooLarge { len, limit } if len > limit && limit < MAX), "{err:?}");
    assert_eq!(hub.metrics().published, 20);
    reader.assert_idle();
    assert_eq!(hub.publish("t", data("small")).unwrap(), EventId::new(epoch, 21));
    assert!(matches!(hub.publish("new", data("y".repeat(MAX))), Err(PublishError::TooLarge { .. })));
    assert_eq!(hub.metrics().topics, 1, "a refused event creates no topic");
}

#[tokio::test]
async fn refused_events_and_topics() {
    let hub = Hub::builder().max_topic_len(8).build();
    assert!(matches!(hub.publish("t", data("x").id("mine")), Err(PublishError::IdSet)));
    assert!(matches!(
        hub.publish("t", Event::new().event("a\nb").data("x")),
        Err(PublishError::Event(EventError::EventLineBreak))
    ));
    assert!(matches!(hub.publish_frame("t", Frame::from_static("id: 1\ndata: x\n\n")), Err(PublishError::IdSet)));
    assert_eq!(
        hub.publish("", data("x")).unwrap_err().to_string(),
        TopicError::InvalidName { len: 0, max_len: 8 }.to_string()
    );
    assert!(matches!(
        hub.publish("123456789", data("x")),
        Err(PublishError::Topic(TopicError::InvalidName { len: 9, max_len: 8 }))
    ));
    assert_eq!(
        hub.subscribe("", Resume::Live).unwrap_err(),
        SubscribeError::Topic(TopicError::InvalidName { len: 0, max_len: 8 })
    );
    assert!(matches!(hub.sse("123456789", Resume::Live), Err(SubscribeError::Topic(_))));
    assert_eq!(hub.metrics().published, 0);
    assert_eq!(hub.metrics().topics, 0);

    // Eight bytes is fine, and so is a frame the application built.
    let mut reader = Reader::new(hub.subscribe("12345678", Resume::Live).unwrap());
    let id = hub.publish_frame("12345678", Frame::from_static("event: prebuilt\ndata: x\n\n")).unwrap();
    let events = reader.take(1).await;
    assert_eq!((events[0].event.as_str(), id_of(&events[0])), ("prebuilt", id));

    // The default limit is 256 bytes.
    let hub = Hub::new();
    assert!(hub.publish(&"a".repeat(256), data("x")).is_ok());
    assert!(matches!(
        hub.publish(&"a".repeat(257), data("x")),
        Err(PublishError::Topic(TopicError::InvalidName { .. }))
    ));

    // A reset name that could forge fields is refused at build time.
    assert!(matches!(Hub::builder().reset_event("a\nb").try_build(), Err(EventError::EventLineBreak)));
}

#[tokio::test]
async fn topic_limit_sweeps_idle_topics_to_make_room() {
    let hub = Hub::builder().max_topics(2).build();
    hub.publish("kept", data("retained")).unwrap();
    let watcher = hub.subscribe("watched", Resume::Live).unwrap();
    assert_eq!(hub.metrics().topics, 2);
    assert_eq!(hub.publish("third", data("x")).unwrap_err().to_string(), "topic limit of 2 reached");
    assert_eq!(
        hub.subscribe("third", Resume::Live).unwrap_err(),
        SubscribeError::Topic(TopicError::Limit { limit: 2 })
    );
    // Existing topics are still usable.
    hub.publish("watched", data("x")).unwrap();
    let extra = hub.subscribe("kept", Resume::Live).unwrap();
    drop(extra);
    assert_eq!(hub.metrics().topics, 2, "a topic with retained events stays");

    // A topic that only had subscribers vanishes with its last subscriber... but `watched`
    // now retains an event, so it stays.
    drop(watcher);
    assert_eq!(hub.metrics().topics, 2);
    let only_subscribed = Hub::builder().max_topics(1).build();
    let a = only_subscribed.subscribe("a", Resume::Live).unwrap();
    let a2 = only_subscribed.subscribe("a", Resume::Live).unwrap();
    assert!(only_subscribed.subscribe("b", Resume::Live).is_err());
    drop(a);
    assert_eq!(only_subscribed.metrics().topics, 1, "one subscriber left");
    drop(a2);
    assert_eq!(only_subscribed.metrics().topics, 0, "subscriber-only topic gone with its last subscriber");
    assert!(only_subscribed.subscribe("b", Resume::Live).is_ok());
}

#[tokio::test]
async fn expired_topics_are_swept_to_make_room() {
    let age = Duration::from_millis(300);
    let hub = Hub::builder().max_topics(1).max_age(age).build();
    let published = Instant::now();
    hub.publish("old", data("x")).unwrap();
    let refused = hub.publish("new", data("y"));
    // (Unless this thread stalled past the age limit, when "old" may rightly be gone.)
    if published.elapsed() < age {
        assert!(matches!(refused, Err(PublishError::Topic(TopicError::Limit { limit: 1 }))));
    }
    // Wait (bounded) until the event is older than the age limit; the topic then makes room.
    let mut published = false;
    for _ in 0..500 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        if hub.publish("new", data("y")).is_ok() {
            published = true;
            break;
        }
    }
    assert!(published, "the expired topic was swept");
    assert_eq!(hub.metrics().topics, 1);
    assert_eq!(hub.subscribers("old"), 0);

    // `sweep` returns the memory without waiting for the limit.
    let hub = Hub::builder().max_age(Duration::from_millis(20)).build();
    hub.publish("a", data("x")).unwrap();
    let _subscribed = hub.subscribe("b", Resume::Live).unwrap();
    hub.publish("b", data("x")).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    hub.sweep();
    assert_eq!(hub.metrics().topics, 1, "the subscribed topic stays");
}

#[tokio::test]
async fn events_older_than_the_age_limit_are_not_replayed() {
    let age = Duration::from_millis(20);
    let hub = Hub::builder().max_age(age).build();
    let _keeps_the_topic = hub.subscribe("t", Resume::Live).unwrap();
    let first = hub.publish("t", data("old")).unwrap();
    let before = EventId::new(first.epoch(), 0);
    std::thread::sleep(age * 3);
    // Nothing was published or swept since: the stale event is still in the log,
    // but a resume from before it is told it is gone instead of getting it.
    let mut resumed = Reader::new(hub.subscribe("t", after(before)).unwrap());
    let events = resumed.take(1).await;
    assert_eq!(assert_reset(&events[0], "evicted"), first);
    resumed.assert_idle();
    // A client that had it resumes exactly, with nothing to replay.
    let mut caught_up = Reader::new(hub.subscribe("t", after(first)).unwrap());
    caught_up.assert_idle();
    assert_eq!(hub.metrics().resumes_exact, 1);
    let next = hub.publish("t", data("new")).unwrap();
    assert_eq!(offsets(&caught_up.take(1).await), [next.offset()]);
    assert_eq!(offsets(&resumed.take(1).await), [next.offset()]);
}

#[tokio::test]
async fn idle_topics_go_after_the_idle_limit_even_with_events() {
    let ttl = Duration::from_millis(100);
    let hub = Hub::builder().max_topics(2).idle_ttl(Some(ttl)).build();
    // Topics named by publishers, followed by nobody: they fill the limit only
    // for the idle time.
    let idle = Instant::now();
    let old = hub.publish("a", data("x")).unwrap();
    hub.publish("b", data("x")).unwrap();
    let both_published = Instant::now();
    let refused = hub.subscribe("c", Resume::Live);
    if idle.elapsed() < ttl {
        assert!(matches!(refused, Err(SubscribeError::Topic(TopicError::Limit { limit: 2 }))));
        assert!(refused.unwrap_err().is_temporary());
    }
    let mut made_room = false;
    for _ in 0..500 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        if hub.subscribe("c", Resume::Live).is_ok() {
            made_room = true;
            break;
        }
    }
    assert!(made_room, "idle topics were dropped");
    // A client that comes back to a dropped topic is told, never silently. (Both
    // are idle past the limit now, so "a" finds room even if a slow thread
    // published "b" well after "a".)
    tokio::time::sleep((both_published + ttl).saturating_duration_since(Instant::now())).await;
    let mut back = Reader::new(hub.subscribe("a", after(old)).unwrap());
    assert_reset(&back.take(1).await[0], "epoch");

    // Without the limit (and without an age limit), they stay.
    let hub = Hub::builder().max_topics(1).idle_ttl(None).build();
    hub.publish("a", data("x")).unwrap();
    std::thread::sleep(ttl);
    hub.sweep();
    assert_eq!(hub.metrics().topics, 1);
}

#[tokio::test]
async fn a_lagging_subscriber_skips_events_older_than_the_age_limit_too() {
    let age = Duration::from_millis(20);
    let hub = Hub::builder().history(4).max_age(age).build();
    let mut reader = Reader::new(hub.subscribe("t", Resume::Live).unwrap());
    let mut last = None;
    for i in 1..=6 {
        last = Some(hub.publish("t", data(format!("e{i}"))).unwrap());
    }
    // Offsets 1 and 2 are evicted by count; 3 to 6 are still in the log, but
    // older than the age limit by the time the subscriber reads.
    std::thread::sleep(age * 3);
    let events = reader.take(1).await;
    assert_eq!(assert_reset(&events[0], "lagged"), last.unwrap());
    reader.assert_idle();
}

#[tokio::test]
async fn a_topic_that_expires_after_its_last_subscriber_left_makes_room() {
    let age = Duration::from_millis(300);
    let hub = Hub::builder().max_topics(2).max_age(age).build();
    let _forever = hub.subscribe("busy", Resume::Live).unwrap();
    let subscription = hub.subscribe("old", Resume::Live).unwrap();
    let published = Instant::now();
    hub.publish("old", data("x")).unwrap();
    drop(subscription);
    let topics = hub.metrics().topics;
    let refused = hub.subscribe("new", Resume::Live).map(drop);
    // A sweep before the expiry keeps the topic, and still lets the limit find it later.
    hub.sweep();
    let after_sweep = hub.metrics().topics;
    // (Unless this thread stalled past the age limit, when "old" may rightly be gone.)
    if published.elapsed() < age {
        assert_eq!(topics, 2, "kept while its event is retained");
        assert_eq!(refused.unwrap_err(), SubscribeError::Topic(TopicError::Limit { limit: 2 }));
        assert_eq!(after_sweep, 2);
    }
    // Wait (bounded) until the event is older than the age limit; the topic then makes room.
    let mut subscribed = None;
    for _ in 0..500 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        if let Ok(subscription) = hub.subscribe("new", Resume::Live) {
            subscribed = Some(subscription);
            break;
        }
    }
    assert!(subscribed.is_some(), "the expired topic was swept");
    assert_eq!((hub.metrics().topics, hub.subscribers("busy")), (2, 1));
}

#[tokio::test]
async fn subscriber_counts_are_exact() {
    let hub = Hub::new();
    let mut subs = Vec::new();
    for topic in ["a", "b", "c"] {
        for _ in 0..3 {
            subs.push(hub.subscribe(topic, Resume::Live).unwrap());
        }
    }
    let sse = hub.sse("a", Resume::Live).unwrap();
    assert_eq!(sse.get_ref().topic(), "a");
    assert_eq!((hub.subscribers("a"), hub.subscribers("b"), hub.subscribers("c")), (4, 3, 3));
    assert_eq!(hub.subscribers("nobody"), 0);
    let metrics = hub.metrics();
    assert_eq!((metrics.subscribers, metrics.topics), (10, 3));
    subs.retain(|s| s.topic() != "b");
    assert_eq!(hub.subscribers("b"), 0);
    assert_eq!((hub.metrics().subscribers, hub.metrics().topics), (7, 2));
    // Subscriptions that ended (hub closed) still count until dropped.
    hub.close();
    assert_eq!(hub.metrics().subscribers, 7);
    subs.clear();
    assert_eq!(hub.metrics().subscribers, 1);
    drop(sse);
    assert_eq!((hub.metrics().subscribers, hub.metrics().topics), (0, 0));
}

#[tokio::test]
async fn metrics_count_resumes_and_disconnects_by_reason() {
    let (hub, epoch) = hub_with(4, 6);
    let exact = hub.subscribe("t", after(EventId::new(epoch, 4))).unwrap();
    let live = hub.subscribe("t", Resume::Live).unwrap();
    let evicted = hub.subscribe("t", after(EventId::new(epoch, 1))).unwrap();
    let metrics = hub.metrics();
    assert_eq!((metrics.resumes_exact, metrics.resets_evicted), (1, 1));

    // Each ending is counted once, by why it ended.
    drop((exact, live, evicted));
    assert_eq!(hub.metrics().disconnects_client, 3, "dropped while open: the client left");

    let lifetime = SseConfig::new().keep_alive(None).max_lifetime(Duration::from_millis(20), Duration::ZERO);
    let hub = Hub::builder().stream(lifetime).build();
    let sse = hub.sse("t", Resume::Live).unwrap();
    let chunks: Vec<_> = timeout(PATIENCE, sse.collect::<Vec<_>>()).await.expect("ends at its lifetime");
    assert!(chunks.is_empty());
    let metrics = hub.metrics();
    assert_eq!((metrics.disconnects_lifetime, metrics.disconnects_client), (1, 0), "not a client that left");

    let mut polled = Reader::new(hub.subscribe("t", Resume::Live).unwrap());
    let never_polled = hub.subscribe("t", Resume::Live).unwrap();
    hub.close();
    polled.assert_ended().await;
    drop((polled, never_polled));
    let metrics = hub.metrics();
    assert_eq!((metrics.disconnects_closed, metrics.disconnects_client, metrics.disconnects_lifetime), (2, 0, 1));
    assert_eq!(metrics.disconnects_lagged, 0);
}

#[tokio::test]
async fn on_close_runs_on_drop() {
    let hub = Hub::new();
    let closed = Arc::new(AtomicBool::new(false));
    let flag = closed.clone();
    let subscription = hub.subscribe("t", Resume::Live).unwrap().on_close(move || flag.store(true, Ordering::SeqCst));
    assert!(!closed.load(Ordering::SeqCst));
    let sse = Sse::from_subscription(subscription);
    drop(sse);
    assert!(closed.load(Ordering::SeqCst));
    assert_eq!(hub.subscribers("t"), 0);

    // The same on a stream from `Hub::sse`.
    let left = Arc::new(AtomicBool::new(false));
    let flag = left.clone();
    let sse = hub.sse("t", Resume::Live).unwrap().on_close(move || flag.store(true, Ordering::SeqCst));
    assert!(!left.load(Ordering::SeqCst));
    drop(sse);
    assert!(left.load(Ordering::SeqCst));
}

/// A waker that drops a subscription when woken.
struct DropOnWake(Mutex<Option<Subscription>>);

impl std::task::Wake for DropOnWake {
    fn wake(self: Arc<Self>) {
        self.0.lock().unwrap().take();
    }
}

#[test]
fn a_waker_may_drop_a_subscription_while_the_hub_closes() {
    // Dropping the last subscriber of a topic takes the hub's topics lock, so
    // `close` must not hold it while it wakes.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let hub = Hub::new();
        let mut woken = hub.subscribe("a", Resume::Live).unwrap();
        let other = hub.subscribe("b", Resume::Live).unwrap();
        let waker = std::task::Waker::from(Arc::new(DropOnWake(Mutex::new(Some(other)))));
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(woken.poll_next_unpin(&mut cx).is_pending());
        hub.close();
        assert_eq!(hub.subscribers("b"), 0, "the subscription was dropped");
        assert_eq!((hub.metrics().subscribers, hub.metrics().topics), (1, 1), "and its empty topic with it");
        let _ = done.send(());
    });
    finished.recv_timeout(PATIENCE).expect("close returns");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_ends_every_subscription() {
    let hub = Hub::new();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let mut subscription = hub.subscribe(&format!("t{}", i % 4), Resume::Live).unwrap();
        tasks.push(tokio::spawn(async move {
            let mut chunks = 0;
            while subscription.next().await.is_some() {
                chunks += 1;
            }
            chunks
        }));
    }
    let mut sse = hub.sse("t0", Resume::Live).unwrap();
    hub.publish("t0", data("before")).unwrap();
    tokio::task::yield_now().await;
    hub.close();
    for task in tasks {
        let chunks = timeout(PATIENCE, task).await.expect("ends within the patience").unwrap();
        assert!(chunks <= 1);
    }
    let rest: Vec<_> = timeout(PATIENCE, (&mut sse).collect::<Vec<_>>()).await.unwrap();
    assert!(rest.len() <= 1, "at most the event published before closing");
    assert!(matches!(hub.publish("t0", data("late")), Err(PublishError::Closed)));
    assert!(matches!(hub.publish("fresh", data("late")), Err(PublishError::Closed)));
    assert_eq!(hub.subscribe("t0", Resume::Live).unwrap_err(), SubscribeError::Closed);
    assert!(matches!(hub.sse("t0", Resume::Live), Err(SubscribeError::Closed)));
    hub.close(); // idempotent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_with_delivers_the_final_event_first() {
    let hub = Hub::new();
    let waiting = {
        let mut reader = Reader::new(hub.subscribe("t", Resume::Live).unwrap());
        tokio::spawn(async move {
            let mut events = Vec::new();
            while let Some(chunk) = reader.chunk().await {
                events.extend(chunk);
            }
            events
        })
    };
    let mut idle = Reader::new(hub.subscribe("u", Resume::Live).unwrap());
    tokio::task::yield_now().await;
    hub.close_with(Event::new().event("bye").data("restarting")).unwrap();
    let events = timeout(PATIENCE, waiting).await.unwrap().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0].event.as_str(), events[0].data.as_str(), events[0].last_event_id.as_str()),
        ("bye", "restarting", "")
    );
    let last = idle.take(1).await;
    assert_eq!(last[0].event, "bye");
    idle.assert_ended().await;

    // An unencodable final event is an error, and the hub is closed anyway.
    let hub = Hub::new();
    let mut reader = Reader::new(hub.subscribe("t", Resume::Live).unwrap());
    assert!(matches!(hub.close_with(Event::new().event("a\rb")), Err(EventError::EventLineBreak)));
    reader.assert_ended().await;
}

#[test]
fn handles_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Hub>();
    assert_send_sync::<Subscription>();
    assert_send_sync::<Sse<Subscription>>();
    assert_send_sync::<Event>();
    assert_send_sync::<Frame>();
    assert_send_sync::<EventId>();
    assert_send_sync::<PublishError>();
    assert_send_sync::<SubscribeError>();
}

/// A small deterministic generator: the test needs spread, not quality.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Publishers and resuming subscribers race on one topic with a small log. Every subscriber's
/// sequence must be gap-free and duplicate-free, except right after an explicit reset, and every
/// event must carry the data published under its id.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_publish_and_resume_is_gap_free() {
    const PUBLISHERS: u64 = 3;
    const PER_PUBLISHER: u64 = 4_000;
    const SUBSCRIBERS: u64 = 6;
    const MAX_SESSIONS: u64 = 2_000;

    for round in 0..10u64 {
        let hub = Hub::builder().history(64).build();
        let published: Arc<Mutex<HashMap<u64, String>>> = Arc::default();
        let seen: Arc<Mutex<Vec<EventId>>> = Arc::default();
        let latest = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));

        let publishers: Vec<_> = (0..PUBLISHERS)
            .map(|p| {
                let (hub, published, latest) = (hub.clone(), published.clone(), latest.clone());
                tokio::spawn(async move {
                    for seq in 0..PER_PUBLISHER {
                        let text = format!("p{p}-{seq}");
                        let id = hub.publish("race", data(text.clone())).unwrap();
                        published.lock().unwrap().insert(id.offset(), text);
                        latest.fetch_max(id.offset(), Ordering::SeqCst);
                        if seq % 16 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                })
            })
            .collect();

        let subscribers: Vec<_> = (0..SUBSCRIBERS)
            .map(|s| {
                let (hub, seen, latest, done) = (hub.clone(), seen.clone(), latest.clone(), done.clone());
                tokio::spawn(async move {
                    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ ((round << 32) | (s + 1)));
                    let mut received: Vec<(u64, String)> = Vec::new();
                    let mut sessions = 0;
                    let mut resets = 0;
                    while !done.load(Ordering::SeqCst) && sessions < MAX_SESSIONS {
                        sessions += 1;
                        let from = {
                            let seen = seen.lock().unwrap();
                            if seen.is_empty() || rng.below(4) == 0 {
                                None
                            } else {
                                Some(seen[rng.below(seen.len() as u64) as usize])
                            }
                        };
                        let known = latest.load(Ordering::SeqCst);
                        let resume = from.map_or(Resume::Live, after);
                        let mut subscription = hub.subscribe("race", resume).unwrap();
                        let mut decoder = Decoder::new();
                        // The offset the next event must have, once known.
                        let mut expected = from.map(|id| id.offset() + 1);
                        let at_start = received.len();
                        let slow = rng.below(3) == 0;
                        for _ in 0..1 + rng.below(40) {
                            let Ok(Some(chunk)) = timeout(Duration::from_millis(200), subscription.next()).await else {
                                break;
                            };
                            for event in decoder.feed(&chunk).unwrap() {
                                let id = id_of(&event);
                                if event.event == "reset" {
                                    let reason = serde_json::from_str::<serde_json::Value>(&event.data).unwrap();
                                    let reason = reason["reason"].as_str().unwrap().to_owned();
                                    match expected {
                                        // At the start: only an id that was evicted. The
                                        // reset's id is the newest offset then, and the log
                                        // held the 64 before it: an id among those resumes.
                                        Some(next) if reason == "evicted" && received.len() == at_start => {
                                            assert!(id.offset() > next - 1 + 64, "{from:?} was retained: {event:?}");
                                        }
                                        _ => assert_eq!(reason, "lagged", "unexpected reset {event:?}"),
                                    }
                                    resets += 1;
                                    expected = Some(id.offset() + 1);
                                    continue;
                                }
                                match expected {
                                    Some(next) => assert_eq!(id.offset(), next, "gap or duplicate after {from:?}"),
                                    None => assert!(id.offset() > known, "live starts after the known events"),
                                }
                                expected = Some(id.offset() + 1);
                                received.push((id.offset(), event.data));
                                if rng.below(8) == 0 {
                                    seen.lock().unwrap().push(id);
                                }
                            }
                            if slow {
                                tokio::task::yield_now().await;
                            }
                        }
                    }
                    (received, resets, sessions)
                })
            })
            .collect();

        for publisher in publishers {
            timeout(Duration::from_secs(30), publisher).await.expect("publishers finish").unwrap();
        }
        done.store(true, Ordering::SeqCst);
        let published = published.lock().unwrap().clone();
        assert_eq!(published.len() as u64, PUBLISHERS * PER_PUBLISHER);
        let mut total = 0;
        for subscriber in subscribers {
            let (received, _resets, sessions) =
                timeout(Duration::from_secs(30), subscriber).await.expect("subscribers finish").unwrap();
            assert!(sessions >= 1);
            for (offset, text) in &received {
                assert_eq!(published.get(offset), Some(text), "event {offset} carries its own data");
            }
            total += received.len();
        }
        assert!(total > 0, "subscribers received events");
        assert_eq!(hub.metrics().subscribers, 0);
    }
}

/// Every subscriber reaches the last event: a wake-up lost between a subscriber's "nothing new"
/// and its going to sleep would leave it waiting for good, and the test would time out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_wake_up_is_lost_between_publishes() {
    const SUBSCRIBERS: usize = 64;
    const EVENTS: u64 = 2_000;
    let hub = Hub::builder().history(EVENTS as usize).build();
    let subscribers: Vec<_> = (0..SUBSCRIBERS)
        .map(|s| {
            let mut reader = Reader::new(hub.subscribe("wake", Resume::Live).unwrap());
            tokio::spawn(async move {
                let mut last = 0;
                while last < EVENTS {
                    let events = reader.chunk().await.expect("subscription open");
                    let offsets = offsets(&events);
                    assert_eq!(offsets, (last + 1..=last + offsets.len() as u64).collect::<Vec<_>>());
                    last += offsets.len() as u64;
                    if s % 2 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for n in 1..=EVENTS {
        hub.publish("wake", data(n.to_string())).unwrap();
        if n % 4 == 0 {
            tokio::task::yield_now().await;
        }
    }
    for subscriber in subscribers {
        timeout(PATIENCE, subscriber).await.expect("every subscriber reaches the last event").unwrap();
    }
}

/// A subscription polled by one task and then by another wakes the second: the waker it
/// registered is replaced, not kept.
#[tokio::test]
async fn a_subscription_moved_to_another_task_wakes_that_task() {
    use std::task::{Context, Wake, Waker};

    struct Flag(AtomicBool);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let flag = || Arc::new(Flag(AtomicBool::new(false)));

    let hub = Hub::new();
    let mut subscription = hub.subscribe("moved", Resume::Live).unwrap();
    let (first, second) = (flag(), flag());
    for task in [&first, &second] {
        let waker = Waker::from(task.clone());
        let poll = subscription.poll_next_unpin(&mut Context::from_waker(&waker));
        assert!(poll.is_pending());
    }
    hub.publish("moved", data("x")).unwrap();
    assert!(second.0.load(Ordering::SeqCst), "the task polling now is woken");
    assert!(!first.0.load(Ordering::SeqCst), "the task that let go is not");
    assert!(subscription.next().now_or_never().flatten().is_some());
}
