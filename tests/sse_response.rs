//! `Sse` served as a response: a source that fails, or an event that cannot be
//! encoded, ends the body cleanly after the frames before it (the client gets
//! the headers and a proper end, never a cut connection) and is reported to
//! `Sse::on_error`.
#![cfg(all(feature = "hyper", feature = "axum"))]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream;
use http_body_util::BodyExt;
use ssekit::{Event, Sse};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A stream of a good event, one whose id holds a line break, and one more.
fn with_a_bad_event() -> impl futures_util::Stream<Item = Event> + Send + 'static {
    stream::iter([Event::new().data("before"), Event::new().id("a\nb").data("bad"), Event::new().data("never")])
}

#[tokio::test]
async fn a_bad_event_ends_the_body_cleanly_and_is_reported() {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let seen = errors.clone();
    let sse = Sse::new(stream::iter([Event::new().id("a\nb").data("bad")]))
        .on_error(move |err| seen.lock().unwrap().push(err.to_string()));
    let mut body = sse.into_http_response().into_body();
    // No frame, no error: the body just ends.
    assert!(body.frame().await.is_none());
    assert_eq!(errors.lock().unwrap().len(), 1, "reported once");
    assert!(errors.lock().unwrap()[0].contains("id"), "{:?}", errors.lock().unwrap());

    // After good frames: they go out, then the end.
    let errors = Arc::new(Mutex::new(Vec::new()));
    let seen = errors.clone();
    let sse = Sse::new(with_a_bad_event()).on_error(move |err| seen.lock().unwrap().push(err.to_string()));
    let body = sse.into_http_response().into_body().collect().await.expect("a body that never fails");
    assert_eq!(&body.to_bytes()[..], b"data: before\n\n");
    assert_eq!(errors.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_client_gets_the_headers_and_a_clean_end() {
    // An event that cannot be encoded as the very first item: before the fix,
    // hyper closed the connection before the response head.
    let app = axum::Router::new().route(
        "/bad-first",
        axum::routing::get(|| async {
            Sse::new(stream::iter([Event::new().event("x\ny").data("z")])).on_error(|_| ())
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(format!("GET /bad-first HTTP/1.1\r\nhost: {addr}\r\n\r\n").as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        while !response.ends_with(b"0\r\n\r\n") {
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed before the end of the body: {:?}", String::from_utf8_lossy(&response));
            response.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read).await.expect("the response within 5 s");
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.to_ascii_lowercase().contains("content-type: text/event-stream"), "{text}");
    assert!(text.contains("transfer-encoding: chunked"), "a chunked body that ends with its last chunk: {text}");
    server.abort();
}
