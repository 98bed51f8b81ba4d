//! [`Topics`]: the hub's topics by name, and the sweep that drops idle ones.
//!
//! A topic with no subscriber is dropped once its log holds nothing (all its
//! events are older than the age limit), once it has been idle (no subscriber,
//! no publish) for the idle time limit, or at once if it is a replica (the
//! shared log keeps its events). Topics are checked when they lose their last
//! subscriber and, all of them, when the topic limit is reached.
//!
//! That full sweep costs one pass over every topic under the hub's write lock.
//! Clients choose topic names, so at the limit they could have it run on every
//! request; instead the map keeps the earliest moment a sweep could drop
//! anything ([`Topics::next_sweep`]), and a sweep before then is skipped.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Topic;
use super::topic::State;

#[derive(Debug, Default)]
pub(crate) struct Topics {
    map: HashMap<Arc<str>, Arc<Topic>>,
    /// How long a topic without subscribers and publishes is kept (`None`: until
    /// its log is empty).
    idle_ttl: Option<Duration>,
    /// No topic kept now can be dropped by a sweep before this moment; `None`:
    /// none can until one loses its last subscriber or is created without one.
    ///
    /// It may be early (a sweep then finds nothing and sets it again), never
    /// late: every way a topic becomes idle lowers it.
    next_sweep: Option<Instant>,
}

/// Read access to the map; every change goes through the methods below, which
/// keep `next_sweep`.
impl Deref for Topics {
    type Target = HashMap<Arc<str>, Arc<Topic>>;

    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl Topics {
    pub(crate) fn new(idle_ttl: Option<Duration>) -> Self {
        Self { idle_ttl, ..Self::default() }
    }

    /// Adds `topic`, created just now. One created without a subscriber (by a
    /// publish) is idle from the start: the next sweep looks at it.
    pub(crate) fn add(&mut self, topic: Arc<Topic>, now: Instant) {
        if topic.subscribers() == 0 {
            self.note(Some(now));
        }
        self.map.insert(topic.name.clone(), topic);
    }

    /// Makes room at the topic limit: sweeps if a sweep could drop anything now.
    pub(crate) fn make_room(&mut self, now: Instant) {
        if self.next_sweep.is_some_and(|at| at <= now) {
            self.sweep(now);
        }
    }

    /// Drops every idle topic that can go, and notes when the others can.
    pub(crate) fn sweep(&mut self, now: Instant) {
        self.next_sweep = None;
        let idle: Vec<_> = self.map.values().filter(|t| t.subscribers() == 0).cloned().collect();
        for topic in idle {
            self.drop_if_idle(&topic, now);
        }
    }

    /// With no subscriber on `topic`: drops it if its log holds nothing (after
    /// expiry), if it was idle for the idle time limit, or if it is a replica
    /// (the shared log keeps the events; the topic is loaded again on its next
    /// subscriber). Otherwise notes when it can go.
    pub(crate) fn drop_if_idle(&mut self, topic: &Topic, now: Instant) {
        let mut state = topic.write();
        if state.removed {
            return;
        }
        let idle_until = self.idle_until(&state);
        if state.log.expire(now) || topic.replica || idle_until.is_some_and(|until| until <= now) {
            state.removed = true;
            self.map.remove(&topic.name);
        } else {
            self.note(state.log.expires_at());
            self.note(idle_until);
        }
    }

    /// When an idle topic in `state` has been idle for the limit: neither
    /// subscribed nor published to since. `None`: never (no limit, or past what
    /// `Instant` holds).
    fn idle_until(&self, state: &State) -> Option<Instant> {
        let since = state.log.newest_at().map_or(state.idle_since, |at| at.max(state.idle_since));
        since.checked_add(self.idle_ttl?)
    }

    /// Lowers [`Topics::next_sweep`] to `at`.
    fn note(&mut self, at: Option<Instant>) {
        if let Some(at) = at {
            self.next_sweep = Some(self.next_sweep.map_or(at, |next| next.min(at)));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::hub::log::Limits;

    fn topic(name: &str, max_age: Option<Duration>, published: Option<Instant>) -> Arc<Topic> {
        let topic = Arc::new(Topic::new(name.into(), Limits { max_events: 10, max_bytes: 1000, max_age }, false));
        if let Some(at) = published {
            topic.write().log.append(Bytes::from_static(b"data: x\n\n"), at);
        }
        topic
    }

    #[test]
    fn a_sweep_is_due_only_when_an_idle_topic_can_be_dropped() {
        let age = Duration::from_secs(10);
        // In the future, so that times before it are valid `Instant`s.
        let start = Instant::now() + age;
        let mut topics = Topics::default();
        assert_eq!(topics.next_sweep, None);

        // Created by a publish: looked at by the next sweep, which keeps it until
        // its event is older than the age limit.
        topics.add(topic("a", Some(age), Some(start)), start);
        assert_eq!(topics.next_sweep, Some(start));
        topics.make_room(start);
        assert_eq!((topics.len(), topics.next_sweep), (1, Some(start + age)));
        topics.make_room(start + age / 2);
        assert_eq!(topics.next_sweep, Some(start + age), "not due: nothing to drop");

        // The earliest expiry counts; a topic without an age limit never expires.
        topics.add(topic("b", Some(age), Some(start - age / 2)), start);
        topics.add(topic("c", None, Some(start)), start);
        topics.sweep(start);
        assert_eq!((topics.len(), topics.next_sweep), (3, Some(start + age / 2)));
        topics.make_room(start + age + Duration::from_secs(1));
        assert_eq!(topics.len(), 1, "both expired topics went");
        assert_eq!(topics.next_sweep, None, "the one left never expires");

        // A topic with a subscriber is not idle; once it leaves, `drop_if_idle`
        // notes the expiry.
        let d = topic("d", Some(age), Some(start));
        d.add_subscriber();
        topics.add(d.clone(), start);
        assert_eq!(topics.next_sweep, None);
        assert!(d.remove_subscriber(), "the last one");
        topics.drop_if_idle(&d, start);
        assert_eq!((topics.len(), topics.next_sweep), (2, Some(start + age)));
    }

    #[test]
    fn a_sweep_between_the_last_leave_and_its_release_keeps_the_topic() {
        // Followed for longer than the idle limit, with no publish meanwhile. The
        // last subscriber leaves, and a sweep runs before the hub's release of
        // the topic: the topic is idle since the leave, not since its publish.
        let ttl = Duration::from_millis(20);
        let mut topics = Topics::new(Some(ttl));
        let followed = topic("followed", None, Some(Instant::now()));
        followed.add_subscriber();
        topics.add(followed.clone(), Instant::now());
        std::thread::sleep(ttl * 2);
        let left = Instant::now();
        assert!(followed.remove_subscriber());
        topics.sweep(Instant::now());
        // (Unless this thread stalled past the idle limit, when it may rightly go.)
        if left.elapsed() < ttl {
            assert_eq!(topics.len(), 1, "dropped as its subscriber left");
        }
    }

    #[test]
    fn a_topic_idle_for_the_limit_goes_even_with_events() {
        let ttl = Duration::from_secs(60);
        // After the topics' creation, which counts as the start of their idle time.
        let start = Instant::now() + Duration::from_secs(1);
        let mut topics = Topics::new(Some(ttl));

        // Created by a publish nobody follows: idle since its last publish.
        topics.add(topic("published", None, Some(start)), start);
        topics.sweep(start);
        assert_eq!((topics.len(), topics.next_sweep), (1, Some(start + ttl)));
        topics.get("published").unwrap().write().log.append(
            Bytes::from_static(
                b"data: y

",
            ),
            start + ttl / 2,
        );
        topics.make_room(start + ttl);
        assert_eq!(topics.len(), 1, "a publish keeps it");
        assert_eq!(topics.next_sweep, Some(start + ttl / 2 + ttl));

        // Subscribed for longer than the limit: idle from when its last subscriber left.
        let followed = topic("followed", None, Some(start));
        followed.add_subscriber();
        topics.add(followed.clone(), start);
        topics.sweep(start + 2 * ttl);
        assert_eq!(topics.len(), 1, "the published one went; a followed topic stays");
        assert!(followed.remove_subscriber());
        followed.write().idle_since = start + 2 * ttl; // As if it left then.
        topics.drop_if_idle(&followed, start + 2 * ttl);
        assert_eq!((topics.len(), topics.next_sweep), (1, Some(start + 3 * ttl)));
        topics.make_room(start + 3 * ttl);
        assert!(topics.is_empty());
    }
}
