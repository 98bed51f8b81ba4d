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
//! forbids it). It holds one slot per subscriber that was ever polled and is
//! not dropped, and is emptied when the last one leaves.

use std::sync::{Mutex, MutexGuard};
use std::task::Waker;

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
    free: Vec<usize>,
}

/// A subscriber's place in a [`Wakers`] set, and the waker it holds there.
#[derive(Debug)]
pub(crate) struct Registration {
    key: usize,
    waker: Waker,
}

impl Wakers {
    fn slots(&self) -> MutexGuard<'_, Slots> {
        // Every update is one assignment or push: a poisoned lock is consistent.
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
                self.slots().wakers[registration.key] = Some(waker.clone());
            }
            None => {
                let mut slots = self.slots();
                let key = match slots.free.pop() {
                    Some(key) => {
                        slots.wakers[key] = Some(waker.clone());
                        key
                    }
                    None => {
                        slots.wakers.push(Some(waker.clone()));
                        slots.wakers.len() - 1
                    }
                };
                *registration = Some(Registration { key, waker: waker.clone() });
            }
        }
    }

    /// Removes a registration (its subscriber is dropped).
    pub(crate) fn unregister(&self, registration: Registration) {
        let mut slots = self.slots();
        slots.wakers[registration.key] = None;
        slots.free.push(registration.key);
        if slots.free.len() == slots.wakers.len() {
            // The last one left: give the memory back.
            *slots = Slots::default();
        }
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
