//! A loom model of a topic's wake-up protocol: every interleaving of a
//! publisher and its subscribers, checking that no wake-up is lost.
//!
//! Run with
//!
//! ```sh
//! RUSTFLAGS="--cfg ssekit_loom" CARGO_TARGET_DIR=target/loom cargo test --lib hub::loom
//! ```
//!
//! (`.ci/run` does). The cfg swaps the topic's locks and atomics for loom's
//! (`sync.rs`), so the model runs the real [`Topic`] and [`Wakers`] code; only
//! the subscriber's side is spelled out here, as the steps
//! `Subscription::poll_next` takes. Other unit tests do not run under the cfg:
//! loom's types work only inside a model.
//!
//! The protocol: a subscriber registers its waker, then reads the topic's
//! version, and reads the log only if the version moved since it last found
//! nothing new; a publisher appends under the topic's lock, bumps the version,
//! then wakes every registered waker. So a subscriber that found nothing new
//! is woken by the next publish.
//!
//! [`Wakers`]: super::wakers::Wakers

use std::sync::Arc;
use std::task::Waker;
use std::time::Instant;

use bytes::Bytes;
use loom::thread::JoinHandle;

use super::log::Limits;
use super::topic::Topic;
use super::wakers::Registration;
use super::wakers::counting::{Count, counting};

fn woken(count: &Count) -> bool {
    super::wakers::counting::woken(count) > 0
}

fn topic() -> Arc<Topic> {
    Arc::new(Topic::new("t".into(), Limits { max_events: 4, max_bytes: 1024, max_age: None }, false))
}

/// A publisher's steps (`Hub::append`), on a thread of its own: append under
/// the lock, then bump the version and wake.
fn publisher(topic: &Arc<Topic>) -> JoinHandle<()> {
    let topic = topic.clone();
    loom::thread::spawn(move || {
        topic.write().log.append(Bytes::from_static(b"data: x\n\n"), Instant::now());
        topic.wake();
    })
}

/// A subscriber's steps (`Subscription::poll_next`), up to date at version
/// `seen` and at the log's start: registers `waker`, then returns whether it
/// found the event (else it would return `Pending`).
fn poll(topic: &Topic, registration: &mut Option<Registration>, waker: &Waker, seen: u64) -> bool {
    topic.wakers.register(registration, waker);
    if topic.version() == seen {
        return false;
    }
    let found = topic.read().log.next() > 1;
    assert!(found, "the version moved, so the event it announces is in the log");
    found
}

#[test]
fn a_subscriber_that_finds_nothing_is_woken_by_the_publish() {
    loom::model(|| {
        let topic = topic();
        let publisher = publisher(&topic);
        let (count, waker) = counting();
        let mut registration = None;
        let found = poll(&topic, &mut registration, &waker, 0);
        publisher.join().unwrap();
        assert!(found || woken(&count), "neither found the event nor woken");
        topic.wakers.unregister(registration.unwrap());
    });
}

#[test]
fn a_subscriber_polled_by_another_task_wakes_that_task() {
    loom::model(|| {
        let topic = topic();
        let (first, first_waker) = counting();
        let mut registration = None;
        assert!(!poll(&topic, &mut registration, &first_waker, 0));
        let publisher = publisher(&topic);
        // The subscription moved to another task, which polls it now.
        let (second, second_waker) = counting();
        let found = poll(&topic, &mut registration, &second_waker, 0);
        publisher.join().unwrap();
        assert!(found || woken(&second), "the new task neither found the event nor was woken");
        drop(first);
        topic.wakers.unregister(registration.unwrap());
    });
}

#[test]
fn a_newcomer_in_a_freed_slot_is_woken() {
    loom::model(|| {
        let topic = topic();
        let (_, leaving_waker) = counting();
        let mut leaving = None;
        topic.wakers.register(&mut leaving, &leaving_waker);
        let (staying, staying_waker) = counting();
        let mut stays = None;
        assert!(!poll(&topic, &mut stays, &staying_waker, 0));

        let publisher = publisher(&topic);
        // One subscriber leaves while another arrives and may take its slot.
        let leaver = loom::thread::spawn({
            let topic = topic.clone();
            move || topic.wakers.unregister(leaving.unwrap())
        });
        let (newcomer, newcomer_waker) = counting();
        let mut arrives = None;
        let found = poll(&topic, &mut arrives, &newcomer_waker, 0);
        publisher.join().unwrap();
        leaver.join().unwrap();
        assert!(found || woken(&newcomer), "the newcomer neither found the event nor was woken");
        assert!(woken(&staying), "a subscriber registered before the publish is woken");
        topic.wakers.unregister(arrives.unwrap());
        topic.wakers.unregister(stays.unwrap());
    });
}
