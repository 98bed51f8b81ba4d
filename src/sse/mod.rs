//! [`Sse`]: the response stream of one connection, over a hub [`Subscription`]
//! or any stream of events.
//!
//! It adds what every SSE response needs around its events: a `retry:` hint
//! first (optionally jittered), a keep-alive comment after an idle interval, an
//! optional maximum lifetime, and an end on shutdown. It yields `Bytes` chunks
//! ready to write; the framework adapters only convert it.

//!
//! - this file: [`Sse`], the poll machine, and [`Hub::sse`](crate::Hub::sse),
//!   which joins the hub to it;
//! - `config`: [`SseConfig`];
//! - `source`: what can be streamed ([`IntoFrame`], [`Events`], [`Source`]).
//!
//! This layer imports the wire format and the hub, never the adapters.

mod clock;
mod config;
mod source;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use tokio::sync::futures::OwnedNotified;
use tokio::time::Instant;

use clock::{Alarm, Millis};
pub use config::SseConfig;
pub use source::{Events, IntoFrame, NoEvents, Source};

use crate::hub::{BoxError, Hub, SubscribeError, Subscription};
use crate::shutdown::Shutdown;
use crate::wire::encode::{KEEP_ALIVE, retry_frame};
use crate::wire::last_event_id::Resume;

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
    pub struct Sse<S: Source> {
        #[pin]
        source: S,
        // Of its `SseConfig`, what a started stream still reads (the retry hint
        // and the lifetime are settled by `with_config`): every idle connection
        // holds one of these, so it keeps no more than it uses.
        keep_alive: Millis,
        stall_timeout: Millis,
        // The retry hint to send first, its jitter drawn; taken by the first poll.
        retry: Millis,
        // When the lifetime ends (`None`: never).
        end_at: Option<Instant>,
        // When the stream last wrote; `None` until its first poll, which sends
        // the response head.
        last_write: Option<Instant>,
        done: bool,
        // Wakes the stream for its keep-alive or the end of its lifetime.
        alarm: Alarm,
        // The waker the alarm was last set with: while it holds and the alarm
        // is set early enough, an idle poll need not touch the alarm (nor the
        // clock).
        alarm_waker: Option<Waker>,
        // What few streams use, boxed so that the others do not carry it.
        extras: Option<Box<Extras>>,
    }

    impl<S: Source> PinnedDrop for Sse<S> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if *this.done || !stalled(this.stall_timeout.get(), this.keep_alive.get(), *this.last_write, || this.source.behind()) {
                return;
            }
            this.source.stalled();
        }
    }
}

/// Whether a stream dropped now, which last wrote at `last_write`, was let go
/// because its client stalled: it had taken nothing for half the stall timeout
/// or more while events waited for it (`behind`), or while its keep-alive
/// comment was overdue by that much. (Half: the server's own buffers for the
/// connection go on taking chunks for a while after its client stopped, and the
/// kernel counts the timeout from then.)
fn stalled(
    stall_timeout: Option<Duration>,
    keep_alive: Option<Duration>,
    last_write: Option<Instant>,
    behind: impl FnOnce() -> bool,
) -> bool {
    let (Some(timeout), Some(last_write)) = (stall_timeout, last_write) else {
        return false;
    };
    let (quiet, least) = (last_write.elapsed(), timeout / 2);
    let overdue = keep_alive.is_some_and(|interval| quiet >= interval.saturating_add(least));
    quiet >= least && (overdue || behind())
}

/// What few streams use: a shutdown signal of their own, an error callback,
/// and the probe comments of the actix adapter.
#[derive(Default)]
struct Extras {
    shutdown: Option<(Shutdown, Pin<Box<OwnedNotified>>)>,
    // The waker the shutdown's waiter was last polled with (see
    // `shutdown_triggered`).
    shutdown_waker: Option<Waker>,
    on_error: Option<Box<dyn FnMut(BoxError) + Send + Sync>>,
    // A comment this long after each write that nothing else follows (see
    // `Sse::probe_writes`), and how many are still due.
    probe: Option<Duration>,
    probes_due: u8,
}

impl Extras {
    /// Whether the stream's shutdown signal fired. Its waiter is polled (which
    /// takes the signal's lock, shared by every stream it ends) only when the
    /// task's waker changed; else its flag is enough, as the signal sets it
    /// before it wakes its waiters.
    fn shutdown_triggered(&mut self, cx: &mut Context<'_>) -> bool {
        let Some((shutdown, notified)) = self.shutdown.as_mut() else {
            return false;
        };
        if !self.shutdown_waker.as_ref().is_some_and(|waker| waker.will_wake(cx.waker())) {
            if notified.as_mut().poll(cx).is_ready() {
                return true;
            }
            self.shutdown_waker = Some(cx.waker().clone());
        }
        shutdown.is_triggered()
    }
}

impl<S> Sse<Events<S>>
where
    S: Stream,
    S::Item: IntoFrame,
{
    /// The SSE stream of any stream of events, frames, or results of them.
    ///
    /// # A bad item
    ///
    /// An item that is an error, or an event that cannot be encoded (a line
    /// break in its name or id, say), ends the stream after the frames before
    /// it. As a [`Stream`], `Sse` yields that error, then ends. As a response
    /// (the `hyper`, `axum` and `actix` features) the client gets a clean end of
    /// the stream after the headers and the frames before it (its `EventSource`
    /// reconnects), and the error goes to [`Sse::on_error`]'s callback, or,
    /// without one, to the `tracing` facade as a warning — never a connection cut
    /// before the response, never silent.
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
        Self::from_source(Events::new(stream))
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

impl Hub {
    /// [`Hub::subscribe`] as the response stream of one connection, with the
    /// default [`SseConfig`] (set yours with [`Sse::with_config`]).
    ///
    /// # Errors
    ///
    /// As [`Hub::subscribe`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ssekit::SubscribeError> {
    /// use std::time::Duration;
    ///
    /// let hub = ssekit::Hub::new();
    /// let stream = hub.sse("news", ssekit::Resume::Live).await?
    ///     .with_config(ssekit::SseConfig::new().retry(Duration::from_secs(2)));
    /// # Ok(()) }
    /// ```
    pub async fn sse(&self, topic: &str, resume: impl Into<Resume>) -> Result<Sse<Subscription>, SubscribeError> {
        Ok(Sse::from_subscription(self.subscribe(topic, resume).await?))
    }

    /// [`Hub::subscribe_many`] as the response stream of one connection: several
    /// topics, one resumable id, and history for a new client.
    ///
    /// # Errors
    ///
    /// As [`Hub::subscribe_many`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ssekit::SubscribeError> {
    /// let hub = ssekit::Hub::new();
    /// let stream = hub.sse_many(&["alerts", "chat"], ssekit::Resume::Live, 20).await?;
    /// # Ok(()) }
    /// ```
    pub async fn sse_many<T: AsRef<str>>(
        &self,
        topics: &[T],
        resume: impl Into<Resume>,
        history: usize,
    ) -> Result<Sse<Subscription>, SubscribeError> {
        Ok(Sse::from_subscription(self.subscribe_many(topics, resume, history).await?))
    }
}

impl Sse<Subscription> {
    /// The SSE stream of a hub subscription (see also [`Hub::sse`]).
    pub fn from_subscription(subscription: Subscription) -> Self {
        Self::from_source(subscription)
    }

    /// Runs `on_close` when the stream is dropped: when its client left or the
    /// stream ended (see [`Subscription::on_close`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ssekit::SubscribeError> {
    /// let hub = ssekit::Hub::new();
    /// let sse = hub.sse("news", ssekit::Resume::Live).await?.on_close(|| println!("client left"));
    /// drop(sse); // prints "client left"
    /// # Ok(()) }
    /// ```
    pub fn on_close(mut self, on_close: impl FnOnce() + Send + Sync + 'static) -> Self {
        self.source.set_on_close(Box::new(on_close));
        self
    }
}

impl<S: Source> Sse<S> {
    fn from_source(source: S) -> Self {
        let config = SseConfig::new();
        Self {
            source,
            keep_alive: Millis::interval(config.keep_alive),
            stall_timeout: Millis::interval(config.stall_timeout),
            // The default has no retry hint and no lifetime.
            retry: Millis::hint(config.retry),
            end_at: None,
            last_write: None,
            done: false,
            alarm: Alarm::default(),
            alarm_waker: None,
            extras: None,
        }
    }

    fn extras(&mut self) -> &mut Extras {
        self.extras.get_or_insert_with(Box::default)
    }

    /// Calls `on_error` with the error that ends a stream served as a response
    /// (see [`Sse::new`]), instead of logging it through `tracing`.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_util::stream;
    /// use ssekit::{Event, Sse};
    ///
    /// let events = stream::iter([Event::new().data("ok"), Event::new().id("bad\nid").data("x")]);
    /// let sse = Sse::new(events).on_error(|err| eprintln!("event stream failed: {err}"));
    /// ```
    pub fn on_error(mut self, on_error: impl FnMut(BoxError) + Send + Sync + 'static) -> Self {
        self.extras().on_error = Some(Box::new(on_error));
        self
    }

    /// The next chunk of a response body: as [`Stream::poll_next`], but an error
    /// is reported ([`Sse::on_error`], or `tracing`) and ends the body cleanly,
    /// so the client gets the headers and a proper end, not a cut connection.
    /// What every adapter polls.
    #[cfg_attr(not(any(feature = "hyper", feature = "actix")), allow(dead_code))]
    pub(crate) fn poll_body(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let mut this = self;
        match this.as_mut().poll_next(cx) {
            Poll::Ready(Some(Err(error))) => {
                match this.as_mut().project().extras.as_mut().and_then(|extras| extras.on_error.as_mut()) {
                    Some(on_error) => on_error(error),
                    None => tracing::warn!(error = %error, "ssekit: an SSE stream's source failed; the stream ends"),
                }
                // Whatever the source held back goes out before the end.
                this.poll_body(cx)
            }
            Poll::Ready(Some(Ok(chunk))) => Poll::Ready(Some(chunk)),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Replaces the keep-alive, retry and lifetime settings. The lifetime
    /// ([`SseConfig::max_lifetime`]) counts from this call, and the jitter of
    /// the retry hint is drawn now: give the config when you serve the stream.
    /// (Once the stream has started, only the keep-alive and the stall timeout
    /// still apply.)
    pub fn with_config(mut self, config: SseConfig) -> Self {
        self.keep_alive = Millis::interval(config.keep_alive);
        self.stall_timeout = Millis::interval(config.stall_timeout);
        if self.last_write.is_none() {
            self.retry = Millis::hint(
                config.retry.map(|retry| retry.saturating_add(crate::random::jitter(config.retry_jitter))),
            );
            // The lifetime counts from now; one past what an `Instant` holds is
            // no limit.
            self.end_at = config.max_lifetime.and_then(|(life, jitter)| {
                Instant::now().checked_add(life.saturating_add(crate::random::jitter(jitter)))
            });
        }
        // A set alarm may be later than the new settings want: the next idle
        // poll checks it again.
        self.alarm_waker = None;
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
        let extras = self.extras();
        extras.shutdown = Some((shutdown, notified));
        extras.shutdown_waker = None;
        self
    }

    /// Sends a keep-alive comment `after` each write that nothing else
    /// followed (data, a keep-alive comment), and two after the response head:
    /// for a server that notices a departed client only when a write to it
    /// fails (actix-web). The first write after the client closed succeeds (the
    /// kernel takes it, the client answers with a reset); the comment after it
    /// is the write that fails. (Two after the head: a client that leaves as
    /// soon as it has the head, like a page reloaded, is let go within twice
    /// `after`, not after the next keep-alive.)
    #[cfg(feature = "actix")]
    pub(crate) fn probe_writes(&mut self, after: Duration) {
        self.extras().probe = Some(after);
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
        if this.last_write.is_none() {
            // The response head went out with this first poll.
            *this.last_write = Some(Instant::now());
            if let Some(extras) = this.extras.as_mut() {
                extras.probes_due = if extras.probe.is_some() { 2 } else { 0 };
            }
            if let Some(retry) = this.retry.take() {
                return Poll::Ready(Some(Ok(retry_frame(retry))));
            }
        }
        if let Some(extras) = this.extras.as_mut().filter(|extras| extras.shutdown.is_some()) {
            if extras.shutdown_triggered(cx) {
                *this.done = true;
                return Poll::Ready(this.source.take_held().map(Ok));
            }
        }
        match this.source.as_mut().poll_chunk(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                // The clock is read once per chunk written, and not when idle.
                let now = Instant::now();
                *this.last_write = Some(now);
                if let Some(extras) = this.extras.as_mut().filter(|extras| extras.probe.is_some()) {
                    extras.probes_due = 1;
                    // The next comment is due sooner than the alarm is set for.
                    *this.alarm_waker = None;
                }
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
        // Idle: wait for the next keep-alive or the end of the lifetime. The alarm
        // is moved only when it fires, not on every write.
        // The interval after which a comment is due: the probe after a write,
        // else the keep-alive.
        let interval = match this.extras.as_ref().filter(|extras| extras.probes_due > 0) {
            Some(extras) => extras.probe,
            None => this.keep_alive.get(),
        };
        if interval.is_none() && this.end_at.is_none() {
            return Poll::Pending;
        }
        if this.alarm_waker.as_ref().is_some_and(|waker| waker.will_wake(cx.waker())) && this.alarm.is_armed() {
            // The alarm is never later than it must fire: it is set to the
            // target (the keep-alive time or the end of the lifetime), and the
            // target only moves later, as data is written. So while it has not
            // fired and is set to wake this task, there is nothing to do.
            return Poll::Pending;
        }
        // An interval past what an `Instant` holds is never.
        let keep_alive_at = interval.zip(*this.last_write).and_then(|(interval, last)| last.checked_add(interval));
        let now = Instant::now();
        // Alarms fire at millisecond granularity: a deadline this close is due.
        let due = now + Duration::from_millis(1);
        if this.end_at.is_some_and(|end| end <= due) {
            *this.done = true;
            this.source.as_mut().lifetime_over();
            return Poll::Ready(this.source.take_held().map(Ok));
        }
        if keep_alive_at.is_some_and(|at| at <= due) {
            *this.last_write = Some(now);
            // A keep-alive comment is a write a probe follows; a probe is not.
            if let Some(extras) = this.extras.as_mut() {
                extras.probes_due = match extras.probes_due {
                    0 => u8::from(extras.probe.is_some()),
                    due => due - 1,
                };
            }
            return Poll::Ready(Some(Ok(Bytes::from_static(KEEP_ALIVE))));
        }
        if let Some(target) = earliest(keep_alive_at, *this.end_at) {
            this.alarm.set(target, cx.waker());
            if !this.alarm_waker.as_ref().is_some_and(|waker| waker.will_wake(cx.waker())) {
                *this.alarm_waker = Some(cx.waker().clone());
            }
        }
        Poll::Pending
    }
}

/// The earlier of two optional deadlines.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl<S: Source + fmt::Debug> fmt::Debug for Sse<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sse")
            .field("source", &self.source)
            .field("keep_alive", &self.keep_alive)
            .field("stall_timeout", &self.stall_timeout)
            .field("end_at", &self.end_at)
            .finish_non_exhaustive()
    }
}
