//! [`Sse`]: the response stream of one connection, over a hub [`Subscription`]
//! or any stream of events.
//!
//! It adds what every SSE response needs around its events: a `retry:` hint
//! first (optionally jittered), a keep-alive comment after an idle interval, an
//! optional maximum lifetime, and an end on shutdown. It yields `Bytes` chunks
//! ready to write; the framework adapters only convert it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use tokio::sync::futures::OwnedNotified;
use tokio::time::{Instant, Sleep};

use crate::hub::Subscription;
use crate::{Event, Frame, Shutdown};

/// The error type of streams: whatever the source's error was, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The keep-alive frame: a comment, ignored by clients.
const KEEP_ALIVE: &[u8] = b":\n\n";

/// Largest chunk that gathers several frames ready together ([`Events`], or a
/// hub [`Subscription`]); one frame larger than this is sent whole.
///
/// Such a chunk is a copy made for one connection, and a connection whose
/// client stopped reading keeps the chunk it was writing: this bounds that copy.
/// (A single frame is sent as is, shared with the log.) Large enough that a
/// catching-up client still gets many frames per write.
pub(crate) const MAX_BATCH: usize = 16 * 1024;

/// Keep-alive, retry hint and lifetime of a [`Sse`] stream.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let config = ssekit::SseConfig::new()
///     .keep_alive(Some(Duration::from_secs(30)))
///     .retry(Duration::from_secs(3))
///     .retry_jitter(Duration::from_secs(2))
///     .max_lifetime(Duration::from_secs(3600), Duration::from_secs(300));
/// ```
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseConfig {
    keep_alive: Option<Duration>,
    retry: Option<Duration>,
    retry_jitter: Duration,
    max_lifetime: Option<(Duration, Duration)>,
}

impl SseConfig {
    /// Keep-alive after 15 s idle; no retry hint; no lifetime limit.
    pub fn new() -> Self {
        Self {
            keep_alive: Some(Duration::from_secs(15)),
            retry: None,
            retry_jitter: Duration::ZERO,
            max_lifetime: None,
        }
    }

    /// Sends a comment after `interval` without data (`None`: never). Proxies
    /// close connections idle for too long; 15 s suits most.
    pub fn keep_alive(mut self, interval: Option<Duration>) -> Self {
        self.keep_alive = interval.filter(|i| !i.is_zero());
        self
    }

    /// Sends `retry:` first, so a client that loses the connection waits `delay`
    /// before reconnecting (browsers default to a few seconds).
    pub fn retry(mut self, delay: Duration) -> Self {
        self.retry = Some(delay);
        self
    }

    /// Adds a random part in `[0, jitter]` to the retry hint of each connection,
    /// spreading the reconnects after a restart.
    pub fn retry_jitter(mut self, jitter: Duration) -> Self {
        self.retry_jitter = jitter;
        self
    }

    /// Ends the stream after `lifetime` plus a random part in `[0, jitter]`, so
    /// the client reconnects (resuming without loss) and load rebalances.
    pub fn max_lifetime(mut self, lifetime: Duration, jitter: Duration) -> Self {
        self.max_lifetime = Some((lifetime, jitter));
        self
    }
}

impl Default for SseConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// Anything a [`Sse`] stream can send: an [`Event`] (encoded on the way), a
/// [`Frame`], or a `Result` of either, whose error ends the stream.
pub trait IntoFrame {
    /// The encoded frame.
    ///
    /// # Errors
    ///
    /// The item's own error, or the [`EventError`](crate::EventError) of an
    /// event that breaks a wire rule.
    fn into_frame(self) -> Result<Frame, BoxError>;
}

impl IntoFrame for Event {
    fn into_frame(self) -> Result<Frame, BoxError> {
        Ok(self.encode()?)
    }
}

impl IntoFrame for Frame {
    fn into_frame(self) -> Result<Frame, BoxError> {
        Ok(self)
    }
}

impl<T: IntoFrame, E: Into<BoxError>> IntoFrame for Result<T, E> {
    fn into_frame(self) -> Result<Frame, BoxError> {
        self.map_err(Into::into)?.into_frame()
    }
}

mod sealed {
    #[allow(unreachable_pub)]
    pub trait Sealed {}
}

/// What a [`Sse`] stream sends: a hub [`Subscription`] or [`Events`].
pub trait Source: sealed::Sealed {
    /// The next chunk of complete frames.
    #[doc(hidden)]
    fn poll_chunk(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BoxError>>>;

    /// The stream is ending at its maximum lifetime.
    #[doc(hidden)]
    fn lifetime_over(self: Pin<&mut Self>) {}

    /// A frame taken from the underlying stream but not sent yet, to send before
    /// the stream ends.
    #[doc(hidden)]
    fn take_held(self: Pin<&mut Self>) -> Option<Bytes> {
        None
    }
}

impl sealed::Sealed for Subscription {}

impl Source for Subscription {
    #[inline]
    fn poll_chunk(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BoxError>>> {
        self.poll_next(cx).map(|chunk| chunk.map(Ok))
    }

    fn lifetime_over(self: Pin<&mut Self>) {
        self.get_mut().lifetime_over();
    }
}

pin_project_lite::pin_project! {
    /// Any stream of [`IntoFrame`] items as a [`Source`]: items that are ready
    /// together are sent as one chunk.
    pub struct Events<S> {
        #[pin]
        stream: S,
        // A frame that did not fit in the last chunk: the first of the next.
        next: Option<Bytes>,
        error: Option<BoxError>,
        done: bool,
    }
}

impl<S> sealed::Sealed for Events<S> {}

impl<S> Source for Events<S>
where
    S: Stream,
    S::Item: IntoFrame,
{
    fn poll_chunk(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BoxError>>> {
        let mut this = self.project();
        let first = match this.next.take() {
            Some(frame) => frame,
            None => {
                if let Some(error) = this.error.take() {
                    return Poll::Ready(Some(Err(error)));
                }
                if *this.done {
                    return Poll::Ready(None);
                }
                match this.stream.as_mut().poll_next(cx) {
                    Poll::Ready(Some(item)) => item.into_frame()?.into_bytes(),
                    Poll::Ready(None) => {
                        *this.done = true;
                        return Poll::Ready(None);
                    }
                    Poll::Pending => return Poll::Pending,
                }
            }
        };
        let mut batch: Option<BytesMut> = None;
        while !*this.done && this.error.is_none() {
            match this.stream.as_mut().poll_next(cx) {
                Poll::Ready(Some(item)) => match item.into_frame() {
                    Ok(frame) => {
                        let len = batch.as_ref().map_or(first.len(), BytesMut::len);
                        if len + frame.as_ref().len() > MAX_BATCH {
                            *this.next = Some(frame.into_bytes());
                            break;
                        }
                        batch.get_or_insert_with(|| BytesMut::from(&first[..])).extend_from_slice(frame.as_ref())
                    }
                    Err(error) => {
                        *this.error = Some(error);
                        break;
                    }
                },
                Poll::Ready(None) => {
                    *this.done = true;
                    break;
                }
                Poll::Pending => break,
            }
        }
        Poll::Ready(Some(Ok(batch.map_or(first, BytesMut::freeze))))
    }

    fn take_held(self: Pin<&mut Self>) -> Option<Bytes> {
        self.project().next.take()
    }
}

impl<S> fmt::Debug for Events<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events").field("done", &self.done).finish_non_exhaustive()
    }
}

pin_project_lite::pin_project! {
    /// The response stream of one SSE connection: `Bytes` chunks to write, in
    /// order — the retry hint, then the source's frames, with keep-alive comments
    /// while idle — ending when the source ends, the lifetime is over, or the
    /// shutdown signal fires.
    ///
    /// With the `hyper`, `axum` or `actix` feature it is also a response body or
    /// response of that framework.
    ///
    /// # Poll contract
    ///
    /// - `Ready(Some(Ok(chunk)))`: one or more complete frames or a keep-alive;
    /// - `Ready(Some(Err(e)))`: the source failed; the stream then ends;
    /// - `Ready(None)`: the stream is over; the client will reconnect;
    /// - `Pending`: nothing yet; the task is woken by the source, the timer or the
    ///   shutdown signal.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use futures_util::StreamExt;
    /// use ssekit::{Event, Sse, SseConfig};
    /// use std::time::Duration;
    ///
    /// let events = futures_util::stream::iter(["a", "b"]).map(|s| Event::new().data(s));
    /// let mut sse = Sse::new(events).with_config(SseConfig::new().retry(Duration::from_secs(1)));
    /// assert_eq!(sse.next().await.unwrap().unwrap(), "retry: 1000\n\n");
    /// assert_eq!(sse.next().await.unwrap().unwrap(), "data: a\n\ndata: b\n\n");
    /// assert!(sse.next().await.is_none());
    /// # }
    /// ```
    pub struct Sse<S> {
        #[pin]
        source: S,
        config: SseConfig,
        started: bool,
        done: bool,
        last_write: Option<Instant>,
        end_at: Option<Instant>,
        timer: Option<Pin<Box<Sleep>>>,
        // The waker the timer was last polled with: while it holds and the timer
        // is armed early enough, an idle poll need not touch the timer (nor the
        // clock).
        timer_waker: Option<Waker>,
        shutdown: Option<(Shutdown, Pin<Box<OwnedNotified>>)>,
    }
}

impl<S> Sse<Events<S>>
where
    S: Stream,
    S::Item: IntoFrame,
{
    /// The SSE stream of any stream of events, frames, or results of them.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use futures_util::StreamExt;
    /// use std::time::Duration;
    ///
    /// // The time every second, for as long as the client stays.
    /// let ticks = tokio_stream::wrappers::IntervalStream::new(tokio::time::interval(Duration::from_secs(1)));
    /// let sse = ssekit::Sse::new(ticks.map(|_| ssekit::Event::new().data(format!("{:?}", std::time::SystemTime::now()))));
    /// # }
    /// ```
    pub fn new(stream: S) -> Self {
        Self::from_source(Events { stream, next: None, error: None, done: false })
    }
}

/// A stream of no events, for [`Sse::try_later`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEvents;

impl Stream for NoEvents {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Event>> {
        Poll::Ready(None)
    }
}

impl Sse<Events<NoEvents>> {
    /// The answer to a client that should come back later (a closing or busy
    /// server): a `200` stream that sets the reconnection delay and ends.
    /// `EventSource` gives up for good on any other status, `503` included.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use futures_util::StreamExt;
    ///
    /// let mut sse = ssekit::Sse::try_later(std::time::Duration::from_secs(5));
    /// assert_eq!(sse.next().await.unwrap().unwrap(), "retry: 5000\n\n");
    /// assert!(sse.next().await.is_none());
    /// # }
    /// ```
    pub fn try_later(delay: Duration) -> Self {
        Self::new(NoEvents).with_config(SseConfig::new().retry(delay))
    }
}

/// The answer to a refused subscription, for the framework adapters: a
/// [`Sse::try_later`] stream when the refusal is temporary (a retry of 2 to 5 s,
/// spread so that the clients of a restarting server do not all come back at
/// once), `None` when the client should not retry.
#[cfg(any(feature = "axum", feature = "actix"))]
pub(crate) fn try_later(error: &crate::SubscribeError) -> Option<Sse<Events<NoEvents>>> {
    let config = SseConfig::new().retry(Duration::from_secs(2)).retry_jitter(Duration::from_secs(3));
    error.is_temporary().then(|| Sse::new(NoEvents).with_config(config))
}

impl Sse<Subscription> {
    /// The SSE stream of a hub subscription (see also [`Hub::sse`](crate::Hub::sse)).
    pub fn from_subscription(subscription: Subscription) -> Self {
        Self::from_source(subscription)
    }

    /// Runs `on_close` when the stream is dropped: when its client left or the
    /// stream ended (see [`Subscription::on_close`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let hub = ssekit::Hub::new();
    /// let sse = hub.sse("news", ssekit::Resume::Live)?.on_close(|| println!("client left"));
    /// drop(sse); // prints "client left"
    /// # Ok::<(), ssekit::SubscribeError>(())
    /// ```
    pub fn on_close(mut self, on_close: impl FnOnce() + Send + Sync + 'static) -> Self {
        self.source = self.source.on_close(on_close);
        self
    }
}

impl<S: Source> Sse<S> {
    fn from_source(source: S) -> Self {
        Self {
            source,
            config: SseConfig::new(),
            started: false,
            done: false,
            last_write: None,
            end_at: None,
            timer: None,
            timer_waker: None,
            shutdown: None,
        }
    }

    /// Replaces the keep-alive, retry and lifetime settings.
    pub fn with_config(mut self, config: SseConfig) -> Self {
        self.config = config;
        // An armed timer may be later than the new settings want: the next idle
        // poll checks it again.
        self.timer_waker = None;
        self
    }

    /// Ends the stream when `shutdown` fires (hub subscriptions already end
    /// when their hub closes).
    ///
    /// # Examples
    ///
    /// ```
    /// let hub = ssekit::Hub::new();
    /// let sse = ssekit::Sse::new(futures_util::stream::pending::<ssekit::Event>()).with_shutdown(hub.shutdown());
    /// ```
    pub fn with_shutdown(mut self, shutdown: Shutdown) -> Self {
        let notified = Box::pin(shutdown.notified());
        self.shutdown = Some((shutdown, notified));
        self
    }

    /// The source: the hub subscription or the event stream.
    pub fn get_ref(&self) -> &S {
        &self.source
    }
}

impl<S: Source> Stream for Sse<S> {
    type Item = Result<Bytes, BoxError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        if *this.done {
            // Whatever ended the stream, a frame the source already took from its
            // stream goes out last: it must not be lost.
            return Poll::Ready(this.source.take_held().map(Ok));
        }
        if !*this.started {
            let now = Instant::now();
            *this.started = true;
            *this.last_write = Some(now);
            // A lifetime past what an `Instant` holds is no limit.
            *this.end_at = this
                .config
                .max_lifetime
                .and_then(|(life, jitter)| now.checked_add(life.saturating_add(crate::random::jitter(jitter))));
            if let Some(retry) = this.config.retry {
                let retry = retry.saturating_add(crate::random::jitter(this.config.retry_jitter));
                return Poll::Ready(Some(Ok(crate::encode::retry_frame(retry))));
            }
        }
        if let Some((shutdown, notified)) = this.shutdown {
            if shutdown.is_triggered() || notified.as_mut().poll(cx).is_ready() {
                *this.done = true;
                return Poll::Ready(this.source.take_held().map(Ok));
            }
        }
        match this.source.as_mut().poll_chunk(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                // The clock is read once per chunk written, and not when idle.
                let now = Instant::now();
                *this.last_write = Some(now);
                // A source that is always ready must not outlive the lifetime:
                // this chunk is the last (but for a frame the source holds).
                if this.end_at.is_some_and(|end| end <= now) {
                    *this.done = true;
                    this.source.lifetime_over();
                }
                return Poll::Ready(Some(Ok(chunk)));
            }
            Poll::Ready(Some(Err(error))) => {
                *this.done = true;
                return Poll::Ready(Some(Err(error)));
            }
            Poll::Ready(None) => {
                *this.done = true;
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        // Idle: wait for the next keep-alive or the end of the lifetime. The timer
        // is moved only when it fires, not on every write.
        if this.config.keep_alive.is_none() && this.end_at.is_none() {
            return Poll::Pending;
        }
        if let (Some(timer), Some(waker)) = (this.timer.as_ref(), this.timer_waker.as_ref()) {
            // The timer is never later than it must fire: the loop below sets it
            // to the target (the keep-alive time or the end of the lifetime), and
            // the target only moves later, as data is written. So while it has
            // not fired and is set to wake this task, there is nothing to do.
            if !timer.is_elapsed() && waker.will_wake(cx.waker()) {
                return Poll::Pending;
            }
        }
        // An interval past what an `Instant` holds is never.
        let keep_alive_at = |last_write: &Option<Instant>, now: Instant| {
            this.config.keep_alive.and_then(|interval| last_write.unwrap_or(now).checked_add(interval))
        };
        let mut now = Instant::now();
        loop {
            // Timers fire at millisecond granularity: a deadline this close is due.
            let due = now + Duration::from_millis(1);
            if this.end_at.is_some_and(|end| end <= due) {
                *this.done = true;
                this.source.as_mut().lifetime_over();
                return Poll::Ready(this.source.take_held().map(Ok));
            }
            let keep_alive_at = keep_alive_at(this.last_write, now);
            if keep_alive_at.is_some_and(|at| at <= due) {
                *this.last_write = Some(now);
                return Poll::Ready(Some(Ok(Bytes::from_static(KEEP_ALIVE))));
            }
            let Some(target) = earliest(keep_alive_at, *this.end_at) else {
                return Poll::Pending;
            };
            match this.timer {
                None => *this.timer = Some(Box::pin(tokio::time::sleep_until(target))),
                Some(timer) if timer.is_elapsed() || timer.deadline() > target => timer.as_mut().reset(target),
                Some(_) => {}
            }
            let timer = this.timer.as_mut().expect("armed above");
            // A task out of its coop budget gets `Pending` from the timer without
            // the timer registering anything: then the fast path above must not
            // trust it, and the next poll polls the timer again.
            let registers = tokio::task::coop::has_budget_remaining();
            match timer.as_mut().poll(cx) {
                Poll::Pending if !registers => {
                    *this.timer_waker = None;
                    return Poll::Pending;
                }
                Poll::Pending => {
                    if !this.timer_waker.as_ref().is_some_and(|waker| waker.will_wake(cx.waker())) {
                        *this.timer_waker = Some(cx.waker().clone());
                    }
                    return Poll::Pending;
                }
                Poll::Ready(()) => now = Instant::now(),
            }
        }
    }
}

/// The earlier of two optional deadlines.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl<S: fmt::Debug> fmt::Debug for Sse<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sse").field("source", &self.source).field("config", &self.config).finish_non_exhaustive()
    }
}
