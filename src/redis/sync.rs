//! The reader: the one task per node that keeps the local logs in step with Redis.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use redis::aio::ConnectionManager;
use tokio::time::Instant;

use super::script::Keys;
use crate::hub::{Hub, Topic};

/// Entries read per `XRANGE`.
const PAGE: usize = 512;
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
pub(crate) struct Status {
    connected: AtomicBool,
    reconnects: AtomicU64,
    syncs: AtomicU64,
    pending: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Status {
    fn up(&self) {
        if !self.connected.swap(true, Relaxed) {
            self.reconnects.fetch_add(1, Relaxed);
        }
    }

    fn down(&self, error: impl ToString) {
        self.connected.store(false, Relaxed);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error.to_string());
    }

    pub(crate) fn snapshot(&self) -> BackplaneStatus {
        BackplaneStatus {
            connected: self.connected.load(Relaxed),
            connects: self.reconnects.load(Relaxed),
            syncs: self.syncs.load(Relaxed),
            pending_topics: self.pending.load(Relaxed),
            last_error: self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }
}

/// The state of a node's link to Redis, from [`RedisHub::status`](super::RedisHub::status).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackplaneStatus {
    /// Whether the reader is connected to Redis now.
    pub connected: bool,
    /// Successful connections of the reader so far (1 without faults).
    pub connects: u64,
    /// Topic synchronisations done (each reads new entries of one topic).
    pub syncs: u64,
    /// Topics waiting to be synchronised now: the reader's lag.
    pub pending_topics: u64,
    /// The last error met, if any.
    pub last_error: Option<String>,
}

pub(crate) struct Reader {
    pub(crate) hub: Hub,
    pub(crate) client: redis::Client,
    pub(crate) conn: ConnectionManager,
    pub(crate) keys: Keys,
    pub(crate) history: usize,
    pub(crate) status: Arc<Status>,
    pub(crate) resync_interval: Duration,
}

impl Reader {
    pub(crate) async fn run(mut self) {
        let shutdown = self.hub.shutdown();
        let mut backoff = MIN_BACKOFF;
        while !shutdown.is_triggered() {
            match self.follow().await {
                Ok(()) => return,
                Err(err) => self.status.down(err),
            }
            tokio::select! {
                () = shutdown.wait() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
            if self.status.connected.load(Relaxed) {
                backoff = MIN_BACKOFF;
            }
        }
    }

    /// Subscribes to wake-ups and syncs topics until the connection fails
    /// (`Err`) or the hub closes (`Ok`).
    async fn follow(&mut self) -> Result<(), redis::RedisError> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(self.keys.wake()).await?;
        let mut wakes = pubsub.into_on_message();
        self.status.up();
        let hub = self.hub.clone();
        let replica = hub.replica().expect("the reader feeds a replica hub");
        let shutdown = self.hub.shutdown();
        // Topics to sync, and whether to check the epoch first (`true`) or only read
        // new entries. After (re)connecting, every topic may have missed wake-ups
        // and Redis may have lost its data: check them all.
        let mut dirty: BTreeMap<Arc<str>, bool> = self.hub.topic_names().into_iter().map(|t| (t, true)).collect();
        let mut resync = tokio::time::interval_at(Instant::now() + self.resync_interval, self.resync_interval);
        loop {
            let loads = std::mem::take(&mut *replica.loads.lock().unwrap_or_else(|e| e.into_inner()));
            dirty.extend(loads.into_iter().map(|t| (t, true)));
            self.status.pending.store(dirty.len() as u64, Relaxed);
            while let Some((topic, full)) = dirty.pop_first() {
                if let Err(err) = self.sync(&topic, full).await {
                    dirty.insert(topic, full);
                    return Err(err);
                }
                self.status.syncs.fetch_add(1, Relaxed);
                self.status.pending.store(dirty.len() as u64, Relaxed);
            }
            tokio::select! {
                wake = next(&mut wakes) => match wake {
                    Some(msg) => {
                        let topic = String::from_utf8_lossy(msg.get_payload_bytes()).into_owned();
                        if self.hub.get_topic(&topic).is_some() {
                            dirty.entry(topic.into()).or_insert(false);
                        }
                    }
                    None => return Err(redis::RedisError::from(std::io::Error::other("wake-up connection closed"))),
                },
                () = replica.notify.notified() => {}
                _ = resync.tick() => dirty.extend(self.hub.topic_names().into_iter().map(|t| (t, true))),
                () = shutdown.wait() => return Ok(()),
            }
        }
    }

    /// Brings the local log of `name` up to the Redis stream. With `check`, or
    /// when the topic was never loaded, it first compares the epoch; otherwise it
    /// reads new entries only, and reloads if one is of another epoch.
    async fn sync(&mut self, name: &str, check: bool) -> Result<(), redis::RedisError> {
        let Some(topic) = self.hub.get_topic(name) else {
            return Ok(());
        };
        let (epoch, next, ready) = {
            let state = topic.read();
            (state.epoch, state.log.next(), state.ready)
        };
        if check || !ready {
            let shared = self.shared_epoch(name).await?;
            if !ready || shared != epoch {
                return self.reload(&topic, shared).await;
            }
        }
        if self.read_new(&topic, epoch, next).await? {
            Ok(())
        } else {
            // An entry of another epoch: the shared log was replaced meanwhile.
            let shared = self.shared_epoch(name).await?;
            self.reload(&topic, shared).await
        }
    }

    /// The epoch of the shared log of `name`; 0 when Redis holds none.
    async fn shared_epoch(&mut self, name: &str) -> Result<u64, redis::RedisError> {
        let epoch: Option<String> =
            redis::cmd("HGET").arg(self.keys.meta(name)).arg("epoch").query_async(&mut self.conn).await?;
        Ok(epoch.and_then(|e| u64::from_str_radix(&e, 16).ok()).unwrap_or(0))
    }

    /// Replaces the local log with the retained tail of the shared log of `epoch`.
    async fn reload(&mut self, topic: &Topic, epoch: u64) -> Result<(), redis::RedisError> {
        let mut entries: Vec<(String, Vec<Bytes>)> = redis::cmd("XREVRANGE")
            .arg(self.keys.log(&topic.name))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(self.history)
            .query_async(&mut self.conn)
            .await?;
        entries.reverse();
        let (entries, _) = parse(entries, epoch);
        let now = std::time::Instant::now();
        let mut state = topic.write();
        state.epoch = epoch;
        state.log.restart(entries.first().map_or(1, |(offset, _)| *offset));
        for (offset, frame) in entries {
            state.log.append_at(offset, frame, now);
        }
        state.ready = true;
        drop(state);
        topic.wake();
        Ok(())
    }

    /// Appends the entries from offset `next` on of the shared log of `epoch`.
    /// Returns `false` when an entry of another epoch shows the log was replaced.
    async fn read_new(&mut self, topic: &Topic, epoch: u64, mut next: u64) -> Result<bool, redis::RedisError> {
        loop {
            let entries: Vec<(String, Vec<Bytes>)> = redis::cmd("XRANGE")
                .arg(self.keys.log(&topic.name))
                .arg(next)
                .arg("+")
                .arg("COUNT")
                .arg(PAGE)
                .query_async(&mut self.conn)
                .await?;
            let full = entries.len() == PAGE;
            let (entries, foreign) = parse(entries, epoch);
            if let Some(&(last, _)) = entries.last() {
                let now = std::time::Instant::now();
                let mut state = topic.write();
                if state.epoch != epoch {
                    return Ok(true);
                }
                for (offset, frame) in entries {
                    state.log.append_at(offset, frame, now);
                }
                drop(state);
                topic.wake();
                next = last + 1;
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

/// `(offset, frame)` of stream entries `<offset>-0 e <epoch> f <frame>` of
/// `epoch`, and whether entries of another epoch (a log replaced in between)
/// were left out. Entries not of this form are skipped.
fn parse(entries: Vec<(String, Vec<Bytes>)>, epoch: u64) -> (Vec<(u64, Bytes)>, bool) {
    let mut foreign = false;
    let entries = entries
        .into_iter()
        .filter_map(|(id, mut fields)| {
            let offset = id.strip_suffix("-0")?.parse().ok()?;
            if fields.len() != 4 || &fields[0][..] != b"e" || &fields[2][..] != b"f" {
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
