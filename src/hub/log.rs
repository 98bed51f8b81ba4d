//! The bounded log of one topic: a ring of encoded frames that is both the
//! fan-out buffer and the resume buffer.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

/// Largest chunk that gathers several frames ready together (a subscriber's
/// read of the log, or [`Events`](crate::Events)); one frame larger than this
/// is sent whole.
///
/// Such a chunk is a copy made for one connection, and a connection whose
/// client stopped reading keeps the chunk it was writing: this bounds that copy.
/// (A single frame is sent as is, shared with the log.) Large enough that a
/// catching-up client still gets many frames per write.
pub(crate) const MAX_BATCH: usize = 16 * 1024;

/// Limits of one log. The log never holds more than `max_events` frames nor more
/// than `max_bytes` bytes of frames; frames older than `max_age` are dropped at the
/// next append or expiry check, and are no start for a subscriber before that
/// ([`Log::first_fresh`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_events: usize,
    pub(crate) max_bytes: usize,
    pub(crate) max_age: Option<Duration>,
}

#[derive(Debug)]
struct Entry {
    frame: Bytes,
    at: Instant,
}

impl Entry {
    /// Whether the frame is older than `max_age` at `now`.
    fn is_stale(&self, now: Instant, max_age: Duration) -> bool {
        now.saturating_duration_since(self.at) > max_age
    }
}

/// What a reader at some offset finds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Read {
    /// Frames from the requested offset on, and the offset after the last one.
    Frames(Bytes, u64),
    /// Nothing after the requested offset yet.
    UpToDate,
    /// The requested offset was evicted; the oldest retained offset is given.
    Evicted(u64),
}

#[derive(Debug)]
pub(crate) struct Log {
    entries: VecDeque<Entry>,
    /// Offset of `entries[0]`, or `next` when empty.
    first: u64,
    /// Offset the next append gets. Offsets start at 1, so "after 0" is "from the start".
    next: u64,
    bytes: usize,
    limits: Limits,
}

impl Log {
    pub(crate) fn new(limits: Limits) -> Self {
        Self { entries: VecDeque::new(), first: 1, next: 1, bytes: 0, limits }
    }

    /// The offset the next append gets.
    pub(crate) fn next(&self) -> u64 {
        self.next
    }

    /// Bytes of the frames held.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The oldest retained offset (`next` when the log is empty).
    pub(crate) fn first(&self) -> u64 {
        self.first
    }

    /// Appends a frame, evicting the oldest to stay within the limits. The
    /// caller has checked `frame.len() <= max_bytes`.
    pub(crate) fn append(&mut self, frame: Bytes, now: Instant) -> u64 {
        let offset = self.next;
        // Publishers read the clock before they take the lock, so they may come
        // in out of time order: entries are kept in time order, so that the
        // newest is the last (for `expires_at`) and expiry from the front is exact.
        let now = self.entries.back().map_or(now, |last| last.at.max(now));
        self.bytes += frame.len();
        self.entries.push_back(Entry { frame, at: now });
        self.next += 1;
        while self.entries.len() > self.limits.max_events || self.bytes > self.limits.max_bytes {
            self.pop();
        }
        self.expire(now);
        offset
    }

    /// Appends a frame whose offset was assigned elsewhere (a shared log). An
    /// offset already held is ignored; one past a hole restarts the log there, so
    /// readers behind the hole find their offset evicted and are reset.
    pub(crate) fn append_at(&mut self, offset: u64, frame: Bytes, now: Instant) {
        if offset < self.next {
            return;
        }
        if offset > self.next {
            self.restart(offset);
        }
        self.append(frame, now);
    }

    /// Empties the log; the next append gets `next`.
    pub(crate) fn restart(&mut self, next: u64) {
        self.entries.clear();
        self.bytes = 0;
        self.first = next;
        self.next = next;
    }

    /// Drops frames older than the age limit. Returns whether the log is now empty.
    pub(crate) fn expire(&mut self, now: Instant) -> bool {
        if let Some(max_age) = self.limits.max_age {
            while self.entries.front().is_some_and(|e| e.is_stale(now, max_age)) {
                self.pop();
            }
        }
        self.entries.is_empty()
    }

    /// When the newest frame was appended.
    pub(crate) fn newest_at(&self) -> Option<Instant> {
        self.entries.back().map(|e| e.at)
    }

    /// How many of the oldest frames are older than the age limit at `now`.
    fn stale(&self, now: Instant) -> usize {
        let Some(max_age) = self.limits.max_age else {
            return 0;
        };
        // Entries are in time order: the stale ones are a prefix.
        self.entries.partition_point(|e| e.is_stale(now, max_age))
    }

    /// The oldest offset a subscriber may start from: the oldest retained one,
    /// past the frames that are older than the age limit but not dropped yet
    /// (that happens at the next append or sweep). Reads the clock only with an
    /// age limit.
    pub(crate) fn first_fresh(&self) -> u64 {
        if self.limits.max_age.is_none() {
            return self.first;
        }
        self.first + self.stale(Instant::now()) as u64
    }

    /// After which [`Log::expire`] finds the log empty: when its newest frame is
    /// older than the age limit from then on. `None` without an age limit, when empty, or
    /// past what `Instant` can hold.
    pub(crate) fn expires_at(&self) -> Option<Instant> {
        self.entries.back()?.at.checked_add(self.limits.max_age?)
    }

    fn pop(&mut self) {
        if let Some(entry) = self.entries.pop_front() {
            self.bytes -= entry.frame.len();
            self.first += 1;
        }
    }

    /// Reads from `from` on: one frame as is, several concatenated up to
    /// `max_batch` bytes (at least one frame), so one write carries them.
    pub(crate) fn read(&self, from: u64, max_batch: usize) -> Read {
        if from < self.first {
            return Read::Evicted(self.first);
        }
        if from >= self.next {
            return Read::UpToDate;
        }
        let start = (from - self.first) as usize;
        let mut frames = self.entries.range(start..);
        let first = &frames.next().expect("from < next").frame;
        let (mut count, mut len) = (1u64, first.len());
        for entry in frames.clone() {
            if len + entry.frame.len() > max_batch {
                break;
            }
            len += entry.frame.len();
            count += 1;
        }
        if count == 1 {
            return Read::Frames(first.clone(), from + 1);
        }
        let mut batch = BytesMut::with_capacity(len);
        batch.extend_from_slice(first);
        for entry in frames.take(count as usize - 1) {
            batch.extend_from_slice(&entry.frame);
        }
        Read::Frames(batch.freeze(), from + count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(max_events: usize, max_bytes: usize) -> Log {
        Log::new(Limits { max_events, max_bytes, max_age: None })
    }

    #[test]
    fn evicts_by_count_and_bytes_and_batches() {
        let now = Instant::now();
        let mut log = log(3, 100);
        for frame in ["a", "b", "c", "d"] {
            log.append(Bytes::from(frame), now);
        }
        assert_eq!((log.first(), log.next()), (2, 5));
        assert_eq!(log.read(1, 10), Read::Evicted(2));
        assert_eq!(log.read(2, 10), Read::Frames(Bytes::from("bcd"), 5));
        assert_eq!(log.read(2, 2), Read::Frames(Bytes::from("bc"), 4));
        assert_eq!(log.read(3, 0), Read::Frames(Bytes::from("c"), 4));
        assert_eq!(log.read(5, 10), Read::UpToDate);
        log.append(Bytes::from(vec![b'x'; 99]), now);
        assert_eq!((log.first(), log.next(), log.bytes), (4, 6, 100));
    }

    #[test]
    fn appends_at_assigned_offsets() {
        let now = Instant::now();
        let mut log = log(10, 100);
        log.append_at(1, Bytes::from("a"), now);
        log.append_at(1, Bytes::from("dup"), now);
        log.append_at(2, Bytes::from("b"), now);
        assert_eq!(log.read(1, 10), Read::Frames(Bytes::from("ab"), 3));
        log.append_at(5, Bytes::from("e"), now);
        assert_eq!((log.first(), log.next()), (5, 6));
        assert_eq!(log.read(3, 10), Read::Evicted(5));
    }

    #[test]
    fn expires_by_age() {
        let start = Instant::now();
        let mut log = Log::new(Limits { max_events: 10, max_bytes: 100, max_age: Some(Duration::from_secs(1)) });
        log.append(Bytes::from("a"), start);
        assert!(!log.expire(start + Duration::from_secs(1)));
        assert_eq!(log.expires_at(), Some(start + Duration::from_secs(1)));
        assert!(log.expire(start + Duration::from_secs(2)));
        assert_eq!(log.expires_at(), None, "empty");
        assert_eq!((log.first(), log.next()), (2, 2));
        let mut forever = Log::new(Limits { max_events: 10, max_bytes: 100, max_age: Some(Duration::MAX) });
        forever.append(Bytes::from("a"), start);
        assert_eq!(forever.expires_at(), None, "beyond what an Instant holds");
    }

    #[test]
    fn appends_out_of_time_order_expire_with_the_newest() {
        // A publisher that read the clock later may take the lock first.
        let start = Instant::now();
        let age = Duration::from_secs(10);
        let mut log = Log::new(Limits { max_events: 10, max_bytes: 100, max_age: Some(age) });
        log.append(Bytes::from("b"), start + Duration::from_secs(1));
        log.append(Bytes::from("a"), start);
        assert_eq!(log.expires_at(), Some(start + Duration::from_secs(1) + age));
        assert!(!log.expire(start + age + Duration::from_millis(500)), "the newer entry is retained");
        assert!(log.expire(start + age + Duration::from_secs(2)));
        assert_eq!((log.first(), log.next()), (3, 3));
    }
}
