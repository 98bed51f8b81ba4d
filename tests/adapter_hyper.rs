//! The demo app on bare hyper, run as its own process: headers, event-by-event
//! delivery, resume, disconnects, shutdown and input validation over raw
//! HTTP/1.1, and the same stream over HTTP/2 with prior knowledge (h2c); and a
//! server of the test's own on hyper for per-request streams.
#![cfg(feature = "hyper")]

#[macro_use]
mod support;

use std::convert::Infallible;

use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use ssekit::Decoder;
use support::checks::{self, Feed};
use support::client::within;
use support::demo::{Demo, DemoApp};
use support::server::Server;

fn start() -> Demo {
    Demo::start(DemoApp::Hyper, checks::CONTRACT_FLAGS)
}

contract_tests!(#[tokio::test], detect: checks::Detect::Read);

#[tokio::test]
async fn per_request_stream_with_keep_alive() {
    let feed = Feed::default();
    let route = feed.clone();
    let server = Server::start(ssekit::Hub::new(), |listener, _, shutdown| async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let mut shutdown = shutdown;
        // One connection is all the check opens.
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = &mut shutdown => return Ok(()),
        };
        let service = service_fn(move |_request| {
            let sse = route.sse();
            async move { Ok::<_, Infallible>(sse.into_http_response()) }
        });
        let connection = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
        let mut connection = std::pin::pin!(connection);
        tokio::select! {
            result = connection.as_mut() => result.map_err(std::io::Error::other),
            () = shutdown => {
                connection.as_mut().graceful_shutdown();
                connection.await.map_err(std::io::Error::other)
            }
        }
    });
    checks::check_per_request(server.addr, &feed).await;
    server.shutdown().await;
}

/// HTTP/2 with prior knowledge on the same port: the same headers, the same
/// event-by-event delivery, and the stream ends on shutdown (SIGTERM closes the
/// demo's hub).
#[tokio::test]
async fn h2c_carries_the_stream() {
    let demo = start();
    let stream = within("connect", tokio::net::TcpStream::connect(demo.addr)).await.expect("connect");
    let (mut sender, connection) =
        within("h2 handshake", hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)))
            .await
            .expect("h2 handshake");
    let connection = tokio::spawn(connection);

    let request = Request::get("/events?topic=h2").body(Empty::<bytes::Bytes>::new()).expect("request");
    let response = within("h2 response", sender.send_request(request)).await.expect("h2 response");
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["cache-control"], "no-cache, no-transform");
    assert_eq!(headers["x-accel-buffering"], "no");
    assert_eq!(headers["content-encoding"], "identity");

    let mut body = response.into_body();
    let mut decoder = Decoder::new();
    for i in 0..3 {
        let id = demo.publish("h2", &format!("h{i}")).await;
        let event = loop {
            let frame = within("h2 data", body.frame()).await.expect("stream open").expect("h2 frame");
            let data = frame.into_data().expect("a data frame");
            if let Some(event) = decoder.feed(&data).expect("valid event stream").pop() {
                break event;
            }
        };
        assert_eq!((event.data.as_str(), event.last_event_id.as_str()), (format!("h{i}").as_str(), id.as_str()));
    }

    demo.terminate();
    // The end may come after an empty DATA frame; nothing else is sent.
    let mut ended = false;
    for _ in 0..3 {
        match within("h2 end of stream", body.frame()).await {
            None => {
                ended = true;
                break;
            }
            Some(frame) => assert!(frame.expect("h2 frame").into_data().is_ok_and(|d| d.is_empty())),
        }
    }
    assert!(ended, "the stream ends when the hub closes");
    drop(sender);
    demo.wait_exit().await;
    within("h2 connection end", connection).await.expect("connection task").expect("h2 connection");
}
