//! The last chunk a subscriber read on this thread, for the next subscriber of
//! the same topic at the same place.
//!
//! After a publish every subscriber of the topic wakes, and all that were up to
//! date read the same frames from the same offset. The first on each thread
//! reads them under the topic's lock; the others on that thread take them from
//! here, so that thousands of readers do not contend for the lock word (in a
//! profile of `bench/benches/fanout.rs` at 10 000 subscribers, the lock was a tenth
//! of all the time).
//!
//! A small frame is kept as this thread's own copy: the subscribers on the
//! thread then share a reference count that no other thread touches, where the
//! log's frame has its count written by every thread on every delivery. (The frame
//! was still encoded once; this is one copy per thread, not per subscriber.)
//!
//! An entry is valid for one topic, one version of its state and one position:
//! every append, load or restart of a log bumps the version (only the expiry of
//! a topic without subscribers does not), so an entry is never used for a state
//! it was not read from. It holds at most [`MAX_CHUNK`] bytes per thread.
//!
//! Streams of several topics cannot share the log's frames as they are (each
//! event carries the stream's own id), but streams that follow the same topics
//! in the same order and stand at the same place in each (every page of a
//! dashboard, say) send the same bytes: the last [`Batch`] one of them built on
//! this thread serves the others.

use std::cell::RefCell;

use bytes::Bytes;

/// Larger chunks are not kept: reading them under the lock is small beside
/// writing them, and a thread should not pin much memory.
const MAX_CHUNK: usize = 64 * 1024;

/// A frame up to this size, shared with the log, is kept as a copy of the
/// thread's own. (A chunk of several frames was built by this reader and is
/// this thread's already.)
const MAX_COPY: usize = 2 * 1024;

/// Where a chunk was read from: topic, version of its state, epoch and offset,
/// and whether it was read one frame at a time (for a stream of several topics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Place {
    pub(crate) topic: u64,
    pub(crate) version: u64,
    pub(crate) epoch: u64,
    pub(crate) cursor: u64,
    pub(crate) one_frame: bool,
}

/// A chunk read at a place: the frames, the offset after them, and whether
/// that was the end of the log.
#[derive(Debug, Clone)]
pub(crate) struct Chunk {
    pub(crate) frames: Bytes,
    pub(crate) next: u64,
    pub(crate) caught_up: bool,
}

thread_local! {
    static RECENT: RefCell<Option<(Place, Chunk)>> = const { RefCell::new(None) };
    static BATCH: RefCell<Batch> = const { RefCell::new(Batch::new()) };
}

/// What a stream of several topics sent from one place: its chunk, and where
/// it stood after it.
#[derive(Debug)]
pub(crate) struct Batch {
    /// Where the stream stood: whose turn it was, then the id, epoch and next
    /// offset of each topic, in the stream's order (empty: none kept).
    pub(crate) at: Vec<u64>,
    pub(crate) chunk: Bytes,
    /// Whose turn it is after the chunk, then each topic's next offset and the
    /// version at which it found nothing more (as the stream's cursors keep
    /// them).
    pub(crate) after: Vec<u64>,
    /// Whether another stream took this batch, and how many batches were not
    /// kept since one was (see [`put_batch`]).
    hit: bool,
    skipped: u32,
}

/// Batches not kept in a row while the one kept is taken by no other stream:
/// keeping one costs an allocation (the chunk's shared count), which streams
/// that are all at places of their own would pay on every event for nothing.
const SKIP: u32 = 15;

impl Batch {
    const fn new() -> Self {
        // As if taken: the first batch is kept.
        Self { at: Vec::new(), chunk: Bytes::new(), after: Vec::new(), hit: true, skipped: 0 }
    }
}

/// The chunk sent last from `at` on this thread; `after` is given where its
/// stream stood after it.
pub(crate) fn batch(at: &[u64], after: impl FnOnce(&[u64])) -> Option<Bytes> {
    BATCH
        .try_with(|batch| {
            let mut batch = batch.borrow_mut();
            (batch.at == at).then(|| {
                batch.hit = true;
                after(&batch.after);
                batch.chunk.clone()
            })
        })
        .ok()
        .flatten()
}

/// Keeps the batch a stream sent, for the next stream at the same place on
/// this thread. `at` and `after` are swapped with the buffers of the batch
/// kept before, so that nothing is allocated once they are large enough.
///
/// While no stream took the batch kept, only one in [`SKIP`] + 1 is kept: a
/// group of streams at one place finds one kept within that many events, and
/// from then on every next one (each taken).
pub(crate) fn put_batch(at: &mut Vec<u64>, chunk: &Bytes, after: &mut Vec<u64>) {
    let _ = BATCH.try_with(|batch| {
        let mut batch = batch.borrow_mut();
        if !batch.hit && batch.skipped < SKIP {
            batch.skipped += 1;
            return;
        }
        (batch.hit, batch.skipped) = (false, 0);
        std::mem::swap(&mut batch.at, at);
        std::mem::swap(&mut batch.after, after);
        batch.chunk = chunk.clone();
    });
}

/// The chunk read last on this thread, if it was read at `place`.
pub(crate) fn get(place: Place) -> Option<Chunk> {
    RECENT
        .try_with(|recent| recent.borrow().as_ref().filter(|(at, _)| *at == place).map(|(_, chunk)| chunk.clone()))
        .ok()
        .flatten()
}

/// Keeps `chunk`, read at `place`, for the next reader on this thread, and
/// returns what to yield: the thread's copy if one was made.
pub(crate) fn put(place: Place, mut chunk: Chunk) -> Chunk {
    if chunk.frames.len() <= MAX_CHUNK {
        let shared_with_log = chunk.next == place.cursor + 1;
        if shared_with_log && chunk.frames.len() <= MAX_COPY {
            chunk.frames = Bytes::copy_from_slice(&chunk.frames);
        }
        // During thread teardown there is nothing to keep it for.
        let _ = RECENT.try_with(|recent| *recent.borrow_mut() = Some((place, chunk.clone())));
    }
    chunk
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_place_hits_and_large_chunks_are_not_kept() {
        let place = Place { topic: 1, version: 2, epoch: 3, cursor: 4, one_frame: false };
        let frames = Bytes::from_static(b"data: x\n\n");
        let chunk = put(place, Chunk { frames: frames.clone(), next: 5, caught_up: true });
        assert_eq!(chunk.frames, frames);
        assert_ne!(chunk.frames.as_ptr(), frames.as_ptr(), "a small chunk is copied");
        let hit = get(place).unwrap();
        assert_eq!((hit.frames.as_ptr(), hit.next, hit.caught_up), (chunk.frames.as_ptr(), 5, true), "and shared");
        for other in [
            Place { topic: 9, ..place },
            Place { version: 9, ..place },
            Place { epoch: 9, ..place },
            Place { cursor: 9, ..place },
            Place { one_frame: true, ..place },
        ] {
            assert!(get(other).is_none(), "{other:?}");
        }
        std::thread::spawn(move || assert!(get(place).is_none(), "per thread")).join().unwrap();

        // Several frames are a batch this reader built: yielded as is.
        let batch = Bytes::from_static(b"data: x\n\ndata: y\n\n");
        let chunk = put(Place { cursor: 7, ..place }, Chunk { frames: batch.clone(), next: 9, caught_up: true });
        assert_eq!(chunk.frames.as_ptr(), batch.as_ptr(), "a batch is not copied again");
        put(place, Chunk { frames: frames.clone(), next: 5, caught_up: true });

        let large = Bytes::from(vec![b'x'; MAX_CHUNK + 1]);
        let chunk = put(Place { cursor: 5, ..place }, Chunk { frames: large.clone(), next: 6, caught_up: true });
        assert_eq!(chunk.frames.as_ptr(), large.as_ptr(), "a large chunk is yielded as read");
        assert!(get(Place { cursor: 5, ..place }).is_none());
        assert!(get(place).is_some(), "the kept chunk stays");
    }
}
