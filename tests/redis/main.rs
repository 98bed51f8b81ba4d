//! The Redis backplane against real Redis processes that each test starts on
//! free loopback ports, each with its own temporary directory: one server, a
//! primary with a replica under three sentinels, a three-primary cluster. Two
//! hubs on the backplane in one process stand for two nodes.
#![cfg(feature = "redis")]

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

mod cluster;
mod failover;
mod one_server;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use ssekit::{Decoder, Event, Hub, LastEventId, MessageEvent, RedisBackplane, RedisConfig, Resume, Subscription};
use support::redis_servers::RedisServer;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(15);

async fn node(server: &RedisServer, history: usize) -> Hub {
    node_on(RedisConfig::new(server.url()), history).await
}

/// A node on Redis as `config` says, with timeouts well above a round trip on a
/// loaded machine (the tests `unwrap` publishes) and a quick resync.
async fn node_on(config: RedisConfig, history: usize) -> Hub {
    let config = config.timeout(Duration::from_secs(2)).resync_interval(Duration::from_millis(300));
    let redis = RedisBackplane::connect(config).await.unwrap();
    Hub::builder().history(history).backplane(redis).build()
}

/// Publishes `data`, retrying (bounded) while the nodes find Redis again (a
/// new primary, a primary back); its id.
pub(crate) async fn publish_eventually(hub: &Hub, topic: &str, data: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match hub.publish(topic, Event::new().data(data)).await {
            Ok(id) => return id.to_string(),
            Err(err) => assert!(Instant::now() < deadline, "publishing never recovered: {err:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads decoded events until `count` arrived.
pub(crate) async fn take(subscription: &mut Subscription, decoder: &mut Decoder, count: usize) -> Vec<MessageEvent> {
    let mut events = Vec::new();
    while events.len() < count {
        let chunk = timeout(WAIT, subscription.next())
            .await
            .unwrap_or_else(|_| panic!("timed out after {} of {count} events: {events:?}", events.len()))
            .expect("subscription ended");
        events.extend(decoder.feed(&chunk).unwrap());
    }
    assert_eq!(events.len(), count, "more events than expected: {events:?}");
    events
}

pub(crate) fn data(events: &[MessageEvent]) -> Vec<&str> {
    events.iter().map(|e| e.data.as_str()).collect()
}

pub(crate) fn resume(id: &str) -> Resume {
    LastEventId::parse(id.as_bytes()).unwrap().into()
}

/// Two demos on the same Redis deployment (given by `flags`): an id published
/// through one resumes exactly through the other, and `/health` lists `links`
/// connections, all connected.
async fn demos_share_one_log(flags: &[&str], links: usize) {
    use support::client::{events, post};
    use support::demo::{Demo, DemoApp};

    let (one, other) = (Demo::start(DemoApp::Axum, flags), Demo::start(DemoApp::Actix, flags));
    let (status, first) = post(one.addr, "/publish?topic=t", r#"{"data": "first"}"#).await;
    assert_eq!(status, 200, "{first}");
    let (status, second) = post(other.addr, "/publish?topic=t", r#"{"data": "second"}"#).await;
    assert_eq!(status, 200, "{second}");
    let id = first["id"].as_str().unwrap().to_owned();
    let mut stream = events(other.addr, "topic=t", &[("last-event-id", &id)]).await;
    let event = stream.next_event().await;
    assert_eq!((event.data.as_str(), event.last_event_id.as_str()), ("second", second["id"].as_str().unwrap()));
    for demo in [&one, &other] {
        let health = demo.health().await;
        let listed = health["redis"]["links"].as_array().expect("links in /health").clone();
        assert_eq!(listed.len(), links, "{health}");
        assert!(listed.iter().all(|link| link["connected"] == true && link["name"].is_string()), "{health}");
    }
    drop(stream);
    one.shutdown().await;
    other.shutdown().await;
}
