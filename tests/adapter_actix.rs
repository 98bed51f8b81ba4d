//! The demo app on actix-web, over raw HTTP/1.1: headers, event-by-event
//! delivery, resume, disconnects, shutdown, input validation and per-request
//! streams.
#![cfg(feature = "actix")]

#[allow(dead_code)] // `main` and whatever this file does not test.
#[path = "../examples/demo_actix.rs"]
mod demo;
#[macro_use]
mod support;

use actix_web::web;
use ssekit::{Hub, Resume};
use support::{Feed, Server};

fn start() -> Server {
    Server::start(support::test_hub(), demo::serve)
}

// actix-web notices a closed connection only when writing to it fails.
contract_tests!(#[tokio::test(flavor = "multi_thread")], detect: support::Detect::Write);

#[tokio::test(flavor = "multi_thread")]
async fn refused_subscriptions_answer_as_the_error_says() {
    let server = Server::start(support::refusing_hub(), |listener, hub, shutdown| {
        let hub = web::Data::new(hub);
        demo::serve_with(listener, shutdown, move |config| {
            config.app_data(hub.clone()).route(
                "/events/{topic}",
                web::get().to(|hub: web::Data<Hub>, topic: web::Path<String>, resume: Resume| async move {
                    hub.sse(&topic, resume)
                }),
            );
        })
    });
    support::check_refusals(server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn per_request_stream_with_keep_alive() {
    let feed = Feed::default();
    let route = feed.clone();
    // (The demo's server cuts a connection it still counts at the stop after 3 s,
    // not actix's default 30 s, which is past the suite's 5 s bound. The stream
    // has ended by then, as `check_per_request` asserts.)
    let server = Server::start(ssekit::Hub::new(), |listener, _, shutdown| {
        demo::serve_with(listener, shutdown, move |config| {
            let route = route.clone();
            config.route("/stream", web::get().to(move || std::future::ready(route.sse())));
        })
    });
    support::check_per_request(server.addr, &feed).await;
    server.shutdown().await;
}
