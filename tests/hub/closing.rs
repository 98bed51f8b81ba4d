//! Closing: `on_close` callbacks, `Hub::close` ending every subscription (also
//! while a waker drops one), and `Hub::close_with`'s final event.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use ssekit::{Event, EventError, Hub, PublishError, Resume, Sse, SubscribeError, Subscription};
use tokio::time::timeout;

use crate::support::{PATIENCE, Reader, data};

#[tokio::test]
async fn on_close_runs_on_drop() {
    let hub = Hub::new();
    let closed = Arc::new(AtomicBool::new(false));
    let flag = closed.clone();
    let subscription =
        hub.try_subscribe("t", Resume::Live).unwrap().on_close(move || flag.store(true, Ordering::SeqCst));
    assert!(!closed.load(Ordering::SeqCst));
    let sse = Sse::from_subscription(subscription);
    drop(sse);
    assert!(closed.load(Ordering::SeqCst));
    assert_eq!(hub.subscribers("t"), 0);

    // The same on a stream from `Hub::sse`.
    let left = Arc::new(AtomicBool::new(false));
    let flag = left.clone();
    let sse = hub.sse("t", Resume::Live).await.unwrap().on_close(move || flag.store(true, Ordering::SeqCst));
    assert!(!left.load(Ordering::SeqCst));
    drop(sse);
    assert!(left.load(Ordering::SeqCst));
}

/// A waker that drops a subscription when woken.
struct DropOnWake(Mutex<Option<Subscription>>);

impl std::task::Wake for DropOnWake {
    fn wake(self: Arc<Self>) {
        self.0.lock().unwrap().take();
    }
}

#[test]
fn a_waker_may_drop_a_subscription_while_the_hub_closes() {
    // Dropping the last subscriber of a topic takes the hub's topics lock, so
    // `close` must not hold it while it wakes.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let hub = Hub::new();
        let mut woken = hub.try_subscribe("a", Resume::Live).unwrap();
        let other = hub.try_subscribe("b", Resume::Live).unwrap();
        let waker = std::task::Waker::from(Arc::new(DropOnWake(Mutex::new(Some(other)))));
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(woken.poll_next_unpin(&mut cx).is_pending());
        hub.close();
        assert_eq!(hub.subscribers("b"), 0, "the subscription was dropped");
        assert_eq!((hub.metrics().subscribers, hub.metrics().topics), (1, 1), "and its empty topic with it");
        let _ = done.send(());
    });
    finished.recv_timeout(PATIENCE).expect("close returns");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_ends_every_subscription() {
    let hub = Hub::new();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let mut subscription = hub.try_subscribe(&format!("t{}", i % 4), Resume::Live).unwrap();
        tasks.push(tokio::spawn(async move {
            let mut chunks = 0;
            while subscription.next().await.is_some() {
                chunks += 1;
            }
            chunks
        }));
    }
    let mut sse = hub.sse("t0", Resume::Live).await.unwrap();
    hub.try_publish("t0", data("before")).unwrap();
    tokio::task::yield_now().await;
    hub.close();
    for task in tasks {
        let chunks = timeout(PATIENCE, task).await.expect("ends within the patience").unwrap();
        assert!(chunks <= 1);
    }
    let rest: Vec<_> = timeout(PATIENCE, (&mut sse).collect::<Vec<_>>()).await.unwrap();
    assert!(rest.len() <= 1, "at most the event published before closing");
    assert!(matches!(hub.try_publish("t0", data("late")), Err(PublishError::Closed)));
    assert!(matches!(hub.try_publish("fresh", data("late")), Err(PublishError::Closed)));
    assert_eq!(hub.try_subscribe("t0", Resume::Live).unwrap_err(), SubscribeError::Closed);
    assert!(matches!(hub.sse("t0", Resume::Live).await, Err(SubscribeError::Closed)));
    hub.close(); // idempotent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_with_delivers_the_final_event_first() {
    let hub = Hub::new();
    let waiting = {
        let mut reader = Reader::new(hub.try_subscribe("t", Resume::Live).unwrap());
        tokio::spawn(async move {
            let mut events = Vec::new();
            while let Some(chunk) = reader.chunk().await {
                events.extend(chunk);
            }
            events
        })
    };
    let mut idle = Reader::new(hub.try_subscribe("u", Resume::Live).unwrap());
    tokio::task::yield_now().await;
    hub.close_with(Event::new().event("bye").data("restarting")).unwrap();
    let events = timeout(PATIENCE, waiting).await.unwrap().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0].event.as_str(), events[0].data.as_str(), events[0].last_event_id.as_str()),
        ("bye", "restarting", "")
    );
    let last = idle.take(1).await;
    assert_eq!(last[0].event, "bye");
    idle.assert_ended().await;

    // An unencodable final event is an error, and the hub is closed anyway.
    let hub = Hub::new();
    let mut reader = Reader::new(hub.try_subscribe("t", Resume::Live).unwrap());
    assert!(matches!(hub.close_with(Event::new().event("a\rb")), Err(EventError::EventLineBreak)));
    reader.assert_ended().await;
}
