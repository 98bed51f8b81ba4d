//! The hub shared between tasks and threads: handles are `Send + Sync`,
//! concurrent publishing and resuming is gap-free, and no wake-up is lost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use ssekit::{Decoder, Event, EventId, Frame, Hub, PublishError, Resume, Sse, SubscribeError, Subscription};
use tokio::time::timeout;

use crate::support::{PATIENCE, Reader, after, data, id_of, offsets};

#[test]
fn handles_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Hub>();
    assert_send_sync::<Subscription>();
    assert_send_sync::<Sse<Subscription>>();
    assert_send_sync::<Event>();
    assert_send_sync::<Frame>();
    assert_send_sync::<EventId>();
    assert_send_sync::<PublishError>();
    assert_send_sync::<SubscribeError>();
}

/// A small deterministic generator: the test needs spread, not quality.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Publishers and resuming subscribers race on one topic with a small log. Every subscriber's
/// sequence must be gap-free and duplicate-free, except right after an explicit reset, and every
/// event must carry the data published under its id.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_publish_and_resume_is_gap_free() {
    const PUBLISHERS: u64 = 3;
    const PER_PUBLISHER: u64 = 4_000;
    const SUBSCRIBERS: u64 = 6;
    const MAX_SESSIONS: u64 = 2_000;

    for round in 0..10u64 {
        let hub = Hub::builder().history(64).build();
        let published: Arc<Mutex<HashMap<u64, String>>> = Arc::default();
        let seen: Arc<Mutex<Vec<EventId>>> = Arc::default();
        let latest = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));

        let publishers: Vec<_> = (0..PUBLISHERS)
            .map(|p| {
                let (hub, published, latest) = (hub.clone(), published.clone(), latest.clone());
                tokio::spawn(async move {
                    for seq in 0..PER_PUBLISHER {
                        let text = format!("p{p}-{seq}");
                        let id = hub.try_publish("race", data(text.clone())).unwrap();
                        published.lock().unwrap().insert(id.offset(), text);
                        latest.fetch_max(id.offset(), Ordering::SeqCst);
                        if seq % 16 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                })
            })
            .collect();

        let subscribers: Vec<_> = (0..SUBSCRIBERS)
            .map(|s| {
                let (hub, seen, latest, done) = (hub.clone(), seen.clone(), latest.clone(), done.clone());
                tokio::spawn(async move {
                    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ ((round << 32) | (s + 1)));
                    let mut received: Vec<(u64, String)> = Vec::new();
                    let mut sessions = 0;
                    let mut resets = 0;
                    while !done.load(Ordering::SeqCst) && sessions < MAX_SESSIONS {
                        sessions += 1;
                        let from = {
                            let seen = seen.lock().unwrap();
                            if seen.is_empty() || rng.below(4) == 0 {
                                None
                            } else {
                                Some(seen[rng.below(seen.len() as u64) as usize])
                            }
                        };
                        let known = latest.load(Ordering::SeqCst);
                        let resume = from.map_or(Resume::Live, after);
                        let mut subscription = hub.try_subscribe("race", resume).unwrap();
                        let mut decoder = Decoder::new();
                        // The offset the next event must have, once known.
                        let mut expected = from.map(|id| id.offset() + 1);
                        let at_start = received.len();
                        let slow = rng.below(3) == 0;
                        for _ in 0..1 + rng.below(40) {
                            let Ok(Some(chunk)) = timeout(Duration::from_millis(200), subscription.next()).await else {
                                break;
                            };
                            for event in decoder.feed(&chunk).unwrap() {
                                let id = id_of(&event);
                                if event.event == "reset" {
                                    let reason = serde_json::from_str::<serde_json::Value>(&event.data).unwrap();
                                    let reason = reason["reason"].as_str().unwrap().to_owned();
                                    match expected {
                                        // At the start: only an id that was evicted. The
                                        // reset's id is the newest offset then, and the log
                                        // held the 64 before it: an id among those resumes.
                                        Some(next) if reason == "evicted" && received.len() == at_start => {
                                            assert!(id.offset() > next - 1 + 64, "{from:?} was retained: {event:?}");
                                        }
                                        _ => assert_eq!(reason, "lagged", "unexpected reset {event:?}"),
                                    }
                                    resets += 1;
                                    expected = Some(id.offset() + 1);
                                    continue;
                                }
                                match expected {
                                    Some(next) => assert_eq!(id.offset(), next, "gap or duplicate after {from:?}"),
                                    None => assert!(id.offset() > known, "live starts after the known events"),
                                }
                                expected = Some(id.offset() + 1);
                                received.push((id.offset(), event.data));
                                if rng.below(8) == 0 {
                                    seen.lock().unwrap().push(id);
                                }
                            }
                            if slow {
                                tokio::task::yield_now().await;
                            }
                        }
                    }
                    (received, resets, sessions)
                })
            })
            .collect();

        for publisher in publishers {
            timeout(Duration::from_secs(30), publisher).await.expect("publishers finish").unwrap();
        }
        done.store(true, Ordering::SeqCst);
        let published = published.lock().unwrap().clone();
        assert_eq!(published.len() as u64, PUBLISHERS * PER_PUBLISHER);
        let mut total = 0;
        for subscriber in subscribers {
            let (received, _resets, sessions) =
                timeout(Duration::from_secs(30), subscriber).await.expect("subscribers finish").unwrap();
            assert!(sessions >= 1);
            for (offset, text) in &received {
                assert_eq!(published.get(offset), Some(text), "event {offset} carries its own data");
            }
            total += received.len();
        }
        assert!(total > 0, "subscribers received events");
        assert_eq!(hub.metrics().subscribers, 0);
    }
}

/// Every subscriber reaches the last event: a wake-up lost between a subscriber's "nothing new"
/// and its going to sleep would leave it waiting for good, and the test would time out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_wake_up_is_lost_between_publishes() {
    const SUBSCRIBERS: usize = 64;
    const EVENTS: u64 = 2_000;
    let hub = Hub::builder().history(EVENTS as usize).build();
    let subscribers: Vec<_> = (0..SUBSCRIBERS)
        .map(|s| {
            let mut reader = Reader::new(hub.try_subscribe("wake", Resume::Live).unwrap());
            tokio::spawn(async move {
                let mut last = 0;
                while last < EVENTS {
                    let events = reader.chunk().await.expect("subscription open");
                    let offsets = offsets(&events);
                    assert_eq!(offsets, (last + 1..=last + offsets.len() as u64).collect::<Vec<_>>());
                    last += offsets.len() as u64;
                    if s % 2 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for n in 1..=EVENTS {
        hub.try_publish("wake", data(n.to_string())).unwrap();
        if n % 4 == 0 {
            tokio::task::yield_now().await;
        }
    }
    for subscriber in subscribers {
        timeout(PATIENCE, subscriber).await.expect("every subscriber reaches the last event").unwrap();
    }
}

/// A subscription polled by one task and then by another wakes the second: the waker it
/// registered is replaced, not kept.
#[tokio::test]
async fn a_subscription_moved_to_another_task_wakes_that_task() {
    use std::task::{Context, Wake, Waker};

    struct Flag(AtomicBool);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let flag = || Arc::new(Flag(AtomicBool::new(false)));

    let hub = Hub::new();
    let mut subscription = hub.try_subscribe("moved", Resume::Live).unwrap();
    let (first, second) = (flag(), flag());
    for task in [&first, &second] {
        let waker = Waker::from(task.clone());
        let poll = subscription.poll_next_unpin(&mut Context::from_waker(&waker));
        assert!(poll.is_pending());
    }
    hub.try_publish("moved", data("x")).unwrap();
    assert!(second.0.load(Ordering::SeqCst), "the task polling now is woken");
    assert!(!first.0.load(Ordering::SeqCst), "the task that let go is not");
    assert!(subscription.next().now_or_never().flatten().is_some());
}
