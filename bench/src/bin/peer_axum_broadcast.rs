//! What axum users write for SSE fan-out without ssekit: one
//! `tokio::sync::broadcast` channel per topic (capacity `--history`), and per
//! subscriber a `BroadcastStream` mapped to `axum::response::sse::Event`s.
//! Lagged subscribers lose events silently: that is the pattern being measured.
//! Only a comparison server for the load benchmarks (BENCHMARKS.md).
//!
//! Run with: `cargo run --release -p ssekit-bench --bin peer_axum_broadcast -- --port 0`

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::extract::{RawQuery, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::{Stream, StreamExt};
use ssekit_bench::peer;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

#[derive(Clone)]
struct App {
    topics: Arc<Mutex<HashMap<String, broadcast::Sender<String>>>>,
    capacity: usize,
    keep_alive: std::time::Duration,
}

impl App {
    fn sender(&self, topic: &str) -> broadcast::Sender<String> {
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        topics.entry(topic.to_owned()).or_insert_with(|| broadcast::channel(self.capacity).0).clone()
    }
}

async fn events(
    State(app): State<App>,
    RawQuery(query): RawQuery,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = app.sender(&peer::topic(query.as_deref())).subscribe();
    let stream = BroadcastStream::new(rx).filter_map(|message| async move {
        // Lagged: the missed events are gone; carry on with the next one.
        message.ok().map(|data| Ok(Event::default().data(data)))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(app.keep_alive))
}

async fn bench(State(app): State<App>, RawQuery(query): RawQuery) -> (axum::http::StatusCode, String) {
    let bench = match peer::Bench::parse(query.as_deref()) {
        Ok(bench) => bench,
        Err(err) => return (axum::http::StatusCode::BAD_REQUEST, format!(r#"{{"error":{err:?}}}"#)),
    };
    let tx = app.sender(&bench.topic);
    let answer = bench
        .run(|data| {
            let _ = tx.send(data);
            std::future::ready(())
        })
        .await;
    (axum::http::StatusCode::OK, answer)
}

async fn health(State(app): State<App>) -> Json<serde_json::Value> {
    let topics = app.topics.lock().unwrap_or_else(|e| e.into_inner());
    let subscribers: usize = topics.values().map(broadcast::Sender::receiver_count).sum();
    Json(serde_json::json!({ "subscribers": subscribers, "topics": topics.len() }))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = peer::Args::from_env();
    let app = App { topics: Arc::default(), capacity: args.history, keep_alive: args.keep_alive };
    let router = Router::new()
        .route("/events", get(events))
        .route("/bench", post(bench))
        .route("/health", get(health))
        .with_state(app);
    let listener = tokio::net::TcpListener::from_std(args.bind()?)?;
    axum::serve(listener, router).await
}
