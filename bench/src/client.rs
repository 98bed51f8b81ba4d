//! The client side the load tools share: connecting from a chosen loopback
//! source address, asking a server of the demo contract for an event stream
//! over a raw TCP connection, plain requests, and the subscribers a server
//! counts (`GET /health`).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// The loopback source address of connection `i` when connections are spread
/// over `sources` addresses (127.0.0.1, .2, …): each address has its own
/// ephemeral ports (about 28 000 here), which past that many connections one
/// address runs out of. `None` (let the kernel choose) when `sources` is 1.
pub fn source_addr(i: usize, sources: usize) -> Option<Ipv4Addr> {
    (sources > 1).then(|| Ipv4Addr::new(127, 0, 0, 1 + (i % sources) as u8))
}

/// A new IPv4 socket, bound to `source` (port chosen by the kernel) when given.
pub fn bound_socket(source: Option<Ipv4Addr>) -> Result<TcpSocket, String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    if let Some(source) = source {
        socket.bind(SocketAddr::from((source, 0))).map_err(|e| format!("bind {source}: {e}"))?;
    }
    Ok(socket)
}

/// Connects `socket` to `addr`, 10 s at most.
pub async fn connect(socket: TcpSocket, addr: SocketAddr) -> Result<TcpStream, String> {
    tokio::time::timeout(Duration::from_secs(10), socket.connect(addr))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| format!("connect: {e}"))
}

/// The head of a response (up to the blank line) in lower case, when its
/// status line is `HTTP/1.1 200`.
pub fn ok_head(head: &[u8]) -> Result<String, String> {
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    if text.starts_with("http/1.1 200") { Ok(text) } else { Err(format!("status line {:?}", text.lines().next())) }
}

/// A request with an empty body and `Connection: close`, its answer read to
/// the end: status and body (`timeout` for the whole exchange).
pub async fn request(addr: SocketAddr, method: &str, target: &str, timeout: Duration) -> Result<(u16, String), String> {
    let exchange = async {
        let mut socket = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let head =
            format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        socket.write_all(head.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut response = Vec::new();
        socket.read_to_end(&mut response).await.map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&response).into_owned();
        let status =
            text.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| format!("bad response {text:?}"))?;
        let body = text.split_once("\r\n\r\n").map_or(String::new(), |(_, b)| b.to_owned());
        Ok((status, body))
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| format!("{method} {target}: timed out"))?
}

/// The subscribers the server counts (`"subscribers"` in its `GET /health`);
/// `None` without an answer within 5 s.
pub async fn subscribers(addr: SocketAddr) -> Option<usize> {
    let (_, body) = request(addr, "GET", "/health", Duration::from_secs(5)).await.ok()?;
    let at = body.find("\"subscribers\":")? + "\"subscribers\":".len();
    body[at..].trim_start().split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

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
