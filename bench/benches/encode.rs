//! Encoding one event: ssekit against axum's SSE encoder and against a plain copy of the payload.
//!
//! Run with `cargo bench -p ssekit-bench --bench encode`; results and how to read them are in `BENCHMARKS.md`.
//!
//! Every side starts from the same `&str` payload and includes building the event from an
//! owned `String` copy of it, as an application building an event from its data would.
//!
//! - `ssekit`: `Event::new().event("update").data(payload.to_owned()).encode()`.
//! - `axum`: `axum::response::sse::Event::default().event("update").data(payload.to_owned())`.
//!   axum 0.8.9 keeps the encoding of its `Event` private (`Event::finalize`); the only public
//!   route to the bytes is the body of its `Sse` response. So this side measures: build the
//!   event, `Sse::new(stream::iter([Ok(event)])).into_response()` (two headers, a boxed body),
//!   and poll the body for its one data frame with `BodyExt::frame` (ready at once, so no
//!   runtime is needed: `now_or_never`).
//! - `axum_response_overhead`: the same response around an *empty* event stream, polled to its
//!   end. Subtracting it from `axum` estimates axum's encoding alone.
//! - `ssekit_encode_only`: `event.encode()` of an event built beforehand: the encoding alone.
//! - `memcpy`: `Bytes::copy_from_slice(payload)`: the floor for a large event.
//!
//! Large events come in three shapes: lines of 80 bytes (820 lines, where the cost per line
//! dominates), lines of 4 KiB (16 lines, where the copy does), and one line (a JSON
//! document as `serde_json::to_string` writes it).
//!
//! Throughput is the payload size, the same for every side.

use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;

use axum::response::IntoResponse;
use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::{FutureExt, stream};
use http_body_util::BodyExt;

/// `len` bytes of text in lines of at most `line` bytes (LF-separated; no trailing LF).
fn payload(len: usize, line: usize) -> String {
    let words = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor ";
    let mut out = String::with_capacity(len);
    let mut col = 0;
    while out.len() < len {
        if col == line - 1 {
            out.push('\n');
            col = 0;
        } else {
            let at = out.len() % words.len();
            out.push_str(&words[at..at + 1]);
            col += 1;
        }
    }
    out
}

fn ssekit_encode(payload: &str) -> Bytes {
    let data: String = payload.to_owned();
    ssekit::Event::new().event("update").data(data).encode().unwrap().into_bytes()
}

fn axum_body(
    stream: impl futures_util::Stream<Item = Result<axum::response::sse::Event, Infallible>> + Send + 'static,
) -> Option<Bytes> {
    let mut body = axum::response::sse::Sse::new(stream).into_response().into_body();
    let frame = body.frame().now_or_never().expect("the stream is always ready")?.unwrap();
    frame.into_data().ok()
}

fn axum_encode(payload: &str) -> Bytes {
    // axum's `data` borrows, but the application owns its data as a `String` on both sides.
    let data: String = payload.to_owned();
    let event = axum::response::sse::Event::default().event("update").data(data);
    axum_body(stream::iter([Ok(event)])).unwrap()
}

fn encode(c: &mut Criterion) {
    let sizes = [
        ("small", payload(100, 200)),
        ("medium", payload(1024, 256)),
        ("large", payload(64 * 1024, 80)),
        ("large_long_lines", payload(64 * 1024, 4096)),
        ("large_one_line", payload(64 * 1024, usize::MAX)),
    ];

    // The two encoders agree on these payloads (LF only, no CR), so the sides do the same work.
    for (_, payload) in &sizes {
        assert_eq!(ssekit_encode(payload), axum_encode(payload));
    }

    let mut group = c.benchmark_group("encode");
    group.measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_secs(1)).sample_size(20);
    for (name, payload) in &sizes {
        let payload = payload.as_str();
        group.throughput(Throughput::Bytes(payload.len() as u64));
        group
            .bench_with_input(BenchmarkId::new("ssekit", name), payload, |b, p| b.iter(|| ssekit_encode(black_box(p))));
        group.bench_with_input(BenchmarkId::new("axum", name), payload, |b, p| b.iter(|| axum_encode(black_box(p))));
        // The encoding alone, from an event already built: what a publish costs
        // beyond owning the data.
        let event = ssekit::Event::new().event("update").data(payload);
        group.bench_with_input(BenchmarkId::new("ssekit_encode_only", name), &event, |b, e| {
            b.iter(|| black_box(e).encode().unwrap())
        });
        group.bench_with_input(BenchmarkId::new("memcpy", name), payload, |b, p| {
            b.iter(|| Bytes::copy_from_slice(black_box(p).as_bytes()))
        });
    }
    group.throughput(Throughput::Elements(1));
    group.bench_function("axum_response_overhead", |b| {
        b.iter(|| axum_body(black_box(stream::empty::<Result<axum::response::sse::Event, Infallible>>())))
    });
    group.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
