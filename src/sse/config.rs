//! [`SseConfig`]: keep-alive, retry hint and lifetime of one connection's stream.

use std::time::Duration;

/// Keep-alive, retry hint, lifetime and stall timeout of a [`Sse`](super::Sse) stream.
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
    pub(super) keep_alive: Option<Duration>,
    pub(super) retry: Option<Duration>,
    pub(super) retry_jitter: Duration,
    pub(super) max_lifetime: Option<(Duration, Duration)>,
    pub(super) stall_timeout: Option<Duration>,
}

impl SseConfig {
    /// Keep-alive after 15 s idle; no retry hint; no lifetime limit; a stall
    /// timeout of 30 s.
    pub fn new() -> Self {
        Self {
            keep_alive: Some(Duration::from_secs(15)),
            retry: None,
            retry_jitter: Duration::ZERO,
            max_lifetime: None,
            stall_timeout: Some(STALL_TIMEOUT),
        }
    }

    /// Sends a comment after `interval` without data (`None`: never). Proxies
    /// close connections idle for too long; 15 s suits most. Kept to the
    /// millisecond (rounded up).
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
    /// the client reconnects (resuming without loss) and load rebalances. The
    /// lifetime counts from [`Sse::with_config`](super::Sse::with_config).
    pub fn max_lifetime(mut self, lifetime: Duration, jitter: Duration) -> Self {
        self.max_lifetime = Some((lifetime, jitter));
        self
    }

    /// How long a client may take no bytes while data waits for it before it
    /// counts as stalled (`None`: never; 30 s by default).
    ///
    /// A client that stops reading (a frozen tab, a dead mobile link the
    /// kernel still keeps) holds its connection, the server's buffers for it
    /// and the kernel's send queue for as long as nothing closes them. The
    /// stream cannot close the socket, which the framework holds, and is not
    /// polled while the framework's buffers are full: give the same timeout to
    /// the socket with [`set_stall_timeout`](crate::set_stall_timeout) when you
    /// accept the connection, and the kernel drops the connection once the
    /// client has taken nothing for that long. The stream then counts it in
    /// [`HubMetrics::disconnects_stalled`](crate::HubMetrics::disconnects_stalled)
    /// rather than as a client that left: dropped when it had taken nothing for
    /// half the timeout or more while events waited for it or its keep-alive
    /// comment was overdue by as much (half: the server's buffers go on taking
    /// chunks for a while after the client stopped). A client that stalls on a
    /// topic where nothing is published is let go all the same, but counted as
    /// a client that left unless its keep-alive comment was overdue.
    pub fn stall_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.stall_timeout = timeout.filter(|t| !t.is_zero());
        self
    }
}

/// The default of [`SseConfig::stall_timeout`].
const STALL_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for SseConfig {
    fn default() -> Self {
        Self::new()
    }
}
