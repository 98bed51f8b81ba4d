//! Several topics on one subscription: one id resumes each topic exactly, a
//! topic that cannot resume gets a reset of its own, history on joining, and
//! the limit on topics.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use futures_util::{FutureExt, StreamExt};
use ssekit::{Decoder, Event, Hub, LastEventId, MessageEvent, Resume, SubscribeError, Subscription};
use tokio::time::timeout;

use crate::support::{PATIENCE, data};

/// A subscription to several topics and the decoder of its chunks (several
/// small events in one, or a large event's body and its id line in two).
struct Many {
    subscription: Subscription,
    topics: Vec<String>,
    decoder: Decoder,
    /// Events decoded and not taken yet.
    queue: VecDeque<MessageEvent>,
    /// The id of the last event read: where its client would resume.
    last_id: String,
}

impl Many {
    fn new(subscription: Subscription) -> Self {
        let topics = subscription.topics().map(str::to_owned).collect();
        Self { subscription, topics, decoder: Decoder::new(), queue: VecDeque::new(), last_id: String::new() }
    }

    /// The topic an event is of: its id starts with the topic's index.
    fn topic_of(&self, event: &MessageEvent) -> String {
        let index: usize = event.last_event_id.split('.').next().unwrap().parse().expect("a compound id");
        self.topics[index].clone()
    }

    /// The next event, with its topic.
    async fn event(&mut self) -> (String, MessageEvent) {
        loop {
            if let Some(event) = self.queue.pop_front() {
                self.last_id = event.last_event_id.clone();
                return (self.topic_of(&event), event);
            }
            let chunk = timeout(PATIENCE, self.subscription.next()).await.expect("an event within the patience");
            self.queue.extend(self.decoder.feed(&chunk.expect("still open")).expect("hub output decodes"));
        }
    }

    /// Whatever is ready now, by topic: `(topic, data)` of each event.
    fn ready(&mut self) -> Vec<(String, String)> {
        let mut got = Vec::new();
        while let Some(Some(chunk)) = self.subscription.next().now_or_never() {
            self.queue.extend(self.decoder.feed(&chunk).expect("hub output decodes"));
        }
        for event in std::mem::take(&mut self.queue) {
            self.last_id = event.last_event_id.clone();
            got.push((self.topic_of(&event), event.data));
        }
        got
    }

    fn resume(&self) -> Resume {
        Resume::After(LastEventId::parse(self.last_id.as_bytes()).expect("a valid id"))
    }
}

fn publish(hub: &Hub, topic: &str, text: &str) {
    hub.try_publish(topic, data(text)).expect("publish");
}

#[tokio::test]
async fn every_topic_on_one_stream_in_its_order_and_one_id_resumes_them_all() {
    let hub = Hub::new();
    let topics = ["a", "b", "c", "d"];
    let mut reader = Many::new(hub.try_subscribe_many(&topics, Resume::Live, 0).unwrap());
    for round in 0..3 {
        for topic in topics {
            publish(&hub, topic, &format!("{topic}{round}"));
        }
    }
    let mut seen: HashMap<String, Vec<String>> = HashMap::new();
    for _ in 0..12 {
        let (topic, event) = reader.event().await;
        assert_eq!(&event.data[..1], topic, "the id names the event's topic");
        seen.entry(topic).or_default().push(event.data);
    }
    for topic in topics {
        assert_eq!(seen[topic], (0..3).map(|round| format!("{topic}{round}")).collect::<Vec<_>>(), "in publish order");
    }
    let id = reader.last_id.clone();
    assert!(id.len() <= 60, "short ids: {id}");
    drop(reader);

    // Missed while away, on two of the topics: exactly those, nothing twice.
    publish(&hub, "b", "b3");
    publish(&hub, "d", "d3");
    publish(&hub, "d", "d4");
    let resume = Resume::After(LastEventId::parse(id.as_bytes()).unwrap());
    let mut again = Many::new(hub.try_subscribe_many(&topics, resume, 0).unwrap());
    let mut got = Vec::new();
    for _ in 0..3 {
        let (topic, event) = again.event().await;
        got.push((topic, event.data));
    }
    got.sort();
    assert_eq!(got, [("b".into(), "b3".into()), ("d".into(), "d3".into()), ("d".into(), "d4".into())]);
    assert!(again.ready().is_empty(), "nothing more");
    assert_eq!(hub.metrics().resumes_exact, 4, "every topic resumed exactly");

    // The same id, with the topics listed in another order: still exact.
    let resume = Resume::After(LastEventId::parse(id.as_bytes()).unwrap());
    let mut reordered = Many::new(hub.try_subscribe_many(&["d", "c", "b", "a"], resume, 0).unwrap());
    let mut got: Vec<_> =
        (0..3).map(|_| reordered.event().now_or_never().expect("replayed at once")).map(|(t, e)| (t, e.data)).collect();
    got.sort();
    assert_eq!(got, [("b".into(), "b3".into()), ("d".into(), "d3".into()), ("d".into(), "d4".into())]);
}

#[tokio::test]
async fn exact_over_many_reconnects_while_others_publish() {
    let hub = Hub::builder().history(10_000).build();
    let topics = ["t0", "t1", "t2", "t3"];
    let publishers: Vec<_> = topics
        .iter()
        .map(|topic| {
            let (hub, topic) = (hub.clone(), topic.to_string());
            tokio::spawn(async move {
                for n in 0..300 {
                    hub.try_publish(&topic, Event::new().data(format!("{n}"))).unwrap();
                    if n % 7 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    let mut expected: HashMap<String, u64> = topics.iter().map(|t| (t.to_string(), 0)).collect();
    let mut resume = Resume::Live;
    let mut reconnects = 0;
    // The first connection is live from now: count from what it sees first.
    let mut first = true;
    while expected.values().any(|&n| n < 300) && reconnects < 1_000 {
        let mut reader = Many::new(hub.try_subscribe_many(&topics, resume.clone(), 0).unwrap());
        // A few events, then the connection drops.
        for _ in 0..7 {
            let Ok((topic, event)) = timeout(PATIENCE / 5, reader.event()).await else {
                break;
            };
            let n: u64 = event.data.parse().unwrap();
            let want = expected.get_mut(&topic).unwrap();
            if first && *want == 0 {
                *want = n;
            }
            assert_eq!(n, *want, "{topic}: no gap and nothing twice (after {reconnects} reconnects)");
            *want += 1;
        }
        first = false;
        if !reader.last_id.is_empty() {
            resume = reader.resume();
        }
        reconnects += 1;
    }
    for publisher in publishers {
        publisher.await.unwrap();
    }
    assert!(expected.values().all(|&n| n == 300), "every event of every topic: {expected:?}");
    assert_eq!(hub.metrics().resets_evicted + hub.metrics().resets_epoch, 0);
}

#[tokio::test]
async fn one_topic_that_cannot_resume_gets_one_reset_naming_it() {
    let hub = Hub::builder().history(2).build();
    let mut reader = Many::new(hub.try_subscribe_many(&["kept", "evicted"], Resume::Live, 0).unwrap());
    publish(&hub, "kept", "k1");
    publish(&hub, "evicted", "e1");
    let _ = (reader.event().await, reader.event().await);
    let resume = reader.resume();
    drop(reader);
    publish(&hub, "kept", "k2");
    for n in 2..6 {
        publish(&hub, "evicted", &format!("e{n}"));
    }
    let mut again = Many::new(hub.try_subscribe_many(&["kept", "evicted"], resume, 0).unwrap());
    let mut events = Vec::new();
    for _ in 0..2 {
        let (topic, event) = again.event().await;
        events.push((topic, event.event, event.data));
    }
    events.sort();
    assert_eq!(
        events,
        [
            ("evicted".into(), "reset".into(), r#"{"topic":"evicted","reason":"evicted"}"#.into()),
            ("kept".into(), "message".into(), "k2".into()),
        ]
    );
    assert!(again.ready().is_empty(), "after the reset the topic continues live");
    publish(&hub, "evicted", "e6");
    assert_eq!(again.event().await.1.data, "e6");
    // The reset's id resumes both topics exactly from where the stream stands.
    assert_eq!(hub.metrics().resets_evicted, 1);
}

#[tokio::test]
async fn an_id_of_another_epoch_or_malformed_resets_each_topic() {
    let hub = Hub::new();
    let other = Hub::new();
    other.try_publish("x", data("other")).unwrap();
    let foreign = {
        let mut reader = Many::new(other.try_subscribe_many(&["x", "y"], Resume::Live, 0).unwrap());
        other.try_publish("y", data("y")).unwrap();
        reader.event().await;
        reader.resume()
    };
    let mut reader = Many::new(hub.try_subscribe_many(&["x", "y"], foreign, 0).unwrap());
    let resets: Vec<_> = (0..2).map(|_| reader.event().now_or_never().expect("at once")).collect();
    for (topic, event) in &resets {
        assert_eq!(event.event, "reset");
        assert_eq!(event.data, format!(r#"{{"topic":"{topic}","reason":"epoch"}}"#));
    }
    let malformed = Resume::After(LastEventId::parse(b"1.!!").unwrap());
    let mut reader = Many::new(hub.try_subscribe_many(&["x", "y"], malformed, 0).unwrap());
    let reasons: Vec<_> = (0..2).map(|_| reader.event().now_or_never().expect("at once").1.data).collect();
    assert!(reasons.iter().all(|data| data.contains(r#""reason":"malformed""#)), "{reasons:?}");
}

#[tokio::test]
async fn history_on_join_below_equal_and_above_what_is_retained() {
    let hub = Hub::builder().history(5).max_join_history(50).build();
    for n in 1..=8 {
        publish(&hub, "a", &format!("a{n}"));
    }
    publish(&hub, "b", "b1");
    let recent = |history: usize| {
        let mut reader = Many::new(hub.try_subscribe_many(&["a", "b"], Resume::Live, history).unwrap());
        let mut got = reader.ready();
        got.sort();
        got.into_iter().map(|(_, data)| data).collect::<Vec<_>>()
    };
    assert_eq!(recent(0), Vec::<String>::new(), "no history asked: live only");
    assert_eq!(recent(2), ["a7", "a8", "b1"]);
    assert_eq!(recent(5), ["a4", "a5", "a6", "a7", "a8", "b1"], "all that is retained");
    assert_eq!(recent(40), ["a4", "a5", "a6", "a7", "a8", "b1"], "no more than retained");

    // Then live, with no gap between the history and what comes next.
    let mut reader = Many::new(hub.try_subscribe_many(&["a", "b"], Resume::Live, 1).unwrap());
    assert_eq!(reader.ready().len(), 2);
    publish(&hub, "a", "a9");
    assert_eq!(reader.event().await.1.data, "a9");

    // The setting caps it; a single topic takes history too.
    let capped = Hub::builder().max_join_history(2).build();
    for n in 1..=4 {
        capped.try_publish("a", data(format!("a{n}"))).unwrap();
    }
    let mut one = Many::new(capped.try_subscribe_many(&["a"], Resume::Live, 10).unwrap());
    one.topics = vec!["a".into()];
    let chunk = one.subscription.next().now_or_never().flatten().expect("history at once");
    let events = one.decoder.feed(&chunk).unwrap();
    assert_eq!(events.iter().map(|e| e.data.as_str()).collect::<Vec<_>>(), ["a3", "a4"]);
    assert!(!events[0].last_event_id.contains('.'), "one topic keeps plain ids");

    // With an id, the id wins and history is ignored.
    let resume = Resume::After(LastEventId::parse(events[1].last_event_id.as_bytes()).unwrap());
    let mut resumed = capped.try_subscribe_many(&["a"], resume, 10).unwrap();
    assert!(resumed.next().now_or_never().is_none(), "nothing missed, nothing replayed");
}

#[tokio::test]
async fn too_many_topics_or_none_are_refused_whole() {
    let hub = Hub::builder().max_topics_per_subscription(3).build();
    let refused = hub.try_subscribe_many(&["a", "b", "c", "d"], Resume::Live, 0).unwrap_err();
    assert!(matches!(refused, SubscribeError::Topics { count: 4, max: 3 }), "{refused:?}");
    assert!(!refused.is_temporary());
    assert_eq!(hub.metrics().topics, 0, "no topic was taken");
    let none: [&str; 0] = [];
    assert!(matches!(hub.try_subscribe_many(&none, Resume::Live, 0), Err(SubscribeError::Topics { count: 0, .. })));
    // Duplicates count once.
    let subscription = hub.try_subscribe_many(&["a", "b", "a", "c", "b"], Resume::Live, 0).unwrap();
    assert_eq!(subscription.topics().collect::<Vec<_>>(), ["a", "b", "c"]);
    // A topic refused (here: an empty name) refuses the whole subscription.
    let bad = hub.try_subscribe_many(&["d", ""], Resume::Live, 0);
    assert!(matches!(bad, Err(SubscribeError::Topic(_))), "{bad:?}");
    assert_eq!(hub.subscribers("d"), 0, "the topic taken before the refused one was given back");
}

#[tokio::test]
async fn a_lagging_topic_is_reset_alone() {
    let hub = Arc::new(Hub::builder().history(4).build());
    let mut reader = Many::new(hub.try_subscribe_many(&["slow", "calm"], Resume::Live, 0).unwrap());
    publish(&hub, "calm", "c1");
    for n in 0..10 {
        publish(&hub, "slow", &format!("s{n}"));
    }
    let mut got = Vec::new();
    for _ in 0..6 {
        let (topic, event) = reader.event().await;
        got.push((topic, event.event, event.data));
    }
    assert!(got.contains(&("calm".into(), "message".into(), "c1".into())), "{got:?}");
    let resets: Vec<_> = got.iter().filter(|(_, event, _)| event == "reset").collect();
    assert_eq!(resets.len(), 1, "{got:?}");
    assert_eq!(resets[0].0, "slow");
    assert_eq!(resets[0].2, r#"{"topic":"slow","reason":"lagged"}"#);
    let slow: Vec<_> = got
        .iter()
        .filter(|(topic, event, _)| topic == "slow" && event == "message")
        .map(|(_, _, d)| d.as_str())
        .collect();
    assert_eq!(slow, ["s6", "s7", "s8", "s9"], "continues from the oldest retained");
}

#[tokio::test]
async fn small_events_of_every_topic_come_in_one_chunk_a_large_one_alone() {
    let hub = Hub::new();
    let mut subscription = hub.try_subscribe_many(&["a", "b"], Resume::Live, 0).unwrap();
    for text in ["a0", "a1", "a2"] {
        publish(&hub, "a", text);
    }
    publish(&hub, "b", "b0");
    let large = "x".repeat(64 * 1024);
    publish(&hub, "a", &large);
    publish(&hub, "b", "b1");

    let mut decoder = Decoder::new();
    let mut chunks = Vec::new();
    while let Some(Some(chunk)) = subscription.next().now_or_never() {
        let events = decoder.feed(&chunk).expect("hub output decodes");
        chunks.push(events.iter().map(|event| event.data.len().min(8)).collect::<Vec<_>>());
    }
    // The topics take turns, ready small events share a chunk; the large event's
    // body is sent as the log holds it, its id line after it.
    assert_eq!(chunks, [vec![2, 2, 2, 2, 2], vec![], vec![8]], "{chunks:?}");
    let mut again = Many::new(subscription);
    publish(&hub, "b", "b2");
    assert_eq!(again.ready(), [("b".to_owned(), "b2".to_owned())]);
}

/// On a thread of its own: what a thread shares starts there afresh (a thread
/// whose streams shared nothing lately keeps only some of its batches).
#[test]
fn streams_at_the_same_place_share_a_chunk_others_get_their_own() {
    std::thread::spawn(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(same_place_streams_share());
    })
    .join()
    .unwrap();
}

async fn same_place_streams_share() {
    let hub = Hub::new();
    let topics = ["a", "b", "c"];
    let mut first = hub.try_subscribe_many(&topics, Resume::Live, 0).unwrap();
    let mut second = hub.try_subscribe_many(&topics, Resume::Live, 0).unwrap();
    let mut other_order = hub.try_subscribe_many(&["b", "a", "c"], Resume::Live, 0).unwrap();
    publish(&hub, "b", "b0");
    publish(&hub, "a", "a0");
    let one = first.next().now_or_never().flatten().expect("ready");
    let two = second.next().now_or_never().flatten().expect("ready");
    assert_eq!(one, two);
    assert_eq!(one.as_ptr(), two.as_ptr(), "the same bytes, built once");
    let three = other_order.next().now_or_never().flatten().expect("ready");
    assert_ne!(one, three, "other ids: their own chunk");

    // One moves on alone: from then on each has its own place, and both read
    // exactly what follows.
    publish(&hub, "c", "c0");
    let one = first.next().now_or_never().flatten().expect("ready");
    publish(&hub, "c", "c1");
    let two = second.next().now_or_never().flatten().expect("ready");
    let mut decoder = Decoder::new();
    let data = |decoder: &mut Decoder, chunk: &[u8]| {
        decoder.feed(chunk).unwrap().into_iter().map(|event| event.data).collect::<Vec<_>>()
    };
    assert_eq!(data(&mut decoder, &one), ["c0"]);
    // The chunk the first built from this place (c0), then the rest.
    let mut got = data(&mut decoder, &two);
    while let Some(Some(chunk)) = second.next().now_or_never() {
        got.extend(data(&mut decoder, &chunk));
    }
    assert_eq!(got, ["c0", "c1"]);
    let one = first.next().now_or_never().flatten().expect("ready");
    assert_eq!(data(&mut decoder, &one), ["c1"]);
    assert!(first.next().now_or_never().is_none() && second.next().now_or_never().is_none());
}
