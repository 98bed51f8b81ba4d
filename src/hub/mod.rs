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
//!
//! ## Several nodes
//!
//! A hub built with a [`Backplane`] shares its topics with every node on the
//! same backplane (with the `redis` feature: Redis Streams). The API is the
//! same; publishing then waits for the shared log, so use the `async`
//! [`Hub::publish`]. See [`backplane`] for the door a backplane goes through.
//!
//! ## Files
//!
//! This file holds the [`Hub`] API. [`builder`](HubBuilder), `error`, `reset`
//! ([`ResetReason`], [`LagPolicy`]) and `event_id` ([`EventId`]) are its
//! vocabulary; `topics` (the registry), `topic`, `log` (the bounded log of
//! one topic) and `subscription` hold the state; `body` builds what is
//! appended; `wakers`, `recent` and `sync` make delivery cheap; `metrics`
//! counts; [`backplane`] is the door to shared logs.
//!
//! The hub imports the wire format and the two leaves it shares with the
//! stream (`shutdown`, `random`); the stream and the adapters build on it.

pub mod backplane;
mod body;
mod builder;
mod compound_id;
mod cursor;
mod error;
mod event_id;
mod log;
#[cfg(all(test, ssekit_loom))]
mod loom;
mod metrics;
mod once;
mod recent;
mod reset;
mod subscription;
mod sync;
mod topic;
mod topics;
mod wakers;

use std::fmt;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bytes::{Bytes, BytesMut};

pub use backplane::{Backplane, BackplaneError, BackplaneStatus};
pub use builder::HubBuilder;
pub use error::{BoxError, BuildError, PublishError, SubscribeError, TopicError};
pub use event_id::{EventId, EventIdError};
pub use metrics::HubMetrics;
pub use reset::{LagPolicy, ResetReason};
pub use subscription::Subscription;

pub(crate) use log::MAX_BATCH;

use backplane::Feed;
use body::{ID_TAIL, event_body, frame_body, seal};
use metrics::Counters;
use topic::Topic;
use topics::Registry;

use crate::shutdown::Shutdown;
use crate::wire::event::{Event, EventError};
use crate::wire::frame::Frame;
use crate::wire::last_event_id::Resume;

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
/// let mut live = hub.subscribe("news", Resume::Live).await?;
/// let id = hub.publish("news", Event::new().data("first")).await?;
/// let chunk = live.next().await.unwrap();
/// assert_eq!(chunk, format!("data: first\nid: {id}\n\n"));
///
/// // A client that saw `id` resumes after it, without a gap.
/// hub.publish("news", Event::new().data("second")).await?;
/// let mut resumed = hub.subscribe("news", ssekit::LastEventId::parse(id.to_string().as_bytes())?).await?;
/// assert!(resumed.next().await.unwrap().starts_with(b"data: second\n"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Hub {
    shared: Arc<Shared>,
}

/// What every handle of one hub shares.
pub(crate) struct Shared {
    registry: Registry,
    config: HubBuilder,
    shutdown: Shutdown,
    final_frame: OnceLock<Bytes>,
    counters: Counters,
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

    /// The hub of `config`, attached to its backplane if it has one.
    fn with_config(config: HubBuilder) -> Result<Self, BuildError> {
        let shared = Arc::new(Shared {
            registry: Registry::new(&config),
            shutdown: Shutdown::new(),
            final_frame: OnceLock::new(),
            counters: Counters::default(),
            config,
        });
        if let Some(backplane) = &shared.config.backplane {
            backplane.attach(Feed::new(&shared)).map_err(BuildError::Backplane)?;
        }
        Ok(Self { shared })
    }

    /// Publishes `event` to `topic` (created on first use) and returns the id it
    /// got. Works on every hub; on one without a backplane it is ready at once
    /// (see [`Hub::try_publish`] to publish from code that cannot `.await`).
    ///
    /// The event is encoded once; subscribers share the frame. Publishing never
    /// waits for a subscriber. With a backplane it waits for the shared log's
    /// answer, and every node's subscribers receive the event.
    ///
    /// # Errors
    ///
    /// [`PublishError`]: the event breaks a wire rule or already has an id, is
    /// larger than a topic's log may hold, the topic name is invalid, the topic
    /// limit is reached, the hub is closed, or the backplane failed (its error
    /// says whether the event may have been appended all the same).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ssekit::PublishError> {
    /// let hub = ssekit::Hub::new();
    /// let id = hub.publish("news", ssekit::Event::new().event("headline").data("hello")).await?;
    /// assert_eq!(id.offset(), 1);
    /// assert!(hub.publish("news", ssekit::Event::new().event("a\nb")).await.is_err());
    /// # Ok(()) }
    /// ```
    pub async fn publish(&self, topic: &str, event: Event) -> Result<EventId, PublishError> {
        self.append(topic, None, event_body(&event)?).await
    }

    /// [`Hub::publish`] of a frame your application encoded, adding the id.
    ///
    /// # Errors
    ///
    /// As [`Hub::publish`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ssekit::PublishError> {
    /// let hub = ssekit::Hub::new();
    /// hub.publish_frame("news", ssekit::Frame::from_static("data: prebuilt\n\n")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn publish_frame(&self, topic: &str, frame: Frame) -> Result<EventId, PublishError> {
        self.append(topic, None, frame_body(&frame)?).await
    }

    /// [`Hub::publish`] without waiting, for code that cannot `.await`: on a hub
    /// without a backplane it does the same.
    ///
    /// # Errors
    ///
    /// As [`Hub::publish`], and [`PublishError::WouldBlock`] on a hub with a
    /// backplane, where publishing takes a round trip.
    ///
    /// # Examples
    ///
    /// ```
    /// let hub = ssekit::Hub::new();
    /// let id = hub.try_publish("news", ssekit::Event::new().data("hello"))?;
    /// assert_eq!(id.offset(), 1);
    /// # Ok::<(), ssekit::PublishError>(())
    /// ```
    pub fn try_publish(&self, topic: &str, event: Event) -> Result<EventId, PublishError> {
        self.append_here(topic, None, event_body(&event)?)
    }

    /// [`Hub::publish_frame`] without waiting, as [`Hub::try_publish`].
    ///
    /// # Errors
    ///
    /// As [`Hub::try_publish`].
    ///
    /// # Examples
    ///
    /// ```
    /// let hub = ssekit::Hub::new();
    /// hub.try_publish_frame("news", ssekit::Frame::from_static("data: prebuilt\n\n"))?;
    /// # Ok::<(), ssekit::PublishError>(())
    /// ```
    pub fn try_publish_frame(&self, topic: &str, frame: Frame) -> Result<EventId, PublishError> {
        self.append_here(topic, None, frame_body(&frame)?)
    }

    /// What every publish checks before appending a body of `len` bytes to `topic`.
    fn check_publish(&self, topic: &str, len: usize) -> Result<(), PublishError> {
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

    /// Publishes `event` to `topic` unless a publish with the same `key` went to
    /// `topic` within the window ([`HubBuilder::publish_once_window`], 5 minutes
    /// by default): then nothing is appended, and the id of that publish is the
    /// answer. A caller that retries a publish whose outcome it does not know
    /// ([`PublishError::is_outcome_unknown`]) with the same key thus publishes
    /// it once. On a hub with a backplane the keys are kept in the shared log,
    /// so a retry through another node is caught too.
    ///
    /// A key is 1 to 128 bytes the caller chooses (a request id, a UUID). On a
    /// hub without a backplane each topic keeps the keys of its last
    /// [`HubBuilder::history`] publishes at most (the oldest going first), and
    /// loses them with the topic: a topic without subscribers that is dropped
    /// (expired, or replaced at the topic limit) forgets its keys, and a retry
    /// after that appends again. On Redis the keys expire with the window alone.
    ///
    /// # Errors
    ///
    /// As [`Hub::publish`], and [`PublishError::InvalidKey`] for a key that is
    /// empty or too long; a backplane that cannot keep keys refuses
    /// ([`BackplaneError::Refused`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ssekit::PublishError> {
    /// let hub = ssekit::Hub::new();
    /// let first = hub.publish_once("orders", "order-42", ssekit::Event::new().data("paid")).await?;
    /// let retry = hub.publish_once("orders", "order-42", ssekit::Event::new().data("paid")).await?;
    /// assert_eq!(first, retry);
    /// assert_eq!(hub.metrics().published, 1);
    /// # Ok(()) }
    /// ```
    pub async fn publish_once(&self, topic: &str, key: &str, event: Event) -> Result<EventId, PublishError> {
        if key.is_empty() || key.len() > once::MAX_KEY {
            return Err(PublishError::InvalidKey { len: key.len(), max: once::MAX_KEY });
        }
        self.append(topic, Some(key), event_body(&event)?).await
    }

    /// Appends to the log of `topic` (the shared one, through the backplane,
    /// if any), unless `key` is one the topic saw within the window.
    async fn append(&self, topic: &str, key: Option<&str>, body: BytesMut) -> Result<EventId, PublishError> {
        let Some(backplane) = &self.shared.config.backplane else {
            return self.append_here(topic, key, body);
        };
        self.check_publish(topic, body.len())?;
        let (id, appended) = match key {
            Some(key) => backplane.append_once(topic, key, self.shared.config.once_window, body.freeze()).await?,
            None => (backplane.append(topic, body.freeze()).await?, true),
        };
        if appended {
            self.shared.counters.published.fetch_add(1, Relaxed);
        }
        Ok(id)
    }

    /// Appends to the local log of `name`, assigning the id, unless `key` is
    /// one the topic saw within the window.
    fn append_here(&self, name: &str, key: Option<&str>, body: BytesMut) -> Result<EventId, PublishError> {
        if self.shared.config.backplane.is_some() {
            return Err(PublishError::WouldBlock);
        }
        self.check_publish(name, body.len())?;
        let now = Instant::now();
        loop {
            if self.shared.shutdown.is_triggered() {
                return Err(PublishError::Closed);
            }
            let topic = self.shared.topic_with(name, |_| ())?;
            let mut state = topic.write();
            if state.removed {
                continue;
            }
            if let Some(id) = key.and_then(|key| state.once.get(key, self.shared.config.once_window, now)) {
                return Ok(id);
            }
            let id = EventId::new(state.epoch, state.log.next());
            if let Some(key) = key {
                state.once.insert(key, id, now, self.shared.config.limits.max_events);
            }
            let frame = seal(body, id);
            state.log.append(frame, now);
            drop(state);
            topic.wake();
            self.shared.counters.published.fetch_add(1, Relaxed);
            return Ok(id);
        }
    }

    /// Follows `topic` from where `resume` says: live, or after a client's last id.
    ///
    /// See the [module docs](crate::hub) for what a subscription yields. Dropping
    /// it unsubscribes at once. On a hub with a backplane, the first subscriber
    /// of a topic on this node waits (up to [`Backplane::load_timeout`]) until
    /// the topic is loaded from the shared log, so that [`Resume::Live`] means
    /// "from now" and a resume is checked against the shared log; on other hubs
    /// it is ready at once (see [`Hub::try_subscribe`]).
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
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ssekit::SubscribeError> {
    /// let hub = ssekit::Hub::new();
    /// let subscription = hub.subscribe("news", ssekit::Resume::Live).await?;
    /// assert_eq!(hub.subscribers("news"), 1);
    /// drop(subscription);
    /// assert_eq!(hub.subscribers("news"), 0);
    /// # Ok(()) }
    /// ```
    pub async fn subscribe(&self, topic: &str, resume: impl Into<Resume>) -> Result<Subscription, SubscribeError> {
        self.subscribe_many(&[topic], resume, 0).await
    }

    /// [`Hub::subscribe`] without waiting, for code that cannot `.await`. On a
    /// hub with a backplane, a topic this node has not loaded yet starts once
    /// loaded: `Resume::Live` then means "from the load".
    ///
    /// # Errors
    ///
    /// As [`Hub::subscribe`].
    ///
    /// # Examples
    ///
    /// ```
    /// let hub = ssekit::Hub::new();
    /// let subscription = hub.try_subscribe("news", ssekit::Resume::Live)?;
    /// assert_eq!(subscription.topic(), "news");
    /// # Ok::<(), ssekit::SubscribeError>(())
    /// ```
    pub fn try_subscribe(&self, topic: &str, resume: impl Into<Resume>) -> Result<Subscription, SubscribeError> {
        Subscription::new(self.shared.clone(), &[topic], resume.into(), 0)
    }

    /// Follows several topics on one stream (and one connection), as
    /// [`Hub::subscribe`] follows one; `history`: a new subscriber (no client
    /// id) first gets the last `history` retained events of each topic, at most
    /// [`HubBuilder::max_join_history`].
    ///
    /// Duplicates in `topics` are removed. Each topic's events come in their
    /// publish order; topics take turns. The stream's ids hold the client's
    /// position in every topic, so one `Last-Event-ID` resumes each topic
    /// exactly; a topic that cannot be resumed (evicted, another epoch) gets a
    /// `reset` of its own, whose data names it, and the others resume. How a
    /// client tells which topic an event is of: see [`Subscription`]. With one
    /// topic it is [`Hub::subscribe`] with history.
    ///
    /// # Errors
    ///
    /// As [`Hub::subscribe`], for any of the topics (then it follows none), and
    /// [`SubscribeError::Topics`] for no topic or more than
    /// [`HubBuilder::max_topics_per_subscription`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use futures_util::StreamExt;
    /// use ssekit::{Decoder, Event, Hub, LastEventId, Resume};
    ///
    /// let hub = Hub::new();
    /// hub.publish("chat", Event::new().data("earlier")).await?;
    /// // A new page: the last 10 events of each topic, then live.
    /// let mut stream = hub.subscribe_many(&["alerts", "chat"], Resume::Live, 10).await?;
    /// let mut decoder = Decoder::new();
    /// let mut events = Vec::new();
    /// while events.is_empty() {
    ///     events = decoder.feed(&stream.next().await.unwrap())?;
    /// }
    /// let event = events.remove(0);
    /// assert_eq!(event.data, "earlier");
    /// assert!(event.last_event_id.starts_with("1."), "an event of the second topic");
    ///
    /// // The page reconnects with that id: each topic continues where it was.
    /// hub.publish("alerts", Event::new().data("new")).await?;
    /// let resume = Resume::from(LastEventId::parse(event.last_event_id.as_bytes())?);
    /// let mut again = hub.subscribe_many(&["alerts", "chat"], resume, 10).await?;
    /// let body = again.next().await.unwrap();
    /// assert!(body.starts_with(b"data: new\n"));
    /// # Ok(()) }
    /// ```
    pub async fn subscribe_many<T: AsRef<str>>(
        &self,
        topics: &[T],
        resume: impl Into<Resume>,
        history: usize,
    ) -> Result<Subscription, SubscribeError> {
        let mut subscription = self.try_subscribe_many(topics, resume, history)?;
        if let Some(backplane) = &self.shared.config.backplane {
            // Past the timeout each topic starts once it is loaded.
            let _ = tokio::time::timeout(backplane.load_timeout(), subscription.started()).await;
        }
        Ok(subscription)
    }

    /// [`Hub::subscribe_many`] without waiting, as [`Hub::try_subscribe`].
    ///
    /// # Errors
    ///
    /// As [`Hub::subscribe_many`].
    pub fn try_subscribe_many<T: AsRef<str>>(
        &self,
        topics: &[T],
        resume: impl Into<Resume>,
        history: usize,
    ) -> Result<Subscription, SubscribeError> {
        Subscription::new(self.shared.clone(), topics, resume.into(), history)
    }

    /// Subscriptions open now on `topic` (on this node).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ssekit::Hub::new().subscribers("nobody"), 0);
    /// ```
    pub fn subscribers(&self, topic: &str) -> usize {
        self.shared.registry.get(topic).map_or(0, |t| t.subscribers())
    }

    /// A snapshot of the hub's counters, and of the topics and bytes it holds
    /// (on this node).
    ///
    /// # Examples
    ///
    /// ```
    /// let hub = ssekit::Hub::new();
    /// assert_eq!(hub.metrics().retained_bytes, 0);
    /// ```
    pub fn metrics(&self) -> HubMetrics {
        let (topics, retained_bytes) = self.shared.registry.size();
        self.shared.counters.snapshot(topics, retained_bytes)
    }

    /// The state of the link to the backplane; `None` without one.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ssekit::Hub::new().backplane_status(), None);
    /// ```
    pub fn backplane_status(&self) -> Option<BackplaneStatus> {
        self.shared.config.backplane.as_ref().map(|backplane| backplane.status())
    }

    /// The hub's shutdown signal: triggered by [`Hub::close`]. Attach it to
    /// streams of your own with [`Sse::with_shutdown`](crate::Sse::with_shutdown).
    pub fn shutdown(&self) -> Shutdown {
        self.shared.shutdown.clone()
    }

    /// Ends every subscription at its next poll and refuses new publishes and
    /// subscriptions, so that a server's graceful shutdown completes. A
    /// backplane stops feeding this hub (the shared log keeps the topics).
    ///
    /// # Examples
    ///
    /// ```
    /// let hub = ssekit::Hub::new();
    /// hub.close();
    /// assert!(hub.try_publish("news", ssekit::Event::new().data("late")).is_err());
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
        self.shared.registry.sweep();
    }
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("metrics", &self.metrics())
            .field("backplane", &self.shared.config.backplane)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// The topic named `name`, created if needed, with `with` run on it under
    /// the registry's lock.
    fn topic_with(&self, name: &str, with: impl Fn(&Topic)) -> Result<Arc<Topic>, TopicError> {
        self.config.check_topic_name(name)?;
        self.registry.topic_with(name, with)
    }

    fn close(&self) {
        self.shutdown.trigger();
        if let Some(backplane) = &self.config.backplane {
            backplane.close();
        }
        // Woken after the registry's lock is released: a waker may run any
        // code, even code that drops a subscription and so takes that lock.
        for topic in self.registry.all() {
            topic.wake();
        }
    }
}
