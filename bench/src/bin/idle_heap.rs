//! Heap bytes per idle SSE connection, everything counted: the connection's
//! task, hyper's buffers, axum's body, the stream. Served in this process as
//! users run axum and hyper today:
//!
//! - `ssekit` through `axum::serve`: `hub.sse("t", resume)` (a `Hub::sse`
//!   stream, keep-alive 15 s) as an axum response;
//! - `ssekit` through hyper: the same stream as the body of a `service_fn`
//!   served by `hyper::server::conn::http1`, a task per connection;
//! - with the feature `demo-stack`, `ssekit` as the demos serve it:
//!   hyper-util's `auto` builder (HTTP/1 and HTTP/2 on one port) with a
//!   header-read timeout, each connection watched for graceful shutdown. The
//!   feature turns on HTTP/2 in hyper-util, which `axum::serve` then also
//!   serves (axum's default features serve HTTP/1 only), so that run's
//!   figures are compared among themselves;
//! - `axum pattern` through `axum::serve`: a `tokio::sync::broadcast` receiver
//!   in axum's `Sse` with its `KeepAlive` (15 s), what the axum examples show.
//!
//! Run with `cargo run --release -p ssekit-bench --bin idle_heap [connections]`
//! (default 2 000). A counting global allocator (`stats_alloc`) counts the heap
//! grown while the connections are opened and left idle; the clients are plain
//! blocking sockets on this side, which allocate nothing per connection. The
//! per-stream part alone is what `--bin memory` prints.

use std::alloc::System;
use std::collections::HashMap;
use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::sse::{Event as AxumEvent, KeepAlive, Sse as AxumSse};
use axum::routing::get;
use futures_util::{Stream, StreamExt};
use ssekit::{Hub, Resume, Sse, SseConfig, SubscribeError, Subscription};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const KEEP_ALIVE: Duration = Duration::from_secs(15);

async fn ssekit_events(State(hub): State<Hub>, resume: Resume) -> Result<Sse<Subscription>, SubscribeError> {
    Ok(hub.sse("t", resume).await?.with_config(SseConfig::new().keep_alive(Some(KEEP_ALIVE))))
}

type Topics = Arc<Mutex<HashMap<String, broadcast::Sender<String>>>>;

async fn axum_events(
    State(topics): State<Topics>,
) -> AxumSse<impl Stream<Item = Result<AxumEvent, std::convert::Infallible>>> {
    let rx = topics.lock().unwrap().entry("t".to_owned()).or_insert_with(|| broadcast::channel(1024).0).subscribe();
    let stream = BroadcastStream::new(rx)
        .filter_map(|message| async move { message.ok().map(|data| Ok(AxumEvent::default().data(data))) });
    AxumSse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

/// Runs `serve` with a listener on a thread of its own; the listener's address.
fn serve_with<F: Future<Output = ()>>(serve: impl FnOnce(tokio::net::TcpListener) -> F + Send + 'static) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async move { serve(tokio::net::TcpListener::from_std(listener).expect("listener")).await });
    });
    addr
}

/// Serves `router` with `axum::serve`.
fn serve(router: Router) -> SocketAddr {
    serve_with(|listener| async move { axum::serve(listener, router).await.expect("serve") })
}

/// Serves every request with the hub's stream through hyper's HTTP/1 server,
/// as the hyper guide does: a task per connection.
fn serve_hyper(hub: Hub) -> SocketAddr {
    serve_hyper_with(hub, false)
}

/// [`serve_hyper`], or (`demo_stack`) as `examples/common/serve.rs` serves:
/// hyper-util's `auto` builder with a header-read timeout, and a graceful
/// shutdown watcher on each connection.
#[cfg_attr(not(feature = "demo-stack"), allow(unused_variables))]
fn serve_hyper_with(hub: Hub, demo_stack: bool) -> SocketAddr {
    serve_with(move |listener| async move {
        #[cfg(feature = "demo-stack")]
        let (auto, graceful) = {
            let mut auto = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            auto.http1().timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(Duration::from_secs(10));
            (auto, hyper_util::server::graceful::GracefulShutdown::new())
        };
        loop {
            let (stream, _) = listener.accept().await.expect("accept");
            let hub = hub.clone();
            let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let hub = hub.clone();
                async move {
                    let resume = Resume::from_request(request.headers(), request.uri().query());
                    let sse = hub.sse("t", resume).await?.with_config(SseConfig::new().keep_alive(Some(KEEP_ALIVE)));
                    Ok::<_, SubscribeError>(sse.into_http_response())
                }
            });
            #[cfg(feature = "demo-stack")]
            if demo_stack {
                let connection = auto.serve_connection(hyper_util::rt::TokioIo::new(stream), service).into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                continue;
            }
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

/// Opens an event stream and reads its head (and what comes with it).
fn open(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.write_all(b"GET /events HTTP/1.1\r\nhost: bench\r\naccept: text/event-stream\r\n\r\n").expect("request");
    let mut head = [0u8; 1024];
    let mut read = 0;
    while !head[..read].windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut head[read..]).expect("read");
        assert!(n > 0, "closed before the head");
        read += n;
    }
    assert!(head.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head[..read]));
    stream
}

/// Heap bytes the server holds per idle connection.
fn per_connection(addr: SocketAddr, connections: usize) -> f64 {
    // Warm up: first-use allocations of the runtime, the router and the topic.
    let warm: Vec<TcpStream> = (0..16).map(|_| open(addr)).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut streams = Vec::with_capacity(connections);
    let region = Region::new(GLOBAL);
    for _ in 0..connections {
        streams.push(open(addr));
    }
    // Let the server finish with each connection's first polls.
    std::thread::sleep(Duration::from_millis(500));
    let change = region.change();
    drop((warm, streams));
    (change.bytes_allocated as f64 - change.bytes_deallocated as f64) / connections as f64
}

fn main() {
    let connections: usize = std::env::args().nth(1).map_or(2_000, |n| n.parse().expect("a number of connections"));
    let ssekit = serve(Router::new().route("/events", get(ssekit_events)).with_state(Hub::new()));
    let hyper = serve_hyper(Hub::new());
    let demo_stack = cfg!(feature = "demo-stack").then(|| serve_hyper_with(Hub::new(), true));
    let axum = serve(Router::new().route("/events", get(axum_events)).with_state(Topics::default()));
    let ssekit = per_connection(ssekit, connections);
    let hyper = per_connection(hyper, connections);
    let demo_stack = demo_stack.map(|addr| per_connection(addr, connections));
    let axum = per_connection(axum, connections);
    println!("heap bytes per idle connection ({connections} connections):");
    println!("  ssekit Hub::sse through axum::serve:                {ssekit:>7.0}  ({:.4}x)", ssekit / axum);
    println!("  ssekit Hub::sse through hyper (http1, service_fn):  {hyper:>7.0}  ({:.4}x)", hyper / axum);
    if let Some(demo_stack) = demo_stack {
        println!(
            "  ssekit Hub::sse as the demos serve (auto, graceful): {demo_stack:>7.0}  ({:.4}x)",
            demo_stack / axum
        );
    }
    println!("  axum pattern (broadcast + Sse) through axum::serve: {axum:>7.0}");
}
