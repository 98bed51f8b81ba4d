//! A Redis Cluster of three primaries: topics on every shard resume across
//! nodes; a primary that is down fails only its own topics' publishes, every
//! other topic flows, and its topics go on exactly (or reset) once it is back.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use ssekit::{Decoder, Event, Hub, MessageEvent, PublishError, RedisConfig, Resume, Subscription};
use tokio::time::timeout;

use super::support::redis_servers::Cluster;
use super::{WAIT, data, node_on, publish_eventually, resume, take};

fn cluster_config(redis: &Cluster) -> RedisConfig {
    RedisConfig::cluster(redis.addresses())
}

/// Two topics held by each primary: names tried in turn until each shard has two.
async fn topics_per_shard(redis: &Cluster, hub: &Hub) -> BTreeMap<usize, Vec<String>> {
    let mut shards: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for n in 0..200 {
        let topic = format!("c{n}");
        let owner = redis.owner(&format!("ssekit:{{{topic}}}:meta"));
        if shards.get(&owner).is_none_or(|topics| topics.len() < 2) {
            hub.publish(&topic, Event::new().data(format!("{topic}-0"))).await.unwrap();
            shards.entry(owner).or_default().push(topic);
        }
        if shards.len() == 3 && shards.values().all(|topics| topics.len() == 2) {
            return shards;
        }
    }
    panic!("no two topics on every shard among 200 names: {shards:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_on_every_shard_resume_exactly_on_the_other_node() {
    let redis = Cluster::start();
    let (a, b) = (node_on(cluster_config(&redis), 100).await, node_on(cluster_config(&redis), 100).await);
    let shards = topics_per_shard(&redis, &a).await;
    let topics: Vec<&str> = shards.values().flatten().map(String::as_str).collect();
    let mut ids = Vec::new();
    for topic in &topics {
        ids.push(a.publish(topic, Event::new().data(format!("{topic}-1"))).await.unwrap().to_string());
        b.publish(topic, Event::new().data(format!("{topic}-2"))).await.unwrap();
    }
    for (topic, id) in topics.iter().zip(&ids) {
        let mut on_b = b.subscribe(topic, resume(id)).await.unwrap();
        assert_eq!(data(&take(&mut on_b, &mut Decoder::new(), 1).await), [format!("{topic}-2")], "{topic}");
        let mut on_a = a.subscribe(topic, resume(id)).await.unwrap();
        assert_eq!(data(&take(&mut on_a, &mut Decoder::new(), 1).await), [format!("{topic}-2")], "{topic}");
    }
    // A stream of topics on all three shards, resumed on the other node.
    let mut several = a.subscribe_many(&topics, Resume::Live, 0).await.unwrap();
    for topic in &topics {
        b.publish(topic, Event::new().data(format!("{topic}-3"))).await.unwrap();
    }
    let seen = take(&mut several, &mut Decoder::new(), topics.len()).await;
    let last = seen.last().unwrap().last_event_id.clone();
    for topic in &topics {
        a.publish(topic, Event::new().data(format!("{topic}-4"))).await.unwrap();
    }
    let mut resumed = b.subscribe_many(&topics, resume(&last), 0).await.unwrap();
    let mut missed: Vec<String> =
        data(&take(&mut resumed, &mut Decoder::new(), topics.len()).await).into_iter().map(str::to_owned).collect();
    missed.sort();
    let mut expected: Vec<String> = topics.iter().map(|t| format!("{t}-4")).collect();
    expected.sort();
    assert_eq!(missed, expected);
    let status = b.backplane_status().unwrap();
    assert_eq!(status.links.len(), 3, "one wake-up link per listed node: {status:?}");
    assert!(status.connected);
}

/// Reads until an event whose data is `data` arrived; returns what came.
async fn read_until(subscription: &mut Subscription, decoder: &mut Decoder, data: &str) -> Vec<MessageEvent> {
    let mut events: Vec<MessageEvent> = Vec::new();
    while !events.iter().any(|e| e.data == data) {
        let chunk = timeout(WAIT, subscription.next())
            .await
            .unwrap_or_else(|_| panic!("no {data:?} in time; got {events:?}"))
            .expect("subscription ended");
        events.extend(decoder.feed(&chunk).unwrap());
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_down_fails_only_its_topics_and_they_go_on_when_it_returns() {
    let mut redis = Cluster::start();
    let (a, b) = (node_on(cluster_config(&redis), 100).await, node_on(cluster_config(&redis), 100).await);
    let shards = topics_per_shard(&redis, &a).await;
    let mut readers = BTreeMap::new();
    for topic in shards.values().flatten() {
        let mut reader = b.subscribe(topic, Resume::Live).await.unwrap();
        let mut decoder = Decoder::new();
        a.publish(topic, Event::new().data(format!("{topic}-before"))).await.unwrap();
        let before = read_until(&mut reader, &mut decoder, &format!("{topic}-before")).await;
        readers.insert(topic.clone(), (reader, decoder, before.last().unwrap().last_event_id.clone()));
    }

    let down = 1;
    redis.nodes[down].kill();
    for (shard, topics) in &shards {
        for topic in topics {
            let published = a.publish(topic, Event::new().data(format!("{topic}-during"))).await;
            if *shard == down {
                let err = published.expect_err("a publish to a topic of the stopped primary fails");
                // Nothing could be appended: the primary is gone (refused), or the
                // request was on its way when it went (unknown).
                assert!(matches!(err, PublishError::Backplane(_)), "{err:?}");
                let said = format!("{err}");
                assert!(said.contains("nothing was appended") || err.is_outcome_unknown(), "{err:?}");
            } else {
                published.unwrap_or_else(|err| panic!("{topic} is on a primary that is up: {err:?}"));
                let (reader, decoder, _) = readers.get_mut(topic).unwrap();
                read_until(reader, decoder, &format!("{topic}-during")).await;
            }
        }
    }
    let status = b.backplane_status().unwrap();
    assert!(
        status.links.iter().any(|link| !link.connected) || !status.connected || status.last_error.is_some(),
        "the outage shows in the status: {status:?}"
    );

    redis.restart(down);
    for topic in &shards[&down] {
        let after = format!("{topic}-after");
        publish_eventually(&a, topic, &after).await;
        let (reader, decoder, last) = readers.get_mut(topic).unwrap();
        let events = read_until(reader, decoder, &after).await;
        // The primary kept its data (append-only file, fsync always): its topics
        // go on exactly, in an epoch that continues the old one.
        assert_eq!(data(&events), [after.as_str()], "{topic}: no reset");
        let offset = |id: &str| id.rsplit('-').next().unwrap().parse::<u64>().unwrap();
        assert_eq!(offset(&events[0].last_event_id), offset(last) + 1, "{topic}: no gap");
    }
    let status = b.backplane_status().unwrap();
    assert!(
        timeout(Duration::from_secs(10), async {
            while !b.backplane_status().unwrap().connected {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .is_ok(),
        "every link back: {status:?}"
    );
}

#[tokio::test]
async fn confirm_by_replicas_is_refused_with_a_cluster() {
    let config = RedisConfig::cluster(["127.0.0.1:1"]).confirm_by_replicas(1);
    let err = ssekit::RedisBackplane::connect(config).await.unwrap_err();
    assert!(std::error::Error::source(&err).unwrap().to_string().contains("Cluster"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demos_run_on_a_cluster() {
    let redis = Cluster::start();
    let nodes = redis.addresses().join(",");
    super::demos_share_one_log(&["--redis-cluster", &nodes], 3).await;
}
