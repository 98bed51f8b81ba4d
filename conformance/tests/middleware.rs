//! SSE through third-party middleware that users put in front of every route:
//! compression must not hold events back (tower-http's `CompressionLayer` and
//! actix-web's `Compress`, asked for every encoding a browser accepts).

// The HTTP test support of the root package's tests (a raw client, servers run
// in-process): one copy serves both packages.
#[path = "../../tests/support/mod.rs"]
mod support;

use axum::response::Html;
use axum::routing::get;
use ssekit::Hub;
use support::client;
use support::server::{self, Server};

/// What a browser accepts.
const BROWSER_ENCODINGS: &str = "gzip, deflate, br, zstd";

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
    let mut sse = client::events(server.addr, "topic=zip", &[("accept-encoding", BROWSER_ENCODINGS)]).await;
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

/// actix-web's `Compress` compresses whatever does not say `Content-Encoding`
/// (brotli held small events back for good, gzip for seconds): ssekit's
/// responses say `identity`, so each event is delivered as it is published.
#[tokio::test(flavor = "multi_thread")]
async fn actix_compress_does_not_buffer_events() {
    use actix_web::{App, HttpResponse, middleware::Compress, web};

    let server = Server::start(Hub::builder().history(4).build(), |listener, hub, shutdown| {
        let hub = web::Data::new(hub);
        server::serve_actix(listener, shutdown, move || {
            App::new()
                .wrap(Compress::default())
                .app_data(hub.clone())
                .route(
                    "/events",
                    web::get()
                        .to(|hub: web::Data<Hub>, resume: ssekit::Resume| async move { hub.sse("zip", resume).await }),
                )
                .route("/", web::get().to(|| async { HttpResponse::Ok().content_type("text/html").body(PAGE) }))
        })
    });
    let mut sse = client::events(server.addr, "topic=zip", &[("accept-encoding", BROWSER_ENCODINGS)]).await;
    sse.assert_sse_headers();
    server::wait_subscribers(&server.hub, "zip", 1).await;
    for i in 0..5 {
        server::publish(&server.hub, "zip", &format!("z{i}"));
        assert_eq!(sse.next_event().await.data, format!("z{i}"), "each event as it is published");
    }
    let page = client::request(server.addr, "GET", "/", &[("accept-encoding", BROWSER_ENCODINGS)], b"").await;
    assert_eq!(page.header("content-encoding"), Some("gzip"), "the middleware is in effect");
    server.shutdown().await;
}
