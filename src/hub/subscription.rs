//! [`Subscription`]: one subscriber's cursor into a topic's log.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;

use super::recent::{self, Chunk, Place};
use super::topic::State;
use super::wakers::Registration;
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
        // Where to start, until the topic's log is ready (replica topics load
        // their log first).
        start: Option<Resume>,
        // The epoch and offset of the next frame to yield.
        epoch: u64,
        cursor: u64,
        // The topic's version at which this subscriber last found nothing new
        // (`u64::MAX`: not yet); while it holds, the log need not be locked.
        seen: u64,
        pending: Option<Bytes>,
        done: bool,
        on_close: Option<Box<dyn FnOnce() + Send + Sync>>,
        // This subscriber's waker in the topic's set, kept from the first poll on
        // and refreshed before every read of the log, so a publish after the read
        // always wakes it.
        registration: Option<Registration>,
    }

    impl PinnedDrop for Subscription {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(registration) = this.registration.take() {
                this.topic.wakers.unregister(registration);
            }
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
        let mut subscription = Self {
            hub,
            topic,
            start: Some(resume),
            epoch: 0,
            cursor: 1,
            seen: u64::MAX,
            pending: None,
            done: false,
            on_close: None,
            registration: None,
        };
        // Pick the start now when the log is ready, so that "live" means from the
        // moment of subscribing, not of the first poll.
        let state = subscription.topic.read();
        let next = Next::of(&state, &mut subscription.start, subscription.epoch, subscription.cursor);
        drop(state);
        if let Next::Start { epoch, cursor, reset } = next {
            subscription.begin(epoch, cursor, reset);
        }
        Ok(subscription)
    }

    /// Waits until the topic's log is loaded and the start is picked (at once on
    /// a local hub; a replica topic loads from the shared log first).
    #[cfg(feature = "redis")]
    pub(crate) async fn started(&mut self) {
        std::future::poll_fn(|cx| {
            self.topic.wakers.register(&mut self.registration, cx.waker());
            if self.start.is_none() || self.hub.shutdown.is_triggered() {
                return Poll::Ready(());
            }
            let next = Next::of(&self.topic.read(), &mut self.start, self.epoch, self.cursor);
            match next {
                Next::Start { epoch, cursor, reset } => {
                    self.begin(epoch, cursor, reset);
                    Poll::Ready(())
                }
                _ => Poll::Pending,
            }
        })
        .await;
    }

    fn begin(&mut self, epoch: u64, cursor: u64, reset: Option<ResetReason>) {
        (self.epoch, self.cursor) = (epoch, cursor);
        self.pending = reset.map(|reason| self.hub.reset_frame(&self.topic, reason, self.position()));
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
        EventId::new(self.epoch, self.cursor - 1)
    }
}

/// What a subscription does next, decided under the topic's read lock and
/// carried out after it is released (a reset runs the application's closure).
enum Next {
    /// The log is not loaded yet: wait.
    Wait,
    /// Start at `cursor` of `epoch`, after a reset if one is given.
    Start { epoch: u64, cursor: u64, reset: Option<ResetReason> },
    /// Frames, the cursor after them, and whether that is the end of the log.
    Frames(Chunk),
    /// Nothing new.
    UpToDate,
    /// Frames the subscriber had not read are gone; the oldest retained is given.
    Lagged(u64),
}

impl Next {
    fn of(state: &State, start: &mut Option<Resume>, epoch: u64, cursor: u64) -> Self {
        if !state.ready {
            return Self::Wait;
        }
        if let Some(resume) = start.take() {
            let (cursor, reset) = self::start(&state.log, state.epoch, resume);
            return Self::Start { epoch: state.epoch, cursor, reset };
        }
        if state.epoch != epoch && epoch == 0 && cursor == 1 {
            // A replica topic that had no shared log yet got its first one:
            // nothing was missed, so follow it without a reset.
            return Self::Start { epoch: state.epoch, cursor, reset: None };
        }
        if state.epoch != epoch {
            // The shared log was replaced (a flushed Redis): continue in the new one.
            let first = state.log.first();
            return Self::Start { epoch: state.epoch, cursor: first, reset: Some(ResetReason::UnknownEpoch) };
        }
        match state.log.read(cursor, MAX_BATCH) {
            Read::Frames(frames, next) => Self::Frames(Chunk { frames, next, caught_up: next == state.log.next() }),
            Read::UpToDate => Self::UpToDate,
            Read::Evicted(first) => Self::Lagged(first),
        }
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
        // Before anything that may find nothing to do: see `Wakers::register`.
        this.topic.wakers.register(this.registration, cx.waker());
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
            let version = this.topic.version();
            let place = Place { topic: this.topic.id, version, epoch: *this.epoch, cursor: *this.cursor };
            let next = if version == *this.seen {
                Next::UpToDate
            } else if let Some(chunk) = this.start.is_none().then(|| recent::get(place)).flatten() {
                Next::Frames(chunk)
            } else {
                let next = Next::of(&this.topic.read(), this.start, *this.epoch, *this.cursor);
                match next {
                    Next::Frames(chunk) => Next::Frames(recent::put(place, chunk)),
                    next => next,
                }
            };
            match next {
                Next::Frames(Chunk { frames, next, caught_up }) => {
                    *this.cursor = next;
                    if caught_up {
                        *this.seen = version;
                    }
                    return Poll::Ready(Some(frames));
                }
                Next::Start { epoch, cursor, reset } => {
                    (*this.epoch, *this.cursor) = (epoch, cursor);
                    *this.pending =
                        reset.map(|reason| this.hub.reset_frame(this.topic, reason, EventId::new(epoch, cursor - 1)));
                }
                Next::Lagged(first) => match this.hub.config.lag_policy {
                    LagPolicy::Reset => {
                        *this.cursor = first;
                        let after = EventId::new(*this.epoch, first - 1);
                        *this.pending = Some(this.hub.reset_frame(this.topic, ResetReason::Lagged, after));
                    }
                    LagPolicy::Disconnect => {
                        this.hub.counters.lag_disconnects.fetch_add(1, Relaxed);
                        *this.done = true;
                    }
                },
                Next::UpToDate => {
                    *this.seen = version;
                    return Poll::Pending;
                }
                Next::Wait => return Poll::Pending,
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
