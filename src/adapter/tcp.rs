//! [`set_stall_timeout`]: the kernel's part in letting go of a client that
//! stopped reading.

use std::io;
#[cfg(unix)]
use std::os::fd::AsFd as AsSocket;
#[cfg(windows)]
use std::os::windows::io::AsSocket;
use std::time::Duration;

/// Makes the kernel drop `socket`'s connection once data written to it has
/// waited `timeout` without the client taking any (`TCP_USER_TIMEOUT`): a
/// client that stopped reading, or a link gone dead without a word.
///
/// A stream of events cannot close its connection itself (the server holds
/// the socket), and once the server's buffers for a client that does not read
/// are full the stream is not even polled. Set this on every connection you
/// accept, with the stream's [`SseConfig::stall_timeout`](crate::SseConfig::stall_timeout):
/// the kernel then aborts the connection, frees its send queue, the server drops
/// the response, and the hub counts the client in
/// [`HubMetrics::disconnects_stalled`](crate::HubMetrics::disconnects_stalled).
/// A client that reads, however slowly, keeps its connection; so does an idle
/// one (nothing waits for it). This also bounds how long a request of the
/// connection may wait for the client's acknowledgements, which a healthy
/// client sends within a second. It also caps the connection's kernel send
/// buffer (`SO_SNDBUF` of 256 KiB, which Linux doubles for its bookkeeping;
/// left alone it grows to 4 MiB for a client that reads nothing).
///
/// That the timeout also covers a client that keeps acknowledging with a
/// zero window (one that stopped reading, not one that vanished) depends on
/// the kernel: the tests show it on Linux 6.x; check yours with the demo's
/// `--stall-timeout` and a client that stops reading.
///
/// Linux only (`TCP_USER_TIMEOUT`); elsewhere (`AsSocket` on Windows, `AsFd`
/// on other Unix systems) an error of kind [`Unsupported`](io::ErrorKind::Unsupported),
/// so that a server calling it builds everywhere.
///
/// # Examples
///
/// With axum, on every accepted connection:
///
/// ```no_run
/// # async fn serve(app: axum::Router) -> std::io::Result<()> {
/// use axum::serve::ListenerExt;
/// use std::time::Duration;
///
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?.tap_io(|tcp| {
///     let _ = tcp.set_nodelay(true);
///     let _ = ssekit::set_stall_timeout(tcp, Duration::from_secs(30));
/// });
/// axum::serve(listener, app).await
/// # }
/// ```
///
/// With actix-web, call it from `HttpServer::on_connect`, on the connection
/// downcast to `actix_web::rt::net::TcpStream` (as `examples/demo_actix.rs`
/// does); with hyper, on each stream your accept loop takes.
pub fn set_stall_timeout(socket: &impl AsSocket, timeout: Duration) -> io::Result<()> {
    user_timeout(socket, timeout)
}

#[cfg(any(target_os = "linux", target_os = "android", target_os = "fuchsia"))]
fn user_timeout(socket: &impl AsSocket, timeout: Duration) -> io::Result<()> {
    let socket = socket2::SockRef::from(socket);
    socket.set_tcp_user_timeout(Some(timeout))?;
    socket.set_send_buffer_size(SEND_BUFFER)
}

/// The kernel's send buffer of a connection [`set_stall_timeout`] sets up.
///
/// Left to itself, Linux grows it up to `net.ipv4.tcp_wmem`'s maximum (4 MiB by
/// default) even for a client that reads nothing: data the server's stream
/// handed over as sent. Capped, a stalled client pins at most this much kernel
/// memory, and the stream sees the stall (events wait for it) well within the
/// timeout. 256 KiB keeps a gigabit link busy at 2 ms of round trip, more than
/// any event stream needs.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "fuchsia"))]
const SEND_BUFFER: usize = 256 * 1024;

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "fuchsia")))]
fn user_timeout(_: &impl AsSocket, _: Duration) -> io::Result<()> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "TCP_USER_TIMEOUT is Linux only"))
}
