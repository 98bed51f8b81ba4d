//! [`Wakers`]: the tasks to wake when a topic changes.
//!
//! A subscriber registers its task's waker once and leaves it registered for as
//! long as it lives; it writes to the shared set again only when its waker
//! changes (another task polls it). A publish wakes every registered waker. So a
//! delivery costs the publisher one wake-up and the subscriber no shared write,
//! where a waiter list (`tokio::sync::Notify`) has every subscriber lock and
//! re-enqueue itself after every event.
//!
//! Waking a subscriber that is not waiting (it is still writing an earlier
//! chunk) is harmless: its task is already scheduled or running, and the wake
//! only marks it to be polled once more.
//!
//! The set is a slab, `Vec<Option<Waker>>` with a free list, behind a mutex
//! (tokio's `Notify` keeps an intrusive list, which needs `unsafe`; this crate
//! forbids it). It holds one slot per subscriber that was polled and is not
//! dropped. A new subscriber takes the lowest free slot, and free slots at the
//! end are cut off, so the slab stays as long as its highest slot in use, not
//! as the topic's peak number of subscribers: a publish walks that far, and
//! spare capacity is given back once three quarters of it are unused.

use std::collections::BTreeSet;
use std::task::Waker;

use super::sync::{Mutex, MutexGuard};

/// How many wakers are taken out per lock: wakers run outside the lock (a waker
/// may do anything, even register again), and subscribers that come or go
/// during a large publish wait for at most one batch.
const BATCH: usize = 32;

#[derive(Debug, Default)]
pub(crate) struct Wakers {
    slots: Mutex<Slots>,
}

#[derive(Debug, Default)]
struct Slots {
    wakers: Vec<Option<Waker>>,
    /// The free slots below the last one in use; the lowest is reused first, so
    /// that the slots in use gather at the start and the end can be cut off.
    /// (Registering and leaving are once per subscriber, not per event.)
    free: BTreeSet<usize>,
}

/// A subscriber's place in a [`Wakers`] set, and the waker it holds there.
#[derive(Debug)]
pub(crate) struct Registration {
    key: usize,
    waker: Waker,
}

impl Slots {
    /// Cuts off the free slots at the end, and gives back the capacity when
    /// three quarters of it are unused (all of it when no slot is in use).
    fn trim(&mut self) {
        while let Some(None) = self.wakers.last() {
            self.wakers.pop();
            self.free.remove(&self.wakers.len());
        }
        if self.wakers.len() * 4 < self.wakers.capacity() {
            self.wakers.shrink_to(self.wakers.len() * 2);
        }
    }
}

impl Wakers {
    fn slots(&self) -> MutexGuard<'_, Slots> {
        // No waker code runs while an update is half done (wakers are cloned
        // before the updates that store them, and dropped after the lock), so a
        // poisoned lock is consistent.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes sure `waker` is woken by the next [`Wakers::wake_all`]. Takes the
    /// lock only the first time and when the task's waker changed.
    ///
    /// Call it before reading what the waker waits for: a change made after the
    /// read is then followed by a wake-up of this waker.
    pub(crate) fn register(&self, registration: &mut Option<Registration>, waker: &Waker) {
        match registration {
            Some(registration) if registration.waker.will_wake(waker) => {}
            Some(registration) => {
                registration.waker = waker.clone();
                let stored = waker.clone();
                let old = self.slots().wakers[registration.key].replace(stored);
                // Dropped after the lock: dropping a waker may run any code.
                drop(old);
            }
            None => {
                let stored = Some(waker.clone());
                let mut slots = self.slots();
                let key = match slots.free.pop_first() {
                    Some(key) => {
                        slots.wakers[key] = stored;
                        key
                    }
                    None => {
                        slots.wakers.push(stored);
                        slots.wakers.len() - 1
                    }
                };
                drop(slots);
                *registration = Some(Registration { key, waker: waker.clone() });
            }
        }
    }

    /// Removes a registration (its subscriber is dropped).
    pub(crate) fn unregister(&self, registration: Registration) {
        let mut slots = self.slots();
        let old = slots.wakers[registration.key].take();
        slots.free.insert(registration.key);
        slots.trim();
        drop(slots);
        // Wakers are dropped after the lock: dropping one may run any code.
        drop((old, registration));
    }

    /// Wakes every registered waker; call it after the change it announces.
    pub(crate) fn wake_all(&self) {
        let mut batch: [Option<Waker>; BATCH] = Default::default();
        let mut next = 0;
        loop {
            let mut taken = 0;
            {
                let slots = self.slots();
                for waker in slots.wakers.iter().skip(next).take(BATCH) {
                    next += 1;
                    if let Some(waker) = waker {
                        batch[taken] = Some(waker.clone());
                        taken += 1;
                    }
                }
                if taken == 0 && next >= slots.wakers.len() {
                    return;
                }
            }
            for waker in &mut batch[..taken] {
                if let Some(waker) = waker.take() {
                    waker.wake();
                }
            }
        }
    }
}

/// A waker that counts its wake-ups, for the tests here and the loom model.
#[cfg(test)]
pub(crate) mod counting {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::task::{Wake, Waker};

    use crate::hub::sync::AtomicUsize;

    #[derive(Default)]
    pub(crate) struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A waker and its count.
    pub(crate) fn counting() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count::default());
        (count.clone(), Waker::from(count))
    }

    /// How many times `count`'s waker was woken.
    pub(crate) fn woken(count: &Count) -> usize {
        count.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::counting::{counting, woken};
    use super::*;

    fn len(wakers: &Wakers) -> (usize, usize) {
        let slots = wakers.slots();
        (slots.wakers.len(), slots.free.len())
    }

    #[test]
    fn polling_again_keeps_one_slot_and_a_new_waker_replaces_the_old() {
        let wakers = Wakers::default();
        let (first, first_waker) = counting();
        let mut registration = None;
        for _ in 0..1000 {
            wakers.register(&mut registration, &first_waker);
        }
        assert_eq!(len(&wakers), (1, 0));

        let (second, second_waker) = counting();
        wakers.register(&mut registration, &second_waker);
        assert_eq!(len(&wakers), (1, 0));
        wakers.wake_all();
        wakers.wake_all();
        assert_eq!((woken(&first), woken(&second)), (0, 2), "stays registered across wake-ups");
    }

    #[test]
    fn every_registered_waker_is_woken_across_batches_and_slots_are_reused() {
        let wakers = Wakers::default();
        let counts: Vec<_> = (0..3 * BATCH + 5).map(|_| counting()).collect();
        let mut registrations: Vec<_> = counts
            .iter()
            .map(|(_, waker)| {
                let mut registration = None;
                wakers.register(&mut registration, waker);
                registration
            })
            .collect();
        // Leave holes: those are not woken, and new registrations fill them.
        for registration in registrations.iter_mut().step_by(2) {
            wakers.unregister(registration.take().unwrap());
        }
        wakers.wake_all();
        for (i, (count, _)) in counts.iter().enumerate() {
            assert_eq!(woken(count), i % 2, "waker {i}");
        }
        // The last slot was freed and cut off; the lowest free slot is reused.
        assert_eq!(len(&wakers), (counts.len() - 1, counts.len() / 2));
        let (late, late_waker) = counting();
        let mut late_registration = None;
        wakers.register(&mut late_registration, &late_waker);
        assert_eq!(late_registration.as_ref().unwrap().key, 0, "the lowest free slot is reused");
        assert_eq!(len(&wakers).0, counts.len() - 1);
        wakers.wake_all();
        assert_eq!(woken(&late), 1);

        // Once every registration is gone, the memory is given back.
        for registration in registrations.into_iter().flatten().chain(late_registration) {
            wakers.unregister(registration);
        }
        assert_eq!(len(&wakers), (0, 0));
        assert_eq!(wakers.slots().wakers.capacity(), 0);
        wakers.wake_all();
    }

    #[test]
    fn the_slab_shrinks_to_its_highest_slot_in_use() {
        let wakers = Wakers::default();
        let (_, waker) = counting();
        let register = || {
            let mut registration = None;
            wakers.register(&mut registration, &waker);
            registration.unwrap()
        };
        let mut registrations: Vec<_> = (0..1000).map(|_| register()).collect();
        // The last one stays: the slab cannot move it, so it keeps its length.
        let last = registrations.pop().unwrap();
        for registration in registrations.drain(..) {
            wakers.unregister(registration);
        }
        assert_eq!(len(&wakers), (1000, 999));
        // Newcomers fill the lowest holes, not the end.
        registrations.extend((0..10).map(|_| register()));
        assert_eq!(registrations.iter().map(|r| r.key).collect::<Vec<_>>(), (0..10).collect::<Vec<_>>());
        assert_eq!(len(&wakers), (1000, 989));
        // Once the last slot is free the end is cut off down to the highest in use,
        // and the spare capacity is given back.
        wakers.unregister(last);
        assert_eq!(len(&wakers), (10, 0));
        assert!(wakers.slots().wakers.capacity() <= 20, "{}", wakers.slots().wakers.capacity());
        for registration in registrations {
            wakers.unregister(registration);
        }
        assert_eq!(len(&wakers), (0, 0));
    }
}
