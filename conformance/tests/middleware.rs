//! SSE through third-party middleware that users put in front of every route:
//! compression must not hold events back.

// The HTTP test support of the root package's tests (a raw client, servers run
// in-process): one copy serves both packages.
#[path = "../../tests/support/mod.rs"]
mod support;

use axum::response::Html;
use axum::routing::get;
use ssekit::Hub;
use support::client;
use support::server::{self, Server};

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
