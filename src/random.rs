//! Non-cryptographic randomness for epochs and jitter.
//!
//! std's `RandomState` is seeded from the OS once per thread and varies its keys
//! per instance; hashing a counter and the clock with it gives values that differ
//! across processes and calls, which is all epochs and jitter need — not worth
//! a dependency.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

pub(crate) fn u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    std::collections::hash_map::RandomState::new().hash_one((count, nanos))
}

/// A duration uniformly spread in `[0, max]`, at millisecond resolution.
pub(crate) fn jitter(max: Duration) -> Duration {
    let millis = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    if millis == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(u64() % (millis.saturating_add(1)).max(1))
}
