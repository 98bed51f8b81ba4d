//! One Redis server: events across nodes, resume on either node, several
//! topics, eviction, restarts with and without persistence, publish keys, a
//! stalled server, the demo's answer to an outage.

use std::time::Duration;

use futures_util::StreamExt;
use ssekit::{Decoder, Event, Hub, PublishError, RedisBackplane, RedisConfig, Resume};
use tokio::time::timeout;

use super::support::redis_servers::RedisServer;
use super::{WAIT, data, node, resume, take};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_cross_nodes_in_order() {
    let redis = RedisServer::start(false);
    let (a, b) = (node(&redis, 1000).await, node(&redis, 1000).await);
    let mut on_b = b.subscribe("news", Resume::Live).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..100 {
        ids.push(a.publish("news", Event::new().data(format!("e{i}"))).await.unwrap().to_string());
    }
    let events = take(&mut on_b, &mut Decoder::new(), 100).await;
    assert_eq!(data(&events), (0..100).map(|i| format!("e{i}")).collect::<Vec<_>>());
    assert_eq!(events.iter().map(|e| e.last_event_id.clone()).collect::<Vec<_>>(), ids);
    assert!(b.backplane_status().unwrap().connected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_from_one_node_resumes_exactly_on_the_other() {
    let redis = RedisServer::start(false);
    let (a, b) = (node(&redis, 1000).await, node(&redis, 1000).await);
    let mut on_a = a.subscribe("news", Resume::Live).await.unwrap();
    for i in 0..10 {
        a.publish("news", Event::new().data(format!("e{i}"))).await.unwrap();
    }
    let seen = take(&mut on_a, &mut Decoder::new(), 10).await;
    drop(on_a);
    for i in 10..20 {
        b.publish("news", Event::new().data(format!("e{i}"))).await.unwrap();
    }
    let mut on_b = b.subscribe("news", resume(&seen[9].last_event_id)).await.unwrap();
    let missed = take(&mut on_b, &mut Decoder::new(), 10).await;
    assert_eq!(data(&missed), (10..20).map(|i| format!("e{i}")).collect::<Vec<_>>());
    assert!(missed.iter().all(|e| e.event == "message"), "no reset: {missed:?}");
}

/// A stream of several topics on node B; its id resumes every topic exactly on
/// node A, while both nodes publish; history on joining comes from Redis too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_of_several_topics_resumes_on_the_other_node() {
    let redis = RedisServer::start(false);
    let (a, b) = (node(&redis, 1000).await, node(&redis, 1000).await);
    let topics = ["t0", "t1", "t2", "t3"];
    let mut on_b = b.subscribe_many(&topics, Resume::Live, 0).await.unwrap();
    for round in 0..5 {
        for (n, topic) in topics.iter().enumerate() {
            let node = if n % 2 == 0 { &a } else { &b };
            node.publish(topic, Event::new().data(format!("{topic}-{round}"))).await.unwrap();
        }
    }
    let seen = take(&mut on_b, &mut Decoder::new(), 20).await;
    for topic in topics {
        let of_topic: Vec<&str> = data(&seen).into_iter().filter(|d| d.starts_with(topic)).collect();
        assert_eq!(of_topic, (0..5).map(|round| format!("{topic}-{round}")).collect::<Vec<_>>(), "{topic} in order");
    }
    let last = seen.last().unwrap().last_event_id.clone();
    drop(on_b);
    // Missed while away, published through both nodes.
    for (n, topic) in topics.iter().enumerate().filter(|(n, _)| n % 2 == 1) {
        let node = if n == 1 { &a } else { &b };
        node.publish(topic, Event::new().data(format!("{topic}-missed"))).await.unwrap();
    }
    let mut on_a = a.subscribe_many(&topics, resume(&last), 0).await.unwrap();
    let mut missed =
        data(&take(&mut on_a, &mut Decoder::new(), 2).await).into_iter().map(str::to_owned).collect::<Vec<_>>();
    missed.sort();
    assert_eq!(missed, ["t1-missed", "t3-missed"]);
    assert!(timeout(Duration::from_millis(300), on_a.next()).await.is_err(), "nothing more: no duplicate");

    // A new client on node A asks for the last 2 of each topic.
    let mut joined = a.subscribe_many(&topics[..2], Resume::Live, 2).await.unwrap();
    let mut recent =
        data(&take(&mut joined, &mut Decoder::new(), 4).await).into_iter().map(str::to_owned).collect::<Vec<_>>();
    recent.sort();
    assert_eq!(recent, ["t0-3", "t0-4", "t1-4", "t1-missed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_on_both_nodes_give_everyone_one_order() {
    let redis = RedisServer::start(false);
    let (a, b) = (node(&redis, 1000).await, node(&redis, 1000).await);
    let mut on_a = a.subscribe("chat", Resume::Live).await.unwrap();
    let mut on_b = b.subscribe("chat", Resume::Live).await.unwrap();
    let publish = |hub: Hub, name: &'static str| {
        tokio::spawn(async move {
            for i in 0..200 {
                hub.publish("chat", Event::new().data(format!("{name}{i}"))).await.unwrap();
            }
        })
    };
    let (pa, pb) = (publish(a.clone(), "a"), publish(b.clone(), "b"));
    pa.await.unwrap();
    pb.await.unwrap();
    let seen_a = take(&mut on_a, &mut Decoder::new(), 400).await;
    let seen_b = take(&mut on_b, &mut Decoder::new(), 400).await;
    assert_eq!(seen_a, seen_b);
    // Each publisher's events keep their own order within the total order.
    let of = |prefix: &str| data(&seen_a).into_iter().filter(|d| d.starts_with(prefix)).collect::<Vec<_>>();
    assert_eq!(of("a"), (0..200).map(|i| format!("a{i}")).collect::<Vec<_>>());
    assert_eq!(of("b"), (0..200).map(|i| format!("b{i}")).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicted_id_gets_a_reset() {
    let redis = RedisServer::start(false);
    let (a, b) = (node(&redis, 10).await, node(&redis, 10).await);
    let mut first = None;
    for i in 0..200 {
        let id = a.publish("news", Event::new().data(format!("e{i}"))).await.unwrap();
        first.get_or_insert(id);
    }
    let mut on_b = b.subscribe("news", resume(&first.unwrap().to_string())).await.unwrap();
    let events = take(&mut on_b, &mut Decoder::new(), 1).await;
    assert_eq!(events[0].event, "reset");
    assert!(events[0].data.contains("evicted"), "{events:?}");
    a.publish("news", Event::new().data("after")).await.unwrap();
    assert_eq!(data(&take(&mut on_b, &mut Decoder::new(), 1).await), ["after"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_without_persistence_resets_and_continues() {
    let mut redis = RedisServer::start(false);
    let (a, b) = (node(&redis, 100).await, node(&redis, 100).await);
    let mut on_b = b.subscribe("news", Resume::Live).await.unwrap();
    let mut decoder = Decoder::new();
    for i in 0..5 {
        a.publish("news", Event::new().data(format!("e{i}"))).await.unwrap();
    }
    let before = take(&mut on_b, &mut decoder, 5).await;

    redis.kill();
    let err = a.publish("news", Event::new().data("lost")).await.unwrap_err();
    assert!(matches!(err, PublishError::Backplane(_)), "{err:?}");
    redis.restart();

    // Publishing works again once the connection is back (bounded retries).
    let mut published = false;
    for _ in 0..100 {
        if a.publish("news", Event::new().data("after")).await.is_ok() {
            published = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(published, "publish never succeeded after restart");
    let events = take(&mut on_b, &mut decoder, 2).await;
    assert_eq!(events[0].event, "reset", "{events:?}");
    assert!(events[0].data.contains("epoch"), "{events:?}");
    assert_eq!(events[1].data, "after");
    assert_ne!(events[1].last_event_id.split('-').next(), before[4].last_event_id.split('-').next());
    // An id of the old epoch gets a reset on either node.
    let mut old = a.subscribe("news", resume(&before[4].last_event_id)).await.unwrap();
    assert_eq!(take(&mut old, &mut Decoder::new(), 1).await[0].event, "reset");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_with_persistence_loses_nothing() {
    let mut redis = RedisServer::start(true);
    let (a, b) = (node(&redis, 100).await, node(&redis, 100).await);
    let mut on_b = b.subscribe("news", Resume::Live).await.unwrap();
    let mut decoder = Decoder::new();
    for i in 0..5 {
        a.publish("news", Event::new().data(format!("e{i}"))).await.unwrap();
    }
    take(&mut on_b, &mut decoder, 5).await;

    redis.restart();
    let mut sent = 5;
    for _ in 0..100 {
        if a.publish("news", Event::new().data(format!("e{sent}"))).await.is_ok() {
            sent += 1;
            if sent == 10 {
                break;
            }
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(sent, 10, "publishing did not recover");
    let events = take(&mut on_b, &mut decoder, 5).await;
    assert_eq!(data(&events), (5..10).map(|i| format!("e{i}")).collect::<Vec<_>>(), "no reset, no gap");
    assert!(b.backplane_status().unwrap().connects >= 2, "{:?}", b.backplane_status().unwrap());
}

/// A publish retried through another node with the same key appends nothing:
/// the keys live in Redis, in the topic's slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_retried_through_another_node_with_its_key_appends_once() {
    let redis = RedisServer::start(false);
    let (a, b) = (node(&redis, 16).await, node(&redis, 16).await);
    let mut reader = a.subscribe("orders", Resume::Live).await.unwrap();
    let (first, retry) = tokio::join!(
        a.publish_once("orders", "order-1", Event::new().data("paid")),
        b.publish_once("orders", "order-1", Event::new().data("paid")),
    );
    assert_eq!(first.unwrap(), retry.unwrap(), "one append, one id");
    let second = b.publish_once("orders", "order-2", Event::new().data("shipped")).await.unwrap();
    assert_eq!(a.publish_once("orders", "order-2", Event::new().data("shipped")).await.unwrap(), second);
    let mut decoder = Decoder::new();
    assert_eq!(data(&take(&mut reader, &mut decoder, 2).await), ["paid", "shipped"]);
    assert!(timeout(Duration::from_millis(500), reader.next()).await.is_err(), "nothing more");
    assert_eq!(a.metrics().published + b.metrics().published, 2, "a retry is not counted as published");
}

/// A publish that times out while Redis stalls is reported as of unknown
/// outcome (it is appended once Redis wakes), and a retry with its key after
/// that appends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_publish_is_of_unknown_outcome_and_its_retry_appends_nothing() {
    let redis = RedisServer::start(false);
    let config = RedisConfig::new(redis.url()).timeout(Duration::from_millis(500));
    let hub = Hub::builder().history(16).backplane(RedisBackplane::connect(config).await.unwrap()).build();
    let mut reader = hub.subscribe("pay", Resume::Live).await.unwrap();
    // (Redis knows the append script once a publish ran it.)
    hub.publish("pay", Event::new().data("opened")).await.unwrap();
    let mut decoder = Decoder::new();
    assert_eq!(data(&take(&mut reader, &mut decoder, 1).await), ["opened"]);
    redis.signal("-STOP");
    let stalled = hub.publish_once("pay", "payment-7", Event::new().data("paid")).await;
    redis.signal("-CONT");
    let err = stalled.expect_err("Redis was stopped");
    assert!(err.is_outcome_unknown(), "{err}");
    // Redis ran the append when it woke: the event is delivered once, and the
    // retry gets its id instead of appending again.
    let events = take(&mut reader, &mut decoder, 1).await;
    assert_eq!(data(&events), ["paid"]);
    let retry = timeout(WAIT, async {
        loop {
            match hub.publish_once("pay", "payment-7", Event::new().data("paid")).await {
                Err(err) if err.is_outcome_unknown() => tokio::time::sleep(Duration::from_millis(100)).await,
                other => return other,
            }
        }
    })
    .await
    .expect("Redis answers again")
    .unwrap();
    assert_eq!(retry.to_string(), events[0].last_event_id, "the retry: the id of the append that went through");
    assert!(timeout(Duration::from_millis(500), reader.next()).await.is_err(), "nothing appended twice");
}

/// The demo on Redis: a publish while Redis is down is answered `503` (the
/// server's trouble, worth a retry), saying whether its outcome is unknown;
/// once the link is back, `/health` dates the last error, before the link came
/// back, and publishing works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_answers_a_redis_outage_with_503_and_dates_the_last_error() {
    use super::support::client::post;
    use super::support::demo::{Demo, DemoApp};

    let mut redis = RedisServer::start(false);
    let url = redis.url();
    let demo = Demo::start(DemoApp::Axum, &["--redis", &url]);
    let (status, reply) = post(demo.addr, "/publish?topic=t&key=k1", r#"{"data": "a"}"#).await;
    assert_eq!(status, 200, "{reply}");
    let (status, retry) = post(demo.addr, "/publish?topic=t&key=k1", r#"{"data": "a"}"#).await;
    assert_eq!((status, &retry["id"]), (200, &reply["id"]), "a retry with its key: the first id");

    let unix_ms = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let killed = unix_ms();
    redis.kill();
    let (status, reply) = post(demo.addr, "/publish?topic=t", r#"{"data": "b"}"#).await;
    assert_eq!(status, 503, "{reply}");
    assert!(reply["error"].is_string() && reply["outcome_unknown"].is_boolean(), "{reply}");

    redis.restart();
    let deadline = tokio::time::Instant::now() + WAIT;
    let health = loop {
        let health = demo.health().await;
        if health["redis"]["connected"] == true {
            break health;
        }
        assert!(tokio::time::Instant::now() < deadline, "not reconnected: {health}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let at = health["redis"]["last_error_at"].as_u64().expect("the last error is dated");
    assert!(health["redis"]["last_error"].is_string(), "{health}");
    assert!((killed..=unix_ms()).contains(&at), "the outage's error, met before the link came back: {health}");
    let (status, reply) = post(demo.addr, "/publish?topic=t", r#"{"data": "c"}"#).await;
    assert_eq!(status, 200, "{reply}");
    demo.shutdown().await;
}
