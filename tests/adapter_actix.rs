//! The demo app on actix-web, over raw HTTP/1.1: headers, event-by-event
//! delivery, resume, disconnects, shutdown, input validation and per-request
//! streams.
#![cfg(feature = "actix")]

#[allow(dead_code)] // `main` and whatever this file does not test.
#[path = "../examples/demo_actix.rs"]
mod demo;
mod support;

use actix_web::{App, HttpServer, web};
use support::{Feed, Server};

fn start() -> Server {
    Server::start(support::test_hub(), demo::serve)
}

#[tokio::test(flavor = "multi_thread")]
async fn events_arrive_one_by_one() {
    let server = start();
    support::check_events_one_by_one(&server).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn resume_replays_missed_events_or_resets() {
    let server = start();
    support::check_resume(&server).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn disconnected_client_is_unsubscribed() {
    let server = start();
    // actix-web notices a closed connection only when writing to it fails.
    support::check_disconnect(&server, support::Detect::Write).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_publish_is_refused() {
    let server = start();
    support::check_invalid_publish(&server).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn graceful_shutdown_with_clients_connected() {
    support::check_shutdown(start()).await;
}

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
