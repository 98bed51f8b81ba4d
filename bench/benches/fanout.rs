//! Fan-out: one event published to N subscribers, until every one of them has received it.
//!
//! Run with `cargo bench -p ssekit-bench --bench fanout` (add `-- --quick` for a rough look).
//!
//! Side by side, in one group per N:
//!
//! - `ssekit`: N tasks, each awaiting `Subscription::next()` on one hub topic. The event is
//!   encoded once at publish; the subscribers share that frame (one this small is copied once
//!   per runtime thread, so that each thread's subscribers share a reference count of their own).
//! - `ssekit_sse`: the same through `Hub::sse` (the per-connection stream with keep-alive), what
//!   a framework adapter polls.
//! - `ssekit_4_topics`: the same as `ssekit_sse`, but each subscriber follows 4 topics on one
//!   stream (`Hub::subscribe_many`) and the event is published to one of them: each delivery
//!   sends the shared frame's body and an id line of the subscriber's own (every topic's
//!   position), the cost of one resumable id for several topics. Subscribers that follow the
//!   same topics and stand at the same place send the same bytes: the first on each thread
//!   builds them, the others share them.
//! - `ssekit_4_topics_own`: the same, but one of each subscriber's 4 topics is its own (a
//!   user's notifications beside three shared topics): no two streams are alike, each builds
//!   its chunk (the body copied with its own id line).
//! - `broadcast_axum`: the pattern applications write today: a `tokio::sync::broadcast`
//!   channel of `String` payloads; each subscriber's stream receives the payload, builds its own
//!   `axum::response::sse::Event::default().data(payload)`, and is served through axum's own
//!   `Sse` response body (with `KeepAlive::default()`), which is where axum serialises the
//!   event (`Event::finalize`, reached only through the body). Polling that body's data stream
//!   is exactly the per-subscriber work an axum server does before the socket write.
//! - `broadcast_format`: a lower bound for the same pattern: `rx.recv()` then formatting the
//!   bytes axum would write (`data: {payload}\n\n`) into a `Bytes` by hand, with no axum types.
//!
//! Setup (spawning the N tasks) is outside the measurement: tasks live across iterations and
//! count each receipt (in 64 counters on separate cache lines); the last one of a round wakes
//! the measuring loop (`iter_custom`).
//!
//! The runtime is tokio's multi-thread scheduler with one worker per core, what
//! `#[tokio::main]` gives an axum or hyper server; both patterns pay the same scheduler costs
//! (cross-thread wake-ups, work stealing), so the comparison is of the fan-out itself.

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::response::IntoResponse;
use axum::response::sse::{Event as AxumEvent, KeepAlive, Sse as AxumSse};
use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::{StreamExt, stream};
use ssekit::{Event, Hub, Resume, Sse};
use tokio::runtime::Runtime;
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;

const SUBSCRIBERS: [usize; 4] = [1, 100, 1_000, 10_000];

/// A small JSON-ish payload, the size of a typical notification.
const PAYLOAD: &str = r#"{"type":"price","symbol":"ACME","bid":101.25,"ask":101.5,"ts":1700000000}"#;

/// Receipt counters are spread over this many cache lines, so that the harness's own counting
/// does not become one contended atomic written by every delivery on both cores (which both
/// sides would pay, narrowing what is measured to the counter).
const SHARDS: usize = 64;

/// One shard's receipt count, alone on its cache line.
#[repr(align(128))]
struct Shard {
    received: AtomicUsize,
    subscribers: usize,
}

/// Counts receipts of the current round; the last one wakes the measuring loop.
struct Round {
    subscribers: usize,
    shards: Vec<Shard>,
    shards_done: AtomicUsize,
    all_received: Notify,
}

/// Where one subscriber counts its receipts.
struct Receipts {
    round: Arc<Round>,
    shard: usize,
}

impl Receipts {
    fn hit(&self) {
        let shard = &self.round.shards[self.shard];
        if shard.received.fetch_add(1, Ordering::AcqRel) + 1 == shard.subscribers
            && self.round.shards_done.fetch_add(1, Ordering::AcqRel) + 1 == self.round.shards.len()
        {
            // Stores a permit if the measuring loop is not waiting yet: no wake-up is lost.
            self.round.all_received.notify_one();
        }
    }
}

impl Round {
    fn new(subscribers: usize) -> Arc<Self> {
        let shards = (0..SHARDS.min(subscribers))
            .map(|k| Shard { received: AtomicUsize::new(0), subscribers: (subscribers - k).div_ceil(SHARDS) })
            .collect();
        Arc::new(Self { subscribers, shards, shards_done: AtomicUsize::new(0), all_received: Notify::new() })
    }

    /// The counter of subscriber `i`.
    fn receipts(self: &Arc<Self>, i: usize) -> Receipts {
        Receipts { round: self.clone(), shard: i % SHARDS }
    }

    fn reset(&self) {
        for shard in &self.shards {
            shard.received.store(0, Ordering::Relaxed);
        }
        self.shards_done.store(0, Ordering::Release);
    }

    /// Times `iters` rounds of `publish` followed by every subscriber's receipt.
    async fn measure(&self, iters: u64, publish: impl Fn()) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            self.reset();
            publish();
            self.all_received.notified().await;
        }
        start.elapsed()
    }
}

/// One of the fan-out setups: N subscriber tasks and a way to publish to them.
trait Fanout {
    fn publish(&self);
    /// Ends every subscriber task.
    fn stop(self);
}

struct Ssekit {
    hub: Hub,
}

impl Fanout for Ssekit {
    fn publish(&self) {
        black_box(self.hub.try_publish("bench", Event::new().data(PAYLOAD)).expect("publish"));
    }

    fn stop(self) {
        self.hub.close();
    }
}

/// `ssekit`: tasks awaiting `Subscription::next()`.
fn ssekit(rt: &Runtime, round: &Arc<Round>) -> (Ssekit, Vec<JoinHandle<()>>) {
    let hub = Hub::builder().history(64).build();
    let tasks = (0..round.subscribers)
        .map(|i| {
            let mut subscription = hub.try_subscribe("bench", Resume::Live).expect("subscribe");
            let receipts = round.receipts(i);
            rt.spawn(async move {
                while let Some(chunk) = subscription.next().await {
                    black_box(chunk);
                    receipts.hit();
                }
            })
        })
        .collect();
    (Ssekit { hub }, tasks)
}

/// `ssekit_sse`: tasks polling the per-connection stream of `Hub::sse`.
fn ssekit_sse(rt: &Runtime, round: &Arc<Round>) -> (Ssekit, Vec<JoinHandle<()>>) {
    let hub = Hub::builder().history(64).build();
    let tasks = (0..round.subscribers)
        .map(|i| {
            let mut sse = Sse::from_subscription(hub.try_subscribe("bench", Resume::Live).expect("subscribe"));
            let receipts = round.receipts(i);
            rt.spawn(async move {
                while let Some(Ok(chunk)) = sse.next().await {
                    black_box(chunk);
                    receipts.hit();
                }
            })
        })
        .collect();
    (Ssekit { hub }, tasks)
}

/// `ssekit_4_topics`: tasks polling `Sse` streams of 4 topics each; an event is
/// received when the chunk that ends it (with its id line) arrives.
fn ssekit_4_topics(rt: &Runtime, round: &Arc<Round>) -> (Ssekit, Vec<JoinHandle<()>>) {
    four_topics(rt, round, |_| "other-3".to_owned())
}

/// `ssekit_4_topics_own`: as `ssekit_4_topics`, one of the 4 topics each subscriber's own.
fn ssekit_4_topics_own(rt: &Runtime, round: &Arc<Round>) -> (Ssekit, Vec<JoinHandle<()>>) {
    four_topics(rt, round, |i| format!("own-{i}"))
}

/// Subscribers of `bench`, two other topics, and the fourth that `fourth` names.
fn four_topics(rt: &Runtime, round: &Arc<Round>, fourth: impl Fn(usize) -> String) -> (Ssekit, Vec<JoinHandle<()>>) {
    let hub = Hub::builder().history(64).max_topics(round.subscribers + 16).build();
    let tasks = (0..round.subscribers)
        .map(|i| {
            let topics = ["bench".to_owned(), "other-1".to_owned(), "other-2".to_owned(), fourth(i)];
            let mut sse = Sse::from_subscription(hub.try_subscribe_many(&topics, Resume::Live, 0).expect("subscribe"));
            let receipts = round.receipts(i);
            rt.spawn(async move {
                while let Some(Ok(chunk)) = sse.next().await {
                    if black_box(chunk).ends_with(b"\n\n") {
                        receipts.hit();
                    }
                }
            })
        })
        .collect();
    (Ssekit { hub }, tasks)
}

struct Broadcast {
    tx: broadcast::Sender<String>,
}

impl Fanout for Broadcast {
    fn publish(&self) {
        black_box(self.tx.send(PAYLOAD.to_owned()).expect("receivers"));
    }

    fn stop(self) {
        drop(self.tx);
    }
}

/// The payloads of a broadcast receiver as a stream, skipping lag as such code usually does.
fn payloads(rx: broadcast::Receiver<String>) -> impl futures_util::Stream<Item = String> + Send + 'static {
    stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(payload) => return Some((payload, rx)),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

/// `broadcast_axum`: each task polls the data stream of its own axum `Sse` response body.
fn broadcast_axum(rt: &Runtime, round: &Arc<Round>) -> (Broadcast, Vec<JoinHandle<()>>) {
    let (tx, _) = broadcast::channel(64);
    let tasks = (0..round.subscribers)
        .map(|i| {
            let events =
                payloads(tx.subscribe()).map(|payload| Ok::<_, Infallible>(AxumEvent::default().data(payload)));
            let response = AxumSse::new(events).keep_alive(KeepAlive::default()).into_response();
            let mut body = response.into_body().into_data_stream();
            let receipts = round.receipts(i);
            rt.spawn(async move {
                while let Some(Ok(chunk)) = body.next().await {
                    black_box(chunk);
                    receipts.hit();
                }
            })
        })
        .collect();
    (Broadcast { tx }, tasks)
}

/// `broadcast_format`: `rx.recv()` and the bytes axum would write, formatted by hand.
fn broadcast_format(rt: &Runtime, round: &Arc<Round>) -> (Broadcast, Vec<JoinHandle<()>>) {
    let (tx, _) = broadcast::channel(64);
    let tasks = (0..round.subscribers)
        .map(|i| {
            let mut rx = tx.subscribe();
            let receipts = round.receipts(i);
            rt.spawn(async move {
                loop {
                    match rx.recv().await {
                        Ok(payload) => {
                            black_box(Bytes::from(format!("data: {payload}\n\n")));
                            receipts.hit();
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => break,
                    }
                }
            })
        })
        .collect();
    (Broadcast { tx }, tasks)
}

type Setup<F> = fn(&Runtime, &Arc<Round>) -> (F, Vec<JoinHandle<()>>);

fn run<F: Fanout>(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &Runtime,
    name: &str,
    n: usize,
    setup: Setup<F>,
) {
    let round = Round::new(n);
    // Inside the runtime: axum's keep-alive creates its timer when the stream is built.
    let (fanout, tasks) = {
        let _runtime = rt.enter();
        setup(rt, &round)
    };
    c.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
        b.to_async(rt).iter_custom(|iters| {
            let (round, fanout) = (round.clone(), &fanout);
            async move { round.measure(iters, || fanout.publish()).await }
        });
    });
    fanout.stop();
    rt.block_on(async {
        for task in tasks {
            task.await.expect("subscriber task");
        }
    });
}

fn fanout(c: &mut Criterion) {
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    // `FANOUT_WORKERS=1`: one worker thread, to tell the fan-out's own cost from
    // what spreading the subscriber tasks over the cores adds.
    if let Some(workers) = std::env::var("FANOUT_WORKERS").ok().and_then(|w| w.parse().ok()) {
        rt.worker_threads(workers);
    }
    let rt = rt.enable_all().build().expect("runtime");
    let mut group = c.benchmark_group("fanout");
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    for n in SUBSCRIBERS {
        group.throughput(Throughput::Elements(n as u64));
        run(&mut group, &rt, "ssekit", n, ssekit);
        run(&mut group, &rt, "ssekit_sse", n, ssekit_sse);
        run(&mut group, &rt, "ssekit_4_topics", n, ssekit_4_topics);
        run(&mut group, &rt, "ssekit_4_topics_own", n, ssekit_4_topics_own);
        run(&mut group, &rt, "broadcast_axum", n, broadcast_axum);
        run(&mut group, &rt, "broadcast_format", n, broadcast_format);
    }
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
