//! Writing one SSE response straight to its socket: the head, then each chunk
//! of the stream as it comes (frames the hub already encoded and shares), with
//! no buffer of the connection's own.

use std::future::{Future, poll_fn};
use std::io;
use std::pin::{Pin, pin};
use std::task::Poll;

use bytes::{Buf, Bytes};
use http::StatusCode;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::refusal::head;
use crate::shutdown::Shutdown;
use crate::sse::{Source, Sse};
use crate::wire::headers::RESPONSE_HEADERS;

/// The response head of every stream: `200`, [`RESPONSE_HEADERS`], and a body
/// that ends when the connection closes (no chunked framing: each chunk is
/// written as it is).
fn response_head() -> Vec<u8> {
    head(StatusCode::OK, RESPONSE_HEADERS.iter().map(|(name, value)| (name, value)), None)
}

/// Streams `sse` on `tcp` until it ends, the client closes, a write fails (the
/// kernel gave up on a stalled client), `stop` fires (the chunk being written
/// is finished first, so the client gets whole events) or `abort` fires.
///
/// One hand-written poll loop rather than a `select!` per chunk: an idle
/// connection's task holds only the stream, the socket, the chunk being
/// written and the two shutdown signals' waiters.
///
/// The stream comes boxed: moved into this future, it would take its room
/// twice (as the argument and as the pinned local).
pub(super) async fn stream<S: Source>(
    mut tcp: TcpStream,
    mut sse: Pin<Box<Sse<S>>>,
    stop: &Shutdown,
    abort: &Shutdown,
) {
    let mut stopping = pin!(stop.notified());
    let mut aborting = pin!(abort.notified());
    // The chunk being written: the response head first.
    let mut out = Bytes::from(response_head());
    let ended = poll_fn(|cx| {
        loop {
            if abort.is_triggered() || aborting.as_mut().poll(cx).is_ready() {
                return Poll::Ready(false);
            }
            while out.has_remaining() {
                match Pin::new(&mut tcp).poll_write(cx, &out) {
                    Poll::Ready(Ok(n)) if n > 0 => out.advance(n),
                    Poll::Ready(_) => return Poll::Ready(false),
                    Poll::Pending => return Poll::Pending,
                }
            }
            if stop.is_triggered() || stopping.as_mut().poll(cx).is_ready() {
                return Poll::Ready(true);
            }
            match sse.as_mut().poll_body(cx) {
                Poll::Ready(Some(chunk)) => {
                    out = chunk;
                    continue;
                }
                Poll::Ready(None) => return Poll::Ready(true),
                Poll::Pending => {}
            }
            // Idle: watch for the client closing.
            match tcp.poll_read_ready(cx) {
                Poll::Ready(Ok(())) => match drain_input(&tcp) {
                    Input::Drained => {}
                    Input::Closed => return Poll::Ready(false),
                    // A client that keeps sending does not hold the thread.
                    Input::More => {
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                },
                Poll::Ready(Err(_)) => return Poll::Ready(false),
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await;
    if ended {
        // The end of the body: the client sees a clean close and reconnects.
        let _ = tcp.shutdown().await;
    }
}

/// What [`drain_input`] found.
enum Input {
    /// Nothing more to read for now.
    Drained,
    /// The client closed its side, or the connection failed.
    Closed,
    /// More than one call reads is waiting.
    More,
}

/// Reads and drops what the client sent, in small pieces, 1 KiB at most per
/// call. (A client has nothing more to send on an SSE connection; nothing is
/// kept of what it sends.)
fn drain_input(tcp: &TcpStream) -> Input {
    let mut scrap = [0u8; 64];
    for _ in 0..16 {
        match tcp.try_read(&mut scrap) {
            Ok(0) => return Input::Closed,
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Input::Drained,
            Err(_) => return Input::Closed,
        }
    }
    Input::More
}

/// Completes when the client closed its side or the connection failed,
/// dropping whatever it sends.
pub(super) async fn client_gone(tcp: &TcpStream) {
    while tcp.readable().await.is_ok() {
        match drain_input(tcp) {
            Input::Closed => return,
            Input::Drained => {}
            Input::More => tokio::task::yield_now().await,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn head_has_the_sse_headers_and_closes() {
        let head = String::from_utf8(super::response_head()).unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"), "{head}");
        assert!(head.ends_with("connection: close\r\n\r\n"), "{head}");
    }
}
