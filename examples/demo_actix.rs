//! The demo app on actix-web: the same contract as `demo.rs` (see
//! `common/mod.rs`), routed by actix-web.
//!
//! Run with: cargo run --example demo_actix --features actix

mod common;

use std::future::Future;

use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, Responder, web};
use ssekit::Resume;

use common::Backend;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = common::Args::from_env();
    let hub = args.backend().await?;
    let listener = args.bind()?;
    serve(listener, hub.clone(), common::shutdown_signal(hub)).await
}

/// Serves the demo until `shutdown` completes, then stops gracefully (close the
/// hub first, or SSE connections keep the server waiting until its timeout).
pub(crate) async fn serve(
    listener: std::net::TcpListener,
    hub: impl Into<Backend>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let hub = web::Data::new(hub.into());
    serve_with(listener, shutdown, move |config| {
        config.app_data(hub.clone());
        routes(config);
    })
    .await
}

/// Serves the routes `configure` adds, stopping as [`serve`] does.
pub(crate) async fn serve_with(
    listener: std::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    configure: impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
) -> std::io::Result<()> {
    let server = HttpServer::new(move || App::new().configure(configure.clone()))
        // Signals are the caller's `shutdown`; a stuck connection is cut after 3 s.
        .disable_signals()
        .shutdown_timeout(3)
        .listen(listener)?
        .run();
    let handle = server.handle();
    tokio::spawn(async move {
        shutdown.await;
        handle.stop(true).await;
    });
    server.await
}

/// The demo's routes; the hub is `web::Data<Backend>` app data.
pub(crate) fn routes(config: &mut web::ServiceConfig) {
    config
        .route(
            "/",
            web::get().to(|| async { HttpResponse::Ok().content_type("text/html; charset=utf-8").body(common::PAGE) }),
        )
        .route("/events", web::get().to(events))
        .route("/publish", web::post().to(publish))
        .route("/bench", web::post().to(bench))
        .route("/health", web::get().to(|hub: web::Data<Backend>| async move { json(common::health(&hub)) }));
}

async fn events(hub: web::Data<Backend>, request: HttpRequest, resume: Resume) -> HttpResponse {
    match hub.sse(&common::topic(Some(request.query_string())), resume).await {
        Ok(sse) => sse.respond_to(&request),
        Err(err) if err.is_temporary() => common::try_later().respond_to(&request),
        Err(err) => json(common::subscribe_error(&err)),
    }
}

async fn publish(hub: web::Data<Backend>, request: HttpRequest, body: web::Payload) -> HttpResponse {
    json(common::publish(&hub, Some(request.query_string()), body).await)
}

async fn bench(hub: web::Data<Backend>, request: HttpRequest) -> HttpResponse {
    json(common::bench(&hub, Some(request.query_string())).await)
}

fn json(reply: common::Reply) -> HttpResponse {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status).content_type("application/json").body(reply.body)
}
