//! The hub over Redis, for several server processes: [`RedisHub`].
//!
//! Each topic's log lives in a Redis Stream (entry id = offset) beside a small
//! hash with its epoch and last offset; one script appends, assigns the offset
//! and wakes the nodes, atomically, so publishers on every node share one order
//! per topic. Each node keeps one reader (not one per client): pub/sub only wakes
//! it, and it reads the stream by offset (`XRANGE`) into the node's local logs,
//! from which subscribers are served exactly as by [`Hub`] — one encoding per
//! node, shared by its subscribers. A dropped wake-up cannot lose an event: the
//! reader checks continuity by offset, fills holes from the stream, and resyncs
//! every topic after a reconnect and periodically.
//!
//! ## Resume from any node
//!
//! Ids carry the epoch of the Redis log, so an id issued through node A resumes
//! exactly on node B. An id older than the retained stream, or of an epoch Redis
//! no longer has (flushed, restarted without persistence), gets the `reset`
//! event.
//!
//! ## Faults
//!
//! When Redis is unreachable, [`RedisHub::publish`] returns an error (nothing is
//! dropped silently); connected clients stay connected with keep-alives and,
//! once Redis is back, catch up from the stream where it still has the events,
//! or get a `reset` where it does not. The reader reconnects with backoff;
//! [`RedisHub::status`] shows its state.

mod script;
mod sync;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::hub::{EventId, Hub, HubBuilder, HubMetrics, PublishError, SubscribeError, Subscription};
use crate::{Event, Frame, Resume, Shutdown, Sse};

pub use sync::BackplaneStatus;

/// Settings of the Redis backplane.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let config = ssekit::RedisConfig::new("redis://127.0.0.1:6379/")
///     .prefix("myapp:sse:")
///     .ttl(Duration::from_secs(3600));
/// ```
#[must_use]
#[derive(Debug, Clone)]
pub struct RedisConfig {
    url: String,
    prefix: String,
    ttl: Option<Duration>,
    resync_interval: Duration,
    timeout: Duration,
}

impl RedisConfig {
    /// Connects to `url` (`redis://host:port/db`), keys prefixed `ssekit:`, no
    /// key expiry, a resync every 5 s, 2 s timeouts.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "ssekit:".to_owned(),
            ttl: None,
            resync_interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
        }
    }

    /// The prefix of every key and channel, to share one Redis between apps.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Expires a topic's keys this long after its last publish; a resume after
    /// that gets a `reset` (new epoch).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// How often the reader checks every local topic against Redis even without
    /// a wake-up (a safety net; wake-ups normally deliver within a round trip).
    pub fn resync_interval(mut self, interval: Duration) -> Self {
        self.resync_interval = interval;
        self
    }

    /// Timeout of each Redis connection attempt and command.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// A [`Hub`] whose topics live in Redis, shared by every node that connects to
/// the same Redis. See the [module docs](crate::redis).
///
/// Publishing is `async` (it is a Redis round trip); subscribing is the same as
/// on a [`Hub`], and so is the [`Subscription`] it returns. Cloning is cheap.
///
/// # Examples
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// use ssekit::{Event, Hub, RedisConfig, RedisHub, Resume};
///
/// let node_a = RedisHub::connect(RedisConfig::new("redis://127.0.0.1/"), &Hub::builder()).await?;
/// let node_b = RedisHub::connect(RedisConfig::new("redis://127.0.0.1/"), &Hub::builder()).await?;
/// let subscription = node_b.subscribe("news", Resume::Live).await?;
/// let id = node_a.publish("news", Event::new().data("hello")).await?; // reaches node B's subscribers
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisHub {
    inner: Arc<Inner>,
}

struct Inner {
    hub: Hub,
    conn: ConnectionManager,
    script: redis::Script,
    keys: script::Keys,
    history: usize,
    ttl_ms: u64,
    timeout: Duration,
    status: Arc<sync::Status>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl RedisHub {
    /// Connects to Redis and starts this node's reader. `hub` gives the local
    /// limits and policies (history is also the stream's `MAXLEN`).
    ///
    /// # Errors
    ///
    /// [`RedisError`] when the URL is invalid or Redis cannot be reached now.
    pub async fn connect(config: RedisConfig, hub: &HubBuilder) -> Result<Self, RedisError> {
        let client = redis::Client::open(config.url.as_str()).map_err(RedisError::from)?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_with_config(client.clone(), manager).await.map_err(RedisError::from)?;
        let local = hub.build_replica().map_err(|err| RedisError(err.to_string()))?;
        let keys = script::Keys::new(&config.prefix);
        let status = Arc::new(sync::Status::default());
        let history = hub.history_len();
        let reader = tokio::spawn(
            sync::Reader {
                hub: local.clone(),
                client,
                conn: conn.clone(),
                keys: keys.clone(),
                history,
                status: status.clone(),
                resync_interval: config.resync_interval,
            }
            .run(),
        );
        let ttl_ms = config.ttl.map_or(0, |ttl| u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1));
        Ok(Self {
            inner: Arc::new(Inner {
                hub: local,
                conn,
                script: script::publish(),
                keys,
                history,
                ttl_ms,
                timeout: config.timeout,
                status,
                reader,
            }),
        })
    }

    /// Publishes `event` to `topic` through Redis and returns its id; every
    /// node's subscribers receive it.
    ///
    /// # Errors
    ///
    /// As [`Hub::publish`], and [`PublishError::Backplane`] when Redis did not
    /// confirm the append (then the event may or may not have been appended;
    /// it is never half-written).
    pub async fn publish(&self, topic: &str, event: Event) -> Result<EventId, PublishError> {
        self.append(topic, crate::hub::event_body(&event, 0)?).await
    }

    /// Publishes a frame your application encoded, adding the id.
    ///
    /// # Errors
    ///
    /// As [`RedisHub::publish`].
    pub async fn publish_frame(&self, topic: &str, frame: Frame) -> Result<EventId, PublishError> {
        self.append(topic, crate::hub::frame_body(&frame, 0)?).await
    }

    async fn append(&self, topic: &str, body: BytesMut) -> Result<EventId, PublishError> {
        let inner = &self.inner;
        inner.hub.check_publish(topic, body.len())?;
        let candidate = format!("{:x}", crate::hub::new_epoch());
        let mut conn = inner.conn.clone();
        let (epoch, offset): (String, u64) = inner
            .script
            .key(inner.keys.log(topic))
            .key(inner.keys.meta(topic))
            .arg(&body[..])
            .arg(&candidate)
            .arg(inner.history)
            .arg(inner.keys.wake())
            .arg(topic)
            .arg(inner.ttl_ms)
            .invoke_async(&mut conn)
            .await
            .map_err(|err| PublishError::Backplane(err.to_string()))?;
        let epoch =
            u64::from_str_radix(&epoch, 16).map_err(|_| PublishError::Backplane("bad epoch in redis".into()))?;
        inner.hub.count_published();
        Ok(EventId::new(epoch, offset))
    }

    /// Follows `topic` as [`Hub::subscribe`] does. The first subscriber of a
    /// topic on this node waits for its log to be loaded from Redis (one round
    /// trip), so that `Resume::Live` means "from now" and a resume is checked
    /// against the shared log. If Redis does not answer within the configured
    /// timeout, the subscription is returned anyway and starts once the log is
    /// loaded (keep-alives flow meanwhile).
    ///
    /// # Errors
    ///
    /// As [`Hub::subscribe`].
    pub async fn subscribe(&self, topic: &str, resume: impl Into<Resume>) -> Result<Subscription, SubscribeError> {
        let mut subscription = self.inner.hub.subscribe(topic, resume)?;
        let _ = tokio::time::timeout(self.inner.timeout, subscription.started()).await;
        Ok(subscription)
    }

    /// [`RedisHub::subscribe`] as one connection's stream, as [`Hub::sse`].
    ///
    /// # Errors
    ///
    /// As [`Hub::subscribe`].
    pub async fn sse(&self, topic: &str, resume: impl Into<Resume>) -> Result<Sse<Subscription>, SubscribeError> {
        let subscription = self.subscribe(topic, resume).await?;
        Ok(Sse::from_subscription(subscription).with_config(self.inner.hub.stream_config()))
    }

    /// Subscriptions open on this node for `topic`.
    pub fn subscribers(&self, topic: &str) -> usize {
        self.inner.hub.subscribers(topic)
    }

    /// This node's counters.
    pub fn metrics(&self) -> HubMetrics {
        self.inner.hub.metrics()
    }

    /// The state of this node's link to Redis.
    pub fn status(&self) -> BackplaneStatus {
        self.inner.status.snapshot()
    }

    /// As [`Hub::shutdown`].
    pub fn shutdown(&self) -> Shutdown {
        self.inner.hub.shutdown()
    }

    /// Ends this node's subscriptions and its reader (Redis keeps the logs).
    pub fn close(&self) {
        self.inner.hub.close();
        self.inner.reader.abort();
    }
}

impl fmt::Debug for RedisHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisHub").field("status", &self.status()).field("hub", &self.inner.hub).finish_non_exhaustive()
    }
}

/// Redis could not be reached or answered with an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("redis: {0}")]
pub struct RedisError(String);

impl From<redis::RedisError> for RedisError {
    fn from(err: redis::RedisError) -> Self {
        Self(err.to_string())
    }
}
