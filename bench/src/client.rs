//! The client side the load tools share: asking a server of the demo contract
//! for an event stream over a raw TCP connection.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `GET path` for an event stream and reads until the end of the
/// response head (10 s at most). Returns what was read, and where the body
/// starts in it.
pub async fn request_events(stream: &mut TcpStream, addr: SocketAddr, path: &str) -> Result<(Vec<u8>, usize), String> {
    let head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
    stream.write_all(head.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 16 * 1024];
    let mut read = Vec::new();
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .map_err(|_| "response head timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed before the response head".to_owned());
        }
        read.extend_from_slice(&buf[..n]);
        if let Some(at) = read.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok((read, at + 4));
        }
    }
}
