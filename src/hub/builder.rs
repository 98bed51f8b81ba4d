//! [`HubBuilder`]: the limits and policies of a hub, and its backplane.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::Hub;
use super::backplane::Backplane;
use super::body::ID_TAIL;
use super::error::{BuildError, TopicError};
use super::log::Limits;
use super::reset::{LagPolicy, ResetReason, Resets};

/// Limits and policies of a [`Hub`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ssekit::{Hub, LagPolicy};
///
/// let hub = Hub::builder()
///     .history(1_000)
///     .max_bytes(1 << 20)
///     .max_age(Duration::from_secs(600))
///     .max_topics(100)
///     .lag_policy(LagPolicy::Disconnect)
///     .reset_data(|topic, reason| format!(r#"{{"reason":"{reason}","snapshot":"..."}}"#))
///     .build();
/// ```
#[derive(Clone)]
pub struct HubBuilder {
    pub(super) limits: Limits,
    pub(super) idle_ttl: Option<Duration>,
    pub(super) max_topics: usize,
    pub(super) replace_idle_topics: bool,
    pub(super) max_topic_len: usize,
    pub(super) lag_policy: LagPolicy,
    pub(super) max_topics_per_subscription: usize,
    pub(super) max_join_history: usize,
    pub(super) once_window: Duration,
    pub(super) resets: Resets,
    pub(super) backplane: Option<Arc<dyn Backplane>>,
}

/// The most topics one subscription may follow, whatever
/// [`HubBuilder::max_topics_per_subscription`] says (a stream of several
/// topics keeps which ones to look at in a `u64`).
const MAX_TOPICS_PER_SUBSCRIPTION: usize = 64;

impl HubBuilder {
    /// The defaults: 1 024 events and 4 MiB per topic, no age limit, 10 000
    /// topics of names up to 256 bytes, idle topics kept one hour,
    /// [`LagPolicy::Reset`], up to 8 topics per subscription and 100 events of
    /// history on joining, reset events named `reset` with data
    /// `{"reason":"<reason>"}` (`{"topic":"<topic>","reason":"<reason>"}` in a
    /// stream of several topics), no backplane.
    pub fn new() -> Self {
        Self {
            limits: Limits { max_events: 1024, max_bytes: 4 << 20, max_age: None },
            idle_ttl: Some(Duration::from_secs(3600)),
            max_topics: 10_000,
            replace_idle_topics: true,
            max_topic_len: 256,
            lag_policy: LagPolicy::default(),
            max_topics_per_subscription: 8,
            max_join_history: 100,
            once_window: Duration::from_secs(300),
            resets: Resets::new(),
            backplane: None,
        }
    }

    pub(super) fn check_topic_name(&self, name: &str) -> Result<(), TopicError> {
        let max_len = self.max_topic_len;
        if name.is_empty() || name.len() > max_len {
            return Err(TopicError::InvalidName { len: name.len(), max_len });
        }
        Ok(())
    }

    /// Events kept per topic for resume (at least 1).
    pub fn history(&mut self, events: usize) -> &mut Self {
        self.limits.max_events = events.max(1);
        self
    }

    /// Bytes of encoded frames kept per topic; also the largest event accepted.
    pub fn max_bytes(&mut self, bytes: usize) -> &mut Self {
        self.limits.max_bytes = bytes.max(ID_TAIL + 16);
        self
    }

    /// Age after which a retained event is dropped, and its topic with it once
    /// no one subscribes.
    ///
    /// A resume never replays an event older than this: the client gets a
    /// `reset` ([`ResetReason::Evicted`]) instead. The memory is given back at the
    /// topic's next publish or, once it has no subscriber, at a sweep
    /// ([`Hub::sweep`], or when the hub needs room for a topic).
    pub fn max_age(&mut self, age: Duration) -> &mut Self {
        self.limits.max_age = Some(age);
        self
    }

    /// How long a topic with no subscriber and no publish is kept at least
    /// (default one hour; `None`: until its events are older than
    /// [`HubBuilder::max_age`]). It goes at the next sweep after that: when the
    /// hub needs room for a topic, or at [`Hub::sweep`].
    ///
    /// A topic created by a publish that nobody follows, or one that all its
    /// subscribers left, then gives its place back for other topics: without
    /// this limit (and without an age limit), topics named by whoever can publish
    /// would stay for good and could fill [`HubBuilder::max_topics`]. A client
    /// that comes back to a dropped topic with an id gets a `reset`
    /// ([`ResetReason::UnknownEpoch`]); a topic in use is never dropped.
    pub fn idle_ttl(&mut self, ttl: Option<Duration>) -> &mut Self {
        self.idle_ttl = ttl;
        self
    }

    /// Topics held at most. At the limit, an idle topic that can be dropped
    /// makes room (see [`HubBuilder::idle_ttl`]); failing that, the least
    /// recently used topic without subscribers gives its place (see
    /// [`HubBuilder::replace_idle_topics`]); only when every topic has a
    /// subscriber is creating one more an error ([`TopicError::Limit`]).
    ///
    /// At the limit, a refusal is usually as cheap as a look-up: the hub sweeps
    /// its topics only once an idle one can have expired (see
    /// [`HubBuilder::max_age`] and [`HubBuilder::idle_ttl`]) or was created by a
    /// publish, not on every attempt, so clients asking for new topic names
    /// cannot make it scan them all on every request.
    pub fn max_topics(&mut self, topics: usize) -> &mut Self {
        self.max_topics = topics;
        self
    }

    /// Whether a new topic at the [`HubBuilder::max_topics`] limit takes the
    /// place of the least recently used topic without subscribers (`true`, the
    /// default) or is refused until one expires (`false`).
    ///
    /// A replaced topic's retained events are gone: a client that comes back
    /// with an id of it gets a `reset` (reason `epoch`). With refusal instead,
    /// anyone who can publish can fill the limit with fresh names and keep new
    /// topics out for [`HubBuilder::idle_ttl`].
    ///
    /// # Examples
    ///
    /// ```
    /// let hub = ssekit::Hub::builder().max_topics(1).build();
    /// hub.try_publish("old", ssekit::Event::new().data("x"))?;
    /// hub.try_publish("new", ssekit::Event::new().data("y"))?; // "old" gives its place
    /// assert_eq!(hub.metrics().topics, 1);
    /// # Ok::<(), ssekit::PublishError>(())
    /// ```
    pub fn replace_idle_topics(&mut self, replace: bool) -> &mut Self {
        self.replace_idle_topics = replace;
        self
    }

    /// Longest topic name accepted, in bytes.
    pub fn max_topic_len(&mut self, bytes: usize) -> &mut Self {
        self.max_topic_len = bytes;
        self
    }

    /// What happens to a subscriber that falls behind the log.
    pub fn lag_policy(&mut self, policy: LagPolicy) -> &mut Self {
        self.lag_policy = policy;
        self
    }

    /// Topics one subscription may follow at most
    /// ([`Hub::subscribe_many`]); more is refused ([`SubscribeError::Topics`]).
    ///
    /// A stream of several topics sends ids that hold every topic's position,
    /// about 13 bytes per topic: 105 bytes for 8 topics with offsets up to 10⁹.
    /// Browsers send the id back as is on every reconnect, and send a
    /// cross-origin request whose `Last-Event-ID` is over 128 bytes only after a
    /// CORS preflight; past [`LastEventId::MAX_LEN`](crate::LastEventId::MAX_LEN)
    /// (256 bytes, about 19 topics) the id is not read at all and every topic
    /// gets a `reset` (`malformed`). Keep it at 8 unless you know your clients.
    /// At most 64: a larger number is taken as 64.
    ///
    /// [`SubscribeError::Topics`]: super::SubscribeError::Topics
    pub fn max_topics_per_subscription(&mut self, topics: usize) -> &mut Self {
        self.max_topics_per_subscription = topics.clamp(1, MAX_TOPICS_PER_SUBSCRIPTION);
        self
    }

    /// How long a key of [`Hub::publish_once`](crate::Hub::publish_once) is
    /// remembered: a publish with the same key to the same topic within this
    /// window appends nothing (5 minutes by default, a year at most).
    pub fn publish_once_window(&mut self, window: Duration) -> &mut Self {
        // Within what Redis takes as an expiry in milliseconds.
        self.once_window = window.clamp(Duration::from_millis(1), Duration::from_secs(365 * 24 * 3600));
        self
    }

    /// The most events of each topic a new subscriber may ask to get first
    /// ([`Hub::subscribe_many`]'s `history`); it gets at most what the topic
    /// retains, too.
    pub fn max_join_history(&mut self, events: usize) -> &mut Self {
        self.max_join_history = events;
        self
    }

    /// The event type of reset events. A name that could not be sent (CR or LF)
    /// is refused by [`HubBuilder::try_build`].
    pub fn reset_event(&mut self, name: impl Into<String>) -> &mut Self {
        self.resets.event = name.into();
        self
    }

    /// The data of reset events, from the topic and the reason: e.g. a snapshot
    /// of the state the page should show.
    pub fn reset_data(&mut self, data: impl Fn(&str, ResetReason) -> String + Send + Sync + 'static) -> &mut Self {
        self.resets.set_data(data);
        self
    }

    /// Shares the topics with every node that uses the same backplane: the hub
    /// publishes through it and serves what it reads (see
    /// [`Backplane`](super::backplane)). With the `redis` feature,
    /// [`RedisBackplane`](crate::redis::RedisBackplane) is one.
    ///
    /// The history limit is also how much of each topic the backplane keeps.
    pub fn backplane(&mut self, backplane: impl Backplane) -> &mut Self {
        self.backplane = Some(Arc::new(backplane));
        self
    }

    /// The hub.
    ///
    /// # Panics
    ///
    /// When [`HubBuilder::try_build`] fails: the reset event name contains CR
    /// or LF, or the backplane refuses the hub.
    #[track_caller]
    pub fn build(&self) -> Hub {
        match self.try_build() {
            Ok(hub) => hub,
            Err(err) => panic!("invalid hub configuration: {err}"),
        }
    }

    /// The hub.
    ///
    /// # Errors
    ///
    /// [`BuildError::ResetEvent`] when the reset event name contains CR or LF;
    /// [`BuildError::Backplane`] when the backplane refuses to feed the hub (it
    /// feeds another).
    pub fn try_build(&self) -> Result<Hub, BuildError> {
        self.resets.check().map_err(BuildError::ResetEvent)?;
        Hub::with_config(self.clone())
    }
}

impl Default for HubBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for HubBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubBuilder")
            .field("limits", &self.limits)
            .field("idle_ttl", &self.idle_ttl)
            .field("max_topics", &self.max_topics)
            .field("replace_idle_topics", &self.replace_idle_topics)
            .field("once_window", &self.once_window)
            .field("max_topic_len", &self.max_topic_len)
            .field("lag_policy", &self.lag_policy)
            .field("max_topics_per_subscription", &self.max_topics_per_subscription)
            .field("max_join_history", &self.max_join_history)
            .field("reset_event", &self.resets.event)
            .field("backplane", &self.backplane)
            .finish()
    }
}
