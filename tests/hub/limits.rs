//! The bounds on memory: bytes per topic log (and the largest event), the topic
//! limit, the age limit of events, and idle topics going away.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use ssekit::{Decoder, EventId, Hub, PublishError, Resume, SubscribeError, TopicError};

use crate::support::{Reader, after, assert_reset, data, offsets};

#[tokio::test]
async fn max_bytes_evicts_and_bounds_the_event_size() {
    const MAX: usize = 300;
    let hub = Hub::builder().history(1000).max_bytes(MAX).build();
    let mut lagging = hub.try_subscribe("t", Resume::Live).unwrap();
    let mut sizes = Vec::new();
    let mut epoch = 0;
    for i in 1..=20 {
        epoch = hub.try_publish("t", data(format!("{i:02}-{}", "x".repeat(40)))).unwrap().epoch();
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
    let err = hub.try_publish("t", data("y".repeat(MAX))).unwrap_err();
    assert!(matches!(err, PublishError::TooLarge { len, limit } if len > limit && limit < MAX), "{err:?}");
    assert_eq!(hub.metrics().published, 20);
    reader.assert_idle();
    assert_eq!(hub.try_publish("t", data("small")).unwrap(), EventId::new(epoch, 21));
    assert!(matches!(hub.try_publish("new", data("y".repeat(MAX))), Err(PublishError::TooLarge { .. })));
    assert_eq!(hub.metrics().topics, 1, "a refused event creates no topic");
}

#[tokio::test]
async fn topic_limit_sweeps_idle_topics_to_make_room() {
    let hub = Hub::builder().max_topics(2).replace_idle_topics(false).build();
    hub.try_publish("kept", data("retained")).unwrap();
    let watcher = hub.try_subscribe("watched", Resume::Live).unwrap();
    assert_eq!(hub.metrics().topics, 2);
    assert_eq!(hub.try_publish("third", data("x")).unwrap_err().to_string(), "topic limit of 2 reached");
    assert_eq!(
        hub.try_subscribe("third", Resume::Live).unwrap_err(),
        SubscribeError::Topic(TopicError::Limit { limit: 2 })
    );
    // Existing topics are still usable.
    hub.try_publish("watched", data("x")).unwrap();
    let extra = hub.try_subscribe("kept", Resume::Live).unwrap();
    drop(extra);
    assert_eq!(hub.metrics().topics, 2, "a topic with retained events stays");

    // A topic that only had subscribers vanishes with its last subscriber... but `watched`
    // now retains an event, so it stays.
    drop(watcher);
    assert_eq!(hub.metrics().topics, 2);
    let only_subscribed = Hub::builder().max_topics(1).replace_idle_topics(false).build();
    let a = only_subscribed.try_subscribe("a", Resume::Live).unwrap();
    let a2 = only_subscribed.try_subscribe("a", Resume::Live).unwrap();
    assert!(only_subscribed.try_subscribe("b", Resume::Live).is_err());
    drop(a);
    assert_eq!(only_subscribed.metrics().topics, 1, "one subscriber left");
    drop(a2);
    assert_eq!(only_subscribed.metrics().topics, 0, "subscriber-only topic gone with its last subscriber");
    assert!(only_subscribed.try_subscribe("b", Resume::Live).is_ok());
}

#[tokio::test]
async fn expired_topics_are_swept_to_make_room() {
    let age = Duration::from_millis(300);
    let hub = Hub::builder().max_topics(1).replace_idle_topics(false).max_age(age).build();
    let published = Instant::now();
    hub.try_publish("old", data("x")).unwrap();
    let refused = hub.try_publish("new", data("y"));
    // (Unless this thread stalled past the age limit, when "old" may rightly be gone.)
    if published.elapsed() < age {
        assert!(matches!(refused, Err(PublishError::Topic(TopicError::Limit { limit: 1 }))));
    }
    // Wait (bounded) until the event is older than the age limit; the topic then makes room.
    let mut published = false;
    for _ in 0..500 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        if hub.try_publish("new", data("y")).is_ok() {
            published = true;
            break;
        }
    }
    assert!(published, "the expired topic was swept");
    assert_eq!(hub.metrics().topics, 1);
    assert_eq!(hub.subscribers("old"), 0);

    // `sweep` returns the memory without waiting for the limit.
    let hub = Hub::builder().max_age(Duration::from_millis(20)).build();
    hub.try_publish("a", data("x")).unwrap();
    let _subscribed = hub.try_subscribe("b", Resume::Live).unwrap();
    hub.try_publish("b", data("x")).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    hub.sweep();
    assert_eq!(hub.metrics().topics, 1, "the subscribed topic stays");
}

#[tokio::test]
async fn events_older_than_the_age_limit_are_not_replayed() {
    let age = Duration::from_millis(20);
    let hub = Hub::builder().max_age(age).build();
    let _keeps_the_topic = hub.try_subscribe("t", Resume::Live).unwrap();
    let first = hub.try_publish("t", data("old")).unwrap();
    let before = EventId::new(first.epoch(), 0);
    std::thread::sleep(age * 3);
    // Nothing was published or swept since: the stale event is still in the log,
    // but a resume from before it is told it is gone instead of getting it.
    let mut resumed = Reader::new(hub.try_subscribe("t", after(before)).unwrap());
    let events = resumed.take(1).await;
    assert_eq!(assert_reset(&events[0], "evicted"), first);
    resumed.assert_idle();
    // A client that had it resumes exactly, with nothing to replay.
    let mut caught_up = Reader::new(hub.try_subscribe("t", after(first)).unwrap());
    caught_up.assert_idle();
    assert_eq!(hub.metrics().resumes_exact, 1);
    let next = hub.try_publish("t", data("new")).unwrap();
    assert_eq!(offsets(&caught_up.take(1).await), [next.offset()]);
    assert_eq!(offsets(&resumed.take(1).await), [next.offset()]);
}

#[tokio::test]
async fn idle_topics_go_after_the_idle_limit_even_with_events() {
    let ttl = Duration::from_millis(100);
    let hub = Hub::builder().max_topics(2).replace_idle_topics(false).idle_ttl(Some(ttl)).build();
    // Topics named by publishers, followed by nobody: they fill the limit only
    // for the idle time.
    let idle = Instant::now();
    let old = hub.try_publish("a", data("x")).unwrap();
    hub.try_publish("b", data("x")).unwrap();
    let both_published = Instant::now();
    let refused = hub.try_subscribe("c", Resume::Live);
    if idle.elapsed() < ttl {
        assert!(matches!(refused, Err(SubscribeError::Topic(TopicError::Limit { limit: 2 }))));
        assert!(refused.unwrap_err().is_temporary());
    }
    let mut made_room = false;
    for _ in 0..500 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        if hub.try_subscribe("c", Resume::Live).is_ok() {
            made_room = true;
            break;
        }
    }
    assert!(made_room, "idle topics were dropped");
    // A client that comes back to a dropped topic is told, never silently. (Both
    // are idle past the limit now, so "a" finds room even if a slow thread
    // published "b" well after "a".)
    tokio::time::sleep((both_published + ttl).saturating_duration_since(Instant::now())).await;
    let mut back = Reader::new(hub.try_subscribe("a", after(old)).unwrap());
    assert_reset(&back.take(1).await[0], "epoch");

    // Without the limit (and without an age limit), they stay.
    let hub = Hub::builder().max_topics(1).replace_idle_topics(false).idle_ttl(None).build();
    hub.try_publish("a", data("x")).unwrap();
    std::thread::sleep(ttl);
    hub.sweep();
    assert_eq!(hub.metrics().topics, 1);
}

#[tokio::test]
async fn a_topic_that_expires_after_its_last_subscriber_left_makes_room() {
    let age = Duration::from_millis(300);
    let hub = Hub::builder().max_topics(2).replace_idle_topics(false).max_age(age).build();
    let _forever = hub.try_subscribe("busy", Resume::Live).unwrap();
    let subscription = hub.try_subscribe("old", Resume::Live).unwrap();
    let published = Instant::now();
    hub.try_publish("old", data("x")).unwrap();
    drop(subscription);
    let topics = hub.metrics().topics;
    let refused = hub.try_subscribe("new", Resume::Live).map(drop);
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
        if let Ok(subscription) = hub.try_subscribe("new", Resume::Live) {
            subscribed = Some(subscription);
            break;
        }
    }
    assert!(subscribed.is_some(), "the expired topic was swept");
    assert_eq!((hub.metrics().topics, hub.subscribers("busy")), (2, 1));
}
