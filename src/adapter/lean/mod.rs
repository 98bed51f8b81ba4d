//! The lean path for many idle connections: a server front that writes SSE
//! streams straight to their sockets and hands every other request to your
//! hyper or axum service on the same port.
//!
//! Through hyper, a connection holds a read and a write buffer of 8 KiB or
//! more each for as long as it is open; an SSE connection is mostly idle, and
//! those buffers are most of what it costs. The front reads a request head
//! itself (with [`httparse`](https://docs.rs/httparse), the parser hyper uses),
//! and then:
//!
//! - for a request your `route` claims, it writes the response head and then
//!   each chunk of the stream (frames the hub encoded once and shares) straight
//!   to the socket: no buffer of the connection's own once the head is sent,
//!   and on the read side only a watch for the client closing. The body ends
//!   when the connection closes (`connection: close`, no chunked framing);
//! - any other request goes, with the bytes already read, to your hyper service
//!   on the same connection (HTTP/1.1; keep-alive and upgrades as hyper does
//!   them): one port, your router as it is.
//!
//! TLS and HTTP/2 stay with the proxy in front (the front speaks HTTP/1.x).
//!
//! ## Routing and authorization
//!
//! `route` gets each request head (method, URI, headers — cookies included —
//! as [`http::request::Parts`]) and returns `None` for a request that is not its
//! own (it goes to the service), or a future that decides: the stream, or a
//! [`Refusal`] (a status or a whole response). That future is the place to
//! authorize, before any subscription is made; read `Last-Event-ID` with
//! [`Resume::from_request`](crate::Resume::from_request) as every adapter does.
//!
//! ## Limits
//!
//! A request head must arrive within [`Lean::head_timeout`] (a client sending
//! it a byte at a time is dropped with a `408`) and fit in [`Lean::max_head`]
//! bytes and 100 header lines (else `431`, and the connection is closed). Every
//! connection gets [`Lean::stall_timeout`] as its TCP user timeout
//! ([`set_stall_timeout`](crate::set_stall_timeout)). A request the service
//! gets is bound by hyper's settings (the same head timeout).
//!
//! ## Closing
//!
//! When the `shutdown` future completes, the front stops accepting; streams
//! end after the chunk they are writing (a hub you close ends its streams as
//! well); the service's connections finish the request in progress. What is
//! still open after [`Lean::drain`] is closed, and `serve` returns.
//!
//! ## Later requests on a handed connection
//!
//! A connection handed to the service stays the service's: an SSE request that
//! comes on it later (a browser reuses kept-alive connections) is answered by
//! the service. Keep your SSE route in your router too, as in the example, or
//! turn [`Lean::http_keep_alive`] off so that every request starts at the front.
//!
//! # Examples
//!
//! An axum app whose `/events` is served by the front and the rest by axum:
//!
//! ```no_run
//! use axum::routing::{get, post};
//! use axum::Router;
//! use ssekit::lean::{Lean, Refusal};
//! use ssekit::{Event, Hub, Resume};
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let hub = Hub::new();
//!     let publisher = hub.clone();
//!     let app = Router::new()
//!         .route("/publish", post(move |text: String| async move {
//!             let _ = publisher.publish("news", Event::new().data(text)).await;
//!         }))
//!         // Also for an SSE request on a connection already handed to axum.
//!         .route("/events", get(|axum::extract::State(hub): axum::extract::State<Hub>, resume: Resume| async move {
//!             hub.sse("news", resume).await
//!         }))
//!         .with_state(hub.clone());
//!
//!     let events = hub.clone();
//!     let route = move |head: http::request::Parts| {
//!         (head.uri.path() == "/events").then(|| {
//!             let hub = events.clone();
//!             async move {
//!                 // Authorization sees the whole head, before any subscription.
//!                 let cookies = head.headers.get_all(http::header::COOKIE);
//!                 if !cookies.iter().any(|c| c.as_bytes().starts_with(b"session=")) {
//!                     return Err(Refusal::new(http::StatusCode::FORBIDDEN));
//!                 }
//!                 let resume = Resume::from_request(&head.headers, head.uri.query());
//!                 Ok(hub.sse("news", resume).await?)
//!             }
//!         })
//!     };
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     let service = hyper_util::service::TowerToHyperService::new(app);
//!     Lean::new()
//!         .serve(listener, route, service, async move {
//!             let _ = tokio::signal::ctrl_c().await;
//!             hub.close();
//!         })
//!         .await
//! }
//! ```

mod handoff;
mod head;
mod refusal;
mod stream;

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::StatusCode;
use http::request::Parts;
use hyper::body::{Body, Incoming};
use hyper::service::Service;
use hyper::{Request, Response};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

pub use head::{HeadError, parse_head};
pub use refusal::Refusal;

use head::ReadFailure;
use refusal::Answer;

use crate::shutdown::Shutdown;
use crate::sse::{Source, Sse};

/// The longest pause after a failed accept.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// The lean front's settings, and [`Lean::serve`], which runs it (see the
/// [module docs](self)).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let lean = ssekit::lean::Lean::new()
///     .max_head(4096)
///     .head_timeout(Duration::from_secs(5))
///     .stall_timeout(Some(Duration::from_secs(30)))
///     .drain(Duration::from_secs(1));
/// ```
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lean {
    max_head: usize,
    head_timeout: Duration,
    stall_timeout: Option<Duration>,
    drain: Duration,
    http_keep_alive: bool,
}

impl Default for Lean {
    fn default() -> Self {
        Self::new()
    }
}

impl Lean {
    /// Heads of up to 8 KiB within 10 s; a stall timeout of 30 s (as
    /// [`SseConfig`](crate::SseConfig)'s); 500 ms to drain at shutdown.
    pub fn new() -> Self {
        Self {
            max_head: 8 * 1024,
            head_timeout: Duration::from_secs(10),
            stall_timeout: Some(Duration::from_secs(30)),
            drain: Duration::from_millis(500),
            http_keep_alive: true,
        }
    }

    /// The longest request head accepted, in bytes (a longer one is answered
    /// `431` and closed). It is also the most the front buffers per connection,
    /// and only until the head is complete.
    pub fn max_head(mut self, bytes: usize) -> Self {
        self.max_head = bytes;
        self
    }

    /// How long a request head may take to arrive (then `408`, closed). Also
    /// hyper's head timeout on connections handed to the service.
    pub fn head_timeout(mut self, timeout: Duration) -> Self {
        self.head_timeout = timeout;
        self
    }

    /// The TCP user timeout of every connection (`None`: the kernel's
    /// default): a client that takes nothing for this long while data waits is
    /// dropped. Give your streams the same
    /// [`SseConfig::stall_timeout`](crate::SseConfig::stall_timeout) so that
    /// they count such clients as stalled.
    pub fn stall_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.stall_timeout = timeout.filter(|t| !t.is_zero());
        self
    }

    /// Whether a connection handed to the service stays open for its client's
    /// next requests (hyper's HTTP/1.1 keep-alive; `true` by default).
    ///
    /// A browser sends an `EventSource` request on an idle kept-alive
    /// connection of the same origin when it has one (the one that loaded the
    /// page, say), and such a connection is the service's: that stream then goes
    /// through the service, with hyper's buffers. With `false`, the service's
    /// responses say `connection: close`, so every request starts at the front
    /// and every stream is lean, at the cost of a connection per request.
    pub fn http_keep_alive(mut self, keep_alive: bool) -> Self {
        self.http_keep_alive = keep_alive;
        self
    }

    /// How long open connections get to finish once shutdown begins; then
    /// they are closed.
    pub fn drain(mut self, drain: Duration) -> Self {
        self.drain = drain;
        self
    }

    /// Accepts connections on `listener` until `shutdown` completes: requests
    /// `route` claims get their SSE stream from the front, every other one
    /// goes to `service` (see the [module docs](self)). Returns once every
    /// connection is closed (within [`Lean::drain`] after `shutdown`).
    ///
    /// `route` runs on each request head a connection starts with; it returns
    /// `None` for a request that is not its own, else a future that makes the
    /// stream or refuses ([`Refusal`]). The service is cloned for each
    /// connection handed to it (with axum: `TowerToHyperService::new(router)`
    /// from `hyper-util`).
    ///
    /// # Errors
    ///
    /// None so far: a failed accept (out of file descriptors, say) is retried
    /// after a pause that grows to 1 s.
    pub async fn serve<R, Fut, S, Svc, B>(
        self,
        listener: TcpListener,
        route: R,
        service: Svc,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()>
    where
        R: Fn(Parts) -> Option<Fut> + Send + Sync + 'static,
        Fut: Future<Output = Result<Sse<S>, Refusal>> + Send + 'static,
        S: Source + Send + 'static,
        Svc: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + Sync + 'static,
        Svc::Future: Send + 'static,
        Svc::Error: Into<Box<dyn StdError + Send + Sync>>,
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        let shared = Arc::new(Shared {
            lean: self,
            route,
            service,
            stop: Shutdown::new(),
            abort: Shutdown::new(),
            open: AtomicUsize::new(0),
            closed: Notify::new(),
        });
        let mut shutdown = std::pin::pin!(shutdown);
        let mut backoff = Duration::ZERO;
        loop {
            let tcp = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((tcp, _)) => tcp,
                    Err(_) => {
                        backoff = (backoff * 2).clamp(Duration::from_millis(10), MAX_BACKOFF);
                        tokio::select! {
                            () = tokio::time::sleep(backoff) => continue,
                            () = &mut shutdown => break,
                        }
                    }
                },
                () = &mut shutdown => break,
            };
            backoff = Duration::ZERO;
            shared.open.fetch_add(1, Ordering::SeqCst);
            let guard = Open(shared.clone());
            tokio::spawn(async move {
                connection(tcp, &guard.0).await;
                drop(guard);
            });
        }
        drop(listener);
        shared.stop.trigger();
        if tokio::time::timeout(shared.lean.drain, shared.all_closed()).await.is_err() {
            shared.abort.trigger();
            shared.all_closed().await;
        }
        Ok(())
    }
}

/// What every connection task of one [`Lean::serve`] shares.
struct Shared<R, Svc> {
    lean: Lean,
    route: R,
    service: Svc,
    /// Fired when shutdown begins: streams end, the service's connections
    /// finish their request.
    stop: Shutdown,
    /// Fired when the drain time is over: everything closes at once.
    abort: Shutdown,
    /// Connections open, and a wake-up when the last one closes.
    open: AtomicUsize,
    closed: Notify,
}

impl<R, Svc> Shared<R, Svc> {
    /// Waits until no connection is open.
    async fn all_closed(&self) {
        loop {
            let closed = self.closed.notified();
            if self.open.load(Ordering::SeqCst) == 0 {
                return;
            }
            closed.await;
        }
    }
}

/// One open connection: counted until dropped (also when its task is).
struct Open<R, Svc>(Arc<Shared<R, Svc>>);

impl<R, Svc> Drop for Open<R, Svc> {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.closed.notify_waiters();
        }
    }
}

/// Serves one connection: reads its request head, then streams, refuses, or
/// hands the connection to the service.
///
/// What comes before the stream (the head, the route's decision) runs in a
/// boxed future of its own, freed once done: the task of an idle streaming
/// connection holds only the streaming state.
async fn connection<R, Fut, S, Svc, B>(mut tcp: TcpStream, shared: &Shared<R, Svc>)
where
    R: Fn(Parts) -> Option<Fut>,
    Fut: Future<Output = Result<Sse<S>, Refusal>>,
    S: Source,
    Svc: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    Svc::Future: Send + 'static,
    Svc::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let Shared { lean, stop, abort, .. } = shared;
    // Events are small writes: without TCP_NODELAY, Nagle's algorithm holds each
    // one until the client's (delayed) ACK of the previous one.
    let _ = tcp.set_nodelay(true);
    #[cfg(any(unix, windows))]
    if let Some(timeout) = lean.stall_timeout {
        let _ = crate::adapter::set_stall_timeout(&tcp, timeout);
    }
    match Box::pin(prepare(&mut tcp, shared)).await {
        Next::Stream(sse) => stream::stream(tcp, sse, stop, abort).await,
        Next::TryLater => stream::stream(tcp, Box::pin(crate::adapter::later()), stop, abort).await,
        // Boxed, as the service's connection below: the streaming state is
        // then the largest a connection's task has room for.
        Next::Answer(bytes) => Box::pin(write_close(tcp, &bytes, abort)).await,
        Next::Handoff(bytes) => {
            let service = shared.service.clone();
            Box::pin(handoff::serve(tcp, bytes, service, lean, stop, abort)).await;
        }
        Next::Close => {}
    }
}

/// What a connection does once its head is read.
enum Next<S: Source> {
    /// Streams this (boxed: see [`stream::stream`]).
    Stream(Pin<Box<Sse<S>>>),
    /// Streams "come back later".
    TryLater,
    /// Writes this answer and closes.
    Answer(Vec<u8>),
    /// Hands the connection to the service, with these bytes already read.
    Handoff(Vec<u8>),
    /// Closes.
    Close,
}

/// Reads the head of `tcp`'s first request and asks the route about it.
async fn prepare<R, Fut, S, Svc>(tcp: &mut TcpStream, shared: &Shared<R, Svc>) -> Next<S>
where
    R: Fn(Parts) -> Option<Fut>,
    Fut: Future<Output = Result<Sse<S>, Refusal>>,
    S: Source,
{
    let Shared { lean, stop, .. } = shared;
    let read = tokio::select! {
        read = head::read_head(tcp, lean.max_head, lean.head_timeout) => read,
        () = stop.wait() => return Next::Close,
    };
    let status = match read {
        Ok((parts, bytes)) => {
            let Some(decide) = (shared.route)(parts) else {
                return Next::Handoff(bytes);
            };
            // What followed the head is not needed: an SSE request has no body.
            drop(bytes);
            let decided = tokio::select! {
                decided = decide => decided,
                () = stop.wait() => return Next::Close,
            };
            return match decided {
                Ok(sse) => Next::Stream(Box::pin(sse)),
                Err(Refusal(Answer::TryLater)) => Next::TryLater,
                Err(Refusal(Answer::Response(response))) => Next::Answer(refusal::encode(&response)),
            };
        }
        Err(ReadFailure::Gone) => return Next::Close,
        Err(ReadFailure::Timeout) => StatusCode::REQUEST_TIMEOUT,
        Err(ReadFailure::Head(HeadError::TooLarge)) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        Err(ReadFailure::Head(_)) => StatusCode::BAD_REQUEST,
    };
    Next::Answer(refusal::status_only(status))
}

/// Writes `bytes`, closes the sending side, and waits (1 s at most) for the
/// client to close, reading what it still sends: closing a socket with unread
/// bytes would reset the connection, and the answer could be lost.
async fn write_close(mut tcp: TcpStream, bytes: &[u8], abort: &Shutdown) {
    let write = async {
        tcp.write_all(bytes).await?;
        tcp.shutdown().await?;
        stream::client_gone(&tcp).await;
        std::io::Result::Ok(())
    };
    tokio::select! {
        _ = tokio::time::timeout(Duration::from_secs(1), write) => {}
        () = abort.wait() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Subscription;

    type Route = fn(Parts) -> Option<std::future::Ready<Result<Sse<Subscription>, Refusal>>>;

    #[derive(Clone)]
    struct Svc;

    impl Service<Request<Incoming>> for Svc {
        type Response = Response<String>;
        type Error = std::convert::Infallible;
        type Future = std::future::Ready<Result<Response<String>, std::convert::Infallible>>;

        fn call(&self, _: Request<Incoming>) -> Self::Future {
            std::future::ready(Ok(Response::new(String::new())))
        }
    }

    /// What an idle streaming connection holds inline in its task: the
    /// connection future, whose largest state is the streaming one (the head,
    /// the route's decision, a refusal and a handed connection are boxed, the
    /// stream too). Beside it on the heap: the `Sse` and its subscription.
    #[tokio::test]
    async fn a_connection_task_is_small() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let connect = || TcpStream::connect(listener.local_addr().unwrap());
        let shared: Shared<Route, Svc> = Shared {
            lean: Lean::new(),
            route: |_| None,
            service: Svc,
            stop: Shutdown::new(),
            abort: Shutdown::new(),
            open: AtomicUsize::new(0),
            closed: Notify::new(),
        };
        let connection = connection(connect().await.unwrap(), &shared);
        let hub = crate::hub::Hub::new();
        let sse = Sse::from_subscription(hub.try_subscribe("t", crate::Resume::Live).unwrap());
        let stream = stream::stream(connect().await.unwrap(), Box::pin(sse), &shared.stop, &shared.abort);
        let (connection, stream) = (std::mem::size_of_val(&connection), std::mem::size_of_val(&stream));
        eprintln!("connection future: {connection} B, of which streaming {stream} B");
        assert!(connection <= 640 && stream <= 400, "{connection} B, {stream} B");
    }
}
