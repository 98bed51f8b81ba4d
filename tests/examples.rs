//! The small examples as a client sees them (run as processes, like the
//! demo): `progress` continues a job where its client was, and answers a client
//! that saw the end with `done` again instead of a new job.
#![cfg(feature = "axum")]

mod support;

use support::client;
use support::demo::{Demo, DemoApp};

#[tokio::test]
async fn progress_resumes_a_job_and_answers_done_after_the_end() {
    let example = Demo::start(DemoApp::Progress, &[]);

    // A client that saw 50 % continues at 60 %, with ids on every event.
    let mut job = client::request(example.addr, "GET", "/job", &[("last-event-id", "50")], b"").await;
    job.assert_sse_headers();
    let next = job.next_event().await;
    assert_eq!((next.event.as_str(), next.data.as_str(), next.last_event_id.as_str()), ("progress", "60%", "60"));
    drop(job);

    // One that saw the end gets the end again, and the stream ends.
    let mut job = client::request(example.addr, "GET", "/job", &[("last-event-id", "done")], b"").await;
    let done = job.next_event().await;
    assert_eq!((done.event.as_str(), done.last_event_id.as_str()), ("done", "done"));
    assert_eq!(job.try_next_event().await, None, "nothing after done");

    // An id past what a u32 holds is the end too, not a crash.
    let mut job = client::request(example.addr, "GET", "/job", &[("last-event-id", "4294967295")], b"").await;
    assert_eq!(job.next_event().await.event, "done");
}
