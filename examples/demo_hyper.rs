//! The demo app on bare hyper 1 and hyper-util: the same contract as `demo.rs`
//! (see `common/mod.rs`), serving HTTP/1.1 and HTTP/2 with prior knowledge
//! (h2c) on one port.
//!
//! Run with: cargo run --example demo_hyper --features hyper

mod common;
#[path = "common/serve.rs"]
mod serve;

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyDataStream, BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use ssekit::{BoxError, Resume};

use common::{App, Refused};

/// The response body of every route: an SSE stream or a complete body.
type Body = UnsyncBoxBody<Bytes, BoxError>;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = common::Args::from_env();
    args.refuse_lean();
    let app = args.app().await?;
    let listener = tokio::net::TcpListener::from_std(args.bind()?)?;
    let shutdown = common::shutdown_signal(app.hub.clone());
    serve::serve(listener, &args, || service(app.clone()), shutdown).await
}

/// One connection's service: the routes over `app`.
fn service(
    app: App,
) -> impl hyper::service::Service<Request<Incoming>, Response = Response<Body>, Error = Infallible, Future: Send> + Send
{
    service_fn(move |request| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(route(&app, request).await) }
    })
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
