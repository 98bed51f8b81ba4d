//! The demo app on axum, run as its own process and spoken to over raw
//! HTTP/1.1: headers, event-by-event delivery, resume, disconnects, shutdown and
//! input validation; and servers of the tests' own on axum: per-request streams,
//! refusals, and delivery through a compression layer.
#![cfg(feature = "axum")]

#[macro_use]
mod support;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Html;
use axum::routing::get;
use ssekit::{Hub, Resume};
use support::checks::{self, Feed};
use support::client;
use support::demo::{Demo, DemoApp};
use support::server::{self, Server};

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

/// A page long enough for the compression layer to compress.
const PAGE: &str = "<!doctype html><title>feed</title><p>A page long enough to be worth compressing.</p>";

/// tower-http's compression leaves `text/event-stream` alone, so each event is
/// delivered as it is published: the first is read before the second exists.
#[tokio::test]
async fn compression_layer_does_not_buffer_events() {
    let server = Server::start(Hub::builder().history(4).build(), |listener, hub, shutdown| {
        let app = server::events_app(hub)
            .route("/", get(|| async { Html(PAGE) }))
            .layer(tower_http::compression::CompressionLayer::new());
        server::serve_axum(listener, app, shutdown)
    });
    let mut sse = client::events(server.addr, "topic=zip", &[("accept-encoding", "gzip")]).await;
    sse.assert_sse_headers();
    for i in 0..3 {
        server::publish(&server.hub, "zip", &format!("z{i}"));
        assert_eq!(sse.next_event().await.data, format!("z{i}"));
    }
    // Other responses are compressed, so the layer is in effect.
    let page = client::request(server.addr, "GET", "/", &[("accept-encoding", "gzip")], b"").await;
    assert_eq!(page.header("content-encoding"), Some("gzip"));
    server.shutdown().await;
}
