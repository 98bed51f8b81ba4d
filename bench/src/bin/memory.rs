//! Heap bytes per idle subscriber: ssekit's `Hub::sse` stream against a `tokio::sync::broadcast`
//! receiver served through axum's `Sse` response body.
//!
//! Run with `cargo run --release -p ssekit-bench --bin memory`
//!
//! Each measurement builds 10 000 streams on one topic (or channel) that already exists, polls
//! each once (as a server does when it starts the response: this arms the keep-alive timer and
//! registers the waker) and keeps them alive; the heap grown by that, divided by 10 000, is the
//! cost per idle connection, not counting the socket, the connection task or HTTP state.
//! Heap bytes are counted by a counting global allocator (`stats_alloc`).

use std::alloc::System;
use std::convert::Infallible;
use std::time::Duration;

use axum::response::IntoResponse;
use axum::response::sse::{Event as AxumEvent, KeepAlive, Sse as AxumSse};
use futures_util::{FutureExt, StreamExt, stream};
use ssekit::{Event, Hub, Resume, Sse, SseConfig};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tokio::sync::broadcast;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const STREAMS: usize = 10_000;

/// Bytes per stream after `make` built and polled `STREAMS` of them: the stream value itself
/// (it lives inline in a connection's task) plus the heap it holds.
fn per_stream<T>(mut make: impl FnMut() -> T, mut poll: impl FnMut(&mut T)) -> (usize, f64) {
    let region = Region::new(GLOBAL);
    // The Vec holds the stream values: its allocation counts as their inline size.
    let mut streams = Vec::with_capacity(STREAMS);
    for _ in 0..STREAMS {
        streams.push(make());
    }
    for stream in &mut streams {
        poll(stream);
    }
    let change = region.change();
    let live = change.bytes_allocated as f64 - change.bytes_deallocated as f64;
    (std::mem::size_of::<T>(), live / STREAMS as f64)
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let _runtime = rt.enter();

    let hub = Hub::new();
    let config = SseConfig::new().keep_alive(Some(Duration::from_secs(15)));
    // The topic exists and holds an event already: what is measured is the subscriber only.
    let _first = hub.try_subscribe("t", Resume::Live).expect("subscribe");
    hub.try_publish("t", Event::new().data("warm-up")).expect("publish");
    let ssekit = per_stream(
        || Sse::from_subscription(hub.try_subscribe("t", Resume::Live).expect("subscribe")).with_config(config.clone()),
        |sse| assert!(sse.next().now_or_never().is_none(), "idle"),
    );

    let (tx, _keep) = broadcast::channel::<String>(1024);
    tx.send("warm-up".to_owned()).expect("receiver");
    let axum = per_stream(
        || {
            let events = stream::unfold(tx.subscribe(), |mut rx| async move {
                loop {
                    match rx.recv().await {
                        Ok(payload) => return Some((payload, rx)),
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            })
            .map(|payload| Ok::<_, Infallible>(AxumEvent::default().data(payload)));
            AxumSse::new(events).keep_alive(KeepAlive::default()).into_response().into_body().into_data_stream()
        },
        |body| assert!(body.next().now_or_never().is_none(), "idle"),
    );

    println!("bytes per idle subscriber ({STREAMS} streams, after their first poll): total (of which inline)");
    println!("  ssekit Hub::sse (keep-alive 15 s):                      {:>6.0} ({})", ssekit.1, ssekit.0);
    println!("  broadcast receiver + axum Sse body (KeepAlive default): {:>6.0} ({})", axum.1, axum.0);
}
