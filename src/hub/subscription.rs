//! [`Subscription`]: one subscriber's cursor into a topic's log.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use tokio::sync::futures::OwnedNotified;

use super::{EventId, LagPolicy, Read, ResetReason, Shared, SubscribeError, Topic};
use crate::Resume;

/// Largest chunk a subscription yields when several frames are ready; one frame
/// larger than this is yielded whole.
const MAX_BATCH: usize = 64 * 1024;

pin_project_lite::pin_project! {
    /// One subscriber of a topic: a [`Stream`] of byte chunks to write to its
    /// connection, each one or more complete event frames.
    ///
    /// It yields, in order: a `reset` frame if the resume was impossible, the
    /// replayed events, then live events as they are published (several ready
    /// frames in one chunk). It ends when the hub closes (after the hub's final
    /// event, if any) or, under [`LagPolicy::Disconnect`], when it falls behind.
    /// Dropping it unsubscribes at once.
    ///
    /// Wrap it with [`Sse`](crate::Sse) (or use [`Hub::sse`](crate::Hub::sse))
    /// for keep-alive and the retry hint.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use futures_util::StreamExt;
    ///
    /// let hub = ssekit::Hub::new();
    /// let mut subscription = hub.subscribe("news", ssekit::Resume::Live)?
    ///     .on_close(|| println!("client left"));
    /// hub.publish("news", ssekit::Event::new().data("a"))?;
    /// hub.publish("news", ssekit::Event::new().data("b"))?;
    /// let chunk = subscription.next().await.unwrap(); // both frames, one chunk
    /// assert_eq!(chunk.windows(5).filter(|w| w == b"data:").count(), 2);
    /// # Ok(()) }
    /// ```
    pub struct Subscription {
        hub: Arc<Shared>,
        topic: Arc<Topic>,
        // The offset of the next frame to yield.
        cursor: u64,
        pending: Option<Bytes>,
        done: bool,
        on_close: Option<Box<dyn FnOnce() + Send + Sync>>,
        // Created before every read of the log that may find nothing new, so a
        // publish in between is never missed. Boxed once, refilled in place.
        notified: Pin<Box<OwnedNotified>>,
    }

    impl PinnedDrop for Subscription {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            this.hub.counters.subscribers.fetch_sub(1, Relaxed);
            if this.topic.remove_subscriber() {
                this.hub.release(this.topic);
            }
            if let Some(on_close) = this.on_close.take() {
                on_close();
            }
        }
    }
}

impl Subscription {
    pub(super) fn new(hub: Arc<Shared>, name: &str, resume: Resume) -> Result<Self, SubscribeError> {
        if hub.shutdown.is_triggered() {
            return Err(SubscribeError::Closed);
        }
        let topic = hub.topic_with(name, Topic::add_subscriber)?;
        hub.counters.subscribers.fetch_add(1, Relaxed);
        let notified = Box::pin(topic.notified());
        let (cursor, reset) = {
            let state = topic.read();
            start(&state.log, topic.epoch, resume)
        };
        let pending = reset.map(|reason| hub.reset_frame(&topic, reason, cursor - 1));
        Ok(Self { hub, topic, cursor, pending, done: false, on_close: None, notified })
    }

    /// Runs `on_close` when the subscription is dropped: when its client left or
    /// its stream ended.
    ///
    /// # Examples
    ///
    /// ```
    /// let hub = ssekit::Hub::new();
    /// let subscription = hub.subscribe("news", ssekit::Resume::Live)?.on_close(|| println!("left"));
    /// drop(subscription); // prints "left"
    /// # Ok::<(), ssekit::SubscribeError>(())
    /// ```
    pub fn on_close(mut self, on_close: impl FnOnce() + Send + Sync + 'static) -> Self {
        self.on_close = Some(Box::new(on_close));
        self
    }

    /// The topic followed.
    pub fn topic(&self) -> &str {
        &self.topic.name
    }

    /// The id of the last event yielded or skipped by a reset: a client that
    /// saw everything so far resumes from here.
    pub fn position(&self) -> EventId {
        EventId::new(self.topic.epoch, self.cursor - 1)
    }
}

/// Where a subscription starts in `log`, and why it must reset if it must.
fn start(log: &super::log::Log, epoch: u64, resume: Resume) -> (u64, Option<ResetReason>) {
    let live = log.next();
    let id = match resume {
        Resume::Live => return (live, None),
        Resume::Invalid(_) => return (live, Some(ResetReason::Malformed)),
        Resume::After(id) => match id.as_str().parse::<EventId>() {
            Ok(id) => id,
            Err(_) => return (live, Some(ResetReason::Malformed)),
        },
    };
    if id.epoch() != epoch {
        (live, Some(ResetReason::UnknownEpoch))
    } else if id.offset() >= live {
        (live, Some(ResetReason::Future))
    } else if id.offset() + 1 < log.first() {
        (live, Some(ResetReason::Evicted))
    } else {
        (id.offset() + 1, None)
    }
}

impl Stream for Subscription {
    type Item = Bytes;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let this = self.project();
        loop {
            if let Some(frame) = this.pending.take() {
                return Poll::Ready(Some(frame));
            }
            if *this.done {
                return Poll::Ready(None);
            }
            if this.hub.shutdown.is_triggered() {
                *this.done = true;
                *this.pending = this.hub.final_frame.get().cloned();
                continue;
            }
            let read = this.topic.read().log.read(*this.cursor, MAX_BATCH);
            match read {
                Read::Frames(chunk, next) => {
                    *this.cursor = next;
                    return Poll::Ready(Some(chunk));
                }
                Read::Evicted(first) => match this.hub.config.lag_policy {
                    LagPolicy::Reset => {
                        *this.pending = Some(this.hub.reset_frame(this.topic, ResetReason::Lagged, first - 1));
                        *this.cursor = first;
                    }
                    LagPolicy::Disconnect => {
                        this.hub.counters.lag_disconnects.fetch_add(1, Relaxed);
                        *this.done = true;
                    }
                },
                Read::UpToDate => match this.notified.as_mut().poll(cx) {
                    Poll::Ready(()) => this.notified.set(this.topic.notified()),
                    Poll::Pending => return Poll::Pending,
                },
            }
        }
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("topic", &self.topic.name)
            .field("position", &self.position())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}
