//! The demo app on axum: a live feed page, an SSE stream per topic with
//! `Last-Event-ID` resume, publishing, a publishing benchmark and health. The
//! contract and everything but the routing are in `common/mod.rs`.
//!
//! Run with: cargo run --example demo --features axum
//!
//! Then open <http://127.0.0.1:8080/> in two windows and publish.
//!
//! With `--lean` (and `--features axum,lean`), `GET /events` is served by
//! ssekit's lean front for many idle connections, and every other request is
//! handed to the same axum router on the same port.

mod common;
#[path = "common/serve.rs"]
mod serve;

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use ssekit::Resume;

use common::{App, Refused};
use hyper_util::service::TowerToHyperService;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = common::Args::from_env();
    let app = args.app().await?;
    let listener = tokio::net::TcpListener::from_std(args.bind()?)?;
    let shutdown = common::shutdown_signal(app.hub.clone());
    // Served through hyper-util rather than `axum::serve`, for a request-head
    // timeout and the rest of `common/serve.rs`.
    let router = routes(app.clone());
    if args.lean {
        return lean(listener, &args, app, router, shutdown).await;
    }
    serve::serve(listener, &args, || TowerToHyperService::new(router.clone()), shutdown).await
}

/// `--lean`: `GET /events` through ssekit's lean front, every other request
/// (and an `/events` on a connection already handed over) through `router`.
async fn lean(
    listener: tokio::net::TcpListener,
    args: &common::Args,
    app: App,
    router: Router,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    #[cfg(not(feature = "lean"))]
    {
        let _ = (listener, args, app, router, shutdown);
        Err(std::io::Error::other("--lean needs the demo built with the lean feature"))
    }
    #[cfg(feature = "lean")]
    {
        use ssekit::lean::{Lean, Refusal};

        let route = move |head: axum::http::request::Parts| {
            (head.method == axum::http::Method::GET && head.uri.path() == "/events").then(|| {
                let app = app.clone();
                async move {
                    let query = head.uri.query();
                    match app.sse(query, Resume::from_request(&head.headers, query)).await {
                        Ok(sse) => Ok(sse),
                        Err(Refused::Later) => Err(Refusal::try_later()),
                        Err(Refused::Now(reply)) => {
                            let (parts, body) = json(reply).into_parts();
                            let body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
                            Err(Refusal::response(Response::from_parts(parts, body)))
                        }
                    }
                }
            })
        };
        Lean::new()
            // The page's connection closes after it, so the page's `EventSource`
            // comes to the front on a connection of its own.
            .http_keep_alive(false)
            .head_timeout(args.header_timeout)
            .stall_timeout(args.stall_timeout)
            .drain(serve::DRAIN)
            .serve(listener, route, TowerToHyperService::new(router), shutdown)
            .await
    }
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
