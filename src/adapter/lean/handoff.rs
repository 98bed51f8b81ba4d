//! Handing a connection whose request is not SSE to the application's hyper
//! service: [`Replay`] gives hyper the bytes the front already read, then the
//! socket.

use std::error::Error as StdError;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use hyper::body::{Body, Incoming};
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::Lean;
use crate::shutdown::Shutdown;

/// A socket whose first bytes to read are `prefix` (what the front read
/// before it knew the request is not its own).
#[derive(Debug)]
struct Replay {
    prefix: Bytes,
    tcp: TcpStream,
}

impl AsyncRead for Replay {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.prefix.has_remaining() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Replay {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// Serves `tcp` with `service` over HTTP/1.1 (keep-alive, if `lean` says so,
/// and upgrades as hyper does them), with `lean`'s head timeout, starting with the bytes in `prefix`: until the client closes,
/// `stop` fires (the request in progress finishes, then the connection
/// closes), or `abort` fires (closed at once).
pub(super) async fn serve<S, B>(
    tcp: TcpStream,
    prefix: Vec<u8>,
    service: S,
    lean: &Lean,
    stop: &Shutdown,
    abort: &Shutdown,
) where
    S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let io = TokioIo::new(Replay { prefix: prefix.into(), tcp });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(lean.head_timeout).keep_alive(lean.http_keep_alive);
    let connection = builder.serve_connection(io, service).with_upgrades();
    let mut connection = std::pin::pin!(connection);
    // A client that goes away mid-response is not the server's error.
    tokio::select! {
        _ = connection.as_mut() => return,
        () = stop.wait() => connection.as_mut().graceful_shutdown(),
        () = abort.wait() => return,
    }
    tokio::select! {
        _ = connection => {}
        () = abort.wait() => {}
    }
}
