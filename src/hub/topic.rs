//! One topic: its log, its epoch, the subscribers waiting on it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::log::{Limits, Log};
use super::once::Once;
use super::sync::{AtomicU64, AtomicUsize, RwLock, RwLockReadGuard, RwLockWriteGuard};
use super::wakers::Wakers;

#[derive(Debug)]
pub(crate) struct Topic {
    /// Unique in the process, unlike the address, which a later topic may reuse.
    pub(crate) id: u64,
    pub(crate) name: Arc<str>,
    /// Fed by a backplane (offsets come from the shared log) instead of issuing
    /// offsets itself.
    pub(crate) fed: bool,
    state: RwLock<State>,
    /// The subscribers' tasks, woken after every change of the state.
    pub(crate) wakers: Wakers,
    /// Bumped after every change of the state, before waking: a subscriber that
    /// found nothing new at some version need not lock the log again until it moves.
    version: AtomicU64,
    subscribers: AtomicUsize,
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) log: Log,
    /// Names the log: ids of another epoch cannot be resumed here. A topic fed
    /// by a backplane takes the epoch of the shared log, which can change.
    pub(crate) epoch: u64,
    /// The log of an earlier epoch that this one continues, and through which
    /// offset: ids of that epoch up to there resume here as they are.
    pub(crate) continues: Option<Continues>,
    /// Whether the log holds its offsets: a fed topic is not ready until its
    /// backplane loaded it, and subscriptions wait to pick their start.
    pub(crate) ready: bool,
    /// Set, under this lock, when the hub drops the topic: a publisher that still
    /// holds it looks the topic up again instead of appending to a dead log.
    pub(crate) removed: bool,
    /// When the topic was created, or a subscriber last left: with no subscriber
    /// and no publish for a while, the hub drops it.
    pub(crate) idle_since: Instant,
    /// The publish keys seen lately (see [`Hub::publish_once`](crate::Hub::publish_once)).
    pub(crate) once: Once,
}

/// A log's earlier epoch, which it continues through an offset: a shared log
/// whose server changed (a failover) keeps what the new server holds and
/// takes a new epoch, so that the offsets the old server may have given beyond
/// it cannot be confused with new ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Continues {
    pub(crate) epoch: u64,
    pub(crate) through: u64,
}

impl Continues {
    /// The offset in the continuing log of a position `(epoch, offset)`, if it
    /// is one this log holds as it was.
    pub(crate) fn offset(this: Option<Self>, epoch: u64, offset: u64) -> Option<u64> {
        this.filter(|c| c.epoch == epoch && offset <= c.through).map(|_| offset)
    }
}

impl Topic {
    /// A topic whose log starts here (`fed: false`) or is loaded from a shared
    /// log by a backplane (`fed: true`).
    pub(crate) fn new(name: Arc<str>, limits: Limits, fed: bool) -> Self {
        let epoch = if fed { 0 } else { new_epoch() };
        // Not part of any protocol between threads: std's atomic under loom too.
        static IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Self {
            id: IDS.fetch_add(1, Ordering::Relaxed),
            name,
            fed,
            state: RwLock::new(State {
                log: Log::new(limits),
                epoch,
                continues: None,
                ready: !fed,
                removed: false,
                idle_since: Instant::now(),
                once: Once::default(),
            }),
            wakers: Wakers::default(),
            version: AtomicU64::new(0),
            subscribers: AtomicUsize::new(0),
        }
    }

    // A panic while a lock is held cannot leave the log half-updated (every
    // update is a push or a pop), so a poisoned lock is used as is.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes a change made under the write lock: bumps the version, then
    /// wakes the waiting subscribers.
    pub(crate) fn wake(&self) {
        self.version.fetch_add(1, Ordering::Release);
        self.wakers.wake_all();
    }

    /// The version of the state; read it before locking to read the log.
    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    pub(crate) fn subscribers(&self) -> usize {
        self.subscribers.load(Ordering::SeqCst)
    }

    pub(crate) fn add_subscriber(&self) {
        self.subscribers.fetch_add(1, Ordering::SeqCst);
    }

    /// Returns whether this was the last subscriber.
    ///
    /// The topic is idle from now on if it was: that is noted before the count
    /// can read 0, so a sweep never finds it without subscribers and idle since
    /// before they left.
    pub(crate) fn remove_subscriber(&self) -> bool {
        self.write().idle_since = Instant::now();
        self.subscribers.fetch_sub(1, Ordering::SeqCst) == 1
    }
}

/// A fresh epoch: 32 bits with the top one set, so always 8 hex digits.
///
/// The others count up from a random start per process: a process never gives
/// two logs the same epoch (until 2^31 of them), so an id of a dropped topic
/// cannot resume in its successor; another process starts elsewhere.
pub(crate) fn new_epoch() -> u64 {
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    // Not part of any protocol between threads: std's atomic under loom too.
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let start = *START.get_or_init(crate::random::u64);
    (start.wrapping_add(COUNT.fetch_add(1, Ordering::Relaxed)) & 0x7fff_ffff) | 1 << 31
}

#[cfg(all(test, not(ssekit_loom)))]
mod tests {
    #[test]
    fn epochs_are_new_and_eight_hex_digits() {
        // 100 000 random 31-bit draws would repeat one with a probability of 90 %.
        let epochs: Vec<u64> = (0..100_000).map(|_| super::new_epoch()).collect();
        assert!(epochs.iter().all(|e| format!("{e:x}").len() == 8));
        let distinct: std::collections::HashSet<_> = epochs.iter().collect();
        assert_eq!(distinct.len(), epochs.len());
    }
}
