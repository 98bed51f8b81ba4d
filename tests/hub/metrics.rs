//! What the hub counts: subscribers per topic and in all, resumes, resets, and
//! disconnects by reason.

use std::time::Duration;

use futures_util::StreamExt;
use ssekit::{EventId, Hub, Resume, SseConfig};
use tokio::time::timeout;

use crate::support::{PATIENCE, Reader, after, hub_with};

#[tokio::test]
async fn subscriber_counts_are_exact() {
    let hub = Hub::new();
    let mut subs = Vec::new();
    for topic in ["a", "b", "c"] {
        for _ in 0..3 {
            subs.push(hub.try_subscribe(topic, Resume::Live).unwrap());
        }
    }
    let sse = hub.sse("a", Resume::Live).await.unwrap();
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
    let exact = hub.try_subscribe("t", after(EventId::new(epoch, 4))).unwrap();
    let live = hub.try_subscribe("t", Resume::Live).unwrap();
    let evicted = hub.try_subscribe("t", after(EventId::new(epoch, 1))).unwrap();
    let metrics = hub.metrics();
    assert_eq!((metrics.resumes_exact, metrics.resets_evicted), (1, 1));

    // Each ending is counted once, by why it ended.
    drop((exact, live, evicted));
    assert_eq!(hub.metrics().disconnects_client, 3, "dropped while open: the client left");

    let lifetime = SseConfig::new().keep_alive(None).max_lifetime(Duration::from_millis(20), Duration::ZERO);
    let hub = Hub::new();
    let sse = hub.sse("t", Resume::Live).await.unwrap().with_config(lifetime);
    let chunks: Vec<_> = timeout(PATIENCE, sse.collect::<Vec<_>>()).await.expect("ends at its lifetime");
    assert!(chunks.is_empty());
    let metrics = hub.metrics();
    assert_eq!((metrics.disconnects_lifetime, metrics.disconnects_client), (1, 0), "not a client that left");

    let mut polled = Reader::new(hub.try_subscribe("t", Resume::Live).unwrap());
    let never_polled = hub.try_subscribe("t", Resume::Live).unwrap();
    hub.close();
    polled.assert_ended().await;
    drop((polled, never_polled));
    let metrics = hub.metrics();
    assert_eq!((metrics.disconnects_closed, metrics.disconnects_client, metrics.disconnects_lifetime), (2, 0, 1));
    assert_eq!(metrics.disconnects_lagged, 0);
}
