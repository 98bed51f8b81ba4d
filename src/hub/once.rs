//! [`Once`]: the publish keys a topic saw lately, so that a publish retried
//! with the same key returns the first one's id instead of appending again
//! ([`Hub::publish_once`](crate::Hub::publish_once)).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::event_id::EventId;

/// The longest publish key, in bytes.
pub(crate) const MAX_KEY: usize = 128;

/// The keys of one topic's publishes within the window, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Once {
    ids: HashMap<Arc<str>, EventId>,
    order: VecDeque<(Instant, Arc<str>)>,
}

impl Once {
    /// The id published with `key` within `window` of `now`, if any.
    pub(crate) fn get(&mut self, key: &str, window: Duration, now: Instant) -> Option<EventId> {
        self.forget(window, now);
        self.ids.get(key).copied()
    }

    /// Remembers that `key` published `id` at `now`, keeping `max` keys at most
    /// (a topic's log holds as many events: the keys' memory is bounded with
    /// the log's, at most 128 bytes and a few words each).
    pub(crate) fn insert(&mut self, key: &str, id: EventId, now: Instant, max: usize) {
        let key: Arc<str> = key.into();
        if self.ids.insert(key.clone(), id).is_none() {
            self.order.push_back((now, key));
        }
        while self.order.len() > max {
            self.pop();
        }
    }

    /// Forgets the keys older than `window`.
    fn forget(&mut self, window: Duration, now: Instant) {
        while self.order.front().is_some_and(|(at, _)| now.saturating_duration_since(*at) > window) {
            self.pop();
        }
    }

    fn pop(&mut self) {
        if let Some((_, key)) = self.order.pop_front() {
            self.ids.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_kept_for_the_window_and_at_most_max() {
        const MAX_KEYS: usize = 100;
        let start = Instant::now();
        let window = Duration::from_secs(60);
        let mut once = Once::default();
        once.insert("a", EventId::new(1, 1), start, MAX_KEYS);
        assert_eq!(once.get("a", window, start + window), Some(EventId::new(1, 1)));
        assert_eq!(once.get("b", window, start), None);
        assert_eq!(once.get("a", window, start + window + Duration::from_millis(1)), None, "forgotten");
        for n in 0..=MAX_KEYS as u64 {
            once.insert(&n.to_string(), EventId::new(1, n), start, MAX_KEYS);
        }
        assert_eq!((once.ids.len(), once.order.len()), (MAX_KEYS, MAX_KEYS));
        assert_eq!(once.get("0", window, start), None, "the oldest went");
        assert!(once.get("1", window, start).is_some());
    }
}
