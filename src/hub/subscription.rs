//! [`Subscription`]: one subscriber's stream of one or several topics, a
//! [`Cursor`] into each topic's log.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_core::Stream;

use super::Shared;
use super::compound_id;
use super::cursor::{Begin, Cursor, Cursors, Start, Step};
use super::error::SubscribeError;
use super::event_id::EventId;
use super::log::MAX_BATCH;
use super::metrics::Disconnect;
use super::recent;
use super::reset::{LagPolicy, ResetReason};
use super::topic::Topic;
use crate::wire::encode::id_tail_len;
use crate::wire::last_event_id::Resume;

pin_project_lite::pin_project! {
    /// One subscriber of one or several topics: a [`Stream`] of byte chunks to
    /// write to its connection, each one or more complete event frames.
    ///
    /// For each topic it yields, in order: a `reset` frame if the resume was
    /// impossible, the replayed events (or, for a new subscriber that asked for
    /// them, the recent ones), then live events as they are published (several
    /// ready frames in one chunk). Several topics take turns. It ends when the
    /// hub closes (after the hub's final event, if any) or, under
    /// [`LagPolicy::Disconnect`], when it falls behind. Dropping it unsubscribes
    /// at once.
    ///
    /// ## Several topics
    ///
    /// A subscription to several topics ([`Hub::subscribe_many`](crate::Hub::subscribe_many))
    /// sends each event with an id of its own making, which holds the client's
    /// position in every topic: one `Last-Event-ID` resumes them all. The id
    /// starts with the index of the event's topic in the list of topics
    /// (duplicates removed), then a dot: `2.` is the third topic. Events are
    /// encoded once as for one topic; the id line is the connection's own
    /// (about 13 bytes per topic). Small bodies (up to 2 KiB) are copied with
    /// their id lines, ready events into one chunk of up to 16 KiB, which
    /// streams at the same place in the same topics share; a larger body is sent
    /// as the log holds it, its id line after it.
    ///
    /// Wrap it with [`Sse`](crate::Sse) (or use [`Hub::sse`](crate::Hub::sse))
    /// for keep-alive and the retry hint.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use futures_util::StreamExt;
    ///
    /// let hub = ssekit::Hub::new();
    /// let mut subscription = hub.subscribe("news", ssekit::Resume::Live).await?
    ///     .on_close(|| println!("client left"));
    /// hub.publish("news", ssekit::Event::new().data("a")).await?;
    /// hub.publish("news", ssekit::Event::new().data("b")).await?;
    /// let chunk = subscription.next().await.unwrap(); // both frames, one chunk
    /// assert_eq!(chunk.windows(5).filter(|w| w == b"data:").count(), 2);
    /// # Ok(()) }
    /// ```
    pub struct Subscription {
        hub: Arc<Shared>,
        cursors: Cursors,
        // What only a stream of several topics needs (`None` for one topic).
        several: Option<Box<Several>>,
        // A chunk to send before anything else: a `reset` frame, the hub's final
        // frame, or the id line that ends an event of several topics' stream.
        pending: Option<Bytes>,
        // Why the stream ended, once it has (counted then).
        end: Option<Disconnect>,
        // Boxed twice: few subscriptions have one, and the others carry a
        // thin pointer.
        on_close: Option<Box<OnClose>>,
    }

    impl PinnedDrop for Subscription {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            this.hub.counters.subscribers.fetch_sub(1, Relaxed);
            if this.end.is_none() {
                // Never polled since the hub closed, or dropped by its client.
                let closed = this.hub.shutdown.is_triggered();
                this.hub.counters.disconnect(if closed { Disconnect::Closed } else { Disconnect::Client });
            }
            for cursor in this.cursors.iter_mut() {
                cursor.unregister();
                leave(this.hub, &cursor.topic);
            }
            if let Some(on_close) = this.on_close.take() {
                (on_close.0)();
            }
        }
    }
}

/// What a subscription runs when dropped ([`Subscription::on_close`]).
struct OnClose(Box<dyn FnOnce() + Send + Sync>);

/// The largest event body of a stream of several topics that is copied into
/// one chunk with the stream's id line, rather than sent as is and followed by
/// it: a copy of this size costs less than a second chunk (one more write, one
/// more poll of the connection's stream), and is what a connection holds at most
/// while its client does not read.
const SMALL_BODY: usize = 2 * 1024;

/// Counts a subscriber of `topic` out, and lets the hub drop the topic if it
/// was the last.
fn leave(hub: &Shared, topic: &Arc<Topic>) {
    if topic.remove_subscriber() {
        hub.registry.release(topic);
    }
}

impl Subscription {
    /// Subscribes to `names` (at least one, duplicates removed), starting as
    /// `resume` says; a new subscriber gets the last `history` retained events
    /// of each topic first.
    pub(super) fn new<T: AsRef<str>>(
        hub: Arc<Shared>,
        names: &[T],
        resume: Resume,
        history: usize,
    ) -> Result<Self, SubscribeError> {
        if hub.shutdown.is_triggered() {
            return Err(SubscribeError::Closed);
        }
        let mut unique: Vec<&str> = Vec::with_capacity(names.len());
        for name in names {
            if !unique.contains(&name.as_ref()) {
                unique.push(name.as_ref());
            }
        }
        let (max, max_history) = (hub.config.max_topics_per_subscription, hub.config.max_join_history);
        if unique.is_empty() || unique.len() > max {
            return Err(SubscribeError::Topics { count: unique.len(), max });
        }
        let start = |index| match &resume {
            Resume::Live => Start::Live { history: history.min(max_history) },
            Resume::Invalid(_) => Start::Malformed,
            Resume::After(id) => match compound_id::parse(id.as_str(), max) {
                Some(positions) => Start::After { positions: positions.into(), index },
                None => Start::Malformed,
            },
        };
        // Every topic or none: a refused one gives back those taken before it.
        let mut topics = Vec::with_capacity(unique.len());
        for name in &unique {
            match hub.topic_with(name, Topic::add_subscriber) {
                Ok(topic) => topics.push(topic),
                Err(err) => {
                    for topic in &topics {
                        leave(&hub, topic);
                    }
                    return Err(err.into());
                }
            }
        }
        hub.counters.subscribers.fetch_add(1, Relaxed);
        let mut subscription = Self {
            several: (topics.len() > 1).then(Box::default),
            cursors: topics
                .into_iter()
                .enumerate()
                .map(|(index, topic)| Cursor::new(topic, start(index)))
                .collect::<Vec<_>>()
                .into(),
            hub,
            pending: None,
            end: None,
            on_close: None,
        };
        // The start is picked now where the log is ready, so that "live" means
        // from the moment of subscribing, not of the first poll.
        subscription.begin_ready(None);
        Ok(subscription)
    }

    /// Picks the start of every cursor whose log is ready (registering the task
    /// with each topic first, when given one). Returns whether one still waits.
    fn begin_ready(&mut self, cx: Option<&Context<'_>>) -> bool {
        let mut waiting = false;
        for index in 0..self.cursors.len() {
            let cursor = &mut self.cursors[index];
            if let Some(cx) = cx {
                cursor.register(cx);
            }
            if let Some(begin) = cursor.try_begin() {
                self.begun(index, begin);
            }
            waiting |= self.cursors[index].waiting();
        }
        waiting
    }

    /// Waits until every topic's log is loaded and its start picked (at once on
    /// a hub without a backplane).
    pub(super) async fn started(&mut self) {
        std::future::poll_fn(|cx| {
            if self.hub.shutdown.is_triggered() || !self.begin_ready(Some(cx)) {
                return Poll::Ready(());
            }
            Poll::Pending
        })
        .await;
    }

    /// Counts how the `index`-th cursor began, and owes a reset if it must.
    fn begun(&mut self, index: usize, begin: Begin) {
        match begin {
            Begin::Live => {}
            Begin::Exact => {
                self.hub.counters.resumes_exact.fetch_add(1, Relaxed);
            }
            Begin::Reset(reason) => self.owe_reset(index, reason),
        }
    }

    fn owe_reset(&mut self, index: usize, reason: ResetReason) {
        self.hub.counters.reset(reason);
        self.cursors[index].owed_reset = Some(reason);
    }

    /// The `reset` frame the cursor of a stream of one topic owes, with the id
    /// to resume from (see [`Several::reset_frame`] for several topics).
    fn reset_frame(&self, reason: ResetReason) -> Bytes {
        let cursor = &self.cursors[0];
        self.hub.config.resets.frame(&cursor.topic.name, reason, cursor.position())
    }

    /// Ends the stream for `reason`, counted once.
    fn end(&mut self, reason: Disconnect) {
        if self.end.is_none() {
            self.end = Some(reason);
            self.hub.counters.disconnect(reason);
        }
    }

    /// Its connection reached its maximum lifetime: counted as such, not as a
    /// client that left.
    pub(crate) fn lifetime_over(&mut self) {
        self.end(Disconnect::Lifetime);
    }

    /// Its client stalled and its connection is dropped: counted as such, not
    /// as a client that left.
    pub(crate) fn stalled(&mut self) {
        self.end(Disconnect::Stalled);
    }

    /// Whether events wait that it has not yielded (or a chunk it holds).
    pub(crate) fn behind(&self) -> bool {
        self.pending.is_some() || self.cursors.iter().any(|cursor| !cursor.quiet())
    }

    /// A chunk taken but not yielded yet (the id line of an event whose body was
    /// yielded), to send before the stream ends.
    pub(crate) fn take_held(&mut self) -> Option<Bytes> {
        self.pending.take()
    }

    /// Runs `on_close` when the subscription is dropped: when its client left or
    /// its stream ended.
    ///
    /// # Examples
    ///
    /// ```
    /// let hub = ssekit::Hub::new();
    /// let subscription = hub.try_subscribe("news", ssekit::Resume::Live)?.on_close(|| println!("left"));
    /// drop(subscription); // prints "left"
    /// # Ok::<(), ssekit::SubscribeError>(())
    /// ```
    pub fn on_close(mut self, on_close: impl FnOnce() + Send + Sync + 'static) -> Self {
        self.set_on_close(Box::new(on_close));
        self
    }

    pub(crate) fn set_on_close(&mut self, on_close: Box<dyn FnOnce() + Send + Sync>) {
        self.on_close = Some(Box::new(OnClose(on_close)));
    }

    /// The topic followed (the first one, for several topics).
    pub fn topic(&self) -> &str {
        &self.cursors[0].topic.name
    }

    /// The topics followed, in the order of their index in the ids.
    ///
    /// # Examples
    ///
    /// ```
    /// let hub = ssekit::Hub::new();
    /// let subscription = hub.try_subscribe_many(&["b", "a", "b"], ssekit::Resume::Live, 0)?;
    /// assert_eq!(subscription.topics().collect::<Vec<_>>(), ["b", "a"]);
    /// # Ok::<(), ssekit::SubscribeError>(())
    /// ```
    pub fn topics(&self) -> impl Iterator<Item = &str> {
        self.cursors.iter().map(|cursor| &*cursor.topic.name)
    }

    /// The id of the last event yielded or skipped by a reset, in the (first)
    /// topic: a client that saw everything so far resumes from here.
    pub fn position(&self) -> EventId {
        self.cursors[0].position()
    }
}

impl Stream for Subscription {
    type Item = Bytes;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        // No field is pinned: the subscription is `Unpin`.
        let this = self.get_mut();
        match this.cursors {
            Cursors::One(_) => this.poll_one(cx),
            Cursors::Several(_) => this.poll_several(cx),
        }
    }
}

impl Subscription {
    /// What every poll checks first: a chunk in hand, the end, the hub closing.
    fn poll_pending(&mut self) -> Option<Poll<Option<Bytes>>> {
        if let Some(chunk) = self.pending.take() {
            return Some(Poll::Ready(Some(chunk)));
        }
        if self.end.is_some() {
            return Some(Poll::Ready(None));
        }
        if self.hub.shutdown.is_triggered() {
            self.end(Disconnect::Closed);
            // The hub's final frame, if any, then the end.
            return Some(Poll::Ready(self.hub.final_frame.get().cloned()));
        }
        None
    }

    /// A lag of the `index`-th cursor, handled by the hub's policy. Returns
    /// whether the stream goes on.
    fn lagged(&mut self, index: usize, first: u64) -> bool {
        match self.hub.config.lag_policy {
            LagPolicy::Reset => {
                self.cursors[index].skip_to(first);
                self.owe_reset(index, ResetReason::Lagged);
                true
            }
            LagPolicy::Disconnect => {
                self.end(Disconnect::Lagged);
                false
            }
        }
    }

    /// The stream of one topic: its frames as the log holds them, several
    /// ready ones in a chunk. (Apart from the several topics' loop: this is the
    /// path of every delivery to a subscriber of one topic.)
    fn poll_one(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        // Before anything that may find nothing to do: see `Wakers::register`.
        self.cursors.first().register(cx);
        loop {
            if let Some(poll) = self.poll_pending() {
                return poll;
            }
            let cursor = self.cursors.first();
            if let Some(reason) = cursor.owed_reset.take() {
                return Poll::Ready(Some(self.reset_frame(reason)));
            }
            match cursor.step(false) {
                Step::Frames(frames) => return Poll::Ready(Some(frames)),
                Step::Idle => return Poll::Pending,
                Step::Began(begin) => self.begun(0, begin),
                Step::Lagged(first) => {
                    self.lagged(0, first);
                }
            }
        }
    }

    /// The stream of several topics, each in turn, one frame at a time with
    /// this stream's own ids.
    fn poll_several(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let Some(mut several) = self.several.take() else {
            return self.poll_one(cx);
        };
        let poll = several.poll(self, cx);
        self.several = Some(several);
        poll
    }
}

/// What a stream of several topics keeps besides its cursors.
#[derive(Debug, Default)]
struct Several {
    /// The cursor to serve first at the next poll: topics take turns.
    turn: usize,
    /// The text of each topic's position in the stream's ids, kept while it holds.
    ids: compound_id::Ids,
    /// The waker every cursor was last registered with: while it holds, none
    /// needs registering again.
    registered: Option<Waker>,
    /// Where the stream stands, and where it stood after its last chunk, as
    /// [`recent::Batch`] keeps them (buffers kept for reuse).
    place: Vec<u64>,
    after: Vec<u64>,
}

impl Several {
    /// The `reset` frame the `index`-th cursor owes, with the id to resume from.
    fn reset_frame(&mut self, index: usize, reason: ResetReason, stream: &Subscription) -> Bytes {
        let resets = &stream.hub.config.resets;
        let mut frame = resets.body(&stream.cursors[index].topic.name, reason, true);
        frame.extend_from_slice(self.tail(index, &stream.cursors));
        frame.freeze()
    }

    fn poll(&mut self, stream: &mut Subscription, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        // Before anything that may find nothing to do: see `Wakers::register`.
        if !self.registered.as_ref().is_some_and(|waker| waker.will_wake(cx.waker())) {
            for cursor in stream.cursors.iter_mut() {
                cursor.register(cx);
            }
            self.registered = Some(cx.waker().clone());
        }
        if let Some(poll) = stream.poll_pending() {
            return poll;
        }
        let mut busy = false;
        let mut shared = true;
        for cursor in stream.cursors.iter() {
            busy |= !cursor.quiet();
            shared &= cursor.settled();
        }
        if !busy {
            return Poll::Pending;
        }
        if shared {
            // Another stream on this thread, at the same place in the same
            // topics, may have sent the chunk this one would build.
            self.place.clear();
            self.place.push(self.turn as u64);
            self.place.extend(stream.cursors.iter().flat_map(Cursor::place));
            let (turn, cursors) = (&mut self.turn, &mut stream.cursors);
            let hit = recent::batch(&self.place, |after| {
                *turn = after[0] as usize;
                for (cursor, at) in cursors.iter_mut().zip(after[1..].chunks_exact(2)) {
                    cursor.rewind((at[0], at[1]));
                }
            });
            if let Some(chunk) = hit {
                return Poll::Ready(Some(chunk));
            }
        }
        // Small events, each with this stream's own id, copied into one chunk
        // (up to `MAX_BATCH` bytes): one write for many, as for one topic.
        let mut batch: Option<Vec<u8>> = None;
        let count = stream.cursors.len();
        // Passes over the topics, from the one whose turn it is, each giving
        // every topic one event. A topic found idle is not looked at again in
        // this poll: the task is registered, a publish to it wakes the task.
        let mut look = u64::MAX >> (64 - count);
        'passes: while look != 0 {
            let mut again = 0;
            let first = self.turn;
            while look != 0 {
                // The next topic to look at: from the one whose turn it is up,
                // then from the first.
                let from_first = look & (u64::MAX << first);
                let index = (if from_first != 0 { from_first } else { look }).trailing_zeros() as usize;
                let bit = 1 << index;
                look &= !bit;
                let cursor = &mut stream.cursors[index];
                if cursor.quiet() {
                    continue;
                }
                if cursor.owed_reset.is_some() {
                    if batch.is_some() {
                        break 'passes;
                    }
                    let reason = cursor.owed_reset.take().expect("checked");
                    self.turn = if index + 1 == count { 0 } else { index + 1 };
                    return Poll::Ready(Some(self.reset_frame(index, reason, stream)));
                }
                let before = cursor.mark();
                match cursor.step(true) {
                    Step::Began(begin) => {
                        stream.begun(index, begin);
                        shared = false;
                        again |= bit;
                    }
                    Step::Frames(frame) => {
                        let body = frame.len() - id_tail_len(cursor.position().text_len());
                        if body > SMALL_BODY && batch.is_some() {
                            // Sent on its own, at the next poll.
                            cursor.rewind(before);
                            break 'passes;
                        }
                        self.turn = if index + 1 == count { 0 } else { index + 1 };
                        let tail = self.tail(index, &stream.cursors);
                        if body > SMALL_BODY {
                            // Shared with the log as it is; this stream's id line after it.
                            stream.pending = Some(Bytes::copy_from_slice(tail));
                            return Poll::Ready(Some(frame.slice(..body)));
                        }
                        // Mostly the only event: a chunk of its size.
                        let chunk = batch.get_or_insert_with(|| Vec::with_capacity(body + tail.len()));
                        chunk.extend_from_slice(&frame[..body]);
                        chunk.extend_from_slice(tail);
                        if chunk.len() >= MAX_BATCH {
                            break 'passes;
                        }
                        again |= bit;
                    }
                    Step::Lagged(first) => {
                        shared = false;
                        if !stream.lagged(index, first) {
                            // The end: what is in hand first.
                            break 'passes;
                        }
                        again |= bit;
                    }
                    Step::Idle => {}
                }
            }
            look = again;
        }
        let Some(batch) = batch else {
            return stream.poll_pending().unwrap_or(Poll::Pending);
        };
        // A fresh allocation, not a buffer kept by this stream: the allocator
        // mostly hands back memory just freed, still in the cache.
        let chunk = Bytes::from(batch);
        if shared {
            self.after.clear();
            self.after.push(self.turn as u64);
            self.after.extend(stream.cursors.iter().flat_map(|cursor| <[u64; 2]>::from(cursor.mark())));
            recent::put_batch(&mut self.place, &chunk, &mut self.after);
        }
        Poll::Ready(Some(chunk))
    }

    /// The end of an event of the `index`-th topic: this stream's id line.
    fn tail(&mut self, index: usize, cursors: &[Cursor]) -> &[u8] {
        self.ids.tail(index, cursors.iter().map(Cursor::position))
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("topics", &self.topics().collect::<Vec<_>>())
            .field("position", &self.position())
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}
