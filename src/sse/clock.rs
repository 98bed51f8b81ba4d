//! [`Alarm`]: the keep-alive and lifetime deadlines of idle streams, kept by
//! one clock per runtime thread rather than a timer per stream.
//!
//! An idle SSE connection waits for two things: its next event, which the hub
//! wakes it for, and its next keep-alive comment (or the end of its lifetime).
//! A tokio `Sleep` per stream costs each idle connection 112 bytes of heap
//! plus a pointer; here a stream holds a slot in a shared table (its waker and
//! its deadline, 24 bytes) and an entry in that table's queue of deadlines (16
//! bytes), about 60 % of that with its handle, and one task per clock sleeps
//! until the earliest deadline and wakes the streams that are due. Deadlines
//! are kept to the millisecond, as tokio's timer keeps them.
//!
//! A stream writing data does not touch its alarm: its deadline only moves
//! later then, so the alarm is left where it is and, when it fires early, the
//! stream sets it again (as it did with its own timer). An alarm is moved only
//! to an earlier deadline, so that a stream's queue entries do not pile up.
//!
//! The clock of a thread belongs to the runtime it was made in (its task runs
//! there); a thread that enters another runtime gets another clock. A clock's
//! task ends when nothing uses the clock any more (no stream, and no thread
//! keeps it), or with its runtime: then every stream it held is woken, and sets
//! its alarm again on the clock of the runtime polling it.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Poll, Waker};
use std::time::Duration;

use tokio::runtime::{Handle, Id};
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

/// Not armed: no deadline.
const UNARMED: u64 = u64::MAX;

/// An optional duration in whole milliseconds, 8 bytes where an
/// `Option<Duration>` takes 16: what a stream keeps of its intervals (alarms
/// fire to the millisecond, and the retry hint is sent in milliseconds).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Millis(u64);

impl Millis {
    const NONE: Self = Self(u64::MAX);
    /// The longest duration kept: 584 million years.
    const MAX: u64 = u64::MAX - 1;

    /// An interval, rounded up to the millisecond (a non-zero one stays
    /// non-zero).
    pub(super) fn interval(duration: Option<Duration>) -> Self {
        duration.map_or(Self::NONE, |d| Self::clamped(d.as_nanos().div_ceil(1_000_000)))
    }

    /// A retry hint, in the milliseconds it is sent in (rounded down).
    pub(super) fn hint(duration: Option<Duration>) -> Self {
        duration.map_or(Self::NONE, |d| Self::clamped(d.as_millis()))
    }

    /// `ms` milliseconds, or the longest kept.
    fn clamped(ms: u128) -> Self {
        Self(u64::try_from(ms).map_or(Self::MAX, |ms| ms.min(Self::MAX)))
    }

    pub(super) fn get(self) -> Option<Duration> {
        (self != Self::NONE).then(|| Duration::from_millis(self.0))
    }

    /// The duration, leaving none.
    pub(super) fn take(&mut self) -> Option<Duration> {
        std::mem::replace(self, Self::NONE).get()
    }
}

impl fmt::Debug for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

/// A stream's deadline on its thread's clock.
#[derive(Default)]
pub(super) struct Alarm {
    /// The clock, the stream's slot in it and the deadline set there (in
    /// milliseconds after the clock's start; [`UNARMED`] once it fired).
    slot: Option<(Arc<Clock>, u32, u64)>,
}

impl Alarm {
    /// Whether the alarm is set and has not fired: the stream need not set it
    /// again while the deadline it wants is no earlier and its waker is the
    /// same. (An alarm set for a millisecond the clock has already passed
    /// still fires, at once, but does not count as set.)
    pub(super) fn is_armed(&self) -> bool {
        self.slot.as_ref().is_some_and(|(clock, _, at)| *at != UNARMED && *at > clock.fired.load(Ordering::Acquire))
    }

    /// Wakes `waker` at `deadline` (to the millisecond, rounded up), or
    /// earlier where the alarm was set earlier and has not fired yet; the
    /// waker replaces the one set before.
    ///
    /// # Panics
    ///
    /// When the alarm needs a clock (its first deadline, or its clock's
    /// runtime has shut down) and this thread is in no Tokio runtime, or in
    /// one without timers: as a tokio timer made there would.
    pub(super) fn set(&mut self, deadline: Instant, waker: &Waker) {
        // A stream polled in another runtime than before moves to its clock;
        // one polled outside any keeps the clock it has while that runs.
        let here = Handle::try_current().ok();
        if self.slot.as_ref().is_some_and(|(clock, _, _)| match &here {
            Some(here) => !clock.serves(here),
            None => clock.stopped.load(Ordering::Acquire),
        }) {
            self.clear();
        }
        let (clock, key, at) = self.slot.get_or_insert_with(|| {
            let clock = Clock::current(here.as_ref());
            let key = clock.lock().slot();
            (clock, key, UNARMED)
        });
        let new = clock.millis(deadline);
        // A waker replaced is dropped after the lock: dropping one may run any
        // code (even drop another stream, which takes this lock).
        let mut replaced = None;
        let mut state = clock.lock();
        // Its runtime shut down since the check above: the stream is woken
        // to set its alarm again.
        let stopped = clock.stopped.load(Ordering::Acquire);
        let slot = &mut state.slots[*key as usize];
        if !slot.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            replaced = slot.waker.replace(waker.clone());
        }
        // Moved only earlier: a later deadline waits for the earlier one to
        // fire (the stream then sets it again), so that each stream has one
        // live entry in the queue, not one per deadline it wanted.
        if new < slot.at {
            slot.at = new;
            state.queue.push(Reverse((new, *key)));
            if new < state.ticker_at {
                // The clock's task sleeps past this deadline: it looks again.
                clock.changed.notify_one();
            }
        }
        *at = state.slots[*key as usize].at;
        drop(state);
        drop(replaced);
        if stopped {
            waker.wake_by_ref();
        }
    }

    /// Gives the slot back.
    fn clear(&mut self) {
        if let Some((clock, key, _)) = self.slot.take() {
            let waker = clock.lock().free(key);
            drop(waker);
        }
    }
}

impl Drop for Alarm {
    fn drop(&mut self) {
        self.clear();
    }
}

impl fmt::Debug for Alarm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Alarm").field("at_ms", &self.slot.as_ref().map(|(_, _, at)| *at)).finish()
    }
}

/// The deadlines of the streams of one runtime thread; the clock's task fires
/// them.
struct Clock {
    state: Mutex<State>,
    /// Milliseconds are counted from here.
    start: Instant,
    /// Every deadline up to this one (in milliseconds) has fired.
    fired: AtomicU64,
    /// The runtime the clock's task runs in.
    runtime: Id,
    /// The clock's task has ended (its runtime shut down).
    stopped: AtomicBool,
    /// Tells the clock's task that a deadline earlier than its own came, or
    /// that the clock is gone. (Shared with the task, which holds the clock
    /// only weakly.)
    changed: Arc<Notify>,
}

#[derive(Default)]
struct State {
    slots: Vec<Slot>,
    /// The free slots below the last one in use; the lowest is taken first,
    /// so that the slots in use gather at the start and the end can be cut
    /// off.
    free: BTreeSet<u32>,
    /// Deadlines and their slots, earliest first. An entry whose slot holds
    /// another deadline by now (fired and set again, or given back) is
    /// skipped.
    queue: BinaryHeap<Reverse<(u64, u32)>>,
    /// When the clock's task wakes next ([`UNARMED`]: when told).
    ticker_at: u64,
}

struct Slot {
    waker: Option<Waker>,
    at: u64,
}

thread_local! {
    /// This thread's clock, for the runtime it was made in.
    static CLOCK: RefCell<Option<Arc<Clock>>> = const { RefCell::new(None) };
}

impl Clock {
    /// The clock of this thread and runtime (`here`, else the current one),
    /// made (and its task started) at first use.
    fn current(here: Option<&Handle>) -> Arc<Self> {
        let runtime = here.cloned().unwrap_or_else(Handle::current);
        let cached = CLOCK.try_with(|clock| {
            let mut clock = clock.borrow_mut();
            match clock.as_ref().filter(|clock| clock.serves(&runtime)) {
                Some(clock) => clock.clone(),
                None => clock.insert(Self::start(&runtime)).clone(),
            }
        });
        // A thread whose locals are gone (a stream polled while its thread
        // exits) gets a clock of its own.
        cached.unwrap_or_else(|_| Self::start(&runtime))
    }

    /// Whether the clock is that of `runtime`, and runs.
    fn serves(&self, runtime: &Handle) -> bool {
        self.runtime == runtime.id() && !self.stopped.load(Ordering::Acquire)
    }

    /// A new clock, its task started in `runtime`.
    fn start(runtime: &Handle) -> Arc<Self> {
        let start = Instant::now();
        // Made here, so that a runtime without timers panics in the stream that
        // needs one, as a tokio timer would, not in the clock's task.
        let sleep = Box::pin(tokio::time::sleep_until(start));
        let changed = Arc::new(Notify::new());
        let clock = Arc::new(Self {
            state: Mutex::new(State { ticker_at: UNARMED, ..State::default() }),
            start,
            fired: AtomicU64::new(0),
            runtime: runtime.id(),
            stopped: AtomicBool::new(false),
            changed: changed.clone(),
        });
        runtime.spawn(run(Stop(Arc::downgrade(&clock)), changed, sleep));
        clock
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No code that may panic runs while an update is half done (wakers are
        // woken and dropped after the lock), so a poisoned lock is consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `deadline` in milliseconds after the clock's start, rounded up.
    fn millis(&self, deadline: Instant) -> u64 {
        Millis::interval(Some(deadline.saturating_duration_since(self.start))).0
    }

    /// Fires the deadlines up to `now`; the next one.
    fn fire(&self, now: Instant) -> Option<u64> {
        let now = self.millis(now);
        let mut due = Vec::new();
        let next = {
            let mut state = self.lock();
            while let Some(&Reverse((at, key))) = state.queue.peek() {
                if at > now {
                    break;
                }
                state.queue.pop();
                if let Some(slot) = state.slots.get_mut(key as usize).filter(|slot| slot.at == at) {
                    slot.at = UNARMED;
                    due.extend(slot.waker.take());
                }
            }
            // The queue keeps entries of slots given back; its space is given
            // back once it is mostly empty.
            if state.queue.capacity() > 64 && state.queue.len() * 4 < state.queue.capacity() {
                let len = state.queue.len();
                state.queue.shrink_to(len * 2);
            }
            let next = state.queue.peek().map(|&Reverse((at, _))| at);
            state.ticker_at = next.unwrap_or(UNARMED);
            self.fired.store(now, Ordering::Release);
            next
        };
        due.into_iter().for_each(Waker::wake);
        next
    }
}

impl Drop for Clock {
    fn drop(&mut self) {
        // Nothing uses the clock any more: its task ends.
        self.changed.notify_one();
    }
}

impl State {
    fn slot(&mut self) -> u32 {
        if let Some(key) = self.free.pop_first() {
            return key;
        }
        self.slots.push(Slot { waker: None, at: UNARMED });
        u32::try_from(self.slots.len() - 1).expect("fewer than 4 billion streams per thread")
    }

    /// Frees a slot; its waker, to drop after the lock.
    fn free(&mut self, key: u32) -> Option<Waker> {
        let slot = &mut self.slots[key as usize];
        let waker = slot.waker.take();
        slot.at = UNARMED;
        self.free.insert(key);
        // Free slots at the end are cut off, and the table's space given back
        // once three quarters of it are unused, so that it stays as long as
        // its highest slot in use, not as the most streams it ever held.
        while self.free.last().is_some_and(|&last| last as usize + 1 == self.slots.len()) {
            self.free.pop_last();
            self.slots.pop();
        }
        if self.slots.len() * 4 < self.slots.capacity() {
            self.slots.shrink_to(self.slots.len() * 2);
        }
        if self.slots.is_empty() {
            // No stream holds a slot: every deadline queued is void.
            self.queue = BinaryHeap::new();
        }
        waker
    }
}

/// A clock's end, with its task (even one never polled): every stream it
/// still holds is woken to set its alarm again elsewhere.
struct Stop(Weak<Clock>);

impl Drop for Stop {
    fn drop(&mut self) {
        let Some(clock) = self.0.upgrade() else {
            return;
        };
        clock.stopped.store(true, Ordering::Release);
        // No alarm of this clock counts as set any more.
        clock.fired.store(UNARMED, Ordering::Release);
        let wakers: Vec<Waker> = clock.lock().slots.iter_mut().filter_map(|slot| slot.waker.take()).collect();
        wakers.into_iter().for_each(Waker::wake);
    }
}

/// The clock's task: sleeps until the earliest deadline, or until told of an
/// earlier one, and fires what is due; ends when the clock is gone.
async fn run(stop: Stop, changed: Arc<Notify>, mut sleep: Pin<Box<Sleep>>) {
    loop {
        let mut notified = pin!(changed.notified());
        // Registered before the deadlines are read: a deadline set after the
        // read, or the clock's end, is told.
        notified.as_mut().enable();
        // Held only while firing: the clock's last user may be gone.
        let Some(clock) = stop.0.upgrade() else {
            return;
        };
        let next = clock.fire(Instant::now());
        let deadline = next.and_then(|at| clock.start.checked_add(Duration::from_millis(at)));
        drop(clock);
        if let Some(deadline) = deadline {
            sleep.as_mut().reset(deadline);
        }
        poll_fn(|cx| {
            if notified.as_mut().poll(cx).is_ready() || (deadline.is_some() && sleep.as_mut().poll(cx).is_ready()) {
                return Poll::Ready(());
            }
            Poll::Pending
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    use super::*;

    /// A waker that counts its wake-ups.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count::default());
        (count.clone(), Waker::from(count))
    }

    fn woken(count: &Count) -> usize {
        count.0.load(Ordering::SeqCst)
    }

    #[tokio::test(start_paused = true)]
    async fn alarms_fire_at_their_deadline_once_and_in_order() {
        let start = Instant::now();
        let mut alarms: Vec<(Alarm, Arc<Count>)> = Vec::new();
        for secs in [3, 1, 2, 2] {
            let (count, waker) = counter();
            let mut alarm = Alarm::default();
            alarm.set(start + Duration::from_secs(secs), &waker);
            assert!(alarm.is_armed());
            alarms.push((alarm, count));
        }
        // Set again, later, with another waker: the earlier deadline holds (the
        // stream sets the later one when it fires), and wakes the new waker.
        let (count, waker) = counter();
        alarms[3].0.set(start + Duration::from_secs(5), &waker);
        alarms[3].1 = count;
        let fired = |alarms: &[(Alarm, Arc<Count>)]| alarms.iter().map(|(_, count)| woken(count)).collect::<Vec<_>>();
        tokio::time::sleep_until(start + Duration::from_millis(1500)).await;
        assert_eq!(fired(&alarms), [0, 1, 0, 0]);
        assert!(!alarms[1].0.is_armed() && alarms[0].0.is_armed());
        tokio::time::sleep_until(start + Duration::from_millis(2500)).await;
        assert_eq!(fired(&alarms), [0, 1, 1, 1]);
        // Set again after it fired: the later deadline now.
        alarms[3].0.set(start + Duration::from_secs(5), &waker);
        tokio::time::sleep_until(start + Duration::from_millis(4500)).await;
        assert_eq!(fired(&alarms), [1, 1, 1, 1]);
        tokio::time::sleep_until(start + Duration::from_secs(10)).await;
        assert_eq!(fired(&alarms), [1, 1, 1, 2]);
        assert!(alarms.iter().all(|(alarm, _)| !alarm.is_armed()));
        assert_eq!(Clock::current(None).lock().queue.len(), 0, "one queue entry per alarm, none left");
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_deadline_wakes_the_clock() {
        let start = Instant::now();
        let (late, late_waker) = counter();
        let mut first = Alarm::default();
        first.set(start + Duration::from_secs(3600), &late_waker);
        tokio::task::yield_now().await;
        let (soon, soon_waker) = counter();
        let mut second = Alarm::default();
        second.set(start + Duration::from_millis(10), &soon_waker);
        tokio::time::sleep_until(start + Duration::from_millis(11)).await;
        assert_eq!((woken(&soon), woken(&late)), (1, 0));
        // Set earlier on the same slot: the clock is told too.
        first.set(start + Duration::from_millis(20), &late_waker);
        tokio::time::sleep_until(start + Duration::from_millis(21)).await;
        assert_eq!(woken(&late), 1);
    }

    #[test]
    fn a_clock_whose_runtime_ends_wakes_its_streams_to_move() {
        let runtime = || tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let (count, waker) = counter();
        let mut alarm = Alarm::default();
        let first = runtime();
        first.block_on(async { alarm.set(Instant::now() + Duration::from_secs(3600), &waker) });
        assert_eq!(woken(&count), 0);
        drop(first);
        assert_eq!(woken(&count), 1, "woken when the clock's runtime shut down");
        assert!(!alarm.is_armed(), "and no longer counted as set");
        runtime().block_on(async {
            alarm.set(Instant::now() + Duration::from_millis(5), &waker);
            tokio::time::sleep(Duration::from_millis(50)).await;
        });
        assert_eq!(woken(&count), 2, "fired by the clock of the runtime polling it now");
    }

    /// A waker that owns a stream's alarm, as a task of an executor that keeps
    /// its future in its waker does.
    struct Owner(#[allow(dead_code)] Mutex<Option<Alarm>>);

    impl Wake for Owner {
        fn wake(self: Arc<Self>) {}
    }

    #[tokio::test(start_paused = true)]
    async fn a_waker_dropped_by_the_clock_may_drop_another_alarm() {
        let deadline = Instant::now() + Duration::from_secs(1);
        let (_count, plain) = counter();
        let owner = || {
            let mut owned = Alarm::default();
            owned.set(deadline, &plain);
            Waker::from(Arc::new(Owner(Mutex::new(Some(owned)))))
        };
        // Replaced: the clock drops the last reference to the owner, which
        // drops the alarm it owns, which takes the clock's lock.
        let mut alarm = Alarm::default();
        alarm.set(deadline, &owner());
        alarm.set(deadline, &plain);
        // Given back with the owner in its slot: the same.
        alarm.set(deadline, &owner());
        drop(alarm);
        // Fired: the owner is woken and dropped by the clock's task.
        let mut alarm = Alarm::default();
        alarm.set(deadline, &owner());
        tokio::time::sleep_until(deadline + Duration::from_millis(1)).await;
        assert!(!alarm.is_armed());
    }

    #[tokio::test(start_paused = true)]
    async fn slots_are_reused_and_given_back() {
        let (_count, waker) = counter();
        let clock = Clock::current(None);
        let mut alarms: Vec<Alarm> = (0..100).map(|_| Alarm::default()).collect();
        for alarm in &mut alarms {
            alarm.set(Instant::now() + Duration::from_secs(1), &waker);
        }
        assert_eq!(clock.lock().slots.len(), 100);
        alarms.truncate(50);
        for _ in 0..50 {
            let mut alarm = Alarm::default();
            alarm.set(Instant::now() + Duration::from_secs(1), &waker);
            alarms.push(alarm);
        }
        assert_eq!(clock.lock().slots.len(), 100, "freed slots are taken first");
        // The last half given back: the table is cut to the first half.
        alarms.drain(..50).for_each(drop);
        assert_eq!(clock.lock().slots.len(), 100, "slots in use at the end keep it long");
        alarms.truncate(0);
        assert_eq!(clock.lock().slots.len(), 0);
        let mut alarms: Vec<Alarm> = (0..100).map(|_| Alarm::default()).collect();
        for alarm in &mut alarms {
            alarm.set(Instant::now() + Duration::from_secs(1), &waker);
        }
        alarms.truncate(10);
        assert_eq!(clock.lock().slots.len(), 10, "free slots at the end are cut off");
        drop(alarms);
        assert_eq!(clock.lock().slots.capacity(), 0, "an unused table is given back");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(clock.lock().queue.is_empty());
    }

    /// The tasks alive in `runtime`, once it has run what is ready.
    fn alive(runtime: &tokio::runtime::Runtime) -> usize {
        runtime.block_on(async {
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
        });
        runtime.metrics().num_alive_tasks()
    }

    #[test]
    fn a_clock_nothing_uses_ends_its_task() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let before = alive(&runtime);
        // Threads that come and go (a blocking pool's), each with a stream.
        for _ in 0..20 {
            let handle = runtime.handle().clone();
            std::thread::spawn(move || {
                let _runtime = handle.enter();
                let (_count, waker) = counter();
                let mut alarm = Alarm::default();
                alarm.set(Instant::now() + Duration::from_secs(3600), &waker);
            })
            .join()
            .unwrap();
        }
        assert_eq!(alive(&runtime), before, "each clock's task ended with its thread and stream");
        // A stream that outlives its thread keeps the clock until it is dropped.
        let handle = runtime.handle().clone();
        let (_count, waker) = counter();
        let alarm = std::thread::spawn(move || {
            let _runtime = handle.enter();
            let mut alarm = Alarm::default();
            alarm.set(Instant::now() + Duration::from_secs(3600), &waker);
            alarm
        })
        .join()
        .unwrap();
        assert_eq!(alive(&runtime), before + 1);
        drop(alarm);
        assert_eq!(alive(&runtime), before);
    }

    #[test]
    fn an_alarm_set_outside_a_runtime_keeps_its_clock() {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_time().build().unwrap();
        let (count, waker) = counter();
        let mut alarm = Alarm::default();
        runtime.block_on(async { alarm.set(Instant::now() + Duration::from_secs(3600), &waker) });
        // Moved to a thread in no runtime, and set again there.
        let mut alarm = std::thread::spawn(move || {
            alarm.set(Instant::now() + Duration::from_millis(20), &waker);
            alarm
        })
        .join()
        .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(woken(&count), 1, "fired by the clock it had");
        assert!(!alarm.is_armed());
        drop(runtime);
        // Its clock stopped: a new one needs a runtime.
        let (_count, waker) = counter();
        let result = std::thread::spawn(move || alarm.set(Instant::now(), &waker)).join();
        assert!(result.is_err(), "no runtime to make a clock in");
    }
}
