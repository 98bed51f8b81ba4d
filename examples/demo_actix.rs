//! The demo app on actix-web: the same contract as `demo.rs` (see
//! `common/mod.rs`), routed by actix-web.
//!
//! Run with: cargo run --example demo_actix --features actix

mod common;

use std::future::Future;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, HttpServer, Responder, web};
use ssekit::Resume;

use common::{App, Refused};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = common::Args::from_env();
    args.refuse_lean();
    let app = args.app().await?;
    let listener = args.bind()?;
    let shutdown = common::shutdown_signal(app.hub.clone());
    serve(listener, &args, app, shutdown).await
}

/// Serves the demo until `shutdown` completes, then stops gracefully (close the
/// hub first, or SSE connections keep the server waiting until its timeout).
///
/// A request head must arrive within `--header-timeout` (actix's client request
/// timeout), every connection gets `--stall-timeout` as its TCP user timeout
/// ([`ssekit::set_stall_timeout`]), and streams still open 500 ms into the
/// stop (clients that take nothing) are cut.
async fn serve(
    listener: std::net::TcpListener,
    args: &common::Args,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let hub = app.hub.clone();
    let app = web::Data::new(app);
    let stall_timeout = args.stall_timeout;
    let server = HttpServer::new(move || actix_web::App::new().app_data(app.clone()).configure(routes))
        .on_connect(move |connection, _| {
            if let (Some(tcp), Some(timeout)) =
                (connection.downcast_ref::<actix_web::rt::net::TcpStream>(), stall_timeout)
            {
                let _ = ssekit::set_stall_timeout(tcp, timeout);
            }
        })
        .client_request_timeout(args.header_timeout)
        // Signals are the caller's `shutdown`.
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)?
        .run();
    let handle = server.handle();
    tokio::spawn(async move {
        shutdown.await;
        // The hub is closed: every stream ends as soon as it is polled. Wait
        // (500 ms at most) for them all to end, then stop gracefully; a
        // connection whose client takes nothing never ends its stream: cut.
        let deadline = tokio::time::Instant::now() + DRAIN;
        while hub.metrics().subscribers > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if hub.metrics().subscribers == 0 {
            handle.stop(true).await;
        } else {
            eprintln!("streams still open after {DRAIN:?}: closed");
            handle.stop(false).await;
        }
    });
    server.await
}

/// How long open streams get to end once shutdown begins.
const DRAIN: Duration = Duration::from_millis(500);

/// The demo's routes; the app is `web::Data<App>` app data.
fn routes(config: &mut web::ServiceConfig) {
    config
        .route(
            "/",
            web::get().to(|| async { HttpResponse::Ok().content_type("text/html; charset=utf-8").body(common::PAGE) }),
        )
        .route("/events", web::get().to(events))
        .route("/publish", web::post().to(publish))
        .route("/bench", web::post().to(bench))
        .route("/health", web::get().to(|app: web::Data<App>| async move { json(common::health(&app.hub)) }));
}

async fn events(app: web::Data<App>, request: HttpRequest, resume: Resume) -> HttpResponse {
    match app.sse(Some(request.query_string()), resume).await {
        Ok(sse) => sse.respond_to(&request),
        Err(Refused::Later) => common::try_later().respond_to(&request),
        Err(Refused::Now(reply)) => json(reply),
    }
}

async fn publish(app: web::Data<App>, request: HttpRequest, body: web::Payload) -> HttpResponse {
    json(common::publish(&app.hub, Some(request.query_string()), body).await)
}

async fn bench(app: web::Data<App>, request: HttpRequest) -> HttpResponse {
    json(common::bench(&app.hub, Some(request.query_string())).await)
}

fn json(reply: common::Reply) -> HttpResponse {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status).content_type("application/json").body(reply.body)
}
