//! The smallest SSE server: the current time, every second, to every client.
//!
//! Run with: cargo run --example clock --features axum

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::{Router, routing::get};
use futures_util::StreamExt;
use ssekit::{Event, Sse};
use tokio_stream::wrappers::IntervalStream;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let app = Router::new().route(
        "/",
        get(|| async {
            let ticks = IntervalStream::new(tokio::time::interval(Duration::from_secs(1)));
            Sse::new(ticks.map(|_| {
                let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
                Event::new().data(format!("{}.{:03} s since 1970", now.as_secs(), now.subsec_millis()))
            }))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
