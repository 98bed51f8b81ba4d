//! The smallest SSE server: the current time, every second, to every client.
//!
//! Run with: cargo run --example clock --features axum -- [--port N]
//!
//! Then open the printed address (8080 by default; `--port 0` picks a free one).

mod flags;

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
    axum::serve(flags::listen().await?, app).await
}
