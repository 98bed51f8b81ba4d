//! The hub's door for backplanes, with a toy backplane written here against
//! the public API only (a shared in-process log standing for Redis): what any
//! engine can do without touching the hub.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use ssekit::hub::backplane::{Appended, Backplane, BackplaneError, BackplaneStatus, BoxFuture, Feed};
use ssekit::{BuildError, Decoder, Event, EventId, Hub, LastEventId, PublishError, Resume};
use tokio::time::timeout;

use crate::support::PATIENCE;

/// The log every node shares: per topic, the bodies in offset order.
#[derive(Debug, Default)]
struct SharedLog {
    topics: Mutex<HashMap<String, Vec<Bytes>>>,
    nodes: Mutex<Vec<Feed>>,
}

const EPOCH: u64 = 0x8000_0042;

/// Makes the error an append answers with.
type Failure = fn() -> BackplaneError;

/// One node's handle on the shared log.
#[derive(Debug, Clone)]
struct Node {
    log: Arc<SharedLog>,
    feed: Arc<Mutex<Option<Feed>>>,
    /// What the next append answers instead of appending.
    fail: Arc<Mutex<Option<Failure>>>,
    closed: Arc<AtomicBool>,
}

impl Node {
    fn new(log: &Arc<SharedLog>) -> Self {
        Self { log: log.clone(), feed: Arc::default(), fail: Arc::default(), closed: Arc::default() }
    }
}

impl Backplane for Node {
    fn attach(&self, feed: Feed) -> Result<(), BackplaneError> {
        let mut mine = self.feed.lock().unwrap();
        if mine.is_some() {
            return Err(BackplaneError::Attached);
        }
        self.log.nodes.lock().unwrap().push(feed.clone());
        *mine = Some(feed);
        Ok(())
    }

    fn append(&self, topic: &str, body: Bytes) -> BoxFuture<Result<EventId, BackplaneError>> {
        if let Some(fail) = self.fail.lock().unwrap().take() {
            return Box::pin(async move { Err(fail()) });
        }
        let offset = {
            let mut topics = self.log.topics.lock().unwrap();
            let bodies = topics.entry(topic.to_owned()).or_default();
            bodies.push(body.clone());
            bodies.len() as u64
        };
        // Every node that holds the topic gets the entry (a real engine would
        // wake its readers instead).
        for feed in self.log.nodes.lock().unwrap().iter() {
            let _: Appended = feed.append(topic, EPOCH, vec![(offset, body.clone())]);
        }
        Box::pin(async move { Ok(EventId::new(EPOCH, offset)) })
    }

    fn wanted(&self, topic: &Arc<str>) {
        // Called under the hub's lock: load from a task of its own.
        let (feed, log, topic) = (self.feed.lock().unwrap().clone(), self.log.clone(), topic.clone());
        tokio::spawn(async move {
            let Some(feed) = feed else { return };
            let bodies = log.topics.lock().unwrap().get(&*topic).cloned().unwrap_or_default();
            let entries: Vec<(u64, Bytes)> = bodies.into_iter().enumerate().map(|(i, b)| (i as u64 + 1, b)).collect();
            let next = entries.len() as u64 + 1;
            feed.load(&topic, EPOCH, next, entries);
        });
    }

    fn released(&self, _topic: &Arc<str>) {}

    fn status(&self) -> BackplaneStatus {
        BackplaneStatus::new(true, 1, 0, 0, None)
    }

    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }
}

async fn events(stream: &mut ssekit::Subscription, decoder: &mut Decoder, n: usize) -> Vec<ssekit::MessageEvent> {
    let mut events = Vec::new();
    while events.len() < n {
        let chunk = timeout(PATIENCE, stream.next()).await.expect("in time").expect("open");
        events.extend(decoder.feed(&chunk).unwrap());
    }
    events
}

#[tokio::test]
async fn a_toy_backplane_shares_topics_between_two_hubs() {
    let log = Arc::new(SharedLog::default());
    let (node_a, node_b) = (Node::new(&log), Node::new(&log));
    let a = Hub::builder().backplane(node_a.clone()).build();
    let b = Hub::builder().backplane(node_b.clone()).build();
    assert!(b.backplane_status().unwrap().connected);

    // Published before node B follows the topic: loaded as history, not replayed to a live client.
    a.publish("news", Event::new().data("before")).await.unwrap();
    let mut on_b = b.subscribe("news", Resume::Live).await.unwrap();
    let id = a.publish("news", Event::new().data("first")).await.unwrap();
    assert_eq!(id, EventId::new(EPOCH, 2));
    let mut decoder = Decoder::new();
    let got = events(&mut on_b, &mut decoder, 1).await;
    assert_eq!((got[0].data.as_str(), got[0].last_event_id.as_str()), ("first", id.to_string().as_str()));

    // An id from node A resumes exactly on node B; the frame was sealed there.
    b.publish("news", Event::new().data("second")).await.unwrap();
    let resume = Resume::After(LastEventId::parse(id.to_string().as_bytes()).unwrap());
    let mut resumed = b.subscribe("news", resume).await.unwrap();
    let got = events(&mut resumed, &mut Decoder::new(), 1).await;
    assert_eq!(got[0].data, "second");
    assert_eq!(b.metrics().resumes_exact, 1);

    // Publishing goes through the door: no synchronous publish, and the
    // backplane's error comes back as it said.
    assert!(matches!(a.try_publish("news", Event::new().data("x")), Err(PublishError::WouldBlock)));
    *node_a.fail.lock().unwrap() = Some(|| BackplaneError::OutcomeUnknown("lost answer".into()));
    let err = a.publish("news", Event::new().data("x")).await.unwrap_err();
    assert!(err.is_outcome_unknown(), "{err:?}");
    assert!(std::error::Error::source(&err).is_some(), "the backplane's error is the source");
    *node_a.fail.lock().unwrap() = Some(|| BackplaneError::Unavailable("refused".into()));
    assert!(!a.publish("news", Event::new().data("x")).await.unwrap_err().is_outcome_unknown());

    // One backplane feeds one hub; closing the hub closes it.
    let again = Hub::builder().backplane(node_a.clone()).try_build();
    assert!(matches!(again, Err(BuildError::Backplane(BackplaneError::Attached))), "{again:?}");
    a.close();
    assert!(node_a.closed.load(Ordering::SeqCst));
}

/// After a failover the backplane loads a log of a new epoch that continues
/// the old one through what the new store holds: readers and ids up to there
/// go on without a reset; beyond it (events the new store lost) they reset.
#[tokio::test]
async fn a_continued_epoch_keeps_readers_that_read_only_what_it_holds() {
    const NEW: u64 = 0x8000_0077;
    let log = Arc::new(SharedLog::default());
    let (node_a, node_b) = (Node::new(&log), Node::new(&log));
    let a = Hub::builder().backplane(node_a).build();
    let b = Hub::builder().backplane(node_b.clone()).build();
    let feed = node_b.feed.lock().unwrap().clone().unwrap();
    // What the hub hands a backplane: the frame without its id and final blank line.
    let body = |data: &str| Bytes::from(format!("data: {data}\n"));
    let id = |epoch: u64, offset: u64| {
        Resume::After(LastEventId::parse(EventId::new(epoch, offset).to_string().as_bytes()).unwrap())
    };

    // "kept": the reader read 1..3, the new store holds 1..3 and appends 4.
    let mut kept = b.subscribe("kept", Resume::Live).await.unwrap();
    let mut decoder = Decoder::new();
    for i in 1..=3 {
        a.publish("kept", Event::new().data(format!("k{i}"))).await.unwrap();
    }
    assert_eq!(events(&mut kept, &mut decoder, 3).await.len(), 3);
    let held: Vec<(u64, Bytes)> = (1..=3).map(|i| (i, body(&format!("k{i}")))).collect();
    let mut entries = held.clone();
    entries.push((4, body("k4 on the new store")));
    assert!(feed.load_continuing("kept", NEW, Some((EPOCH, 3)), 1, entries));
    let got = events(&mut kept, &mut decoder, 1).await;
    assert_eq!((got[0].event.as_str(), got[0].data.as_str()), ("message", "k4 on the new store"), "no reset");
    assert_eq!(got[0].last_event_id, EventId::new(NEW, 4).to_string());
    // An id of the old epoch up to the continued offset resumes exactly.
    let mut resumed = b.subscribe("kept", id(EPOCH, 2)).await.unwrap();
    let got = events(&mut resumed, &mut Decoder::new(), 2).await;
    assert_eq!(got.iter().map(|e| e.data.as_str()).collect::<Vec<_>>(), ["k3", "k4 on the new store"]);

    // "lost": the reader read 1..5, the new store holds only 1..3.
    let mut lost = b.subscribe("lost", Resume::Live).await.unwrap();
    let mut decoder = Decoder::new();
    for i in 1..=5 {
        a.publish("lost", Event::new().data(format!("l{i}"))).await.unwrap();
    }
    assert_eq!(events(&mut lost, &mut decoder, 5).await.len(), 5);
    let mut entries: Vec<(u64, Bytes)> = (1..=3).map(|i| (i, body(&format!("l{i}")))).collect();
    entries.push((4, body("l4 on the new store")));
    assert!(feed.load_continuing("lost", NEW, Some((EPOCH, 3)), 1, entries));
    let got = events(&mut lost, &mut decoder, 1).await;
    assert_eq!(got[0].event, "reset", "it read events the new store lost: {got:?}");
    // Ids beyond the continued offset reset too; those within it resume.
    let mut beyond = b.subscribe("lost", id(EPOCH, 5)).await.unwrap();
    assert_eq!(events(&mut beyond, &mut Decoder::new(), 1).await[0].event, "reset");
    let mut within = b.subscribe("lost", id(EPOCH, 3)).await.unwrap();
    let got = events(&mut within, &mut Decoder::new(), 1).await;
    assert_eq!((got[0].event.as_str(), got[0].data.as_str()), ("message", "l4 on the new store"));
}
