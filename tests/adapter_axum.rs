//! The demo app on axum, run as its own process and spoken to over raw
//! HTTP/1.1: headers, event-by-event delivery, resume, disconnects, shutdown and
//! input validation; and servers of the tests' own on axum: per-request streams,
//! refusals. (Delivery through tower-http's compression layer is in
//! `conformance/tests/middleware.rs`.)
#![cfg(feature = "axum")]

#[macro_use]
mod support;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use ssekit::{Hub, Resume};
use support::checks::{self, Feed};
use support::demo::{Demo, DemoApp};
use support::server::Server;

fn start() -> Demo {
    Demo::start(DemoApp::Axum, checks::CONTRACT_FLAGS)
}

contract_tests!(#[tokio::test], detect: checks::Detect::Read);

#[tokio::test]
async fn per_request_stream_with_keep_alive() {
    let feed = Feed::default();
    let route = feed.clone();
    let app = Router::new().route("/stream", get(move || async move { route.sse() }));
    let server = Server::start(ssekit::Hub::new(), |listener, _, shutdown| async move {
        axum::serve(tokio::net::TcpListener::from_std(listener)?, app).with_graceful_shutdown(shutdown).await
    });
    checks::check_per_request(server.addr, &feed).await;
    server.shutdown().await;
}

#[tokio::test]
async fn refused_subscriptions_answer_as_the_error_says() {
    let server = Server::start(checks::refusing_hub(), |listener, hub, shutdown| async move {
        let app = Router::new().route(
            "/events/{topic}",
            get(|State(hub): State<Hub>, Path(topic): Path<String>, resume: Resume| async move {
                hub.sse(&topic, resume).await
            }),
        );
        axum::serve(tokio::net::TcpListener::from_std(listener)?, app.with_state(hub))
            .with_graceful_shutdown(shutdown)
            .await
    });
    checks::check_refusals(server).await;
}
