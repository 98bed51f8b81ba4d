//! Counters of a hub, read as a [`HubMetrics`] snapshot.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::ResetReason;

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) subscribers: AtomicU64,
    pub(crate) published: AtomicU64,
    pub(crate) lag_disconnects: AtomicU64,
    resets: [AtomicU64; ResetReason::ALL.len()],
}

impl Counters {
    pub(crate) fn reset(&self, reason: ResetReason) {
        self.resets[reason as usize].fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self, topics: usize, retained_bytes: usize) -> HubMetrics {
        let resets = |reason: ResetReason| self.resets[reason as usize].load(Relaxed);
        HubMetrics {
            topics,
            retained_bytes,
            subscribers: self.subscribers.load(Relaxed),
            published: self.published.load(Relaxed),
            resets_evicted: resets(ResetReason::Evicted),
            resets_epoch: resets(ResetReason::UnknownEpoch),
            resets_malformed: resets(ResetReason::Malformed),
            resets_future: resets(ResetReason::Future),
            resets_lagged: resets(ResetReason::Lagged),
            lag_disconnects: self.lag_disconnects.load(Relaxed),
        }
    }
}

/// A snapshot of a hub's counters, from [`Hub::metrics`](crate::Hub::metrics).
///
/// # Examples
///
/// ```
/// let hub = ssekit::Hub::new();
/// let id = hub.publish("news", ssekit::Event::new().data("x"))?;
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
    /// Subscribers that fell behind the log and were disconnected.
    pub lag_disconnects: u64,
}
