//! The door between a hub and a backplane: the one interface through which a
//! shared log (Redis Streams, or another engine) feeds a [`Hub`](crate::Hub)
//! on every node.
//!
//! A hub built with a backplane ([`HubBuilder::backplane`](crate::HubBuilder::backplane))
//! no longer issues offsets itself. Publishing hands the encoded body of the
//! event to [`Backplane::append`], which appends it to the shared log and
//! answers with the id the log gave it. What the backplane then reads from the
//! shared log, it hands to the hub through its [`Feed`]: the retained history
//! of a topic ([`Feed::load`]) and the entries after it ([`Feed::append`]). The
//! hub finishes each body with its id once per node, and serves its subscribers
//! from its local logs exactly as without a backplane: one encoding per node,
//! shared by all of them.
//!
//! In the other direction the hub tells the backplane which topics it holds:
//! [`Backplane::wanted`] when a topic is created on this node, and
//! [`Backplane::released`] when it is dropped. A backplane reads only those.
//!
//! That is all a backplane sees of the hub: it never touches a topic, a log
//! or a subscription, and the hub knows no backplane by name.
//!
//! ## What the hub guarantees a backplane
//!
//! - A topic created on this node is not served until the backplane loads it
//!   ([`Feed::load`]); subscriptions wait (their keep-alives flow), and
//!   [`Hub::subscribe`](crate::Hub::subscribe) waits up to
//!   [`Backplane::load_timeout`] so that `Resume::Live` means "from now".
//! - Entries are appended by offset: an offset already held is ignored, and one
//!   past a hole restarts the local log there, so that subscribers behind the
//!   hole get a `reset` instead of a silent gap.
//! - A load of another epoch replaces the log: subscribers get a `reset`
//!   (reason `epoch`) and continue in the new log; a load of the first epoch a
//!   topic sees is no reset.
//! - `wanted` and `released` are called in the order the hub holds and drops
//!   topics, under the hub's lock: they must return at once and must not call
//!   back into the hub.
//!
//! ## What a backplane guarantees the hub
//!
//! - Offsets of one topic are given once per epoch and in order: an id `(e, n)`
//!   names the same event on every node.
//! - It loads every wanted topic, and it feeds every entry of every held topic
//!   eventually (holes are filled by reading the shared log again, or announced
//!   by a restart past them).
//! - [`Backplane::append`] says whether a failed append may have happened
//!   ([`BackplaneError::is_outcome_unknown`]).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use super::Shared;
use super::body::seal_copy;
use super::error::BoxError;
use super::event_id::EventId;
use super::topic::Continues;

/// A future of a backplane, boxed: `dyn` traits cannot return `impl Future`.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A shared log that feeds a hub on every node: see the [module docs](self).
pub trait Backplane: fmt::Debug + Send + Sync + 'static {
    /// Called when a hub is built with this backplane: from then on the
    /// backplane feeds that hub through `feed`.
    ///
    /// # Errors
    ///
    /// A backplane that feeds one hub only may refuse a second one.
    fn attach(&self, feed: Feed) -> Result<(), BackplaneError>;

    /// Appends `body` (an encoded event without its `id:` line and final blank
    /// line) to the shared log of `topic`, and answers with the id it got.
    fn append(&self, topic: &str, body: Bytes) -> BoxFuture<Result<EventId, BackplaneError>>;

    /// [`Backplane::append`], unless an append with the same `key` went to
    /// `topic` within `window`: then nothing is appended and the answer is that
    /// append's id, with `false` (see [`Hub::publish_once`](crate::Hub::publish_once)).
    /// The keys live with the shared log, so that a retry through any node is
    /// caught. The answer's `bool`: whether this call appended.
    ///
    /// By default: refused, for a backplane that keeps no keys.
    fn append_once(
        &self,
        topic: &str,
        key: &str,
        window: Duration,
        body: Bytes,
    ) -> BoxFuture<Result<(EventId, bool), BackplaneError>> {
        let _ = (topic, key, window, body);
        Box::pin(std::future::ready(Err(BackplaneError::Refused("this backplane keeps no publish keys".into()))))
    }

    /// The hub now holds `topic`: load it, then feed it. Returns at once.
    fn wanted(&self, topic: &Arc<str>);

    /// The hub dropped `topic`: it need not be fed any more. Returns at once.
    fn released(&self, topic: &Arc<str>);

    /// The state of the link, for health checks.
    fn status(&self) -> BackplaneStatus;

    /// How long the first subscriber of a topic on this node waits for the
    /// topic to be loaded before its subscription is returned anyway.
    fn load_timeout(&self) -> Duration {
        Duration::from_secs(2)
    }

    /// The hub closed: stop feeding it.
    fn close(&self);
}

/// Why a backplane failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackplaneError {
    /// The request did not reach the shared log (no connection, refused):
    /// nothing was appended.
    #[error("backplane unreachable; nothing was appended")]
    Unavailable(#[source] BoxError),
    /// The request may have reached the shared log, but its answer was lost (a
    /// timeout, a dropped connection): the event may have been appended.
    #[error("backplane did not answer; the event may have been appended")]
    OutcomeUnknown(#[source] BoxError),
    /// The shared log refused the request with an error: nothing was appended.
    #[error("backplane refused the append")]
    Refused(#[source] BoxError),
    /// The backplane already feeds another hub.
    #[error("backplane already feeds a hub")]
    Attached,
}

impl BackplaneError {
    /// Whether the request may have been carried out although it failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use ssekit::hub::backplane::BackplaneError;
    /// assert!(BackplaneError::OutcomeUnknown("timed out".into()).is_outcome_unknown());
    /// assert!(!BackplaneError::Unavailable("refused".into()).is_outcome_unknown());
    /// ```
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, Self::OutcomeUnknown(_))
    }
}

/// The state of a node's link to its backplane, from
/// [`Hub::backplane_status`](crate::Hub::backplane_status).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct BackplaneStatus {
    /// Whether the backplane is connected now.
    pub connected: bool,
    /// Successful connections so far (1 without faults).
    pub connects: u64,
    /// Topic synchronisations done (each reads new entries of one topic).
    pub syncs: u64,
    /// Topics waiting to be synchronised now: the backplane's lag.
    pub pending_topics: u64,
    /// The last error met, if any: see `last_error_at` for when (an error from
    /// before the link came back is history, not trouble).
    pub last_error: Option<String>,
    /// When the last error was met.
    pub last_error_at: Option<SystemTime>,
    /// Each connection the backplane keeps, when it keeps several (one per
    /// Redis Cluster node it listens to, say); `connected` is whether all are.
    pub links: Vec<LinkStatus>,
}

/// The state of one of a backplane's connections, in [`BackplaneStatus::links`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkStatus {
    /// What it connects to (an address, a role).
    pub name: String,
    /// Whether it is connected now.
    pub connected: bool,
    /// The last error it met, if any.
    pub last_error: Option<String>,
    /// When it met its last error.
    pub last_error_at: Option<SystemTime>,
}

impl LinkStatus {
    /// A link's state from its parts, for backplanes of other crates.
    pub fn new(name: impl Into<String>, connected: bool) -> Self {
        Self { name: name.into(), connected, last_error: None, last_error_at: None }
    }

    /// The same state, its last error `error` met at `at`.
    pub fn with_last_error(mut self, error: impl Into<String>, at: SystemTime) -> Self {
        (self.last_error, self.last_error_at) = (Some(error.into()), Some(at));
        self
    }
}

impl BackplaneStatus {
    /// A status from its parts, for backplanes of other crates.
    pub fn new(connected: bool, connects: u64, syncs: u64, pending_topics: u64, last_error: Option<String>) -> Self {
        Self { connected, connects, syncs, pending_topics, last_error, last_error_at: None, links: Vec::new() }
    }

    /// The same status with the state of each of its connections.
    ///
    /// # Examples
    ///
    /// ```
    /// use ssekit::hub::backplane::{BackplaneStatus, LinkStatus};
    ///
    /// let links = vec![LinkStatus::new("127.0.0.1:7000", true), LinkStatus::new("127.0.0.1:7001", false)];
    /// let status = BackplaneStatus::new(false, 3, 10, 0, None).with_links(links);
    /// assert_eq!(status.links.iter().filter(|link| link.connected).count(), 1);
    /// ```
    pub fn with_links(mut self, links: Vec<LinkStatus>) -> Self {
        self.links = links;
        self
    }

    /// The same status, its last error met at `at`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use ssekit::hub::backplane::BackplaneStatus;
    ///
    /// let now = SystemTime::now();
    /// let status = BackplaneStatus::new(true, 2, 10, 0, Some("connection reset".into())).with_last_error_at(now);
    /// assert_eq!(status.last_error_at, Some(now));
    /// ```
    pub fn with_last_error_at(mut self, at: SystemTime) -> Self {
        self.last_error_at = Some(at);
        self
    }
}

/// Where the local log of a topic stands, from [`Feed::position`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Position {
    /// The epoch of the shared log the topic was loaded from (0: none yet).
    pub epoch: u64,
    /// The offset the next entry fed should have.
    pub next: u64,
    /// Whether the topic was loaded since the hub created it.
    pub loaded: bool,
}

/// What [`Feed::append`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Appended {
    /// The entries are in the local log (those already held were skipped).
    Done,
    /// The hub does not hold the topic (any more): nothing to do.
    NotHeld,
    /// The local log is of another epoch: load the topic again.
    OtherEpoch,
}

/// The hub's side of the door, given to its backplane by [`Backplane::attach`].
/// Cloning is cheap. It does not keep the hub alive: once the hub is dropped,
/// every call finds nothing held.
#[derive(Clone)]
pub struct Feed {
    hub: Weak<Shared>,
}

impl Feed {
    pub(super) fn new(hub: &Arc<Shared>) -> Self {
        Self { hub: Arc::downgrade(hub) }
    }

    /// The topics the hub holds now.
    pub fn topics(&self) -> Vec<Arc<str>> {
        self.hub.upgrade().map_or_else(Vec::new, |hub| hub.registry.names())
    }

    /// Where the local log of `topic` stands; `None` when the hub does not hold it.
    pub fn position(&self, topic: &str) -> Option<Position> {
        let topic = self.hub.upgrade()?.registry.get(topic)?;
        let state = topic.read();
        Some(Position { epoch: state.epoch, next: state.log.next(), loaded: state.ready })
    }

    /// Events kept per topic: how much history to load.
    pub fn history(&self) -> usize {
        self.hub.upgrade().map_or(0, |hub| hub.registry.limits().max_events)
    }

    /// Whether the hub is closed (or gone): the backplane may stop.
    pub fn is_closed(&self) -> bool {
        self.hub.upgrade().is_none_or(|hub| hub.shutdown.is_triggered())
    }

    /// Waits until the hub closes (or is gone).
    pub async fn closed(&self) {
        let Some(shutdown) = self.hub.upgrade().map(|hub| hub.shutdown.clone()) else {
            return;
        };
        shutdown.wait().await;
    }

    /// A fresh epoch, for a shared log the backplane creates: never one this
    /// process gave before, and another process starts elsewhere.
    pub fn new_epoch() -> u64 {
        super::topic::new_epoch()
    }

    /// Replaces the local log of `topic` with `entries` (offset and body, in
    /// offset order) of the shared log of `epoch`, and marks the topic loaded.
    /// With no entries, the next one fed should have offset `next`.
    ///
    /// Returns `false` when the hub does not hold the topic.
    pub fn load(&self, topic: &str, epoch: u64, next: u64, entries: Vec<(u64, Bytes)>) -> bool {
        self.load_continuing(topic, epoch, None, next, entries)
    }

    /// As [`Feed::load`], for a shared log of `epoch` that continues the log of
    /// an earlier epoch through an offset (`continues: (earlier epoch, offset)`):
    /// it holds that log's entries up to there, as they were. Subscribers and
    /// ids of the earlier epoch at or before that offset go on in this one
    /// without a reset; those beyond it get one.
    ///
    /// A backplane uses it when the store of a shared log changed (a failover
    /// to a replica that may lack the last entries the old primary gave out):
    /// new entries then get the new epoch, never an id that may have been given
    /// out already for another event.
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use ssekit::hub::backplane::Feed;
    ///
    /// /// The new primary holds offsets 1..=40 of epoch `old` and appended 41
    /// /// under `new`: ids of `old` up to 40 resume here, later ones reset.
    /// fn after_failover(feed: &Feed, topic: &str, old: u64, new: u64, entries: Vec<(u64, Bytes)>) {
    ///     feed.load_continuing(topic, new, Some((old, 40)), 41, entries);
    /// }
    /// ```
    pub fn load_continuing(
        &self,
        topic: &str,
        epoch: u64,
        continues: Option<(u64, u64)>,
        next: u64,
        entries: Vec<(u64, Bytes)>,
    ) -> bool {
        let Some(topic) = self.hub.upgrade().and_then(|hub| hub.registry.get(topic)) else {
            return false;
        };
        let frames = seal_all(epoch, entries);
        let now = Instant::now();
        let mut state = topic.write();
        state.epoch = epoch;
        state.continues = continues.map(|(epoch, through)| Continues { epoch, through });
        state.log.restart(frames.first().map_or(next, |(offset, _)| *offset));
        for (offset, frame) in frames {
            state.log.append_at(offset, frame, now);
        }
        state.ready = true;
        drop(state);
        topic.wake();
        true
    }

    /// Appends `entries` (offset and body, in offset order) of the shared log of
    /// `epoch` to the local log of `topic`: an offset already held is skipped,
    /// one past a hole restarts the log there.
    pub fn append(&self, topic: &str, epoch: u64, entries: Vec<(u64, Bytes)>) -> Appended {
        let Some(topic) = self.hub.upgrade().and_then(|hub| hub.registry.get(topic)) else {
            return Appended::NotHeld;
        };
        if entries.is_empty() {
            return Appended::Done;
        }
        let frames = seal_all(epoch, entries);
        let now = Instant::now();
        let mut state = topic.write();
        if !state.ready || state.epoch != epoch {
            return Appended::OtherEpoch;
        }
        for (offset, frame) in frames {
            state.log.append_at(offset, frame, now);
        }
        drop(state);
        topic.wake();
        Appended::Done
    }
}

/// Finishes each body with its id, outside any lock.
fn seal_all(epoch: u64, entries: Vec<(u64, Bytes)>) -> Vec<(u64, Bytes)> {
    entries.into_iter().map(|(offset, body)| (offset, seal_copy(&body, EventId::new(epoch, offset)))).collect()
}

impl fmt::Debug for Feed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Feed").field("attached", &(self.hub.strong_count() > 0)).finish()
    }
}
