//! A hub at its topic limit: what a request for one more topic costs.
//!
//! Run with `cargo bench -p ssekit-bench --bench topic_limit`.
//!
//! Clients choose topic names, so once a hub holds `max_topics` topics a client can ask for
//! a new name on every request. Side by side, in one group per number of topics held (each
//! retaining one event, with no subscriber and a one-hour age limit, so none can be dropped):
//!
//! - `refused_at_limit`: `Hub::subscribe` to a topic not held, refused with
//!   `TopicError::Limit`;
//! - `existing_topic`: `Hub::subscribe` to a topic held, and dropping the subscription: the
//!   cost of an ordinary request, the yardstick for the refusal.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ssekit::{Event, Hub, Resume};

fn topic_limit(c: &mut Criterion) {
    let mut group = c.benchmark_group("topic_limit");
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    for topics in [100, 10_000] {
        let hub = Hub::builder().max_topics(topics).max_age(Duration::from_secs(3600)).build();
        for i in 0..topics {
            hub.try_publish(&format!("topic-{i}"), Event::new().data("x")).expect("below the limit");
        }
        assert!(hub.try_subscribe("one-more", Resume::Live).is_err(), "at the limit");
        group.bench_function(BenchmarkId::new("refused_at_limit", topics), |b| {
            b.iter(|| black_box(hub.try_subscribe(black_box("one-more"), Resume::Live)).is_err())
        });
        group.bench_function(BenchmarkId::new("existing_topic", topics), |b| {
            b.iter(|| drop(black_box(hub.try_subscribe(black_box("topic-7"), Resume::Live))))
        });
    }
    group.finish();
}

criterion_group!(benches, topic_limit);
criterion_main!(benches);
