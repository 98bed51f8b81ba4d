//! Subscribers that fall behind the retained log: reset or disconnected, as the
//! lag policy says; publishing never waits for them.

use std::time::Duration;

use ssekit::{EventId, Hub, LagPolicy, Resume};

use crate::support::{Reader, after, assert_reset, data, datas, offsets};

#[tokio::test]
async fn a_lagging_subscriber_is_reset_and_continues_from_the_oldest_retained() {
    let hub = Hub::builder().history(4).build();
    let mut reader = Reader::new(hub.try_subscribe("t", Resume::Live).unwrap());
    let mut epoch = 0;
    for i in 1..=10 {
        epoch = hub.try_publish("t", data(format!("e{i}"))).unwrap().epoch();
    }
    let events = reader.take(5).await;
    assert_eq!(assert_reset(&events[0], "lagged"), EventId::new(epoch, 6));
    assert_eq!(datas(&events[1..]), ["e7", "e8", "e9", "e10"]);
    reader.assert_idle();
    hub.try_publish("t", data("e11")).unwrap();
    assert_eq!(datas(&reader.take(1).await), ["e11"]);
    let metrics = hub.metrics();
    assert_eq!((metrics.resets_lagged, metrics.disconnects_lagged), (1, 0));
    assert_eq!(reader.subscription.position(), EventId::new(epoch, 11));
}

#[tokio::test]
async fn a_lagging_subscriber_is_disconnected_under_that_policy() {
    let hub = Hub::builder().history(4).lag_policy(LagPolicy::Disconnect).build();
    let mut slow = Reader::new(hub.try_subscribe("t", Resume::Live).unwrap());
    let mut fast = Reader::new(hub.try_subscribe("t", Resume::Live).unwrap());
    for i in 1..=4 {
        hub.try_publish("t", data(format!("e{i}"))).unwrap();
    }
    assert_eq!(fast.take(4).await.len(), 4);
    hub.try_publish("t", data("e5")).unwrap();
    assert_eq!(datas(&fast.take(1).await), ["e5"]);
    slow.assert_ended().await;
    fast.assert_idle();
    let metrics = hub.metrics();
    assert_eq!((metrics.resets_lagged, metrics.disconnects_lagged), (0, 1));
    // The client reconnects with its last id and learns of the gap.
    let mut back = Reader::new(hub.try_subscribe("t", after(slow.subscription.position())).unwrap());
    assert_reset(&back.take(1).await[0], "evicted");
}

#[tokio::test]
async fn publishing_never_waits_for_a_subscriber() {
    let hub = Hub::builder().history(16).build();
    let mut stalled = Reader::new(hub.try_subscribe("t", Resume::Live).unwrap());
    let mut last = None;
    for i in 0..100_000u32 {
        last = Some(hub.try_publish("t", data(i.to_string())).unwrap());
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
async fn a_lagging_subscriber_skips_events_older_than_the_age_limit_too() {
    let age = Duration::from_millis(20);
    let hub = Hub::builder().history(4).max_age(age).build();
    let mut reader = Reader::new(hub.try_subscribe("t", Resume::Live).unwrap());
    let mut last = None;
    for i in 1..=6 {
        last = Some(hub.try_publish("t", data(format!("e{i}"))).unwrap());
    }
    // Offsets 1 and 2 are evicted by count; 3 to 6 are still in the log, but
    // older than the age limit by the time the subscriber reads.
    std::thread::sleep(age * 3);
    let events = reader.take(1).await;
    assert_eq!(assert_reset(&events[0], "lagged"), last.unwrap());
    reader.assert_idle();
}
