//! Counters of a hub, read as a [`HubMetrics`] snapshot.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::reset::ResetReason;

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) subscribers: AtomicU64,
    pub(crate) published: AtomicU64,
    pub(crate) resumes_exact: AtomicU64,
    resets: [AtomicU64; ResetReason::ALL.len()],
    disconnects: [AtomicU64; Disconnect::ALL.len()],
}

/// Why a subscription ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disconnect {
    /// Dropped while still open: its client left.
    Client,
    /// The hub closed.
    Closed,
    /// Its connection reached its maximum lifetime.
    Lifetime,
    /// It fell behind the log under [`LagPolicy::Disconnect`](crate::LagPolicy::Disconnect).
    Lagged,
    /// Its client took nothing for the stall timeout while data waited, and its
    /// connection was dropped.
    Stalled,
}

impl Disconnect {
    const ALL: [Self; 5] = [Self::Client, Self::Closed, Self::Lifetime, Self::Lagged, Self::Stalled];
}

impl Counters {
    pub(crate) fn reset(&self, reason: ResetReason) {
        self.resets[reason as usize].fetch_add(1, Relaxed);
    }

    pub(crate) fn disconnect(&self, reason: Disconnect) {
        self.disconnects[reason as usize].fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self, topics: usize, retained_bytes: usize) -> HubMetrics {
        let resets = |reason: ResetReason| self.resets[reason as usize].load(Relaxed);
        let disconnects = |reason: Disconnect| self.disconnects[reason as usize].load(Relaxed);
        HubMetrics {
            topics,
            retained_bytes,
            subscribers: self.subscribers.load(Relaxed),
            published: self.published.load(Relaxed),
            resumes_exact: self.resumes_exact.load(Relaxed),
            resets_evicted: resets(ResetReason::Evicted),
            resets_epoch: resets(ResetReason::UnknownEpoch),
            resets_malformed: resets(ResetReason::Malformed),
            resets_future: resets(ResetReason::Future),
            resets_lagged: resets(ResetReason::Lagged),
            disconnects_client: disconnects(Disconnect::Client),
            disconnects_closed: disconnects(Disconnect::Closed),
            disconnects_lifetime: disconnects(Disconnect::Lifetime),
            disconnects_lagged: disconnects(Disconnect::Lagged),
            disconnects_stalled: disconnects(Disconnect::Stalled),
        }
    }
}

/// A snapshot of a hub's counters, from [`Hub::metrics`](crate::Hub::metrics).
///
/// # Examples
///
/// ```
/// let hub = ssekit::Hub::new();
/// let id = hub.try_publish("news", ssekit::Event::new().data("x"))?;
/// let metrics = hub.metrics();
/// assert_eq!((metrics.topics, metrics.published, metrics.subscribers), (1, 1, 0));
/// assert_eq!(metrics.retained_bytes, format!("data: x\nid: {id}\n\n").len());
/// # Ok::<(), ssekit::PublishError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct HubMetrics {
    /// Topics held now.
    pub topics: usize,
    /// Bytes of encoded frames the topics' logs hold now: the memory the hub
    /// retains for fan-out and resume, at most [`HubBuilder::max_bytes`] per
    /// topic. Subscribers add nothing to it; a frame a connection is still
    /// writing stays alive (shared, not copied) until written.
    ///
    /// [`HubBuilder::max_bytes`]: crate::HubBuilder::max_bytes
    pub retained_bytes: usize,
    /// Subscriptions open now, over all topics.
    pub subscribers: u64,
    /// Events published since the hub started.
    pub published: u64,
    /// Subscriptions that resumed exactly after the client's `Last-Event-ID`:
    /// everything after it was still in the log and was replayed.
    pub resumes_exact: u64,
    /// Resumes refused because the id was evicted from the log.
    pub resets_evicted: u64,
    /// Resumes refused because the id is of another epoch.
    pub resets_epoch: u64,
    /// Resumes refused because the id is malformed.
    pub resets_malformed: u64,
    /// Resumes refused because the id is ahead of the log.
    pub resets_future: u64,
    /// Subscribers that fell behind the log and were reset.
    pub resets_lagged: u64,
    /// Subscriptions dropped while still open: their client left (or the server
    /// dropped the response for a reason of its own).
    pub disconnects_client: u64,
    /// Subscriptions ended by [`Hub::close`](crate::Hub::close).
    pub disconnects_closed: u64,
    /// Streams of [`Hub::sse`](crate::Hub::sse) (or [`Sse`](crate::Sse) over a
    /// subscription) ended by their maximum lifetime, so that the client
    /// reconnects.
    pub disconnects_lifetime: u64,
    /// Subscribers that fell behind the log and were disconnected
    /// ([`LagPolicy::Disconnect`](crate::LagPolicy::Disconnect)).
    pub disconnects_lagged: u64,
    /// Streams of [`Hub::sse`](crate::Hub::sse) (or [`Sse`](crate::Sse) over a
    /// subscription) dropped after their client took nothing for
    /// [`SseConfig::stall_timeout`](crate::SseConfig::stall_timeout) while data
    /// waited: a client that stopped reading, let go by the server (see
    /// [`set_stall_timeout`](crate::set_stall_timeout)).
    pub disconnects_stalled: u64,
}
