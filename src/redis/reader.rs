//! The reader: the one task per node that feeds the hub from Redis, and the
//! [`Link`] through which the backplane's handle tells it what to read.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_core::Stream;
use redis::aio::ConnectionManager;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::script::Keys;
use crate::hub::backplane::{Appended, BackplaneStatus, Feed};

/// Entries read per `XRANGE`.
const PAGE: usize = 512;
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What the backplane's handle and its reader share.
#[derive(Debug, Default)]
pub(super) struct Link {
    /// The hub fed, once attached.
    feed: OnceLock<Feed>,
    /// Topics the hub created and the reader has not loaded yet.
    wanted: Mutex<HashSet<Arc<str>>>,
    /// Wakes the reader: attached, or a topic wanted.
    notify: Notify,
    pub(super) status: Status,
}

impl Link {
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

#[derive(Debug, Default)]
pub(super) struct Status {
    connected: AtomicBool,
    reconnects: AtomicU64,
    syncs: AtomicU64,
    pending: AtomicU64,
    last_error: Mutex<Option<(String, SystemTime)>>,
}

impl Status {
    fn up(&self) {
        if !self.connected.swap(true, Relaxed) {
            self.reconnects.fetch_add(1, Relaxed);
        }
    }

    fn down(&self, error: impl ToString) {
        self.connected.store(false, Relaxed);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some((error.to_string(), SystemTime::now()));
    }

    pub(super) fn snapshot(&self) -> BackplaneStatus {
        let last_error = self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let status = BackplaneStatus::new(
            self.connected.load(Relaxed),
            self.reconnects.load(Relaxed),
            self.syncs.load(Relaxed),
            self.pending.load(Relaxed),
            last_error.as_ref().map(|(error, _)| error.clone()),
        );
        match last_error {
            Some((_, at)) => status.with_last_error_at(at),
            None => status,
        }
    }
}

pub(super) struct Reader {
    pub(super) link: Arc<Link>,
    pub(super) client: redis::Client,
    pub(super) conn: ConnectionManager,
    pub(super) keys: Keys,
    pub(super) resync_interval: Duration,
}

impl Reader {
    pub(super) async fn run(mut self) {
        let feed = self.link.attached().await;
        let mut backoff = MIN_BACKOFF;
        while !feed.is_closed() {
            match self.follow(&feed).await {
                Ok(()) => return,
                Err(err) => self.link.status.down(err),
            }
            tokio::select! {
                () = feed.closed() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
            if self.link.status.connected.load(Relaxed) {
                backoff = MIN_BACKOFF;
            }
        }
    }

    /// Subscribes to wake-ups and syncs topics until the connection fails
    /// (`Err`) or the hub closes (`Ok`).
    async fn follow(&mut self, feed: &Feed) -> Result<(), redis::RedisError> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(self.keys.wake()).await?;
        let mut wakes = pubsub.into_on_message();
        self.link.status.up();
        let link = self.link.clone();
        // Topics to sync, and whether to check the epoch first (`true`) or only read
        // new entries. After (re)connecting, every topic may have missed wake-ups
        // and Redis may have lost its data: check them all.
        let mut dirty: BTreeMap<Arc<str>, bool> = feed.topics().into_iter().map(|t| (t, true)).collect();
        let mut resync = tokio::time::interval_at(Instant::now() + self.resync_interval, self.resync_interval);
        loop {
            if feed.is_closed() {
                // The hub closed, or was dropped while a handle of this backplane
                // lives on: nothing to feed any more.
                return Ok(());
            }
            let wanted = std::mem::take(&mut *link.wanted.lock().unwrap_or_else(|e| e.into_inner()));
            dirty.extend(wanted.into_iter().map(|t| (t, true)));
            link.status.pending.store(dirty.len() as u64, Relaxed);
            while let Some((topic, full)) = dirty.pop_first() {
                if let Err(err) = self.sync(feed, &topic, full).await {
                    dirty.insert(topic, full);
                    return Err(err);
                }
                link.status.syncs.fetch_add(1, Relaxed);
                link.status.pending.store(dirty.len() as u64, Relaxed);
            }
            tokio::select! {
                wake = next(&mut wakes) => match wake {
                    Some(msg) => {
                        let topic = String::from_utf8_lossy(msg.get_payload_bytes()).into_owned();
                        if feed.position(&topic).is_some() {
                            dirty.entry(topic.into()).or_insert(false);
                        }
                    }
                    None => return Err(redis::RedisError::from(std::io::Error::other("wake-up connection closed"))),
                },
                () = link.notify.notified() => {}
                _ = resync.tick() => dirty.extend(feed.topics().into_iter().map(|t| (t, true))),
                () = feed.closed() => return Ok(()),
            }
        }
    }

    /// Brings the local log of `name` up to the Redis stream. With `check`, or
    /// when the topic was never loaded, it first compares the epoch; otherwise it
    /// reads new entries only, and reloads if one is of another epoch.
    async fn sync(&mut self, feed: &Feed, name: &str, check: bool) -> Result<(), redis::RedisError> {
        let Some(position) = feed.position(name) else {
            return Ok(());
        };
        if check || !position.loaded {
            let shared = self.shared_epoch(name).await?;
            if !position.loaded || shared != position.epoch {
                return self.reload(feed, name, shared).await;
            }
        }
        if self.read_new(feed, name, position.epoch, position.next).await? {
            Ok(())
        } else {
            // An entry of another epoch: the shared log was replaced meanwhile.
            let shared = self.shared_epoch(name).await?;
            self.reload(feed, name, shared).await
        }
    }

    /// The epoch of the shared log of `name`; 0 when Redis holds none.
    async fn shared_epoch(&mut self, name: &str) -> Result<u64, redis::RedisError> {
        let epoch: Option<String> =
            redis::cmd("HGET").arg(self.keys.meta(name)).arg("epoch").query_async(&mut self.conn).await?;
        Ok(epoch.and_then(|e| u64::from_str_radix(&e, 16).ok()).unwrap_or(0))
    }

    /// Replaces the local log of `name` with the retained tail of the shared log
    /// of `epoch`.
    async fn reload(&mut self, feed: &Feed, name: &str, epoch: u64) -> Result<(), redis::RedisError> {
        let mut entries: Vec<(String, Vec<Bytes>)> = redis::cmd("XREVRANGE")
            .arg(self.keys.log(name))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(feed.history())
            .query_async(&mut self.conn)
            .await?;
        entries.reverse();
        let (entries, _) = parse(entries, epoch);
        feed.load(name, epoch, 1, entries);
        Ok(())
    }

    /// Feeds the entries from offset `next` on of the shared log of `epoch`.
    /// Returns `false` when an entry of another epoch shows the log was
    /// replaced, or the local log is of another epoch now.
    async fn read_new(
        &mut self,
        feed: &Feed,
        name: &str,
        epoch: u64,
        mut next: u64,
    ) -> Result<bool, redis::RedisError> {
        loop {
            let entries: Vec<(String, Vec<Bytes>)> = redis::cmd("XRANGE")
                .arg(self.keys.log(name))
                .arg(next)
                .arg("+")
                .arg("COUNT")
                .arg(PAGE)
                .query_async(&mut self.conn)
                .await?;
            let full = entries.len() == PAGE;
            let (entries, foreign) = parse(entries, epoch);
            if let Some(&(last, _)) = entries.last() {
                match feed.append(name, epoch, entries) {
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
}

/// `(offset, body)` of stream entries `<offset>-0 e <epoch> b <body>` of
/// `epoch`, and whether entries of another epoch (a log replaced in between)
/// were left out. Entries not of this form are skipped.
fn parse(entries: Vec<(String, Vec<Bytes>)>, epoch: u64) -> (Vec<(u64, Bytes)>, bool) {
    let mut foreign = false;
    let entries = entries
        .into_iter()
        .filter_map(|(id, mut fields)| {
            let offset = id.strip_suffix("-0")?.parse().ok()?;
            if fields.len() != 4 || &fields[0][..] != b"e" || &fields[2][..] != b"b" {
                return None;
            }
            let entry_epoch = std::str::from_utf8(&fields[1]).ok().and_then(|e| u64::from_str_radix(e, 16).ok())?;
            foreign |= entry_epoch != epoch;
            (entry_epoch == epoch).then(|| (offset, fields.swap_remove(3)))
        })
        .collect();
    (entries, foreign)
}

async fn next<S: Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *stream).poll_next(cx)).await
}
