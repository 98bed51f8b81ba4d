//! The [`Hub`]: named topics, each a bounded, ordered log of encoded frames that
//! serves both live fan-out and `Last-Event-ID` resume.
//!
//! Publishing encodes an event once, appends the frame to the topic's log and
//! wakes the topic's subscribers; it never waits for them. A [`Subscription`] is
//! a cursor into the log: it holds no copy or queue of events, so memory is
//! bounded by the logs, whatever the number or speed of subscribers.
//!
//! ## Ids and resume
//!
//! Each event gets an [`EventId`] `(epoch, offset)`. A subscription given the id
//! of the last event its client saw replays exactly the events after it, then
//! continues live. When that is impossible it starts with a `reset` event that
//! says why ([`ResetReason`]) and carries an id from which resuming works, then
//! continues live: never a silent gap.
//!
//! ## Lagging
//!
//! A subscriber that falls so far behind that the log evicted events it had not
//! read is handled by the hub's [`LagPolicy`]: by default it gets a `reset` event
//! (reason `lagged`) and continues from the oldest retained event; or its stream
//! ends. Either way it is counted in [`HubMetrics`].
//!
//! ## Closing
//!
//! [`Hub::close`] ends every subscription at its next poll, after an optional
//! final event, and refuses new publishes and subscriptions.
//!
//! ## Memory
//!
//! Each topic's log holds at most [`HubBuilder::history`] events and
//! [`HubBuilder::max_bytes`] bytes; the hub holds at most
//! [`HubBuilder::max_topics`] topics. A topic with no subscriber is dropped
//! when it retains no event (none published, or all older than
//! [`HubBuilder::max_age`]), or when nobody subscribed or published for
//! [`HubBuilder::idle_ttl`] (an hour by default).
//!
//! Besides, each thread that polls subscriptions keeps the last chunk it read
//! (at most 64 KiB), so that the other subscribers it serves after a publish
//! share it instead of each locking the log; and a connection whose client
//! stopped reading keeps the chunk it was writing: one frame, shared with the
//! log, or a copy of several small frames of at most 16 KiB.

mod event_id;
mod log;
#[cfg(all(test, ssekit_loom))]
mod loom;
mod metrics;
mod recent;
mod subscription;
mod sync;
mod topic;
mod topics;
mod wakers;

use std::fmt;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};

pub use event_id::{EventId, EventIdError};
pub use metrics::HubMetrics;
pub use subscription::Subscription;

use crate::encode::ID;
use crate::{Event, EventError, Frame, Resume, Shutdown, Sse, SseConfig};
pub(crate) use log::Limits;
use log::Read;
use metrics::Counters;
pub(crate) use topic::Topic;
#[cfg(feature = "redis")]
pub(crate) use topic::new_epoch;
use topics::Topics;

/// Room for `id: <id>\n\n` after an event's body.
const ID_TAIL: usize = ID.len() + EventId::MAX_LEN + 2;

/// A set of topics that publishers append to and subscribers follow.
///
/// Cloning a hub is cheap and gives another handle to the same topics.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use futures_util::StreamExt;
/// use ssekit::{Event, Hub, Resume};
///
/// let hub = Hub::new();
/// let mut live = hub.subscribe("news", Resume::Live)?;
/// let id = hub.publish("news", Event::new().data("first"))?;
/// let chunk = live.next().await.unwrap();
/// assert_eq!(chunk, format!("data: first\nid: {id}\n\n"));
///
/// // A client that saw `id` resumes after it, without a gap.
/// hub.publish("news", Event::new().data("second"))?;
/// let mut resumed = hub.subscribe("news", ssekit::LastEventId::parse(id.to_string().as_bytes())?)?;
/// assert!(resumed.next().await.unwrap().starts_with(b"data: second\n"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Hub {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    topics: RwLock<Topics>,
    config: HubBuilder,
    shutdown: Shutdown,
    final_frame: OnceLock<Bytes>,
    counters: Counters,
    /// Set when the topics mirror a shared log (the Redis backplane).
    replica: Option<Replica>,
}

/// The link between a replica hub and the task that feeds it: topics created
/// locally wait in `loads` until the task has loaded their log.
#[derive(Debug, Default)]
pub(crate) struct Replica {
    pub(crate) loads: std::sync::Mutex<std::collections::HashSet<Arc<str>>>,
    pub(crate) notify: tokio::sync::Notify,
}

impl Hub {
    /// A hub with the default limits of [`HubBuilder`].
    ///
    /// # Examples
    ///
    /// ```
    /// let hub = ssekit::Hub::new();
    /// ```
    pub fn new() -> Self {
        HubBuilder::new().build()
    }

    /// A builder to set limits and policies.
    ///
    /// # Examples
    ///
    /// ```
    /// let hub = ssekit::Hub::builder().history(100).build();
    /// ```
    pub fn builder() -> HubBuilder {
        HubBuilder::new()
    }

    /// Publishes `event` to `topic` (created on first use) and returns the id the
    /// hub gave it.
    ///
    /// The event is encoded once; subscribers share the frame. Publishing never
    /// waits for a subscriber.
    ///
    /// # Errors
    ///
    /// [`PublishError`]: the event breaks a wire rule or already has an id, is
    /// larger than a topic's log may hold, the topic name is invalid, the topic
    /// limit is reached, or the hub is closed. Nothing is published then.
    ///
    /// # Examples
    ///
    /// ```
    /// let hub = ssekit::Hub::new();
    /// let id = hub.publish("news", ssekit::Event::new().event("headline").data("hello"))?;
    /// assert_eq!(id.offset(), 1);
    /// assert!(hub.publish("news", ssekit::Event::new().event("a\nb")).is_err());
    /// # Ok::<(), ssekit::PublishError>(())
    /// ```
    pub fn publish(&self, topic: &str, event: Event) -> Result<EventId, PublishError> {
        self.append(topic, event_body(&event, ID_TAIL)?)
    }

    /// Publishes a frame your application encoded, adding the hub's id.
    ///
    /// # Errors
    ///
    /// As [`Hub::publish`].
    ///
    /// # Examples
    ///
    /// ```
    /// let hub = ssekit::Hub::new();
    /// hub.publish_frame("news", ssekit::Frame::from_static("data: prebuilt\n\n"))?;
    /// # Ok::<(), ssekit::PublishError>(())
    /// ```
    pub fn publish_frame(&self, topic: &str, frame: Frame) -> Result<EventId, PublishError> {
        self.append(topic, frame_body(&frame, ID_TAIL)?)
    }

    /// What every publish checks before appending a body of `len` bytes to `topic`.
    pub(crate) fn check_publish(&self, topic: &str, len: usize) -> Result<(), PublishError> {
        let config = &self.shared.config;
        if self.shared.shutdown.is_triggered() {
            return Err(PublishError::Closed);
        }
        config.check_topic_name(topic)?;
        if len + ID_TAIL > config.limits.max_bytes {
            return Err(PublishError::TooLarge { len, limit: config.limits.max_bytes - ID_TAIL });
        }
        Ok(())
    }

    pub(crate) fn count_published(&self) {
        self.shared.counters.published.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The topic named `name` if this hub holds it.
    #[cfg(feature = "redis")]
    pub(crate) fn get_topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.shared.topics().get(name).cloned()
    }

    /// Every topic this hub holds.
    #[cfg(feature = "redis")]
    pub(crate) fn topic_names(&self) -> Vec<Arc<str>> {
        self.shared.topics().keys().cloned().collect()
    }

    /// The link to the task feeding a replica hub.
    #[cfg(feature = "redis")]
    pub(crate) fn replica(&self) -> Option<&Replica> {
        self.shared.replica.as_ref()
    }

    fn append(&self, name: &str, mut body: BytesMut) -> Result<EventId, PublishError> {
        self.check_publish(name, body.len())?;
        let now = Instant::now();
        loop {
            if self.shared.shutdown.is_triggered() {
                return Err(PublishError::Closed);
            }
            let topic = self.shared.topic(name)?;
            let mut state = topic.write();
            if state.removed {
                continue;
            }
            let id = EventId::new(state.epoch, state.log.next());
            body.put_slice(ID);
            id.write(&mut body);
            body.put_slice(b"\n\n");
            state.log.append(body.freeze(), now);
            drop(state);
            topic.wake();
            self.count_published();
            return Ok(id);
        }
    }

    /// Follows `topic` from where `resume` says: live, or after a client's last id.
    ///
    /// See the [module docs](crate::hub) for what a subscription yields. Dropping
    /// it unsubscribes at once.
    ///
    /// # Errors
    ///
    /// [`SubscribeError`]: the topic name is invalid, the topic limit is
    /// reached, or the hub is closed. An id that cannot be resumed is not an
    /// error: the subscription starts with a `reset` event.
    ///
    /// # Examples
    ///
    /// ```
    /// let hub = ssekit::Hub::new();
    /// let subscription = hub.subscribe("news", ssekit::Resume::Live)?;
    /// assert_eq!(hub.subscribers("news"), 1);
    /// drop(subscription);
    /// assert_eq!(hub.subscribers("news"), 0);
    /// # Ok::<(), ssekit::SubscribeError>(())
    /// ```
    pub fn subscribe(&self, topic: &str, resume: impl Into<Resume>) -> Result<Subscription, SubscribeError> {
        Subscription::new(self.shared.clone(), topic, resume.into())
    }

    /// [`Hub::subscribe`] wrapped as the response stream of one connection, with
    /// the hub's [`SseConfig`] (keep-alive, retry hint, lifetime).
    ///
    /// # Errors
    ///
    /// As [`Hub::subscribe`].
    ///
    /// # Examples
    ///
    /// ```
    /// let hub = ssekit::Hub::new();
    /// let stream = hub.sse("news", ssekit::Resume::Live)?;
    /// # Ok::<(), ssekit::SubscribeError>(())
    /// ```
    pub fn sse(&self, topic: &str, resume: impl Into<Resume>) -> Result<Sse<Subscription>, SubscribeError> {
        Ok(Sse::from_subscription(self.subscribe(topic, resume)?).with_config(self.stream_config()))
    }

    /// The stream settings of [`Hub::sse`].
    pub(crate) fn stream_config(&self) -> SseConfig {
        self.shared.config.stream.clone()
    }

    /// Subscriptions open now on `topic`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ssekit::Hub::new().subscribers("nobody"), 0);
    /// ```
    pub fn subscribers(&self, topic: &str) -> usize {
        self.shared.topics().get(topic).map_or(0, |t| t.subscribers())
    }

    /// A snapshot of the hub's counters, and of the topics and bytes it holds.
    ///
    /// # Examples
    ///
    /// ```
    /// let hub = ssekit::Hub::new();
    /// assert_eq!(hub.metrics().retained_bytes, 0);
    /// ```
    pub fn metrics(&self) -> HubMetrics {
        let topics = self.shared.topics();
        let retained_bytes = topics.values().map(|topic| topic.read().log.bytes()).sum();
        self.shared.counters.snapshot(topics.len(), retained_bytes)
    }

    /// The hub's shutdown signal: triggered by [`Hub::close`]. Attach it to
    /// streams of your own with [`Sse::with_shutdown`].
    pub fn shutdown(&self) -> Shutdown {
        self.shared.shutdown.clone()
    }

    /// Ends every subscription at its next poll and refuses new publishes and
    /// subscriptions, so that a server's graceful shutdown completes.
    ///
    /// # Examples
    ///
    /// ```
    /// let hub = ssekit::Hub::new();
    /// hub.close();
    /// assert!(hub.publish("news", ssekit::Event::new().data("late")).is_err());
    /// ```
    pub fn close(&self) {
        self.shared.close();
    }

    /// [`Hub::close`], sending `event` (without an id) as the last frame of every
    /// subscription, e.g. to tell pages the server is going away.
    ///
    /// # Errors
    ///
    /// An [`EventError`] when `event` cannot be encoded; the hub is closed anyway.
    ///
    /// # Examples
    ///
    /// ```
    /// let hub = ssekit::Hub::new();
    /// hub.close_with(ssekit::Event::new().event("bye").data("restarting"))?;
    /// # Ok::<(), ssekit::EventError>(())
    /// ```
    pub fn close_with(&self, event: Event) -> Result<(), EventError> {
        let frame = event.encode();
        if let Ok(frame) = &frame {
            let _ = self.shared.final_frame.set(frame.as_bytes().clone());
        }
        self.shared.close();
        frame.map(drop)
    }

    /// Drops every topic that has no subscriber and no retained event, or has
    /// been idle for [`HubBuilder::idle_ttl`], and gives back the memory of the
    /// expired events of the others that have no subscriber. The hub does this by
    /// itself for a topic when it loses its last subscriber and, for all of them
    /// once one can have expired, when the topic limit is reached; call it (say
    /// every minute) to return memory sooner.
    pub fn sweep(&self) {
        self.shared.sweep();
    }
}

/// What a hub appends for `event`: checked, without an id of its own (the hub
/// assigns ids), encoded without the id and the final blank line, with `extra`
/// bytes reserved for them. Shared by [`Hub`] and the Redis backplane.
pub(crate) fn event_body(event: &Event, extra: usize) -> Result<BytesMut, PublishError> {
    event.validate()?;
    if event.id.is_some() {
        return Err(PublishError::IdSet);
    }
    Ok(event.encode_body(extra))
}

/// [`event_body`] for a frame the application encoded.
pub(crate) fn frame_body(frame: &Frame, extra: usize) -> Result<BytesMut, PublishError> {
    if frame.has_id() {
        return Err(PublishError::IdSet);
    }
    // Drop the frame's final blank line: the id line goes before it.
    let body = &frame.as_bytes()[..frame.as_bytes().len() - 1];
    let mut buf = BytesMut::with_capacity(body.len() + extra);
    buf.extend_from_slice(body);
    Ok(buf)
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub").field("metrics", &self.metrics()).finish_non_exhaustive()
    }
}

impl Shared {
    fn topics(&self) -> std::sync::RwLockReadGuard<'_, Topics> {
        self.topics.read().unwrap_or_else(|e| e.into_inner())
    }

    fn topics_mut(&self) -> std::sync::RwLockWriteGuard<'_, Topics> {
        self.topics.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The topic named `name`, created if needed.
    fn topic(&self, name: &str) -> Result<Arc<Topic>, TopicError> {
        self.topic_with(name, |_| ())
    }

    /// The topic named `name`, created if needed, with `with` run on it under the
    /// topics lock (so that a sweep cannot drop it in between).
    fn topic_with(&self, name: &str, with: impl Fn(&Topic)) -> Result<Arc<Topic>, TopicError> {
        self.config.check_topic_name(name)?;
        if let Some(topic) = self.topics().get(name) {
            with(topic);
            return Ok(topic.clone());
        }
        let mut topics = self.topics_mut();
        if let Some(topic) = topics.get(name) {
            with(topic);
            return Ok(topic.clone());
        }
        let now = Instant::now();
        if topics.len() >= self.config.max_topics {
            topics.make_room(now);
            if topics.len() >= self.config.max_topics {
                return Err(TopicError::Limit { limit: self.config.max_topics });
            }
        }
        let name: Arc<str> = name.into();
        let topic = Arc::new(Topic::new(name.clone(), self.config.limits, self.replica.is_some()));
        with(&topic);
        topics.add(topic.clone(), now);
        if let Some(replica) = &self.replica {
            let mut loads = replica.loads.lock().unwrap_or_else(|e| e.into_inner());
            loads.insert(name);
            // Topics created and dropped while the reader cannot load them (Redis
            // down) must not pile up: keep only those still held.
            if loads.len() > self.config.max_topics {
                loads.retain(|name| topics.contains_key(name));
            }
            drop(loads);
            replica.notify.notify_one();
        }
        Ok(topic)
    }

    /// Called when `topic` lost its last subscriber.
    fn release(&self, topic: &Topic) {
        let mut topics = self.topics_mut();
        if topic.subscribers() == 0 {
            topics.drop_if_idle(topic, Instant::now());
        }
    }

    fn sweep(&self) {
        self.topics_mut().sweep(Instant::now());
    }

    fn close(&self) {
        self.shutdown.trigger();
        // Woken after the topics lock is released: a waker may run any code,
        // even code that drops a subscription and so takes that lock.
        let topics: Vec<_> = self.topics().values().cloned().collect();
        for topic in topics {
            topic.wake();
        }
    }

    /// The `reset` frame for a subscriber of `topic` that continues after `after`.
    fn reset_frame(&self, topic: &Topic, reason: ResetReason, after: EventId) -> Bytes {
        self.counters.reset(reason);
        let data = (self.config.reset_data)(&topic.name, reason);
        let mut frame = Event::new().event(self.config.reset_event.as_str()).data(data).encode_body(ID_TAIL);
        frame.put_slice(ID);
        after.write(&mut frame);
        frame.put_slice(b"\n\n");
        frame.freeze()
    }
}

/// Why a subscription starts with (or receives) a `reset` event instead of the
/// events its client missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResetReason {
    /// The events after the client's id were evicted from the log.
    Evicted,
    /// The id is of another epoch: the log that issued it is gone (a restart).
    UnknownEpoch,
    /// The id is not one a hub issues.
    Malformed,
    /// The id is ahead of the log.
    Future,
    /// The subscriber fell behind and the log evicted events it had not read.
    Lagged,
}

impl ResetReason {
    const ALL: [Self; 5] = [Self::Evicted, Self::UnknownEpoch, Self::Malformed, Self::Future, Self::Lagged];

    /// A short lowercase name: `evicted`, `epoch`, `malformed`, `future`, `lagged`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ssekit::ResetReason::Lagged.as_str(), "lagged");
    /// ```
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Evicted => "evicted",
            Self::UnknownEpoch => "epoch",
            Self::Malformed => "malformed",
            Self::Future => "future",
            Self::Lagged => "lagged",
        }
    }
}

impl fmt::Display for ResetReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happens to a subscriber that falls behind the retained log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LagPolicy {
    /// Send a `reset` event (reason `lagged`) and continue from the oldest
    /// retained event (not older than [`HubBuilder::max_age`]).
    #[default]
    Reset,
    /// End the subscription; the client reconnects with its last id and gets a
    /// `reset` if the events after it are gone.
    Disconnect,
}

type ResetData = Arc<dyn Fn(&str, ResetReason) -> String + Send + Sync>;

/// Limits and policies of a [`Hub`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ssekit::{Hub, LagPolicy, SseConfig};
///
/// let hub = Hub::builder()
///     .history(1_000)
///     .max_bytes(1 << 20)
///     .max_age(Duration::from_secs(600))
///     .max_topics(100)
///     .lag_policy(LagPolicy::Disconnect)
///     .reset_data(|topic, reason| format!(r#"{{"reason":"{reason}","snapshot":"..."}}"#))
///     .stream(SseConfig::new().retry(Duration::from_secs(2)))
///     .build();
/// ```
#[derive(Clone)]
pub struct HubBuilder {
    limits: Limits,
    idle_ttl: Option<Duration>,
    max_topics: usize,
    max_topic_len: usize,
    lag_policy: LagPolicy,
    reset_event: String,
    reset_data: ResetData,
    stream: SseConfig,
}

impl HubBuilder {
    /// The defaults: 1 024 events and 4 MiB per topic, no age limit, 10 000
    /// topics of names up to 256 bytes, idle topics kept one hour,
    /// [`LagPolicy::Reset`], reset events named `reset` with data
    /// `{"reason":"<reason>"}`, and [`SseConfig::new`].
    pub fn new() -> Self {
        Self {
            limits: Limits { max_events: 1024, max_bytes: 4 << 20, max_age: None },
            idle_ttl: Some(Duration::from_secs(3600)),
            max_topics: 10_000,
            max_topic_len: 256,
            lag_policy: LagPolicy::default(),
            reset_event: "reset".to_owned(),
            reset_data: Arc::new(|_, reason| format!(r#"{{"reason":"{reason}"}}"#)),
            stream: SseConfig::new(),
        }
    }

    fn check_topic_name(&self, name: &str) -> Result<(), TopicError> {
        let max_len = self.max_topic_len;
        if name.is_empty() || name.len() > max_len {
            return Err(TopicError::InvalidName { len: name.len(), max_len });
        }
        Ok(())
    }

    /// The history limit, for a shared log kept as long as the local ones.
    #[cfg(feature = "redis")]
    pub(crate) fn history_len(&self) -> usize {
        self.limits.max_events
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

    /// Topics held at most; creating one more is an error
    /// ([`TopicError::Limit`]) unless an idle topic can be dropped to make room.
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

    /// The event type of reset events. A name that could not be sent (CR or LF)
    /// is refused by [`HubBuilder::try_build`].
    pub fn reset_event(&mut self, name: impl Into<String>) -> &mut Self {
        self.reset_event = name.into();
        self
    }

    /// The data of reset events, from the topic and the reason: e.g. a snapshot
    /// of the state the page should show.
    pub fn reset_data(&mut self, data: impl Fn(&str, ResetReason) -> String + Send + Sync + 'static) -> &mut Self {
        self.reset_data = Arc::new(data);
        self
    }

    /// Keep-alive, retry hint and lifetime of the streams [`Hub::sse`] makes.
    pub fn stream(&mut self, config: SseConfig) -> &mut Self {
        self.stream = config;
        self
    }

    /// The hub.
    ///
    /// # Panics
    ///
    /// When the reset event name contains CR or LF; see [`HubBuilder::try_build`].
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
    /// [`EventError::EventLineBreak`] when the reset event name contains CR or LF.
    pub fn try_build(&self) -> Result<Hub, EventError> {
        self.build_with(None)
    }

    /// A hub whose topics mirror a shared log fed by the backplane.
    #[cfg(feature = "redis")]
    pub(crate) fn build_replica(&self) -> Result<Hub, EventError> {
        self.build_with(Some(Replica::default()))
    }

    fn build_with(&self, replica: Option<Replica>) -> Result<Hub, EventError> {
        Event::new().event(self.reset_event.as_str()).validate()?;
        Ok(Hub {
            shared: Arc::new(Shared {
                topics: RwLock::new(Topics::new(self.idle_ttl)),
                config: self.clone(),
                shutdown: Shutdown::new(),
                final_frame: OnceLock::new(),
                counters: Counters::default(),
                replica,
            }),
        })
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
            .field("max_topic_len", &self.max_topic_len)
            .field("lag_policy", &self.lag_policy)
            .field("reset_event", &self.reset_event)
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

/// A topic name or count the hub refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// The name is empty or too long.
    #[error("topic name of {len} bytes is not within 1..={max_len}")]
    InvalidName {
        /// Length given.
        len: usize,
        /// The limit.
        max_len: usize,
    },
    /// The hub holds as many topics as it may.
    #[error("topic limit of {limit} reached")]
    Limit {
        /// The limit.
        limit: usize,
    },
}

/// Why [`Hub::publish`] published nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The event breaks a wire rule.
    #[error(transparent)]
    Event(#[from] EventError),
    /// The event has an id; the hub assigns ids itself.
    #[error("event already has an id; the hub assigns ids")]
    IdSet,
    /// The encoded event is larger than a topic's log may hold.
    #[error("event of {len} bytes is over the limit of {limit}")]
    TooLarge {
        /// Encoded length without the id.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The topic is refused.
    #[error(transparent)]
    Topic(#[from] TopicError),
    /// The hub is closed.
    #[error("hub is closed")]
    Closed,
    /// The shared log (Redis) did not confirm the append.
    #[error("backplane: {0}")]
    Backplane(String),
}

/// Why [`Hub::subscribe`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The topic is refused.
    #[error(transparent)]
    Topic(#[from] TopicError),
    /// The hub is closed.
    #[error("hub is closed")]
    Closed,
}

impl SubscribeError {
    /// Whether the client may succeed later: the hub is closing (a restart), or
    /// it holds as many topics as it may (idle ones are dropped as they expire,
    /// see [`HubBuilder::idle_ttl`]).
    /// A name the hub refuses will not do later either.
    ///
    /// An SSE endpoint answers a temporary refusal with a stream that sets the
    /// retry delay and ends ([`Sse::try_later`]): `EventSource` gives up for good
    /// on any status but `200`. With the `axum` or `actix` feature, the error is
    /// itself that answer (and `400` for the others), so a handler can return
    /// `hub.sse(..)` as is.
    ///
    /// # Examples
    ///
    /// ```
    /// let hub = ssekit::Hub::new();
    /// hub.close();
    /// assert!(hub.subscribe("news", ssekit::Resume::Live).unwrap_err().is_temporary());
    /// ```
    pub fn is_temporary(&self) -> bool {
        matches!(self, Self::Closed | Self::Topic(TopicError::Limit { .. }))
    }
}
