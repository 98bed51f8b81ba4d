//! The hub's topics by name: [`Registry`], which creates, finds and drops
//! them, and [`Topics`], the map and its sweep.
//!
//! A topic with no subscriber is dropped once its log holds nothing (all its
//! events are older than the age limit), once it has been idle (no subscriber,
//! no publish) for the idle time limit, or at once if a backplane feeds it (the
//! shared log keeps its events). Topics are checked when they lose their last
//! subscriber and, all of them, when the topic limit is reached.
//!
//! That full sweep costs one pass over every topic under the hub's write lock.
//! Clients choose topic names, so at the limit they could have it run on every
//! request; instead the map keeps the earliest moment a sweep could drop
//! anything ([`Topics::next_sweep`]), and a sweep before then is skipped.
//!
//! If the sweep frees nothing, the least recently used topic without
//! subscribers gives its place to the new one (unless the hub refuses instead,
//! [`HubBuilder::replace_idle_topics`]): whoever can publish could otherwise
//! fill the limit with fresh names and lock new topics out until they expire.
//! The topics without subscribers wait in a queue in the order they became
//! idle; a publish since moves a topic back when the queue reaches it, so
//! taking one costs O(1) amortized, not a pass over them all. (The order is
//! that of the last use as the queue last saw it: least recently used, nearly.)

use std::collections::{HashMap, VecDeque};
use std::ops::Deref;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::{Duration, Instant};

use super::backplane::Backplane;
use super::builder::HubBuilder;
use super::error::TopicError;
use super::log::Limits;
use super::topic::{State, Topic};

/// The topics of one hub, behind one lock.
#[derive(Debug)]
pub(crate) struct Registry {
    topics: RwLock<Topics>,
    limits: Limits,
    max_topics: usize,
    replace_idle: bool,
}

impl Registry {
    pub(crate) fn new(config: &HubBuilder) -> Self {
        let mut topics = Topics::new(config.idle_ttl);
        topics.backplane = config.backplane.clone();
        Self {
            topics: RwLock::new(topics),
            limits: config.limits,
            max_topics: config.max_topics,
            replace_idle: config.replace_idle_topics,
        }
    }

    // A panic under the lock cannot leave the map half-updated (every change is
    // one insert or remove), so a poisoned lock is used as is.
    fn read(&self) -> RwLockReadGuard<'_, Topics> {
        self.topics.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Topics> {
        self.topics.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The limits of every topic's log.
    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    /// The topic named `name`, if held.
    pub(crate) fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.read().get(name).cloned()
    }

    /// The names of the topics held.
    pub(crate) fn names(&self) -> Vec<Arc<str>> {
        self.read().keys().cloned().collect()
    }

    /// The topics held.
    pub(crate) fn all(&self) -> Vec<Arc<Topic>> {
        self.read().values().cloned().collect()
    }

    /// How many topics are held, and the bytes their logs hold.
    pub(crate) fn size(&self) -> (usize, usize) {
        let topics = self.read();
        (topics.len(), topics.values().map(|topic| topic.read().log.bytes()).sum())
    }

    /// The topic named `name` (checked by the caller), created if needed, with
    /// `with` run on it under the registry's lock (so that a sweep cannot drop
    /// it in between). A topic created here is announced to the backplane.
    pub(crate) fn topic_with(&self, name: &str, with: impl Fn(&Topic)) -> Result<Arc<Topic>, TopicError> {
        if let Some(topic) = self.read().get(name) {
            with(topic);
            return Ok(topic.clone());
        }
        let mut topics = self.write();
        if let Some(topic) = topics.get(name) {
            with(topic);
            return Ok(topic.clone());
        }
        let now = Instant::now();
        if topics.len() >= self.max_topics {
            topics.make_room(now);
            if topics.len() >= self.max_topics && !(self.replace_idle && topics.replace_idle()) {
                return Err(TopicError::Limit { limit: self.max_topics });
            }
        }
        let topic = Arc::new(Topic::new(name.into(), self.limits, topics.backplane.is_some()));
        with(&topic);
        topics.add(topic.clone(), now);
        if let Some(backplane) = &topics.backplane {
            backplane.wanted(&topic.name);
        }
        Ok(topic)
    }

    /// Called when `topic` lost its last subscriber.
    pub(crate) fn release(&self, topic: &Arc<Topic>) {
        let mut topics = self.write();
        if topic.subscribers() == 0 {
            let now = Instant::now();
            if topics.drop_if_idle(topic, now) {
                topics.idle_now(topic, now);
            }
        }
    }

    /// Drops every idle topic that can go.
    pub(crate) fn sweep(&self) {
        self.write().sweep(Instant::now());
    }
}

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
    /// Told of every topic held and dropped.
    backplane: Option<Arc<dyn Backplane>>,
    /// Topics that had no subscriber, in the order they became idle, with
    /// when (see the module's docs). It may hold topics dropped (weakly: their
    /// memory goes with them) or followed since, and a topic more than once:
    /// what is taken is checked.
    idle: VecDeque<(Instant, Weak<Topic>)>,
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
        self.map.insert(topic.name.clone(), topic.clone());
        if topic.subscribers() == 0 {
            self.note(Some(now));
            self.idle_now(&topic, now);
        }
    }

    /// Queues `topic`, which has no subscriber since `now`, for
    /// [`Topics::replace_idle`]. The queue is rebuilt from the map once it
    /// holds twice as many entries as there are topics.
    pub(crate) fn idle_now(&mut self, topic: &Arc<Topic>, now: Instant) {
        self.idle.push_back((now, Arc::downgrade(topic)));
        if self.idle.len() > 2 * self.map.len() + 16 {
            let mut idle: Vec<_> = self
                .map
                .values()
                .filter(|topic| topic.subscribers() == 0)
                .map(|topic| (last_use(&topic.read()), Arc::downgrade(topic)))
                .collect();
            idle.sort_by_key(|(at, _)| *at);
            self.idle = idle.into();
        }
    }

    /// Drops the least recently used topic without subscribers (its clients
    /// get a `reset` when they come back: the topic's next log is of another
    /// epoch). Returns whether one went.
    pub(crate) fn replace_idle(&mut self) -> bool {
        // Each entry is looked at twice at most: once moved back (as of its
        // last use), it is taken in its turn, unless published to again.
        for _ in 0..2 * self.idle.len() {
            let Some((at, topic)) = self.idle.pop_front() else { break };
            let Some(topic) = topic.upgrade().filter(|topic| topic.subscribers() == 0) else {
                continue;
            };
            let mut state = topic.write();
            if state.removed {
                continue;
            }
            let used = last_use(&state);
            if used > at {
                // Published to since it was queued: back in the queue, as of then.
                drop(state);
                self.idle.push_back((used, Arc::downgrade(&topic)));
                continue;
            }
            self.remove(&topic, &mut state);
            return true;
        }
        false
    }

    /// Drops `topic` (its `state` locked), and tells the backplane.
    fn remove(&mut self, topic: &Topic, state: &mut State) {
        state.removed = true;
        self.map.remove(&topic.name);
        if let Some(backplane) = &self.backplane {
            backplane.released(&topic.name);
        }
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
    /// expiry), if it was idle for the idle time limit, or if a backplane feeds
    /// it (the shared log keeps the events; the topic is loaded again on its
    /// next subscriber). Otherwise notes when it can go. Returns whether it is
    /// still held.
    pub(crate) fn drop_if_idle(&mut self, topic: &Topic, now: Instant) -> bool {
        let mut state = topic.write();
        if state.removed {
            return false;
        }
        let idle_until = self.idle_until(&state);
        if state.log.expire(now) || topic.fed || idle_until.is_some_and(|until| until <= now) {
            self.remove(topic, &mut state);
            return false;
        }
        self.note(state.log.expires_at());
        self.note(idle_until);
        true
    }

    /// When an idle topic in `state` has been idle for the limit: neither
    /// subscribed nor published to since. `None`: never (no limit, or past what
    /// `Instant` holds).
    fn idle_until(&self, state: &State) -> Option<Instant> {
        last_use(state).checked_add(self.idle_ttl?)
    }

    /// Lowers [`Topics::next_sweep`] to `at`.
    fn note(&mut self, at: Option<Instant>) {
        if let Some(at) = at {
            self.next_sweep = Some(self.next_sweep.map_or(at, |next| next.min(at)));
        }
    }
}

/// When a topic in `state` was last used: published to, or left by its last
/// subscriber (or created).
fn last_use(state: &State) -> Instant {
    state.log.newest_at().map_or(state.idle_since, |at| at.max(state.idle_since))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;

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

    #[test]
    fn the_least_recently_used_idle_topic_goes_first() {
        let start = Instant::now() + Duration::from_secs(1);
        let mut topics = Topics::default();
        for (name, at) in [("a", start), ("b", start + Duration::from_secs(1))] {
            topics.add(topic(name, None, None), at);
        }
        let followed = topic("followed", None, None);
        followed.add_subscriber();
        topics.add(followed, start);
        // `a` is published to after it was queued: `b` is now the older.
        topics.get("a").unwrap().write().log.append(Bytes::from_static(b"data: x\n\n"), start + Duration::from_secs(2));
        assert!(topics.replace_idle());
        assert!(topics.contains_key("a") && !topics.contains_key("b"));
        assert!(topics.replace_idle());
        assert!(!topics.contains_key("a"));
        assert!(!topics.replace_idle(), "a followed topic is never replaced");
        assert_eq!(topics.len(), 1);
    }
}
