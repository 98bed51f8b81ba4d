//! Per-request streams, without a hub: each response is its own stream of events.
//!
//! - `GET /job` reports the progress of a (simulated) job from 0 to 100 %, then
//!   sends a `done` event and ends;
//! - `GET /tokens?prompt=...` streams an answer token by token, the way a text
//!   generator would, from a task that sends into a channel.
//!
//! Run with: cargo run --example progress --features axum
//!
//! Then `curl -N http://127.0.0.1:8080/job` or `curl -N 'http://127.0.0.1:8080/tokens?prompt=hello'`.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::response::IntoResponse;
use axum::routing::get;
use futures_util::stream;
use ssekit::{Event, Sse};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let app = Router::new().route("/job", get(job)).route("/tokens", get(tokens));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}

/// Progress in steps of 10 %, then `done`: a stream unfolded from its state.
async fn job() -> impl IntoResponse {
    let steps = stream::unfold(Some(0u32), |percent| async move {
        let percent = percent?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        if percent > 100 {
            let done = Event::new().event("done").data("the job is finished");
            return Some((Ok::<_, Infallible>(done), None));
        }
        Some((Ok(Event::new().event("progress").data(format!("{percent}%"))), Some(percent + 10)))
    });
    Sse::new(steps)
}

#[derive(serde::Deserialize)]
struct Prompt {
    #[serde(default)]
    prompt: String,
}

/// An answer token by token: a task produces, the response consumes. When the
/// client leaves, the response (and its receiver) is dropped and `send` fails,
/// which stops the producer.
async fn tokens(Query(Prompt { prompt }): Query<Prompt>) -> impl IntoResponse {
    let (tx, rx) = mpsc::channel::<Result<Event, Infallible>>(16);
    tokio::spawn(async move {
        let answer = format!("You said \"{prompt}\". Here is that, one word at a time: {prompt}");
        for token in answer.split_inclusive(' ') {
            tokio::time::sleep(Duration::from_millis(150)).await;
            if tx.send(Ok(Event::new().event("token").data(token))).await.is_err() {
                return;
            }
        }
        let _ = tx.send(Ok(Event::new().event("done").data(""))).await;
    });
    Sse::new(ReceiverStream::new(rx))
}
