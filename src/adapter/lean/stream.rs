//! Writing one SSE response straight to its socket: the head, then each chunk
//! of the stream as it comes (frames the hub already encoded and shares), with
//! no buffer of the connection's own.

use std::future::poll_fn;
use std::io;
use std::pin::pin;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use http::StatusCode;

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
pub(super) async fn stream<S: Source>(mut tcp: TcpStream, sse: Sse<S>, stop: &Shutdown, abort: &Shutdown) {
    let mut sse = pin!(sse);
    let head = response_head();
    if write(&mut tcp, &head, abort).await.is_err() {
        return;
    }
    drop(head);
    loop {
        let chunk = tokio::select! {
            chunk = poll_fn(|cx| sse.as_mut().poll_body(cx)) => chunk,
            () = client_gone(&tcp) => return,
            () = stop.wait() => None,
        };
        let Some(chunk) = chunk else { break };
        if write(&mut tcp, &chunk, abort).await.is_err() {
            return;
        }
    }
    // The end of the body: the client sees a clean close and reconnects.
    let _ = write_end(&mut tcp, abort).await;
}

/// Writes all of `bytes`, unless `abort` fires first.
async fn write(tcp: &mut TcpStream, bytes: &[u8], abort: &Shutdown) -> io::Result<()> {
    tokio::select! {
        written = tcp.write_all(bytes) => written,
        () = abort.wait() => Err(io::ErrorKind::Interrupted.into()),
    }
}

/// Closes the sending side, unless `abort` fires first.
async fn write_end(tcp: &mut TcpStream, abort: &Shutdown) -> io::Result<()> {
    tokio::select! {
        closed = tcp.shutdown() => closed,
        () = abort.wait() => Err(io::ErrorKind::Interrupted.into()),
    }
}

/// Completes when the client closed its side or the connection failed. A
/// client has nothing more to send on an SSE connection: whatever it sends is
/// read in small pieces and dropped, so no buffer is held for it.
pub(super) async fn client_gone(tcp: &TcpStream) {
    loop {
        if tcp.readable().await.is_err() {
            return;
        }
        let mut scrap = [0u8; 64];
        match tcp.try_read(&mut scrap) {
            Ok(0) => return,
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return,
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
