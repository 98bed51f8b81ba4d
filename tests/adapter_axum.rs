//! The demo app on axum, over raw HTTP/1.1: headers, event-by-event delivery,
//! resume, disconnects, shutdown, input validation, per-request streams, and
//! delivery through a compression layer.
#![cfg(feature = "axum")]

#[allow(dead_code)] // `main` and whatever this file does not test.
#[path = "../examples/demo.rs"]
mod demo;
#[macro_use]
mod support;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use ssekit::{Hub, Resume};
use support::{Feed, Server};

fn start() -> Server {
    Server::start(support::test_hub(), |listener, hub, shutdown| async move {
        demo::serve(tokio::net::TcpListener::from_std(listener)?, hub, shutdown).await
    })
}

contract_tests!(#[tokio::test], detect: support::Detect::Read);

#[tokio::test]
async fn per_request_stream_with_keep_alive() {
    let feed = Feed::default();
    let route = feed.clone();
    let app = Router::new().route("/stream", get(move || async move { route.sse() }));
    let server = Server::start(ssekit::Hub::new(), |listener, _, shutdown| async move {
        axum::serve(tokio::net::TcpListener::from_std(listener)?, app).with_graceful_shutdown(shutdown).await
    });
    support::check_per_request(server.addr, &feed).await;
    server.shutdown().await;
}

#[tokio::test]
async fn refused_subscriptions_answer_as_the_error_says() {
    let server = Server::start(support::refusing_hub(), |listener, hub, shutdown| async move {
        let app =
            Router::new().route(
                "/events/{topic}",
                get(|State(hub): State<Hub>, Path(topic): Path<String>, resume: Resume| async move {
                    hub.sse(&topic, resume)
                }),
            );
        axum::serve(tokio::net::TcpListener::from_std(listener)?, app.with_state(hub))
            .with_graceful_shutdown(shutdown)
            .await
    });
    support::check_refusals(server).await;
}

/// tower-http's compression leaves `text/event-stream` alone, so each event is
/// delivered as it is published: the first is read before the second exists.
#[tokio::test]
async fn compression_layer_does_not_buffer_events() {
    let server = Server::start(support::test_hub(), |listener, hub, shutdown| async move {
        let app = demo::app(hub).layer(tower_http::compression::CompressionLayer::new());
        axum::serve(tokio::net::TcpListener::from_std(listener)?, app).with_graceful_shutdown(shutdown).await
    });
    let mut sse = support::events(server.addr, "topic=zip", &[("accept-encoding", "gzip")]).await;
    sse.assert_sse_headers();
    for i in 0..3 {
        support::publish(&server.hub, "zip", &format!("z{i}"));
        assert_eq!(sse.next_event().await.data, format!("z{i}"));
    }
    // Other responses are compressed, so the layer is in effect.
    let page = support::request(server.addr, "GET", "/", &[("accept-encoding", "gzip")], b"").await;
    assert_eq!(page.header("content-encoding"), Some("gzip"));
    server.shutdown().await;
}
