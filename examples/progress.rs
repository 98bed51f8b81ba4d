//! Per-request streams, without a hub: each response is its own stream of events.
//!
//! - `GET /` is a page with a progress bar that follows `/job`;
//! - `GET /job` reports the progress of a (simulated) job from 0 to 100 %, then
//!   sends a `done` event and ends. Every event has an id, so a client that
//!   reconnects continues where it was; one that comes back after `done` (its
//!   `Last-Event-ID` is `done`) gets `done` again, not a new job. The page
//!   closes its `EventSource` on `done`, which is how a stream that finished
//!   tells a browser to stop: a stream that just ends is reconnected.
//! - `GET /tokens?prompt=...` streams an answer token by token, the way a text
//!   generator would, from a task that sends into a channel.
//!
//! Run with: cargo run --example progress --features axum -- [--port N]
//!
//! Then open the printed address, or `curl -N http://127.0.0.1:8080/job`, or
//! `curl -N 'http://127.0.0.1:8080/tokens?prompt=hello'`.

mod flags;

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use futures_util::stream;
use ssekit::{Event, Resume, Sse};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// The id of the last event of a job.
const DONE: &str = "done";

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let app =
        Router::new().route("/", get(|| async { Html(PAGE) })).route("/job", get(job)).route("/tokens", get(tokens));
    axum::serve(flags::listen().await?, app).await
}

/// Where a job's stream starts: the step after the client's last id, or `done`
/// again for a client that saw the end.
#[derive(Debug, Clone, Copy)]
enum Step {
    Percent(u32),
    Done,
}

impl Step {
    fn after(resume: &Resume) -> Self {
        let Resume::After(id) = resume else {
            return Self::Percent(0);
        };
        match id.as_str() {
            DONE => Self::Done,
            // Past 100 % (or past what a u32 holds) the job is done.
            percent => percent
                .parse::<u32>()
                .map_or(Self::Percent(0), |percent| percent.checked_add(10).map_or(Self::Done, Self::Percent)),
        }
    }
}

/// Progress in steps of 10 %, then `done`: a stream unfolded from its state.
async fn job(resume: Resume) -> impl IntoResponse {
    let steps = stream::unfold(Some(Step::after(&resume)), |step| async move {
        let (event, next) = match step? {
            Step::Percent(percent) if percent <= 100 => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let event = Event::new().event("progress").id(percent.to_string()).data(format!("{percent}%"));
                (event, Some(Step::Percent(percent + 10)))
            }
            Step::Percent(_) | Step::Done => (Event::new().event("done").id(DONE).data("the job is finished"), None),
        };
        Some((Ok::<_, Infallible>(event), next))
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

/// `GET /`: a progress bar over `/job`. `window.job` records what the page saw,
/// for the browser test.
const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>ssekit job progress</title>
<style>
  body { font: 15px/1.5 system-ui, sans-serif; max-width: 36rem; margin: 2rem auto; padding: 0 1rem; }
  progress { width: 100%; height: 1.5rem; }
</style>
</head>
<body>
<h1>A job</h1>
<progress id="bar" max="100" value="0"></progress>
<p id="state">starting</p>
<script>
  const bar = document.getElementById('bar');
  const state = document.getElementById('state');
  window.job = { progress: [], done: 0, opens: 0 };
  const source = new EventSource('/job');
  source.onopen = () => { window.job.opens += 1; };
  source.addEventListener('progress', (e) => {
    window.job.progress.push(e.data);
    bar.value = parseInt(e.data, 10);
    state.textContent = e.data;
  });
  source.addEventListener('done', (e) => {
    window.job.done += 1;
    bar.value = 100;
    state.textContent = 'done: ' + e.data;
    // The job is over: stop, or EventSource would reconnect when the stream ends.
    source.close();
  });
</script>
</body>
</html>
"#;
