//! The reader: the one task per node that feeds the hub from Redis, and the
//! [`Link`] through which the backplane's handle tells it what to read.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_core::Stream;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::deployment::{Commands, WakeSource};
use super::script::Keys;
use crate::hub::backplane::{Appended, BackplaneStatus, Feed, LinkStatus};

/// Entries read per `XRANGE`.
const PAGE: usize = 512;
/// Topics synchronised at once.
const SYNCS: usize = 16;
/// Wake-ups queued for the reader; a link waits while it is full.
const WAKES: usize = 1024;
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// What the backplane's handle and its reader share.
#[derive(Debug)]
pub(super) struct Link {
    /// The hub fed, once attached.
    feed: OnceLock<Feed>,
    /// Topics the hub created and the reader has not loaded yet.
    wanted: Mutex<HashSet<Arc<str>>>,
    /// Wakes the reader: attached, or a topic wanted.
    notify: Notify,
    pub(super) status: Status,
    /// Of each attempt to (re)subscribe a wake-up link, and of each read.
    timeout: Duration,
}

impl Link {
    pub(super) fn new(status: Status, timeout: Duration) -> Self {
        Self { feed: OnceLock::new(), wanted: Mutex::default(), notify: Notify::new(), status, timeout }
    }

    /// Feeds `feed` from now on; `Err` if another hub is fed already.
    pub(super) fn attach(&self, feed: Feed) -> Result<(), Feed> {
        self.feed.set(feed)?;
        self.notify.notify_one();
        Ok(())
    }

    pub(super) fn want(&self, topic: Arc<str>) {
        self.wanted.lock().unwrap_or_else(|e| e.into_inner()).insert(topic);
        self.notify.notify_one();
    }

    pub(super) fn release(&self, topic: &str) {
        self.wanted.lock().unwrap_or_else(|e| e.into_inner()).remove(topic);
    }

    /// Events kept per topic by the hub fed: the stream's `MAXLEN`.
    pub(super) fn history(&self) -> usize {
        self.feed.get().map_or(1, Feed::history).max(1)
    }

    async fn attached(&self) -> Feed {
        loop {
            let notified = self.notify.notified();
            if let Some(feed) = self.feed.get() {
                return feed.clone();
            }
            notified.await;
        }
    }
}

/// The state of the node's links to Redis, for `/health`.
#[derive(Debug)]
pub(super) struct Status {
    /// Per wake-up link: its name, whether it is subscribed, its last error.
    links: Mutex<Vec<LinkStatus>>,
    connects: AtomicU64,
    syncs: AtomicU64,
    pending: AtomicU64,
    last_error: Mutex<Option<(String, SystemTime)>>,
}

impl Status {
    /// A link is down at first: up once subscribed.
    pub(super) fn new<'a>(links: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            links: Mutex::new(links.into_iter().map(|name| LinkStatus::new(name, false)).collect()),
            connects: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    fn links(&self) -> std::sync::MutexGuard<'_, Vec<LinkStatus>> {
        self.links.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn link_up(&self, index: usize) {
        if let Some(link) = self.links().get_mut(index) {
            link.connected = true;
        }
        self.connects.fetch_add(1, Relaxed);
    }

    fn link_down(&self, index: usize, error: impl ToString) {
        let error = error.to_string();
        if let Some(link) = self.links().get_mut(index) {
            link.connected = false;
            (link.last_error, link.last_error_at) = (Some(error.clone()), Some(SystemTime::now()));
        }
        self.error(error);
    }

    fn error(&self, error: impl ToString) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some((error.to_string(), SystemTime::now()));
    }

    pub(super) fn snapshot(&self) -> BackplaneStatus {
        let links = self.links().clone();
        let last_error = self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let status = BackplaneStatus::new(
            !links.is_empty() && links.iter().all(|link| link.connected),
            self.connects.load(Relaxed),
            self.syncs.load(Relaxed),
            self.pending.load(Relaxed),
            last_error.as_ref().map(|(error, _)| error.clone()),
        )
        .with_links(links);
        match last_error {
            Some((_, at)) => status.with_last_error_at(at),
            None => status,
        }
    }
}

pub(super) struct Reader {
    pub(super) link: Arc<Link>,
    pub(super) conn: Commands,
    pub(super) wakes: Vec<WakeSource>,
    pub(super) keys: Keys,
    pub(super) resync_interval: Duration,
}

/// What a wake-up link tells the reader.
enum Wake {
    /// `<epoch>:<topic>` was appended to.
    Appended(Vec<u8>),
    /// The link (re)subscribed: wake-ups may have been missed before.
    Up,
}

impl Reader {
    /// Feeds the hub until it closes. Each topic is synchronised on its own
    /// (several at once), so a topic whose Redis fails — one Cluster shard down
    /// — waits with its own backoff while every other topic flows.
    pub(super) async fn run(self) {
        let feed = self.link.attached().await;
        let (tx, mut wakes) = mpsc::channel(WAKES);
        // Aborted with the reader: dropping a `JoinSet` aborts its tasks.
        let mut links = JoinSet::new();
        for (index, source) in self.wakes.iter().enumerate() {
            links.spawn(follow(source.clone(), index, self.keys.wake(), tx.clone(), self.link.clone()));
        }
        drop(tx);
        let mut syncs: JoinSet<(Arc<str>, bool, Result<(), redis::RedisError>)> = JoinSet::new();
        let mut running: HashSet<Arc<str>> = HashSet::new();
        // Topics to sync, and whether to check the epoch first (`true`) or only
        // read new entries.
        let mut dirty: BTreeMap<Arc<str>, bool> = BTreeMap::new();
        // Topics whose last sync failed: when to try again, and the wait after that.
        let mut failing: HashMap<Arc<str>, (Instant, Duration)> = HashMap::new();
        let mut resync = tokio::time::interval_at(Instant::now() + self.resync_interval, self.resync_interval);
        loop {
            if feed.is_closed() {
                return;
            }
            let wanted = std::mem::take(&mut *self.link.wanted.lock().unwrap_or_else(|e| e.into_inner()));
            dirty.extend(wanted.into_iter().map(|t| (t, true)));
            // Topics whose reads work go first; those failing (a Cluster shard
            // down) take at most half the slots, so they never hold up the rest.
            let now = Instant::now();
            let free = SYNCS.saturating_sub(running.len());
            let failing_running = running.iter().filter(|topic| failing.contains_key(*topic)).count();
            let failing_free = (SYNCS / 2).saturating_sub(failing_running).min(free);
            let idle = dirty.iter().filter(|(topic, _)| !running.contains(*topic));
            let mut due: Vec<(Arc<str>, bool)> = idle
                .clone()
                .filter(|(topic, _)| !failing.contains_key(*topic))
                .take(free)
                .map(|(topic, full)| (topic.clone(), *full))
                .collect();
            let retries = idle
                .filter(|(topic, _)| failing.get(*topic).is_some_and(|(at, _)| *at <= now))
                .take(failing_free.min(free - due.len()))
                .map(|(topic, full)| (topic.clone(), *full));
            due.extend(retries.collect::<Vec<_>>());
            for (topic, full) in due {
                dirty.remove(&topic);
                running.insert(topic.clone());
                let (mut conn, keys, feed) = (self.conn.clone(), self.keys.clone(), feed.clone());
                syncs.spawn(async move {
                    let result = sync(&mut conn, &keys, &feed, &topic, full).await;
                    (topic, full, result)
                });
            }
            self.link.status.pending.store((dirty.len() + running.len()) as u64, Relaxed);
            let retry_at = dirty.keys().filter_map(|topic| failing.get(topic)).map(|(at, _)| *at).min();
            tokio::select! {
                Some(done) = syncs.join_next(), if !syncs.is_empty() => {
                    let Ok((topic, full, result)) = done else { continue };
                    running.remove(&topic);
                    match result {
                        Ok(()) => {
                            failing.remove(&topic);
                            self.link.status.syncs.fetch_add(1, Relaxed);
                        }
                        Err(err) => {
                            self.link.status.error(&err);
                            let wait = failing.get(&topic).map_or(MIN_BACKOFF, |(_, wait)| (*wait * 2).min(MAX_BACKOFF));
                            failing.insert(topic.clone(), (Instant::now() + wait, wait));
                            let full = dirty.get(&topic).copied().unwrap_or(false) || full;
                            dirty.insert(topic, full);
                        }
                    }
                }
                wake = wakes.recv() => match wake {
                    Some(Wake::Appended(payload)) => {
                        if let Some((topic, epoch)) = parse_wake(&payload) {
                            if let Some(position) = feed.position(topic) {
                                // Another epoch: the log was replaced, check it.
                                let full = position.epoch != epoch;
                                let entry = dirty.entry(topic.into()).or_insert(full);
                                *entry |= full;
                            }
                        }
                    }
                    // After (re)subscribing, every topic may have missed wake-ups and
                    // Redis may have lost its data: check them all, at once.
                    Some(Wake::Up) => {
                        failing.clear();
                        dirty.extend(feed.topics().into_iter().map(|t| (t, true)));
                    }
                    None => return,
                },
                () = self.link.notify.notified() => {}
                () = sleep_until(retry_at) => {}
                _ = resync.tick() => dirty.extend(feed.topics().into_iter().map(|t| (t, true))),
                () = feed.closed() => return,
            }
        }
    }
}

/// Sleeps until `at`, or forever.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// `(topic, epoch)` of a wake-up's payload `<epoch>:<topic>`.
fn parse_wake(payload: &[u8]) -> Option<(&str, u64)> {
    let at = payload.iter().position(|&b| b == b':')?;
    let epoch = u64::from_str_radix(std::str::from_utf8(&payload[..at]).ok()?, 16).ok()?;
    Some((std::str::from_utf8(&payload[at + 1..]).ok()?, epoch))
}

/// Keeps wake-up link `index` subscribed, reconnecting with backoff, and passes
/// on what it hears until the reader is gone.
async fn follow(source: WakeSource, index: usize, channel: String, tx: mpsc::Sender<Wake>, link: Arc<Link>) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let subscribed = async {
            let mut pubsub = source.client().await?.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub.into_on_message())
        };
        let subscribed = tokio::time::timeout(link.timeout, subscribed)
            .await
            .unwrap_or_else(|_| Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into()));
        match subscribed {
            Ok(mut messages) => {
                link.status.link_up(index);
                backoff = MIN_BACKOFF;
                if tx.send(Wake::Up).await.is_err() {
                    return;
                }
                while let Some(message) = next(&mut messages).await {
                    if tx.send(Wake::Appended(message.get_payload_bytes().to_vec())).await.is_err() {
                        return;
                    }
                }
                link.status.link_down(index, "the wake-up connection closed");
            }
            Err(err) => link.status.link_down(index, err),
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Brings the local log of `name` up to the Redis stream. With `check`, or
/// when the topic was never loaded, it first compares the epoch; otherwise it
/// reads new entries only, and reloads if one is of another epoch.
async fn sync(conn: &mut Commands, keys: &Keys, feed: &Feed, name: &str, check: bool) -> Result<(), redis::RedisError> {
    let Some(position) = feed.position(name) else {
        return Ok(());
    };
    if check || !position.loaded {
        let shared = Shared::of(conn, keys, name).await?;
        if !position.loaded || shared.epoch != position.epoch {
            return reload(conn, keys, feed, name, shared).await;
        }
    }
    let shared = Shared { epoch: position.epoch, continues: None, next: position.next };
    if read_new(conn, keys, feed, name, shared, position.next).await? {
        Ok(())
    } else {
        // An entry of another epoch: the shared log was replaced meanwhile.
        let shared = Shared::of(conn, keys, name).await?;
        reload(conn, keys, feed, name, shared).await
    }
}

/// Which entries of a shared log are of its epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shared {
    /// 0 when Redis holds no log.
    epoch: u64,
    /// The earlier epoch the log continues, and through which offset: its
    /// entries up to there are part of this log.
    continues: Option<(u64, u64)>,
    /// The offset of the next entry appended.
    next: u64,
}

impl Shared {
    /// What Redis holds for `name` now.
    async fn of(conn: &mut Commands, keys: &Keys, name: &str) -> Result<Self, redis::RedisError> {
        let [epoch, continues, through, offset]: [Option<String>; 4] = redis::cmd("HMGET")
            .arg(keys.meta(name))
            .arg(&["epoch", "continues", "through", "offset"])
            .query_async(conn)
            .await?;
        let hex = |e: Option<String>| e.and_then(|e| u64::from_str_radix(&e, 16).ok());
        let number = |n: Option<String>| n.and_then(|n| n.parse().ok());
        Ok(Self {
            epoch: hex(epoch).unwrap_or(0),
            continues: hex(continues).zip(number(through)),
            next: number(offset).map_or(1, |offset: u64| offset.saturating_add(1)),
        })
    }

    /// Whether the entry at `offset` written in `epoch` is part of this log.
    fn holds(self, epoch: u64, offset: u64) -> bool {
        epoch == self.epoch || self.continues.is_some_and(|(earlier, through)| epoch == earlier && offset <= through)
    }
}

/// Replaces the local log of `name` with the retained tail of the shared log.
async fn reload(
    conn: &mut Commands,
    keys: &Keys,
    feed: &Feed,
    name: &str,
    shared: Shared,
) -> Result<(), redis::RedisError> {
    let mut entries: Vec<(String, Vec<Bytes>)> = redis::cmd("XREVRANGE")
        .arg(keys.log(name))
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(feed.history())
        .query_async(conn)
        .await?;
    entries.reverse();
    let (entries, _) = parse(entries, shared);
    // With no entry left (trimmed, expired), new ones follow the last offset.
    feed.load_continuing(name, shared.epoch, shared.continues, shared.next, entries);
    Ok(())
}

/// Feeds the entries from offset `next` on of the shared log. Returns `false`
/// when an entry of another epoch shows the log was replaced, or the local log
/// is of another epoch now.
async fn read_new(
    conn: &mut Commands,
    keys: &Keys,
    feed: &Feed,
    name: &str,
    shared: Shared,
    mut next: u64,
) -> Result<bool, redis::RedisError> {
    loop {
        let entries: Vec<(String, Vec<Bytes>)> = redis::cmd("XRANGE")
            .arg(keys.log(name))
            .arg(next)
            .arg("+")
            .arg("COUNT")
            .arg(PAGE)
            .query_async(conn)
            .await?;
        let full = entries.len() == PAGE;
        let (entries, foreign) = parse(entries, shared);
        if let Some(&(last, _)) = entries.last() {
            match feed.append(name, shared.epoch, entries) {
                Appended::Done => next = last + 1,
                Appended::OtherEpoch => return Ok(false),
                _ => return Ok(true),
            }
        }
        if foreign {
            return Ok(false);
        }
        if !full {
            return Ok(true);
        }
    }
}

/// `(offset, body)` of the stream entries `<offset>-0 e <epoch> b <body>` that
/// are part of the `shared` log, and whether other entries (of a log replaced
/// in between) were left out. Entries not of this form are skipped.
fn parse(entries: Vec<(String, Vec<Bytes>)>, shared: Shared) -> (Vec<(u64, Bytes)>, bool) {
    let mut foreign = false;
    let entries = entries
        .into_iter()
        .filter_map(|(id, mut fields)| {
            let offset = id.strip_suffix("-0")?.parse().ok()?;
            if fields.len() != 4 || &fields[0][..] != b"e" || &fields[2][..] != b"b" {
                return None;
            }
            let entry_epoch = std::str::from_utf8(&fields[1]).ok().and_then(|e| u64::from_str_radix(e, 16).ok())?;
            let held = shared.holds(entry_epoch, offset);
            foreign |= !held;
            held.then(|| (offset, fields.swap_remove(3)))
        })
        .collect();
    (entries, foreign)
}

async fn next<S: Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *stream).poll_next(cx)).await
}
