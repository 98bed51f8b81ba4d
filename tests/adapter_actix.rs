//! The demo app on actix-web, over raw HTTP/1.1: headers, event-by-event
//! delivery, resume, disconnects, shutdown, input validation and per-request
//! streams.
#![cfg(feature = "actix")]

#[allow(dead_code)] // `main` and whatever this file does not test.
#[path = "../examples/demo_actix.rs"]
mod demo;
#[macro_use]
mod support;

use actix_web::{App, HttpServer, web};
use support::{Feed, Server};

fn start() -> Server {
    Server::start(support::test_hub(), demo::serve)
}

// actix-web notices a closed connection only when writing to it fails.
contract_tests!(#[tokio::test(flavor = "multi_thread")], detect: support::Detect::Write);

#[tokio::test(flavor = "multi_thread")]
async fn per_request_stream_with_keep_alive() {
    let feed = Feed::default();
    let route = feed.clone();
    let server = Server::start(ssekit::Hub::new(), |listener, _, shutdown| async move {
        let server = HttpServer::new(move || {
            let route = route.clone();
            App::new().route("/stream", web::get().to(move || std::future::ready(route.sse())))
        })
        .workers(1)
        .disable_signals()
        // As in the demo: a connection actix still counts at the stop is cut after
        // 2 s instead of its default 30 s, which is past the suite's 5 s bound. (The
        // stream has ended by then, as `check_per_request` asserts.)
        .shutdown_timeout(2)
        .listen(listener)?
        .run();
        let handle = server.handle();
        tokio::spawn(async move {
            shutdown.await;
            handle.stop(true).await;
        });
        server.await
    });
    support::check_per_request(server.addr, &feed).await;
    server.shutdown().await;
}
