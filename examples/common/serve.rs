//! Serving a demo's service over hyper-util as a production server would (the
//! axum and hyper demos; `axum::serve` has no setting for the first two):
//!
//! - a request head must arrive within `--header-timeout` (hyper's
//!   `header_read_timeout`): a client sending its headers a byte at a time is
//!   dropped, not kept forever;
//! - a failed accept (out of file descriptors) backs off instead of spinning;
//! - every connection gets `--stall-timeout` as its TCP user timeout
//!   ([`ssekit::set_stall_timeout`]): the kernel drops a client that stopped
//!   reading;
//! - at shutdown, connections get [`DRAIN`] to finish (the hub is closed, so
//!   SSE streams end at once); a connection whose client does not take its
//!   last bytes is closed, not waited for (its task is dropped with the
//!   runtime as `main` returns).

use std::error::Error as StdError;
use std::future::Future;
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;

use crate::common::Args;

/// How long open connections get to finish once shutdown begins.
pub(crate) const DRAIN: Duration = Duration::from_millis(500);

/// The longest pause after a failed accept.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Serves `service` (one per connection) on `listener` until `shutdown`
/// completes, with the limits of `args`.
pub(crate) async fn serve<S, B>(
    listener: tokio::net::TcpListener,
    args: &Args,
    service: impl Fn() -> S,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(args.header_timeout);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut backoff = Duration::ZERO;
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // E.g. out of file descriptors: wait a little (longer each time
                // in a row), then serve on.
                Err(err) => {
                    backoff = (backoff * 2).clamp(Duration::from_millis(10), MAX_BACKOFF);
                    eprintln!("accept: {err}; next try in {backoff:?}");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => continue,
                        () = &mut shutdown => break,
                    }
                }
            },
            () = &mut shutdown => break,
        };
        backoff = Duration::ZERO;
        // Events are small writes: without TCP_NODELAY, Nagle's algorithm holds each
        // one until the client's (delayed, up to 40 ms) ACK of the previous one.
        let _ = stream.set_nodelay(true);
        if let Some(timeout) = args.stall_timeout {
            let _ = ssekit::set_stall_timeout(&stream, timeout);
        }
        let connection = builder.serve_connection(TokioIo::new(stream), service()).into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that goes away mid-response is not the server's error.
            let _ = connection.await;
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        eprintln!("connections still open after {DRAIN:?}: closed");
    }
    Ok(())
}
