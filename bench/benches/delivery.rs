//! The cost of one delivery on one thread: after a publish, each of 10 000 subscribers is
//! polled until it has the event and then finds nothing more, with no scheduler around it.
//!
//! Run with `cargo bench -p ssekit-bench --bench delivery`. Side by side:
//!
//! - `subscription`: a hub [`Subscription`] polled directly;
//! - `hub_sse`: the stream of [`Hub::sse`] (keep-alive on), what a framework adapter polls;
//! - `hub_sse_4_topics`: the same for a subscriber of 4 topics on one stream
//!   ([`Hub::subscribe_many`]), the event published to one of them.
//!
//! The difference is what the per-connection stream adds to a delivery. For counts that do
//! not depend on the machine's noise, run one kind for a number of rounds under callgrind,
//! once with 0 rounds (the setup alone) and once with 20, and divide the difference by
//! 200 000 deliveries:
//!
//! ```text
//! cargo bench -p ssekit-bench --bench delivery --no-run   # prints the binary's path
//! DELIVERY_PROBE=hub_sse DELIVERY_ROUNDS=20 valgrind --tool=callgrind target/release/deps/delivery-<hash>
//! ```

use std::hint::black_box;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group};
use futures_core::Stream;
use ssekit::{Event, Hub, Resume, Sse};

const SUBSCRIBERS: usize = 10_000;

/// Polls a subscriber's stream: the chunk it has, if any.
trait Poller {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>>;
}

impl Poller for ssekit::Subscription {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        Pin::new(self).poll_next(cx)
    }
}

impl Poller for Pin<Box<ssekit::Sse<ssekit::Subscription>>> {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        self.as_mut().poll_next(cx).map(|chunk| chunk.map(|chunk| chunk.expect("hub streams do not fail")))
    }
}

/// A hub with `SUBSCRIBERS` subscribers of one kind, each polled once (registered, timer armed).
fn setup<P: Poller>(subscribe: impl Fn(&Hub) -> P) -> (Hub, Vec<P>) {
    let hub = Hub::builder().history(64).build();
    let mut subscribers: Vec<P> = (0..SUBSCRIBERS).map(|_| subscribe(&hub)).collect();
    let mut cx = Context::from_waker(Waker::noop());
    for subscriber in &mut subscribers {
        assert!(subscriber.poll_chunk(&mut cx).is_pending());
    }
    (hub, subscribers)
}

/// One publish, then every subscriber polled until it has the event and finds nothing more.
fn round<P: Poller>(hub: &Hub, subscribers: &mut [P]) {
    let mut cx = Context::from_waker(Waker::noop());
    hub.try_publish("t", Event::new().data("x")).expect("publish");
    for subscriber in subscribers {
        match subscriber.poll_chunk(&mut cx) {
            Poll::Ready(Some(chunk)) => {
                black_box(chunk);
            }
            other => panic!("expected the event, got {other:?}"),
        }
        assert!(subscriber.poll_chunk(&mut cx).is_pending());
    }
}

fn subscription(hub: &Hub) -> ssekit::Subscription {
    hub.try_subscribe("t", Resume::Live).expect("subscribe")
}

fn hub_sse(hub: &Hub) -> Pin<Box<ssekit::Sse<ssekit::Subscription>>> {
    Box::pin(Sse::from_subscription(hub.try_subscribe("t", Resume::Live).expect("subscribe")))
}

fn hub_sse_4_topics(hub: &Hub) -> Pin<Box<ssekit::Sse<ssekit::Subscription>>> {
    let topics = ["t", "other-1", "other-2", "other-3"];
    Box::pin(Sse::from_subscription(hub.try_subscribe_many(&topics, Resume::Live, 0).expect("subscribe")))
}

fn bench<P: Poller>(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    subscribe: fn(&Hub) -> P,
) {
    let (hub, mut subscribers) = setup(subscribe);
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                round(&hub, &mut subscribers);
            }
            start.elapsed()
        });
    });
}

fn delivery(c: &mut Criterion) {
    // `Hub::sse` arms a tokio timer for its keep-alive: a runtime must be current.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let _runtime = rt.enter();
    let mut group = c.benchmark_group("delivery");
    group.throughput(Throughput::Elements(SUBSCRIBERS as u64));
    group.sample_size(20).measurement_time(Duration::from_secs(3));
    bench(&mut group, "subscription", subscription);
    bench(&mut group, "hub_sse", hub_sse);
    bench(&mut group, "hub_sse_4_topics", hub_sse_4_topics);
    group.finish();
}

/// `DELIVERY_PROBE=subscription|hub_sse DELIVERY_ROUNDS=N`: the setup and N rounds, no
/// measurement (for callgrind).
fn probe(kind: &str, rounds: usize) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let _runtime = rt.enter();
    match kind {
        "subscription" => {
            let (hub, mut subscribers) = setup(subscription);
            (0..rounds).for_each(|_| round(&hub, &mut subscribers));
        }
        "hub_sse" => {
            let (hub, mut subscribers) = setup(hub_sse);
            (0..rounds).for_each(|_| round(&hub, &mut subscribers));
        }
        "hub_sse_4_topics" => {
            let (hub, mut subscribers) = setup(hub_sse_4_topics);
            (0..rounds).for_each(|_| round(&hub, &mut subscribers));
        }
        other => panic!("DELIVERY_PROBE: unknown kind {other:?} (subscription, hub_sse or hub_sse_4_topics)"),
    }
}

criterion_group!(benches, delivery);

fn main() {
    if let Ok(kind) = std::env::var("DELIVERY_PROBE") {
        let rounds = std::env::var("DELIVERY_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(20);
        probe(&kind, rounds);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
