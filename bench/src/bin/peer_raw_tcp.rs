//! The floor for the load benchmarks: no HTTP framework, no per-subscriber
//! encoding. Reads just the request line, answers `/events` with a fixed
//! HTTP/1.1 header (`Connection: close`, no chunking) and then writes the
//! pre-encoded frames of a `broadcast::Sender<Bytes>`, batching what is ready
//! into one write. A lagging socket skips what it missed (no replay, no ids).
//! `--history` is the channel capacity; `--keep-alive` is ignored.
//! Only a comparison server (BENCHMARKS.md).
//!
//! Run with: `cargo run --release -p ssekit-bench --bin peer_raw_tcp -- --port 0`

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use ssekit_bench::peer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast::{self, error::RecvError};

const SSE_HEADER: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n";

/// Largest batch of frames written at once.
const BATCH: usize = 64 * 1024;

#[derive(Clone)]
struct Topics {
    senders: Arc<Mutex<HashMap<String, broadcast::Sender<Bytes>>>>,
    capacity: usize,
}

impl Topics {
    fn sender(&self, topic: &str) -> broadcast::Sender<Bytes> {
        let mut senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        senders.entry(topic.to_owned()).or_insert_with(|| broadcast::channel(self.capacity).0).clone()
    }

    fn subscribers(&self) -> usize {
        self.senders.lock().unwrap_or_else(|e| e.into_inner()).values().map(broadcast::Sender::receiver_count).sum()
    }
}

async fn respond(socket: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await?;
    socket.write_all(body.as_bytes()).await?;
    socket.shutdown().await
}

async fn serve(mut socket: TcpStream, topics: Topics) -> std::io::Result<()> {
    let mut request = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut buf).await?;
        if n == 0 || request.len() + n > 8192 {
            return Ok(());
        }
        request.extend_from_slice(&buf[..n]);
    }
    let line = request.split(|&b| b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    match (method, path) {
        ("GET", "/events") => {
            let mut rx = topics.sender(&peer::topic(query)).subscribe();
            socket.write_all(SSE_HEADER).await?;
            let mut batch = BytesMut::new();
            loop {
                match rx.recv().await {
                    Ok(frame) => batch.extend_from_slice(&frame),
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return Ok(()),
                }
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(frame) => batch.extend_from_slice(&frame),
                        Err(broadcast::error::TryRecvError::Lagged(_)) => {}
                        Err(_) => break,
                    }
                }
                socket.write_all_buf(&mut batch).await?;
            }
        }
        ("POST", "/bench") => match peer::Bench::parse(query) {
            Ok(bench) => {
                let tx = topics.sender(&bench.topic);
                let answer = bench
                    .run(|data| {
                        let mut frame = BytesMut::with_capacity(data.len() + 8);
                        frame.extend_from_slice(b"data: ");
                        frame.extend_from_slice(data.as_bytes());
                        frame.extend_from_slice(b"\n\n");
                        let _ = tx.send(frame.freeze());
                        std::future::ready(())
                    })
                    .await;
                respond(&mut socket, "200 OK", &answer).await
            }
            Err(err) => respond(&mut socket, "400 Bad Request", &format!(r#"{{"error":{err:?}}}"#)).await,
        },
        ("GET", "/health") => {
            let body = format!(r#"{{"subscribers":{}}}"#, topics.subscribers());
            respond(&mut socket, "200 OK", &body).await
        }
        _ => respond(&mut socket, "404 Not Found", r#"{"error":"not found"}"#).await,
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = peer::Args::from_env();
    let listener = tokio::net::TcpListener::from_std(args.bind()?)?;
    let topics = Topics { senders: Arc::default(), capacity: args.history };
    loop {
        let (socket, _) = listener.accept().await?;
        let _ = socket.set_nodelay(true);
        let topics = topics.clone();
        tokio::spawn(async move {
            let _ = serve(socket, topics).await;
        });
    }
}
