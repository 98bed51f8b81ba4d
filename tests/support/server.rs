//! A server of a test's own, run in-process on `127.0.0.1:0` with a hub the test
//! holds: for what the demo apps cannot be asked over HTTP (a per-request
//! stream, a hub with refusing limits, a lag policy, a compression layer).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;

use ssekit::{Event, Hub};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::client::{self, within};

/// What a test passes to its server as the shutdown signal.
pub(crate) type ShutdownSignal = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A server running in-process on `127.0.0.1:0`.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    pub(crate) hub: Hub,
    stop: oneshot::Sender<()>,
    task: JoinHandle<io::Result<()>>,
}

impl Server {
    /// Binds a port and runs `serve(listener, hub, shutdown)` on a task.
    pub(crate) fn start<F, Fut>(hub: Hub, serve: F) -> Self
    where
        F: FnOnce(std::net::TcpListener, Hub, ShutdownSignal) -> Fut,
        Fut: Future<Output = io::Result<()>> + Send + 'static,
    {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let addr = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown: ShutdownSignal = Box::pin(async move {
            let _ = stopped.await;
        });
        let task = tokio::spawn(serve(listener, hub.clone(), shutdown));
        Self { addr, hub, stop, task }
    }

    /// Closes the hub, then asks the server to shut down gracefully and waits
    /// (bounded) until it has.
    pub(crate) async fn shutdown(self) {
        self.hub.close();
        let _ = self.stop.send(());
        within("graceful shutdown", self.task).await.expect("server task").expect("server result");
    }
}

/// Waits (bounded) until `hub.subscribers(topic)` is `expected`.
pub(crate) async fn wait_subscribers(hub: &Hub, topic: &str, expected: usize) {
    client::wait_for(&format!("subscribers of {topic}"), expected, async || hub.subscribers(topic)).await;
}

/// Publishes `data` on `topic` and returns the id as text.
pub(crate) fn publish(hub: &Hub, topic: &str, data: &str) -> String {
    hub.try_publish(topic, Event::new().data(data)).expect("publish").to_string()
}

/// An axum app over `hub` with the demo's `GET /events?topic=T` (default `main`),
/// resuming from `Last-Event-ID` or `lastEventId`.
#[cfg(feature = "axum")]
pub(crate) fn events_app(hub: Hub) -> axum::Router {
    use std::collections::HashMap;

    use axum::extract::{Query, State};
    use ssekit::Resume;

    let events = |State(hub): State<Hub>, Query(query): Query<HashMap<String, String>>, resume: Resume| async move {
        hub.sse(query.get("topic").map_or("main", String::as_str), resume).await
    };
    axum::Router::new().route("/events", axum::routing::get(events)).with_state(hub)
}

/// Serves `app` on `listener` until `shutdown`, then shuts down gracefully; with
/// `TCP_NODELAY`, as the demo does.
#[cfg(feature = "axum")]
pub(crate) async fn serve_axum(
    listener: std::net::TcpListener,
    app: axum::Router,
    shutdown: ShutdownSignal,
) -> io::Result<()> {
    use axum::serve::ListenerExt;

    let listener = tokio::net::TcpListener::from_std(listener)?.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

/// Serves the routes `configure` adds on actix-web, on `listener`, until
/// `shutdown`, then stops gracefully. A connection still open is cut 3 s into
/// the stop: actix's default, 30 s, is past the suites' 5 s bound.
#[cfg(feature = "actix")]
pub(crate) async fn serve_actix<A, B>(
    listener: std::net::TcpListener,
    shutdown: ShutdownSignal,
    app: impl Fn() -> actix_web::App<A> + Clone + Send + 'static,
) -> io::Result<()>
where
    A: actix_web::dev::ServiceFactory<
            actix_web::dev::ServiceRequest,
            Config = (),
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    B: actix_web::body::MessageBody + 'static,
{
    let server = actix_web::HttpServer::new(app).disable_signals().shutdown_timeout(3).listen(listener)?.run();
    let handle = server.handle();
    tokio::spawn(async move {
        shutdown.await;
        handle.stop(true).await;
    });
    server.await
}
