//! [`SseConfig`]: keep-alive, retry hint and lifetime of one connection's stream.

use std::time::Duration;

/// Keep-alive, retry hint and lifetime of a [`Sse`](super::Sse) stream.
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
