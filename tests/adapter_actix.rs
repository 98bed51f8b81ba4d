//! The demo app on actix-web, run as its own process and spoken to over raw
//! HTTP/1.1: headers, event-by-event delivery, resume, disconnects, shutdown and
//! input validation; and servers of the tests' own on actix-web: per-request
//! streams and refusals.
#![cfg(feature = "actix")]

#[macro_use]
mod support;

use actix_web::{App, web};
use ssekit::{Hub, Resume};
use support::checks::{self, Feed};
use support::demo::{Demo, DemoApp};
use support::server::{self, Server, ShutdownSignal};

fn start() -> Demo {
    Demo::start(DemoApp::Actix, checks::CONTRACT_FLAGS)
}

/// Serves the routes `configure` adds (see [`server::serve_actix`]).
async fn serve_with(
    listener: std::net::TcpListener,
    shutdown: ShutdownSignal,
    configure: impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
) -> std::io::Result<()> {
    server::serve_actix(listener, shutdown, move || App::new().configure(configure.clone())).await
}

// actix-web notices a closed connection only when writing to it fails.
contract_tests!(#[tokio::test(flavor = "multi_thread")], detect: checks::Detect::Write);

#[tokio::test(flavor = "multi_thread")]
async fn refused_subscriptions_answer_as_the_error_says() {
    let server = Server::start(checks::refusing_hub(), |listener, hub, shutdown| {
        let hub = web::Data::new(hub);
        serve_with(listener, shutdown, move |config| {
            config.app_data(hub.clone()).route(
                "/events/{topic}",
                web::get().to(|hub: web::Data<Hub>, topic: web::Path<String>, resume: Resume| async move {
                    hub.sse(&topic, resume).await
                }),
            );
        })
    });
    checks::check_refusals(server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn per_request_stream_with_keep_alive() {
    let feed = Feed::default();
    let route = feed.clone();
    // (The server cuts a connection it still counts at the stop after 3 s. The
    // stream has ended by then, as `check_per_request` asserts.)
    let server = Server::start(ssekit::Hub::new(), |listener, _, shutdown| {
        serve_with(listener, shutdown, move |config| {
            let route = route.clone();
            config.route("/stream", web::get().to(move || std::future::ready(route.sse())));
        })
    });
    checks::check_per_request(server.addr, &feed).await;
    server.shutdown().await;
}

/// actix-web sees a departed client only when a write fails, and the first write
/// after the client closed succeeds: the stream's comment 250 ms after that
/// write is the one that fails. One publish after the client left is enough.
#[tokio::test(flavor = "multi_thread")]
async fn a_departed_client_is_let_go_a_second_after_one_publish() {
    let demo = start();
    let sse = support::client::events(demo.addr, "topic=gone", &[]).await;
    demo.wait_subscribers(1).await;
    drop(sse);
    demo.publish("gone", "anyone there?").await;
    support::client::wait_for("subscribers after one publish", 0, async || demo.subscribers().await).await;
    assert_eq!(demo.metric("disconnects_client").await, 1);
    demo.shutdown().await;
}
