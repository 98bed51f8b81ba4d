//! The demo app on axum: a live feed page, an SSE stream per topic with
//! `Last-Event-ID` resume, publishing, a publishing benchmark and health. The
//! contract and everything but the routing are in `common/mod.rs`.
//!
//! Run with: cargo run --example demo --features axum
//!
//! Then open <http://127.0.0.1:8080/> in two windows and publish.

mod common;

use std::future::Future;

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use ssekit::Resume;

use axum::serve::ListenerExt;
use common::{App, Refused};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = common::Args::from_env();
    let app = args.app().await?;
    let listener = tokio::net::TcpListener::from_std(args.bind()?)?;
    serve(listener, app.clone(), common::shutdown_signal(app.hub)).await
}

/// Serves the demo until `shutdown` completes, then shuts down gracefully (close
/// the hub first, or SSE connections keep the server waiting).
async fn serve(
    listener: tokio::net::TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Events are small writes: without TCP_NODELAY, Nagle's algorithm holds each
    // one until the client's (delayed, up to 40 ms) ACK of the previous one.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, routes(app)).with_graceful_shutdown(shutdown).await
}

/// The demo's routes.
fn routes(app: App) -> Router {
    Router::new()
        .route("/", get(|| async { Html(common::PAGE) }))
        .route("/events", get(events))
        .route("/publish", post(publish))
        .route("/bench", post(bench))
        .route("/health", get(|State(app): State<App>| async move { json(common::health(&app.hub)) }))
        .with_state(app)
}

async fn events(State(app): State<App>, RawQuery(query): RawQuery, resume: Resume) -> Response {
    match app.sse(query.as_deref(), resume).await {
        Ok(sse) => sse.into_response(),
        Err(Refused::Later) => common::try_later().into_response(),
        Err(Refused::Now(reply)) => json(reply),
    }
}

async fn publish(State(app): State<App>, RawQuery(query): RawQuery, body: Body) -> Response {
    json(common::publish(&app.hub, query.as_deref(), body.into_data_stream()).await)
}

async fn bench(State(app): State<App>, RawQuery(query): RawQuery) -> Response {
    json(common::bench(&app.hub, query.as_deref()).await)
}

fn json(reply: common::Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "application/json")], reply.body).into_response()
}
