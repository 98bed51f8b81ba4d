//! The Redis backplane, for several server processes: [`RedisBackplane`].
//!
//! Each topic's log lives in a Redis Stream (entry id = offset) beside a small
//! hash with its epoch and last offset; one script appends, assigns the offset
//! and wakes the nodes, atomically, so publishers on every node share one order
//! per topic. Each node keeps one reader (not one per client): pub/sub only wakes
//! it, and it reads the stream by offset (`XRANGE`) and feeds the node's hub
//! through its door ([`Feed`]), from which
//! subscribers are served exactly as without a backplane — one encoding per
//! node, shared by its subscribers. A dropped wake-up cannot lose an event: the
//! reader checks continuity by offset, fills holes from the stream, and resyncs
//! every topic after a reconnect and periodically.
//!
//! - this file: [`RedisConfig`], [`RedisBackplane`] (connect, append), [`RedisError`];
//! - `deployment`: one server, a primary found through Sentinel, or a Cluster,
//!   and the connections a node keeps to each;
//! - `reader`: the task that feeds the hub;
//! - `script`: the keys of a topic and the append script.
//!
//! It uses the hub only through [`Backplane`] and
//! [`Feed`].
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
//! When Redis is unreachable, [`Hub::publish`](crate::Hub::publish) returns an
//! error that says whether the event may have been appended anyway (nothing is
//! dropped silently); connected clients stay connected with keep-alives and,
//! once Redis is back, catch up from the stream where it still has the events,
//! or get a `reset` where it does not. The reader reconnects with backoff;
//! [`Hub::backplane_status`](crate::Hub::backplane_status) shows its state, and
//! that of each wake-up subscription (`links`); errors of reads and appends show
//! as its `last_error`.
//!
//! It needs Redis 7 or later.
//!
//! ## Failover
//!
//! [`RedisConfig::sentinel`] finds the primary through Redis Sentinel and
//! looks it up again when its connection fails or it answers that it is a
//! replica now (a failover): no restart, no address to change. Lookups back
//! off from 50 ms to 1 s; a publish meanwhile fails as
//! [`Unavailable`](BackplaneError::Unavailable) (nothing appended).
//!
//! Replication is asynchronous: a primary can append offset 41, nodes can
//! deliver it, and the primary can die before its replica has it. The
//! promoted replica's log then ends at 40. **The guarantee:** whatever the
//! timing, every reader of a topic gets each event once, in order, or gets a
//! `reset` for the topic before any gap; an id a node handed out resumes
//! exactly or gets a `reset`. How:
//!
//! - The topic's hash names the history of the data set the last append went
//!   into: the server's replication id (`master_replid`), which Redis changes
//!   at every restart and every promotion (a replica takes its primary's). When
//!   an append finds another — a promoted replica, a server restarted from its
//!   files, a demoted primary promoted again — the script
//!   first moves the topic to a new epoch *continuing* the old one through the
//!   last offset this server holds. The events up to there stay, under the same
//!   offsets.
//! - So no offset is ever given to a second event under one epoch. A reader
//!   (or an id) at or before the continued offset goes on without a `reset`.
//!   One beyond it read events that the new primary never had, and gets a
//!   `reset` (`epoch`).
//! - Test: `tests/redis/failover.rs` kills the primary at random moments, 20
//!   times, under publishers on two nodes and readers that resume on either.
//!
//! **The price.** A failover costs readers nothing when the new primary had
//! every event they read. Otherwise only the readers that got the lost events
//! get a `reset`, and those events are gone. Each continuation also takes the
//! place of the previous one: an id from two failovers back gets a `reset`.
//! A Cluster's resharding (a topic's slot moved to another primary) counts as
//! a change of writer too. Every append asks the server its replication id
//! (`INFO replication`); see `BENCHMARKS.md` for the cost.
//!
//! A primary cut off from its replicas and sentinels goes on taking writes
//! until the new primary is elected; they are lost when it rejoins (readers who
//! got them get a `reset`). Redis's `min-replicas-to-write` bounds that window
//! on the server's side.
//!
//! Losing fewer events is [`RedisConfig::confirm_by_replicas`]: a publish is
//! done only once that many replicas hold it (`WAIT`). An event whose publish
//! returned `Ok` then survives a failover to any of them. The cost is a
//! replication round trip per publish, measured in `BENCHMARKS.md`.
//!
//! ## Cluster
//!
//! [`RedisConfig::cluster`] spreads topics over a Redis Cluster's primaries: a
//! topic's keys share one hash tag (`{topic}`), so its script runs on one
//! primary. Each node keeps one command connection per cluster node (in the
//! `redis` crate's cluster connection). It also keeps one wake-up subscription
//! per node it was given: a cluster passes every `PUBLISH` to all its nodes,
//! so any one of them suffices, and the others stand in when it is down.
//! Neither count grows with topics or clients.
//!
//! Each topic is read on its own, with its own backoff. When a primary is
//! down, publishes to its topics fail (`Unavailable`, or of unknown outcome
//! when the request was sent), and every other topic flows. When it returns,
//! its topics go on exactly: with its data as it was, or continued as after a
//! failover. Topics whose data it lost get a `reset`.

mod deployment;
mod reader;
mod script;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use self::deployment::{Commands, Deployment, WakeSource};
use crate::hub::EventId;
use crate::hub::backplane::{Backplane, BackplaneError, BackplaneStatus, BoxFuture, Feed};

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
    deployment: Deployment,
    prefix: String,
    ttl: Option<Duration>,
    resync_interval: Duration,
    timeout: Duration,
    replicas: usize,
}

impl RedisConfig {
    /// Connects to `url` (`redis://host:port/db`), keys prefixed `ssekit:`, no
    /// key expiry, a resync every 5 s, 2 s timeouts.
    pub fn new(url: impl Into<String>) -> Self {
        Self::with(Deployment::One(url.into()))
    }

    /// Connects to the primary of the master named `master` that the
    /// `sentinels` (`host:port` or `redis://…` each) watch, and follows it
    /// through failovers by itself. See [Failover](crate::redis#failover).
    ///
    /// # Examples
    ///
    /// ```
    /// let config = ssekit::RedisConfig::sentinel(["10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379"], "mymaster");
    /// ```
    pub fn sentinel<S: Into<String>>(sentinels: impl IntoIterator<Item = S>, master: impl Into<String>) -> Self {
        Self::with(Deployment::Sentinel {
            sentinels: sentinels.into_iter().map(Into::into).collect(),
            master: master.into(),
        })
    }

    /// Connects to a Redis Cluster through `nodes` (`host:port` or `redis://…`
    /// each; the others are found from them). Topics are spread over the
    /// cluster's primaries; this node listens for wake-ups on every listed
    /// node, so list at least two. See [Cluster](crate::redis#cluster).
    ///
    /// # Examples
    ///
    /// ```
    /// let config = ssekit::RedisConfig::cluster(["10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"]);
    /// ```
    pub fn cluster<S: Into<String>>(nodes: impl IntoIterator<Item = S>) -> Self {
        Self::with(Deployment::Cluster(nodes.into_iter().map(Into::into).collect()))
    }

    fn with(deployment: Deployment) -> Self {
        Self {
            deployment,
            prefix: "ssekit:".to_owned(),
            ttl: None,
            resync_interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            replicas: 0,
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

    /// Reports a publish as done only once `replicas` replicas of the primary
    /// hold it (Redis `WAIT`, within half the [timeout](Self::timeout)); otherwise
    /// the publish fails as of unknown outcome: appended, but a failover may
    /// lose it. Default 0: done once the primary holds it.
    ///
    /// Readers may get an event before its replicas confirm it; if a failover
    /// then loses it, they get a `reset`, never a silent gap (see
    /// [Failover](crate::redis#failover)). What it costs is in `BENCHMARKS.md`.
    /// Not with a Cluster: [`RedisBackplane::connect`] refuses the pair.
    pub fn confirm_by_replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }

    /// Timeout of each Redis connection attempt and command, and how long the
    /// first subscriber of a topic on a node waits for it to load.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// The hub's topics in Redis, shared by every node that connects to the same
/// Redis: give it to [`HubBuilder::backplane`](crate::HubBuilder::backplane).
/// See the [module docs](crate::redis).
///
/// It feeds one hub. Cloning is cheap and gives another handle to the same
/// connection and reader.
///
/// # Examples
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// use ssekit::{Event, Hub, RedisBackplane, RedisConfig, Resume};
///
/// let node_a = Hub::builder().backplane(RedisBackplane::connect(RedisConfig::new("redis://127.0.0.1/")).await?).build();
/// let node_b = Hub::builder().backplane(RedisBackplane::connect(RedisConfig::new("redis://127.0.0.1/")).await?).build();
/// let subscription = node_b.subscribe("news", Resume::Live).await?;
/// let id = node_a.publish("news", Event::new().data("hello")).await?; // reaches node B's subscribers
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisBackplane {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Commands,
    script: redis::Script,
    keys: script::Keys,
    ttl_ms: u64,
    timeout: Duration,
    replicas: usize,
    link: Arc<reader::Link>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl RedisBackplane {
    /// Connects to Redis and starts this node's reader, which feeds the hub the
    /// backplane is given to.
    ///
    /// # Errors
    ///
    /// [`RedisError`] when the URL is invalid or Redis cannot be reached now.
    pub async fn connect(config: RedisConfig) -> Result<Self, RedisError> {
        if matches!(config.deployment, Deployment::Cluster(_)) {
            let refused = |why: &'static str| {
                RedisError::from(redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, why)))
            };
            if config.replicas > 0 {
                return Err(refused("confirm_by_replicas is not supported with a Redis Cluster"));
            }
            if config.prefix.contains(['{', '}']) {
                return Err(refused(
                    "with a Redis Cluster the prefix may not hold '{' or '}': it would put every topic in one slot",
                ));
            }
        }
        let (conn, wakes) = config.deployment.connect(config.timeout).await?;
        let keys = script::Keys::new(&config.prefix);
        let link = Arc::new(reader::Link::new(reader::Status::new(wakes.iter().map(WakeSource::name)), config.timeout));
        let reader = tokio::spawn(
            reader::Reader {
                link: link.clone(),
                wakes,
                conn: conn.clone(),
                keys: keys.clone(),
                resync_interval: config.resync_interval,
            }
            .run(),
        );
        let ttl_ms = config.ttl.map_or(0, |ttl| u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1));
        Ok(Self {
            inner: Arc::new(Inner {
                conn,
                script: script::publish(),
                keys,
                ttl_ms,
                timeout: config.timeout,
                replicas: config.replicas,
                link,
                reader,
            }),
        })
    }

    /// Appends `body` to `topic`'s stream through the script, once per `once`
    /// key within its window when given; the id, and whether this appended.
    fn append_with(
        &self,
        topic: &str,
        once: Option<(&str, Duration)>,
        body: Bytes,
    ) -> BoxFuture<Result<(EventId, bool), BackplaneError>> {
        let inner = self.inner.clone();
        let topic = topic.to_owned();
        let once = once.map(|(key, window)| (inner.keys.once(&topic, key), window.as_millis().max(1)));
        Box::pin(async move {
            let mut conn = inner.conn.clone();
            let (once_key, window_ms) = once.unwrap_or_else(|| (inner.keys.meta(&topic), 0));
            let mut invocation = inner.script.prepare_invoke();
            invocation
                .key(inner.keys.log(&topic))
                .key(inner.keys.meta(&topic))
                .key(once_key)
                .arg(&body[..])
                .arg(format!("{:x}", Feed::new_epoch()))
                .arg(inner.link.history())
                .arg(inner.keys.wake())
                .arg(&topic)
                .arg(inner.ttl_ms)
                .arg(window_ms.to_string());
            let ((epoch, offset, seen), confirmed): ((String, u64, u8), usize) = if inner.replicas == 0 {
                (invocation.invoke_async(&mut conn).await.map_err(append_error)?, 0)
            } else {
                // The script and `WAIT` in one request on one connection: `WAIT`
                // counts the replicas that hold this connection's writes. It
                // waits half the timeout, so that its answer comes in time.
                let wait_ms = u64::try_from(inner.timeout.as_millis() / 2).unwrap_or(u64::MAX).max(1);
                let mut pipe = redis::pipe();
                pipe.invoke_script(&invocation).cmd("WAIT").arg(inner.replicas).arg(wait_ms);
                match pipe.query_async(&mut conn).await {
                    Err(err) if matches!(err.kind(), redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)) => {
                        // Nothing was appended: load the script, then once more.
                        invocation.load_async(&mut conn).await.map_err(append_error)?;
                        pipe.query_async(&mut conn).await.map_err(append_error)?
                    }
                    answer => answer.map_err(append_error)?,
                }
            };
            let epoch = u64::from_str_radix(&epoch, 16).map_err(|_| {
                BackplaneError::OutcomeUnknown(format!("an epoch that is not hex in the answer: {epoch:?}").into())
            })?;
            let id = EventId::new(epoch, offset);
            if confirmed < inner.replicas {
                return Err(BackplaneError::OutcomeUnknown(
                    format!(
                        "appended as {id}, but {confirmed} of the {} replicas asked for confirmed it in time: \
                         a failover may lose it",
                        inner.replicas
                    )
                    .into(),
                ));
            }
            Ok((id, seen == 0))
        })
    }
}

impl Backplane for RedisBackplane {
    fn attach(&self, feed: Feed) -> Result<(), BackplaneError> {
        self.inner.link.attach(feed).map_err(|_| BackplaneError::Attached)
    }

    fn append(&self, topic: &str, body: Bytes) -> BoxFuture<Result<EventId, BackplaneError>> {
        let appended = self.append_with(topic, None, body);
        Box::pin(async move { appended.await.map(|(id, _)| id) })
    }

    fn append_once(
        &self,
        topic: &str,
        key: &str,
        window: Duration,
        body: Bytes,
    ) -> BoxFuture<Result<(EventId, bool), BackplaneError>> {
        self.append_with(topic, Some((key, window)), body)
    }

    fn wanted(&self, topic: &Arc<str>) {
        self.inner.link.want(topic.clone());
    }

    fn released(&self, topic: &Arc<str>) {
        self.inner.link.release(topic);
    }

    fn status(&self) -> BackplaneStatus {
        self.inner.link.status.snapshot()
    }

    fn load_timeout(&self) -> Duration {
        self.inner.timeout
    }

    fn close(&self) {
        self.inner.reader.abort();
    }
}

/// What a failed append tells: not run (refused before sending, or a server
/// that cannot write now: a replica, a Cluster without the slot or sending it
/// to a primary that is down, one loading its data, out of memory, busy with a
/// script, short of replicas it requires, failing to persist), refused by
/// Redis, or lost on the way back (a timeout, a dropped connection).
fn append_error(err: redis::RedisError) -> BackplaneError {
    use redis::ServerErrorKind::{Ask, BusyLoading, ClusterDown, MasterDown, Moved, ReadOnly, TryAgain};
    let not_run = [ReadOnly, ClusterDown, MasterDown, TryAgain, BusyLoading, Moved, Ask];
    let cannot_write_now = matches!(err.kind(), redis::ErrorKind::Server(kind) if not_run.contains(&kind))
        || matches!(err.code(), Some("OOM" | "BUSY" | "NOREPLICAS" | "MISCONF"));
    if err.is_connection_refusal() || cannot_write_now {
        BackplaneError::Unavailable(Box::new(RedisError::from(err)))
    } else if matches!(err.kind(), redis::ErrorKind::Server(_)) {
        BackplaneError::Refused(Box::new(RedisError::from(err)))
    } else {
        BackplaneError::OutcomeUnknown(Box::new(RedisError::from(err)))
    }
}

impl fmt::Debug for RedisBackplane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackplane").field("status", &self.status()).finish_non_exhaustive()
    }
}

/// Redis could not be reached or answered with an error (its `source()` says
/// which).
#[derive(Debug, Clone, thiserror::Error)]
#[error("redis connection or command failed")]
pub struct RedisError {
    #[source]
    source: redis::RedisError,
}

impl From<redis::RedisError> for RedisError {
    fn from(source: redis::RedisError) -> Self {
        Self { source }
    }
}
