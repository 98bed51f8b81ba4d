//! The per-connection `Sse` stream through the public API: retry hint, keep-alive, lifetime,
//! shutdown, errors and batching. Timing tests run on tokio's paused clock.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt, stream};
use ssekit::{BoxError, Decoder, Event, EventError, Hub, Resume, Shutdown, Sse, SseConfig};
use tokio::time::{Instant, timeout};

const PATIENCE: Duration = Duration::from_secs(5);
const KEEP_ALIVE: &[u8] = b":\n\n";

fn no_keep_alive() -> SseConfig {
    SseConfig::new().keep_alive(None)
}

#[tokio::test]
async fn retry_hint_comes_first() {
    let events = stream::iter(["a"]).map(|s| Event::new().data(s));
    let mut sse = Sse::new(events).with_config(SseConfig::new().retry(Duration::from_millis(2500)));
    assert_eq!(sse.next().await.unwrap().unwrap(), "retry: 2500\n\n");
    assert_eq!(sse.next().await.unwrap().unwrap(), "data: a\n\n");
    assert!(sse.next().await.is_none());
    assert!(sse.next().await.is_none(), "stays ended");

    // Without a hint, the first chunk is data.
    let mut sse = Sse::new(stream::iter([Event::new().data("a")]));
    assert_eq!(sse.next().await.unwrap().unwrap(), "data: a\n\n");
}

#[tokio::test]
async fn retry_jitter_stays_within_bounds() {
    let hub = Hub::new();
    let config = SseConfig::new().retry(Duration::from_secs(1)).retry_jitter(Duration::from_millis(500));
    let mut hints = HashSet::new();
    for _ in 0..64 {
        let mut sse = hub.sse("t", Resume::Live).await.unwrap().with_config(config.clone());
        let first = sse.next().await.unwrap().unwrap();
        let mut decoder = Decoder::new();
        assert!(decoder.feed(&first).unwrap().is_empty(), "a retry hint dispatches no event");
        let retry = decoder.reconnection_time().expect("a retry hint");
        assert!((Duration::from_secs(1)..=Duration::from_millis(1500)).contains(&retry), "{retry:?}");
        hints.insert(retry);
    }
    assert!(hints.len() > 1, "the jitter spreads the hints: {hints:?}");
}

#[tokio::test(start_paused = true)]
async fn keep_alive_after_the_idle_interval() {
    let start = Instant::now();
    let config = SseConfig::new().keep_alive(Some(Duration::from_secs(15)));
    let mut sse = Sse::new(stream::pending::<Event>()).with_config(config);
    for n in 1..=3u32 {
        assert_eq!(sse.next().await.unwrap().unwrap(), KEEP_ALIVE);
        assert_eq!(Instant::now() - start, Duration::from_secs(15) * n, "on the paused clock");
    }

    // The default is 15 s too, and a hub's stream uses the config it is given.
    let hub = Hub::new();
    let config = SseConfig::new().keep_alive(Some(Duration::from_secs(3)));
    let mut sse = hub.sse("t", Resume::Live).await.unwrap().with_config(config.clone());
    let start = Instant::now();
    assert_eq!(sse.next().await.unwrap().unwrap(), KEEP_ALIVE);
    assert_eq!(Instant::now() - start, Duration::from_secs(3));
    let mut sse = Sse::new(stream::pending::<Event>());
    let start = Instant::now();
    assert_eq!(sse.next().await.unwrap().unwrap(), KEEP_ALIVE);
    assert_eq!(Instant::now() - start, Duration::from_secs(15));
}

#[tokio::test(start_paused = true)]
async fn a_shorter_keep_alive_set_after_a_poll_is_kept() {
    let mut sse =
        Sse::new(stream::pending::<Event>()).with_config(SseConfig::new().keep_alive(Some(Duration::from_secs(15))));
    // Idle, its timer armed for 15 s to wake this task.
    std::future::poll_fn(|cx| {
        assert!(sse.poll_next_unpin(cx).is_pending());
        std::task::Poll::Ready(())
    })
    .await;
    let mut sse = sse.with_config(SseConfig::new().keep_alive(Some(Duration::from_secs(1))));
    let chunk = timeout(Duration::from_secs(3), sse.next()).await.expect("a keep-alive within 3 s");
    assert_eq!(chunk.unwrap().unwrap(), KEEP_ALIVE);
}

#[tokio::test(start_paused = true)]
async fn no_keep_alive_while_data_flows() {
    let hub = Hub::new();
    let config = SseConfig::new().keep_alive(Some(Duration::from_secs(15)));
    let mut sse = hub.sse("t", Resume::Live).await.unwrap().with_config(config.clone());
    let publisher = {
        let hub = hub.clone();
        tokio::spawn(async move {
            // An event every 10 s for 2 minutes, then silence.
            for i in 0..12 {
                tokio::time::sleep(Duration::from_secs(10)).await;
                hub.try_publish("t", Event::new().data(i.to_string())).unwrap();
            }
        })
    };
    let start = Instant::now();
    let mut decoder = Decoder::new();
    let mut received = Vec::new();
    while received.len() < 12 {
        let chunk = sse.next().await.unwrap().unwrap();
        assert_ne!(chunk, KEEP_ALIVE, "keep-alive while data flows, at {:?}", Instant::now() - start);
        received.extend(decoder.feed(&chunk).unwrap().into_iter().map(|e| e.data));
    }
    assert_eq!(received, (0..12).map(|i| i.to_string()).collect::<Vec<_>>());
    publisher.await.unwrap();
    // Idle again: the keep-alive comes 15 s after the last event.
    let last = Instant::now();
    assert_eq!(sse.next().await.unwrap().unwrap(), KEEP_ALIVE);
    assert_eq!(Instant::now() - last, Duration::from_secs(15));
}

#[tokio::test(start_paused = true)]
async fn max_lifetime_ends_the_stream() {
    let config = SseConfig::new()
        .keep_alive(Some(Duration::from_secs(15)))
        .max_lifetime(Duration::from_secs(60), Duration::from_secs(10));
    let start = Instant::now();
    let mut sse = Sse::new(stream::pending::<Event>()).with_config(config);
    let mut keep_alives = 0;
    while let Some(chunk) = timeout(Duration::from_secs(3600), sse.next()).await.expect("ends") {
        assert_eq!(chunk.unwrap(), KEEP_ALIVE);
        keep_alives += 1;
    }
    let lived = Instant::now() - start;
    assert!((Duration::from_secs(60)..=Duration::from_secs(70)).contains(&lived), "{lived:?}");
    assert_eq!(keep_alives, 4);
    assert!(sse.next().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn max_lifetime_ends_a_stream_that_is_always_ready() {
    // A source with an item ready at every poll must not outlive its lifetime.
    let events = stream::repeat_with(|| Event::new().data("busy"));
    let config = no_keep_alive().max_lifetime(Duration::from_secs(10), Duration::ZERO);
    let mut sse = Sse::new(events).with_config(config);
    assert!(sse.next().await.unwrap().is_ok());
    tokio::time::advance(Duration::from_secs(11)).await;
    let mut chunks = 0;
    while sse.next().await.is_some() {
        chunks += 1;
        assert!(chunks < 10, "the stream outlived its lifetime");
    }
}

#[tokio::test(start_paused = true)]
async fn nothing_taken_from_the_stream_is_lost_when_it_ends() {
    // Two events too large to share a chunk become ready together just as the
    // lifetime ends, or as the shutdown signal fires: the second, already taken
    // from the stream, is sent before the end all the same.
    let big = || Event::new().data("x".repeat(10_000));
    let at_lifetime =
        stream::once(tokio::time::sleep(Duration::from_secs(1))).flat_map(move |_| stream::iter([big(), big()]));
    let lifetime = no_keep_alive().max_lifetime(Duration::from_secs(1), Duration::ZERO);
    let shutdown = Shutdown::new();
    let at_shutdown = stream::iter([big(), big()]);
    for (sse, end) in [
        (Sse::new(at_lifetime.boxed()).with_config(lifetime), None),
        (Sse::new(at_shutdown.boxed()).with_config(no_keep_alive()).with_shutdown(shutdown.clone()), Some(&shutdown)),
    ] {
        let mut sse = std::pin::pin!(sse);
        let mut decoder = Decoder::new();
        let first = timeout(PATIENCE, sse.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(decoder.feed(&first).unwrap().len(), 1, "one 10 KB event per chunk");
        if let Some(shutdown) = end {
            shutdown.trigger();
        }
        let rest: Vec<_> = timeout(PATIENCE, sse.collect::<Vec<_>>()).await.unwrap();
        let events: usize = rest.iter().map(|chunk| decoder.feed(chunk.as_ref().unwrap()).unwrap().len()).sum();
        assert_eq!(events, 1, "the held event went out before the end");
    }
}

#[tokio::test(start_paused = true)]
async fn a_hub_stream_ended_by_its_lifetime_is_counted_so() {
    // Ended after a chunk (the source was ready at the deadline), not by the timer.
    let hub = Hub::new();
    let config = no_keep_alive().max_lifetime(Duration::from_secs(10), Duration::ZERO);
    let mut sse = hub.sse("t", Resume::Live).await.unwrap().with_config(config.clone());
    hub.try_publish("t", Event::new().data("1")).unwrap();
    assert!(sse.next().await.unwrap().is_ok());
    tokio::time::advance(Duration::from_secs(11)).await;
    hub.try_publish("t", Event::new().data("2")).unwrap();
    assert!(sse.next().await.unwrap().is_ok(), "the chunk in hand goes out");
    assert!(sse.next().await.is_none());
    drop(sse);
    let metrics = hub.metrics();
    assert_eq!((metrics.disconnects_lifetime, metrics.disconnects_client), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn hub_streams_end_by_lifetime_and_resume_without_loss() {
    let hub = Hub::new();
    let config = no_keep_alive().max_lifetime(Duration::from_secs(30), Duration::ZERO);
    let mut sse = hub.sse("t", Resume::Live).await.unwrap().with_config(config.clone());
    let mut decoder = Decoder::new();
    hub.try_publish("t", Event::new().data("1")).unwrap();
    decoder.feed(&sse.next().await.unwrap().unwrap()).unwrap();
    assert!(timeout(Duration::from_secs(60), sse.next()).await.unwrap().is_none());
    hub.try_publish("t", Event::new().data("2")).unwrap();
    let resume = ssekit::LastEventId::parse(decoder.resume_id().as_bytes()).unwrap();
    let mut again = hub.sse("t", resume).await.unwrap().with_config(config.clone());
    assert_eq!(decoder.feed(&again.next().await.unwrap().unwrap()).unwrap()[0].data, "2");
}

#[tokio::test(start_paused = true)]
async fn durations_too_long_for_the_clock_mean_never() {
    let forever = SseConfig::new()
        .keep_alive(Some(Duration::MAX))
        .max_lifetime(Duration::MAX, Duration::MAX)
        .retry(Duration::MAX)
        .retry_jitter(Duration::MAX);
    let mut sse = Sse::new(stream::pending::<Event>()).with_config(forever);
    let retry = sse.next().await.unwrap().unwrap();
    assert!(retry.starts_with(b"retry: ") && retry.ends_with(b"\n\n"), "{retry:?}");
    // No keep-alive and no end, however long it waits.
    assert!(timeout(Duration::from_secs(365 * 24 * 3600), sse.next()).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_shutdown_ends_a_user_stream() {
    let shutdown = Shutdown::new();
    let mut waiting = Vec::new();
    for _ in 0..4 {
        let mut sse = Sse::new(stream::pending::<Event>()).with_config(no_keep_alive()).with_shutdown(shutdown.clone());
        waiting.push(tokio::spawn(async move { sse.next().await.is_none() }));
    }
    tokio::task::yield_now().await;
    shutdown.trigger();
    for task in waiting {
        assert!(timeout(PATIENCE, task).await.expect("ends within the patience").unwrap());
    }
    // Attached after the trigger: ends at once.
    let mut late = Sse::new(stream::pending::<Event>()).with_shutdown(shutdown.clone());
    assert!(late.next().now_or_never().expect("ready").is_none());

    // A hub's shutdown signal ends user streams when the hub closes.
    let hub = Hub::new();
    let mut sse = Sse::new(stream::pending::<Event>()).with_shutdown(hub.shutdown());
    let task = tokio::spawn(async move { sse.next().await.is_none() });
    tokio::task::yield_now().await;
    hub.close();
    assert!(timeout(PATIENCE, task).await.unwrap().unwrap());
}

#[tokio::test]
async fn an_error_ends_the_stream_after_the_events_before_it() {
    let items: Vec<Result<Event, std::io::Error>> = vec![
        Ok(Event::new().data("a")),
        Ok(Event::new().data("b")),
        Err(std::io::Error::other("source failed")),
        Ok(Event::new().data("never")),
    ];
    let mut sse = Sse::new(stream::iter(items)).with_config(no_keep_alive());
    assert_eq!(sse.next().await.unwrap().unwrap(), "data: a\n\ndata: b\n\n");
    let err: BoxError = sse.next().await.unwrap().unwrap_err();
    assert_eq!(err.to_string(), "source failed");
    assert!(sse.next().await.is_none());

    // An error first.
    let items: Vec<Result<Event, std::io::Error>> = vec![Err(std::io::Error::other("at once"))];
    let mut sse = Sse::new(stream::iter(items));
    assert_eq!(sse.next().await.unwrap().unwrap_err().to_string(), "at once");
    assert!(sse.next().await.is_none());
}

#[tokio::test]
async fn ready_items_are_batched_into_one_chunk() {
    let mut sse = Sse::new(stream::iter((0..5).map(|i| Event::new().data(i.to_string()))));
    let chunk = sse.next().await.unwrap().unwrap();
    let events = Decoder::new().feed(&chunk).unwrap();
    assert_eq!(events.iter().map(|e| e.data.as_str()).collect::<Vec<_>>(), ["0", "1", "2", "3", "4"]);
    assert!(sse.next().await.is_none());

    // Hub subscriptions batch the same way.
    let hub = Hub::new();
    let mut sse = hub.sse("t", Resume::Live).await.unwrap();
    for i in 0..3 {
        hub.try_publish("t", Event::new().data(i.to_string())).unwrap();
    }
    let chunk = sse.next().await.unwrap().unwrap();
    assert_eq!(Decoder::new().feed(&chunk).unwrap().len(), 3);

    // A backlog comes in chunks of at most 16 KiB (or one larger frame alone),
    // with nothing lost: from a user stream and from a hub's log.
    let sizes = [200, 200, 10_000, 200, 30_000, 200, 200, 6_000, 9_000, 20, 16_000];
    let events = || sizes.iter().map(|&n| Event::new().data("x".repeat(n)));
    let hub = Hub::new();
    let first = hub.try_publish("t", Event::new().data("before")).unwrap();
    for event in events() {
        hub.try_publish("t", event).unwrap();
    }
    let resumed = hub.sse("t", ssekit::LastEventId::parse(first.to_string().as_bytes()).unwrap()).await.unwrap();
    for sse in [Sse::new(stream::iter(events())).boxed(), resumed.boxed()] {
        let mut sse = std::pin::pin!(sse.take_until(tokio::time::sleep(Duration::from_millis(200))));
        let mut decoder = Decoder::new();
        let mut received = Vec::new();
        while let Some(chunk) = sse.next().await {
            let chunk = chunk.unwrap();
            let events = decoder.feed(&chunk).unwrap();
            assert!(chunk.len() <= 16 * 1024 || events.len() == 1, "{} bytes, {} events", chunk.len(), events.len());
            received.extend(events.iter().map(|e| e.data.len()));
        }
        assert_eq!(received, sizes);
    }
}

#[tokio::test]
async fn invalid_events_in_a_user_stream_are_errors() {
    let items = vec![Event::new().data("ok"), Event::new().event("forged\ndata: x"), Event::new().data("never")];
    let mut sse = Sse::new(stream::iter(items));
    assert_eq!(sse.next().await.unwrap().unwrap(), "data: ok\n\n");
    let err = sse.next().await.unwrap().unwrap_err();
    assert!(matches!(err.downcast_ref::<EventError>(), Some(EventError::EventLineBreak)), "{err:?}");
    assert!(sse.next().await.is_none());

    let mut sse = Sse::new(stream::iter([Event::new().id("a\0b").data("x")]));
    let err = sse.next().await.unwrap().unwrap_err();
    assert!(matches!(err.downcast_ref::<EventError>(), Some(EventError::IdNul)));
    assert!(sse.next().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_streams_end_when_the_hub_closes() {
    let hub = Hub::new();
    let config = no_keep_alive();
    let mut sse = hub.sse("t", Resume::Live).await.unwrap().with_config(config.clone());
    let task = tokio::spawn(async move {
        let mut chunks = Vec::new();
        while let Some(chunk) = sse.next().await {
            chunks.push(chunk.unwrap());
        }
        chunks
    });
    tokio::task::yield_now().await;
    hub.close_with(Event::new().event("bye").data("later")).unwrap();
    let chunks = timeout(PATIENCE, task).await.expect("ends within the patience").unwrap();
    assert_eq!(chunks.last().unwrap(), "event: bye\ndata: later\n\n");
}

/// A stream polled by one task and then by another has its keep-alive wake the second.
#[tokio::test(start_paused = true)]
async fn keep_alive_wakes_the_task_polling_now() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::task::{Context, Wake, Waker};

    struct Flag(AtomicBool);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let config = SseConfig::new().keep_alive(Some(Duration::from_secs(15)));
    let mut sse = Sse::new(stream::pending::<Event>()).with_config(config);
    let (first, second) = (Arc::new(Flag(AtomicBool::new(false))), Arc::new(Flag(AtomicBool::new(false))));
    for task in [&first, &second] {
        let waker = Waker::from(task.clone());
        assert!(sse.poll_next_unpin(&mut Context::from_waker(&waker)).is_pending());
    }
    tokio::time::advance(Duration::from_secs(16)).await;
    assert!(second.0.load(Ordering::SeqCst), "the task polling now is woken");
    assert!(!first.0.load(Ordering::SeqCst), "the task that let go is not");
    assert_eq!(sse.next().await.unwrap().unwrap(), KEEP_ALIVE);
}

/// Polls `sse` once, idle, from a task that has just spent its coop budget (a busy
/// `select!` loop over a channel, say), and returns its next item, which must come within the
/// patience.
async fn idle_poll_after_spent_budget(
    mut sse: Sse<impl ssekit::Source + Unpin>,
) -> Option<Result<bytes::Bytes, BoxError>> {
    use std::task::Poll;

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    for _ in 0..1000 {
        tx.send(()).unwrap();
    }
    std::future::poll_fn(|cx| {
        while let Poll::Ready(Some(())) = rx.poll_recv(cx) {}
        assert!(sse.poll_next_unpin(cx).is_pending());
        Poll::Ready(())
    })
    .await;
    timeout(PATIENCE, sse.next()).await.expect("the stream moves on within the patience")
}

/// The keep-alive timer is armed for real even when first polled without coop budget
/// (tokio's timer then answers `Pending` without registering).
#[tokio::test(start_paused = true)]
async fn keep_alive_and_lifetime_survive_a_spent_coop_budget() {
    let keep_alive = SseConfig::new().keep_alive(Some(Duration::from_secs(1)));
    let sse = Sse::new(stream::pending::<Event>()).with_config(keep_alive.clone());
    assert_eq!(idle_poll_after_spent_budget(sse).await.unwrap().unwrap(), KEEP_ALIVE);

    let lifetime = no_keep_alive().max_lifetime(Duration::from_secs(1), Duration::ZERO);
    let sse = Sse::new(stream::pending::<Event>()).with_config(lifetime);
    assert!(idle_poll_after_spent_budget(sse).await.is_none());

    // The second idle period: the timer fired once and is reset.
    let mut sse = Sse::new(stream::pending::<Event>()).with_config(keep_alive);
    assert_eq!(sse.next().await.unwrap().unwrap(), KEEP_ALIVE);
    assert_eq!(idle_poll_after_spent_budget(sse).await.unwrap().unwrap(), KEEP_ALIVE);
}

/// A stream dropped after its client took nothing for half the stall timeout
/// while events waited (or its keep-alive was overdue by as much) counts as
/// stalled; one dropped otherwise, as a client that left.
#[tokio::test(start_paused = true)]
async fn a_stream_dropped_while_its_client_stalled_counts_as_stalled() {
    let hub = Hub::new();
    let config =
        SseConfig::new().keep_alive(Some(Duration::from_secs(15))).stall_timeout(Some(Duration::from_secs(30)));
    let sse = |hub: &Hub| {
        let subscription = hub.try_subscribe("t", Resume::Live).unwrap();
        Sse::from_subscription(subscription).with_config(config.clone())
    };

    // Events wait, nothing taken for the timeout: stalled.
    let mut stalled = sse(&hub);
    hub.try_publish("t", Event::new().data("a")).unwrap();
    assert!(stalled.next().await.is_some());
    hub.try_publish("t", Event::new().data("b")).unwrap();
    tokio::time::advance(Duration::from_secs(31)).await;
    drop(stalled);
    assert_eq!((hub.metrics().disconnects_stalled, hub.metrics().disconnects_client), (1, 0));

    // Nothing waits, the keep-alive comment not overdue by half the timeout: a client that left.
    let mut idle = sse(&hub);
    assert!(idle.next().now_or_never().is_none());
    tokio::time::advance(Duration::from_secs(29)).await;
    drop(idle);
    assert_eq!((hub.metrics().disconnects_stalled, hub.metrics().disconnects_client), (1, 1));

    // The keep-alive comment untaken for half the timeout: stalled.
    let mut silent = sse(&hub);
    assert!(silent.next().now_or_never().is_none());
    tokio::time::advance(Duration::from_secs(31)).await;
    drop(silent);
    assert_eq!((hub.metrics().disconnects_stalled, hub.metrics().disconnects_client), (2, 1));

    // Events wait, but taken from recently (under half the timeout): a client that left.
    let mut reading = sse(&hub);
    hub.try_publish("t", Event::new().data("c")).unwrap();
    assert!(reading.next().await.is_some());
    hub.try_publish("t", Event::new().data("d")).unwrap();
    tokio::time::advance(Duration::from_secs(14)).await;
    drop(reading);
    assert_eq!((hub.metrics().disconnects_stalled, hub.metrics().disconnects_client), (2, 2));

    // No stall timeout: never stalled.
    let mut unbounded = Sse::from_subscription(hub.try_subscribe("t", Resume::Live).unwrap())
        .with_config(SseConfig::new().stall_timeout(None));
    hub.try_publish("t", Event::new().data("e")).unwrap();
    assert!(unbounded.next().await.is_some());
    hub.try_publish("t", Event::new().data("f")).unwrap();
    tokio::time::advance(Duration::from_secs(3600)).await;
    drop(unbounded);
    assert_eq!((hub.metrics().disconnects_stalled, hub.metrics().disconnects_client), (2, 3));
}
