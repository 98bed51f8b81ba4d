//! [`Subscription`]: one subscriber's cursor into a topic's log.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;

use super::Shared;
use super::error::SubscribeError;
use super::event_id::EventId;
use super::log::{Log, MAX_BATCH, Read};
use super::metrics::Disconnect;
use super::recent::{self, Chunk, Place};
use super::reset::{LagPolicy, ResetReason};
use super::topic::{State, Topic};
use super::wakers::Registration;
use crate::wire::last_event_id::Resume;

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
    /// let mut subscription = hub.subscribe("news", ssekit::Resume::Live).await?
    ///     .on_close(|| println!("client left"));
    /// hub.publish("news", ssekit::Event::new().data("a")).await?;
    /// hub.publish("news", ssekit::Event::new().data("b")).await?;
    /// let chunk = subscription.next().await.unwrap(); // both frames, one chunk
    /// assert_eq!(chunk.windows(5).filter(|w| w == b"data:").count(), 2);
    /// # Ok(()) }
    /// ```
    pub struct Subscription {
        hub: Arc<Shared>,
        topic: Arc<Topic>,
        // Where to start, until the topic's log is ready (a topic fed by a
        // backplane is loaded first).
        start: Option<Resume>,
        // The epoch and offset of the next frame to yield.
        epoch: u64,
        cursor: u64,
        // The topic's version at which this subscriber last found nothing new
        // (`u64::MAX`: not yet); while it holds, the log need not be locked.
        seen: u64,
        pending: Option<Bytes>,
        // Why the stream ended, once it has (counted then).
        end: Option<Disconnect>,
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
            if this.end.is_none() {
                // Never polled since the hub closed, or dropped by its client.
                let closed = this.hub.shutdown.is_triggered();
                this.hub.counters.disconnect(if closed { Disconnect::Closed } else { Disconnect::Client });
            }
            if this.topic.remove_subscriber() {
                this.hub.registry.release(this.topic);
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
            end: None,
            on_close: None,
            registration: None,
        };
        // Pick the start now when the log is ready, so that "live" means from the
        // moment of subscribing, not of the first poll.
        let state = subscription.topic.read();
        let next = Next::of(&state, &mut subscription.start, subscription.epoch, subscription.cursor);
        drop(state);
        if let Next::Start { epoch, cursor, begin } = next {
            subscription.begin(epoch, cursor, begin);
        }
        Ok(subscription)
    }

    /// Waits until the topic's log is loaded and the start is picked (at once on
    /// a hub without a backplane).
    pub(super) async fn started(&mut self) {
        std::future::poll_fn(|cx| {
            self.topic.wakers.register(&mut self.registration, cx.waker());
            if self.start.is_none() || self.hub.shutdown.is_triggered() {
                return Poll::Ready(());
            }
            let next = Next::of(&self.topic.read(), &mut self.start, self.epoch, self.cursor);
            match next {
                Next::Start { epoch, cursor, begin } => {
                    self.begin(epoch, cursor, begin);
                    Poll::Ready(())
                }
                _ => Poll::Pending,
            }
        })
        .await;
    }

    /// Starts at `cursor` of `epoch`, as `begin` says.
    fn begin(&mut self, epoch: u64, cursor: u64, begin: Begin) {
        (self.epoch, self.cursor) = (epoch, cursor);
        match begin {
            Begin::Live => {}
            Begin::Exact => {
                self.hub.counters.resumes_exact.fetch_add(1, Relaxed);
            }
            Begin::Reset(reason) => self.pending = Some(self.hub.reset_frame(&self.topic, reason, self.position())),
        }
    }

    /// Ends the stream for `reason`, counted once.
    fn end(&mut self, reason: Disconnect) {
        if self.end.is_none() {
            self.end = Some(reason);
            self.hub.counters.disconnect(reason);
        }
    }

    /// Its connection reached its maximum lifetime: counted as such, not as a
    /// client that left.
    pub(crate) fn lifetime_over(&mut self) {
        self.end(Disconnect::Lifetime);
    }

    /// Runs `on_close` when the subscription is dropped: when its client left or
    /// its stream ended.
    ///
    /// # Examples
    ///
    /// ```
    /// let hub = ssekit::Hub::new();
    /// let subscription = hub.try_subscribe("news", ssekit::Resume::Live)?.on_close(|| println!("left"));
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
    /// Start at `cursor` of `epoch`, as `begin` says.
    Start { epoch: u64, cursor: u64, begin: Begin },
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
            let (cursor, begin) = self::start(&state.log, state.epoch, resume);
            return Self::Start { epoch: state.epoch, cursor, begin };
        }
        if state.epoch != epoch && epoch == 0 && cursor == 1 {
            // A fed topic that had no shared log yet got its first one:
            // nothing was missed, so follow it without a reset.
            return Self::Start { epoch: state.epoch, cursor, begin: Begin::Live };
        }
        if state.epoch != epoch {
            // The shared log was replaced (a flushed Redis): continue in the new one.
            let first = state.log.first();
            return Self::Start { epoch: state.epoch, cursor: first, begin: Begin::Reset(ResetReason::UnknownEpoch) };
        }
        match state.log.read(cursor, MAX_BATCH) {
            Read::Frames(frames, next) => Self::Frames(Chunk { frames, next, caught_up: next == state.log.next() }),
            Read::UpToDate => Self::UpToDate,
            // Continue after the events older than the age limit too, as a resume would.
            Read::Evicted(_) => Self::Lagged(state.log.first_fresh()),
        }
    }
}

/// How a subscription begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Begin {
    /// With live events (or, for a fed topic, with the first shared log).
    Live,
    /// With the events after the client's id: an exact resume.
    Exact,
    /// With a `reset` event, then live events.
    Reset(ResetReason),
}

/// Where a subscription starts in `log`, and how.
fn start(log: &Log, epoch: u64, resume: Resume) -> (u64, Begin) {
    let live = log.next();
    let id = match resume {
        Resume::Live => return (live, Begin::Live),
        Resume::Invalid(_) => return (live, Begin::Reset(ResetReason::Malformed)),
        Resume::After(id) => match id.as_str().parse::<EventId>() {
            Ok(id) => id,
            Err(_) => return (live, Begin::Reset(ResetReason::Malformed)),
        },
    };
    if id.epoch() != epoch {
        (live, Begin::Reset(ResetReason::UnknownEpoch))
    } else if id.offset() >= live {
        (live, Begin::Reset(ResetReason::Future))
    } else if id.offset() + 1 < log.first_fresh() {
        (live, Begin::Reset(ResetReason::Evicted))
    } else {
        (id.offset() + 1, Begin::Exact)
    }
}

impl Stream for Subscription {
    type Item = Bytes;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        // No field is pinned: the subscription is `Unpin`.
        let this = self.get_mut();
        // Before anything that may find nothing to do: see `Wakers::register`.
        this.topic.wakers.register(&mut this.registration, cx.waker());
        loop {
            if let Some(frame) = this.pending.take() {
                return Poll::Ready(Some(frame));
            }
            if this.end.is_some() {
                return Poll::Ready(None);
            }
            if this.hub.shutdown.is_triggered() {
                this.end(Disconnect::Closed);
                this.pending = this.hub.final_frame.get().cloned();
                continue;
            }
            let version = this.topic.version();
            let place = Place { topic: this.topic.id, version, epoch: this.epoch, cursor: this.cursor };
            let next = if version == this.seen {
                Next::UpToDate
            } else if let Some(chunk) = this.start.is_none().then(|| recent::get(place)).flatten() {
                Next::Frames(chunk)
            } else {
                let next = Next::of(&this.topic.read(), &mut this.start, this.epoch, this.cursor);
                match next {
                    Next::Frames(chunk) => Next::Frames(recent::put(place, chunk)),
                    next => next,
                }
            };
            match next {
                Next::Frames(Chunk { frames, next, caught_up }) => {
                    this.cursor = next;
                    if caught_up {
                        this.seen = version;
                    }
                    return Poll::Ready(Some(frames));
                }
                Next::Start { epoch, cursor, begin } => this.begin(epoch, cursor, begin),
                Next::Lagged(first) => match this.hub.config.lag_policy {
                    LagPolicy::Reset => this.begin(this.epoch, first, Begin::Reset(ResetReason::Lagged)),
                    LagPolicy::Disconnect => this.end(Disconnect::Lagged),
                },
                Next::UpToDate => {
                    this.seen = version;
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
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}
