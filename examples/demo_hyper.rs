//! The demo app on bare hyper 1 and hyper-util: the same contract as `demo.rs`
//! (see `common/mod.rs`), serving HTTP/1.1 and HTTP/2 with prior knowledge
//! (h2c) on one port.
//!
//! Run with: cargo run --example demo_hyper --features hyper

mod common;

use std::convert::Infallible;
use std::future::Future;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyDataStream, BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use ssekit::{BoxError, Resume};

use common::{App, Refused};

/// The response body of every route: an SSE stream or a complete body.
type Body = UnsyncBoxBody<Bytes, BoxError>;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = common::Args::from_env();
    let app = args.app().await?;
    let listener = tokio::net::TcpListener::from_std(args.bind()?)?;
    serve(listener, app.clone(), common::shutdown_signal(app.hub)).await
}

/// Serves the demo until `shutdown` completes, then waits for the open
/// connections to finish (close the hub first, so that SSE streams end).
async fn serve(
    listener: tokio::net::TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // E.g. out of file descriptors: skip this one, keep serving.
                Err(err) => { eprintln!("accept: {err}"); continue; }
            },
            () = &mut shutdown => break,
        };
        // Events are small writes: without TCP_NODELAY, Nagle's algorithm holds each
        // one until the client's (delayed, up to 40 ms) ACK of the previous one.
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = service_fn(move |request| {
            let app = app.clone();
            async move { Ok::<_, Infallible>(route(&app, request).await) }
        });
        let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that goes away mid-response is not the server's error.
            let _ = connection.await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The demo's routes.
async fn route(app: &App, request: Request<Incoming>) -> Response<Body> {
    let query = request.uri().query().map(str::to_owned);
    let query = query.as_deref();
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/") => complete(200, "text/html; charset=utf-8", common::PAGE),
        (&Method::GET, "/events") => {
            let resume = Resume::from_request(request.headers(), query);
            match app.sse(query, resume).await {
                Ok(sse) => sse.into_http_response().map(BodyExt::boxed_unsync),
                Err(Refused::Later) => common::try_later().into_http_response().map(BodyExt::boxed_unsync),
                Err(Refused::Now(reply)) => json(reply),
            }
        }
        (&Method::POST, "/publish") => {
            json(common::publish(&app.hub, query, BodyDataStream::new(request.into_body())).await)
        }
        (&Method::POST, "/bench") => json(common::bench(&app.hub, query).await),
        (&Method::GET, "/health") => json(common::health(&app.hub)),
        (_, "/" | "/events" | "/publish" | "/bench" | "/health") => complete(405, "text/plain", "method not allowed"),
        _ => complete(404, "text/plain", "not found"),
    }
}

fn json(reply: common::Reply) -> Response<Body> {
    complete(reply.status, "application/json", reply.body)
}

fn complete(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()).map_err(|never| match never {}).boxed_unsync());
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(CONTENT_TYPE, hyper::header::HeaderValue::from_static(content_type));
    response
}
