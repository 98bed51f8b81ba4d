//! [`Cursor`]: where one subscription stands in one topic's log. A
//! [`Subscription`](super::Subscription) holds one per topic it follows.

use std::sync::Arc;
use std::task::Context;

use bytes::Bytes;

use super::event_id::EventId;
use super::log::{Log, MAX_BATCH, Read};
use super::recent::{self, Chunk, Place};
use super::reset::ResetReason;
use super::topic::{Continues, State, Topic};
use super::wakers::Registration;

/// Where a cursor starts, until its topic's log is ready (a topic fed by a
/// backplane is loaded first): the start is picked under the topic's lock.
#[derive(Debug, Clone)]
pub(crate) enum Start {
    /// From now on, after the last `history` retained events (0: none).
    Live { history: usize },
    /// The client's id could not be read: a reset, then live.
    Malformed,
    /// After the client's id, which holds a position per topic it followed
    /// (one for a stream of one topic); this cursor's topic was the
    /// `index`-th of the stream.
    After { positions: Arc<[EventId]>, index: usize },
}

/// How a cursor begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Begin {
    /// With live events (or, for a fed topic, with the first shared log), or
    /// with the history asked for on joining.
    Live,
    /// With the events after the client's id: an exact resume.
    Exact,
    /// With a `reset` event, then live events.
    Reset(ResetReason),
}

/// What a cursor found when polled.
#[derive(Debug)]
pub(crate) enum Step {
    /// It started, as said.
    Began(Begin),
    /// Frames to send: one or more whole frames (one when read one at a time).
    Frames(Bytes),
    /// It fell behind: frames it had not read are gone; the oldest one a
    /// subscriber may start from is given. The caller applies the lag policy
    /// ([`Cursor::skip_to`] it, or end).
    Lagged(u64),
    /// Nothing now: the task is registered to be woken by the topic.
    Idle,
}

/// A subscription's cursors: one inline for a stream of one topic (most
/// streams, and what every idle connection holds), else boxed.
#[derive(Debug)]
pub(crate) enum Cursors {
    One(Cursor),
    Several(Box<[Cursor]>),
}

impl From<Vec<Cursor>> for Cursors {
    fn from(mut cursors: Vec<Cursor>) -> Self {
        match cursors.pop() {
            Some(one) if cursors.is_empty() => Self::One(one),
            Some(last) => {
                cursors.push(last);
                Self::Several(cursors.into_boxed_slice())
            }
            None => Self::Several(Box::default()),
        }
    }
}

impl Cursors {
    /// The first cursor (the only one of a stream of one topic), without a
    /// slice in between: what every delivery of one topic goes through.
    #[inline]
    pub(crate) fn first(&mut self) -> &mut Cursor {
        match self {
            Self::One(cursor) => cursor,
            Self::Several(cursors) => &mut cursors[0],
        }
    }
}

impl std::ops::Deref for Cursors {
    type Target = [Cursor];

    #[inline]
    fn deref(&self) -> &[Cursor] {
        match self {
            Self::One(cursor) => std::slice::from_ref(cursor),
            Self::Several(cursors) => cursors,
        }
    }
}

impl std::ops::DerefMut for Cursors {
    #[inline]
    fn deref_mut(&mut self) -> &mut [Cursor] {
        match self {
            Self::One(cursor) => std::slice::from_mut(cursor),
            Self::Several(cursors) => cursors,
        }
    }
}

/// One topic's position of a subscription.
#[derive(Debug)]
pub(crate) struct Cursor {
    pub(crate) topic: Arc<Topic>,
    // Boxed: only a cursor still to start holds one, and a small cursor is
    // what a stream of several topics looks through on every poll.
    start: Option<Box<Start>>,
    /// The epoch and offset of the next frame to read.
    epoch: u64,
    next: u64,
    /// The topic's version at which this cursor last found nothing new
    /// (`u64::MAX`: not yet); while it holds, the log need not be locked.
    seen: u64,
    /// This cursor's waker in the topic's set, kept from the first poll on and
    /// refreshed before every read of the log, so a publish after the read
    /// always wakes it.
    registration: Option<Registration>,
    /// The `reset` this cursor owes its client, sent before its next frames.
    pub(crate) owed_reset: Option<ResetReason>,
}

impl Cursor {
    /// A cursor on `topic` (already counted as its subscriber) that starts as
    /// `start` says, once its log is ready ([`Cursor::try_begin`]).
    pub(crate) fn new(topic: Arc<Topic>, start: Start) -> Self {
        Self {
            topic,
            start: Some(Box::new(start)),
            epoch: 0,
            next: 1,
            seen: u64::MAX,
            registration: None,
            owed_reset: None,
        }
    }

    /// The position of the last event read or skipped: a client that saw
    /// everything so far resumes from here.
    pub(crate) fn position(&self) -> EventId {
        EventId::new(self.epoch, self.next - 1)
    }

    /// Whether the start is still to be picked (the log is not loaded yet).
    pub(crate) fn waiting(&self) -> bool {
        self.start.is_some()
    }

    /// Registers the task to be woken by the topic; see `Wakers::register`.
    pub(crate) fn register(&mut self, cx: &Context<'_>) {
        self.topic.wakers.register(&mut self.registration, cx.waker());
    }

    /// Whether a [`Cursor::step`] would find nothing, and no reset is owed:
    /// nothing published since it last found nothing new.
    #[inline]
    pub(crate) fn quiet(&self) -> bool {
        self.owed_reset.is_none() && self.topic.version() == self.seen
    }

    /// Whether it started and owes no reset: where it goes next depends on
    /// its place in the log alone.
    pub(crate) fn settled(&self) -> bool {
        self.start.is_none() && self.owed_reset.is_none()
    }

    /// Its topic, and where in which log it reads next.
    pub(crate) fn place(&self) -> [u64; 3] {
        [self.topic.id, self.epoch, self.next]
    }

    /// Where it stands in its log, to [`Cursor::rewind`] to.
    pub(crate) fn mark(&self) -> (u64, u64) {
        (self.next, self.seen)
    }

    /// Goes back to where [`Cursor::mark`] found it (in the same epoch): the
    /// frames read since are read again.
    pub(crate) fn rewind(&mut self, (next, seen): (u64, u64)) {
        (self.next, self.seen) = (next, seen);
    }

    /// Continues from `next` (after a lag).
    pub(crate) fn skip_to(&mut self, next: u64) {
        self.next = next;
    }

    /// Takes the task out of the topic's waker set.
    pub(crate) fn unregister(&mut self) {
        if let Some(registration) = self.registration.take() {
            self.topic.wakers.unregister(registration);
        }
    }

    /// Picks the start if it is still to be picked and the log is ready.
    pub(crate) fn try_begin(&mut self) -> Option<Begin> {
        if !self.waiting() {
            return None;
        }
        let Self { topic, start, epoch, next, .. } = self;
        begin_if_ready(&topic.read(), start, epoch, next)
    }

    /// Reads what is next: frames, a start, a lag, or nothing. `one_frame`
    /// reads frames one at a time, else several ready ones come in one chunk.
    /// The caller registered the task first ([`Cursor::register`]).
    pub(crate) fn step(&mut self, one_frame: bool) -> Step {
        let version = self.topic.version();
        if version == self.seen {
            return Step::Idle;
        }
        let place = Place { topic: self.topic.id, version, epoch: self.epoch, cursor: self.next, one_frame };
        let chunk = match self.start.is_none().then(|| recent::get(place)).flatten() {
            Some(chunk) => chunk,
            None => {
                let Self { topic, start, epoch, next, seen, .. } = self;
                let state = topic.read();
                if let Some(begun) = begin_if_ready(&state, start, epoch, next) {
                    return Step::Began(begun);
                }
                if !state.ready {
                    return Step::Idle;
                }
                if let Some(begun) = follow_epoch(&state, epoch, next) {
                    return Step::Began(begun);
                }
                let max_batch = if one_frame { 0 } else { MAX_BATCH };
                match state.log.read(*next, max_batch) {
                    Read::Frames(frames, after) => {
                        let caught_up = after == state.log.next();
                        drop(state);
                        recent::put(place, Chunk { frames, next: after, caught_up })
                    }
                    Read::UpToDate => {
                        *seen = version;
                        return Step::Idle;
                    }
                    // Continue after the events older than the age limit too, as
                    // a resume would.
                    Read::Evicted(_) => return Step::Lagged(state.log.first_fresh()),
                }
            }
        };
        self.next = chunk.next;
        if chunk.caught_up {
            self.seen = version;
        }
        Step::Frames(chunk.frames)
    }
}

/// Picks the start of a cursor (`start`, `epoch`, `next`) if it is still to be
/// picked and the log is ready.
fn begin_if_ready(state: &State, start: &mut Option<Box<Start>>, epoch: &mut u64, next: &mut u64) -> Option<Begin> {
    if !state.ready {
        return None;
    }
    let (from, begin) = self::start(&state.log, state.epoch, state.continues, *start.take()?);
    (*epoch, *next) = (state.epoch, from);
    Some(begin)
}

/// When the log of a fed topic was replaced, continues in the new one.
fn follow_epoch(state: &State, epoch: &mut u64, next: &mut u64) -> Option<Begin> {
    if state.epoch == *epoch {
        return None;
    }
    let first_log = *epoch == 0 && *next == 1;
    if Continues::offset(state.continues, *epoch, next.saturating_sub(1)).is_some() {
        // The new log holds everything this cursor read, as it was: go on.
        *epoch = state.epoch;
        return None;
    }
    *epoch = state.epoch;
    if first_log {
        // A fed topic that had no shared log yet got its first one: nothing
        // was missed, so follow it without a reset.
        return Some(Begin::Live);
    }
    // The shared log was replaced (a flushed Redis): continue in the new one.
    *next = state.log.first();
    Some(Begin::Reset(ResetReason::UnknownEpoch))
}

impl Drop for Cursor {
    fn drop(&mut self) {
        self.unregister();
    }
}

/// Where a cursor starts in `log` (of `epoch`, continuing `continues`), and how.
fn start(log: &Log, epoch: u64, continues: Option<Continues>, start: Start) -> (u64, Begin) {
    let live = log.next();
    let (positions, index) = match start {
        Start::Live { history } => {
            let from = live.saturating_sub(history as u64).max(log.first_fresh());
            return (from, Begin::Live);
        }
        Start::Malformed => return (live, Begin::Reset(ResetReason::Malformed)),
        Start::After { positions, index } => (positions, index),
    };
    // The client's position in this topic: the one of the same epoch, at this
    // topic's place in the stream first (two topics could share an epoch).
    let here = |id: &EventId| {
        if id.epoch() == epoch { Some(id.offset()) } else { Continues::offset(continues, id.epoch(), id.offset()) }
    };
    // Elsewhere in the id only a position of this very epoch is taken: a
    // continued epoch there could be another topic's.
    let mine = positions
        .get(index)
        .and_then(here)
        .or_else(|| positions.iter().find(|id| id.epoch() == epoch).map(EventId::offset));
    let Some(offset) = mine else {
        // A position of another epoch where this topic's would be: the log
        // that issued it is gone. No position at all: the topic is new to this
        // client, who has missed nothing of it.
        let begin = if positions.get(index).is_some() { Begin::Reset(ResetReason::UnknownEpoch) } else { Begin::Live };
        return (live, begin);
    };
    if offset >= live {
        (live, Begin::Reset(ResetReason::Future))
    } else if offset + 1 < log.first_fresh() {
        (live, Begin::Reset(ResetReason::Evicted))
    } else {
        (offset + 1, Begin::Exact)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cursor_is_small() {
        // What a stream of several topics looks through on every poll.
        assert!(std::mem::size_of::<super::Cursor>() <= 72, "{}", std::mem::size_of::<super::Cursor>());
    }
}
