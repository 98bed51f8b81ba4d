//! What the hub's tests share: resume positions, a reader of a subscription's
//! chunks, and a hub with events already published.

use futures_util::{FutureExt, StreamExt};
use ssekit::{Decoder, Event, EventId, Hub, LastEventId, MessageEvent, Resume, Subscription};
use std::time::Duration;
use tokio::time::timeout;

/// Longest wait for something that should be ready: a hang fails the test instead of stalling it.
pub(crate) const PATIENCE: Duration = Duration::from_secs(5);

pub(crate) fn after(id: impl ToString) -> Resume {
    Resume::After(LastEventId::parse(id.to_string().as_bytes()).expect("valid last-event-id"))
}

pub(crate) fn data(text: impl Into<String>) -> Event {
    Event::new().data(text)
}

pub(crate) fn id_of(event: &MessageEvent) -> EventId {
    event.last_event_id.parse().expect("hub ids parse")
}

/// A subscription and the decoder of what it yielded so far.
pub(crate) struct Reader {
    pub(crate) subscription: Subscription,
    decoder: Decoder,
}

impl Reader {
    pub(crate) fn new(subscription: Subscription) -> Self {
        Self { subscription, decoder: Decoder::new() }
    }

    /// The events of the next chunk; `None` when the subscription ended.
    pub(crate) async fn chunk(&mut self) -> Option<Vec<MessageEvent>> {
        let chunk = timeout(PATIENCE, self.subscription.next()).await.expect("a chunk within the patience")?;
        let events = self.decoder.feed(&chunk).expect("hub output decodes");
        assert!(!events.is_empty(), "a chunk carries whole frames: {chunk:?}");
        Some(events)
    }

    /// Exactly the next `n` events (over as many chunks as it takes).
    pub(crate) async fn take(&mut self, n: usize) -> Vec<MessageEvent> {
        let mut events = Vec::new();
        while events.len() < n {
            events.extend(self.chunk().await.expect("subscription still open"));
        }
        assert_eq!(events.len(), n, "no more than the events expected: {events:?}");
        events
    }

    /// Asserts that nothing is ready now.
    pub(crate) fn assert_idle(&mut self) {
        if let Some(chunk) = self.subscription.next().now_or_never() {
            panic!("expected nothing ready, got {chunk:?}");
        }
    }

    /// Asserts that the subscription has ended.
    pub(crate) async fn assert_ended(&mut self) {
        assert_eq!(timeout(PATIENCE, self.subscription.next()).await.expect("ends within the patience"), None);
    }
}

pub(crate) fn datas(events: &[MessageEvent]) -> Vec<&str> {
    events.iter().map(|e| e.data.as_str()).collect()
}

pub(crate) fn offsets(events: &[MessageEvent]) -> Vec<u64> {
    events.iter().map(|e| id_of(e).offset()).collect()
}

/// Asserts `event` is a default `reset` event for `reason`, and returns its id.
#[track_caller]
pub(crate) fn assert_reset(event: &MessageEvent, reason: &str) -> EventId {
    assert_eq!(event.event, "reset", "{event:?}");
    assert_eq!(event.data, format!(r#"{{"reason":"{reason}"}}"#));
    id_of(event)
}

/// A hub keeping `history` events, with `count` events `e1`.. published on `t`.
pub(crate) fn hub_with(history: usize, count: u64) -> (Hub, u64) {
    let hub = Hub::builder().history(history).build();
    let mut epoch = 0;
    for i in 1..=count {
        let id = hub.try_publish("t", data(format!("e{i}"))).unwrap();
        assert_eq!(id.offset(), i);
        epoch = id.epoch();
    }
    (hub, epoch)
}
