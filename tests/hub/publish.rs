//! Publishing: ids (epoch, offset) per topic, one encoded frame shared by every
//! subscriber, and the events and topic names the hub refuses.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use ssekit::{BuildError, Event, EventError, EventId, Frame, Hub, PublishError, Resume, SubscribeError, TopicError};

use crate::support::{Reader, after, data, id_of, offsets};

#[tokio::test]
async fn publish_reaches_live_subscriber_with_the_returned_id() {
    let hub = Hub::new();
    let mut reader = Reader::new(hub.try_subscribe("news", Resume::Live).unwrap());
    reader.assert_idle();
    let mut ids = Vec::new();
    for i in 1..=3 {
        let id = hub.try_publish("news", Event::new().event("headline").data(format!("n{i}"))).unwrap();
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
    let other = hub.try_publish("sport", data("s1")).unwrap();
    assert_eq!(other.offset(), 1);
    assert_ne!(other.epoch(), ids[0].epoch());
    assert_eq!(hub.try_publish("news", data("n4")).unwrap(), EventId::new(ids[0].epoch(), 4));
    assert_eq!(hub.metrics().published, 5);
}

#[tokio::test]
async fn frames_are_shared_between_subscribers() {
    let hub = Hub::new();
    let mut a = hub.try_subscribe("t", Resume::Live).unwrap();
    let mut b = hub.try_subscribe("t", Resume::Live).unwrap();
    let id = hub.try_publish("t", data("shared")).unwrap();
    let (a, b): (Bytes, Bytes) = (a.next().await.unwrap(), b.next().await.unwrap());
    assert_eq!(a, format!("data: shared\nid: {id}\n\n"));
    assert_eq!(a, b);
    assert_eq!(a.as_ptr(), b.as_ptr(), "one encoded frame, shared by reference");

    // A replaying subscriber gets the same frame too.
    let mut c = hub.try_subscribe("t", after(EventId::new(id.epoch(), 0))).unwrap();
    assert_eq!(c.next().await.unwrap().as_ptr(), a.as_ptr());
}

#[tokio::test]
async fn refused_events_and_topics() {
    let hub = Hub::builder().max_topic_len(8).build();
    assert!(matches!(hub.try_publish("t", data("x").id("mine")), Err(PublishError::IdSet)));
    assert!(matches!(
        hub.try_publish("t", Event::new().event("a\nb").data("x")),
        Err(PublishError::Event(EventError::EventLineBreak))
    ));
    assert!(matches!(hub.try_publish_frame("t", Frame::from_static("id: 1\ndata: x\n\n")), Err(PublishError::IdSet)));
    assert_eq!(
        hub.try_publish("", data("x")).unwrap_err().to_string(),
        TopicError::InvalidName { len: 0, max_len: 8 }.to_string()
    );
    assert!(matches!(
        hub.try_publish("123456789", data("x")),
        Err(PublishError::Topic(TopicError::InvalidName { len: 9, max_len: 8 }))
    ));
    assert_eq!(
        hub.try_subscribe("", Resume::Live).unwrap_err(),
        SubscribeError::Topic(TopicError::InvalidName { len: 0, max_len: 8 })
    );
    assert!(matches!(hub.sse("123456789", Resume::Live).await, Err(SubscribeError::Topic(_))));
    assert_eq!(hub.metrics().published, 0);
    assert_eq!(hub.metrics().topics, 0);

    // Eight bytes is fine, and so is a frame the application built.
    let mut reader = Reader::new(hub.try_subscribe("12345678", Resume::Live).unwrap());
    let id = hub.try_publish_frame("12345678", Frame::from_static("event: prebuilt\ndata: x\n\n")).unwrap();
    let events = reader.take(1).await;
    assert_eq!((events[0].event.as_str(), id_of(&events[0])), ("prebuilt", id));

    // The default limit is 256 bytes.
    let hub = Hub::new();
    assert!(hub.try_publish(&"a".repeat(256), data("x")).is_ok());
    assert!(matches!(
        hub.try_publish(&"a".repeat(257), data("x")),
        Err(PublishError::Topic(TopicError::InvalidName { .. }))
    ));

    // A reset name that could forge fields is refused at build time.
    assert!(matches!(
        Hub::builder().reset_event("a\nb").try_build(),
        Err(BuildError::ResetEvent(EventError::EventLineBreak))
    ));
}

#[tokio::test]
async fn a_publish_retried_with_its_key_appends_once() {
    let hub = Hub::builder().publish_once_window(Duration::from_millis(200)).build();
    let mut reader = Reader::new(hub.try_subscribe("t", Resume::Live).unwrap());
    let first = hub.publish_once("t", "k1", data("a")).await.unwrap();
    assert_eq!(hub.publish_once("t", "k1", data("a")).await.unwrap(), first, "the retry: the first id");
    let other = hub.publish_once("t", "k2", data("b")).await.unwrap();
    assert_ne!(other, first);
    // The same key on another topic is another publish.
    hub.publish_once("u", "k1", data("c")).await.unwrap();
    assert_eq!(offsets(&reader.take(2).await), [first.offset(), other.offset()]);
    reader.assert_idle();
    assert_eq!(hub.metrics().published, 3);

    // Past the window, the key is forgotten.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = hub.publish_once("t", "k1", data("a")).await.unwrap();
    assert_eq!(again.offset(), other.offset() + 1);

    for bad in [String::new(), "k".repeat(129)] {
        assert!(matches!(
            hub.publish_once("t", &bad, data("x")).await,
            Err(PublishError::InvalidKey { len, max: 128 }) if len == bad.len()
        ));
    }
}
