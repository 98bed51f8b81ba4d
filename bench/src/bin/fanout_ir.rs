//! A fixed fan-out workload to count instructions with callgrind, where timed
//! runs on a shared machine are too noisy to show a change of a few percent:
//! 2 000 subscribers of one topic on a current-thread runtime, 200 events, each
//! delivered to every subscriber before the next is published.
//!
//! ```sh
//! cargo build --release -p ssekit-bench --bin fanout_ir
//! valgrind --tool=callgrind target/release/fanout_ir subscription   # Hub::subscribe streams
//! valgrind --tool=callgrind target/release/fanout_ir sse            # Hub::sse streams
//! ```
//!
//! Build it at two commits and compare the `Collected` totals (the same work,
//! so the difference is the code's).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::StreamExt;
use ssekit::{Event, Hub, Resume, Sse};

const SUBSCRIBERS: usize = 2_000;
const EVENTS: usize = 200;

fn main() {
    let sse = match std::env::args().nth(1).as_deref() {
        Some("subscription") => false,
        Some("sse") => true,
        _ => {
            eprintln!("usage: fanout_ir subscription|sse");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let hub = Hub::builder().history(64).build();
        let received = Arc::new(AtomicUsize::new(0));
        for _ in 0..SUBSCRIBERS {
            let received = received.clone();
            let subscription = hub.try_subscribe("bench", Resume::Live).expect("subscribe");
            if sse {
                let mut sse = Sse::from_subscription(subscription);
                tokio::spawn(async move {
                    while let Some(Ok(chunk)) = sse.next().await {
                        std::hint::black_box(chunk);
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                });
            } else {
                let mut subscription = subscription;
                tokio::spawn(async move {
                    while let Some(chunk) = subscription.next().await {
                        std::hint::black_box(chunk);
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        }
        tokio::task::yield_now().await;
        for i in 0..EVENTS {
            hub.try_publish("bench", Event::new().data(format!("{{\"i\":{i}}}"))).expect("publish");
            while received.load(Ordering::Relaxed) < SUBSCRIBERS * (i + 1) {
                tokio::task::yield_now().await;
            }
        }
    });
}
