//! The demo app on bare hyper: headers, event-by-event delivery, resume,
//! disconnects, shutdown, input validation and per-request streams over raw
//! HTTP/1.1, and the same stream over HTTP/2 with prior knowledge (h2c).
#![cfg(feature = "hyper")]

#[allow(dead_code)] // `main` and whatever this file does not test.
#[path = "../examples/demo_hyper.rs"]
mod demo;
mod support;

use std::convert::Infallible;

use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use ssekit::Decoder;
use support::{Feed, Server, within};

fn start() -> Server {
    Server::start(support::test_hub(), |listener, hub, shutdown| async move {
        demo::serve(tokio::net::TcpListener::from_std(listener)?, hub, shutdown).await
    })
}

#[tokio::test]
async fn events_arrive_one_by_one() {
    let server = start();
    support::check_events_one_by_one(&server).await;
    server.shutdown().await;
}

#[tokio::test]
async fn resume_replays_missed_events_or_resets() {
    let server = start();
    support::check_resume(&server).await;
    server.shutdown().await;
}

#[tokio::test]
async fn disconnected_client_is_unsubscribed() {
    let server = start();
    support::check_disconnect(&server, support::Detect::Read).await;
    server.shutdown().await;
}

#[tokio::test]
async fn invalid_publish_is_refused() {
    let server = start();
    support::check_invalid_publish(&server).await;
    server.shutdown().await;
}

#[tokio::test]
async fn graceful_shutdown_with_clients_connected() {
    support::check_shutdown(start()).await;
}

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
    support::check_per_request(server.addr, &feed).await;
    server.shutdown().await;
}

/// HTTP/2 with prior knowledge on the same port: the same headers, the same
/// event-by-event delivery, and the stream ends on shutdown.
#[tokio::test]
async fn h2c_carries_the_stream() {
    let server = start();
    let stream = within("connect", tokio::net::TcpStream::connect(server.addr)).await.expect("connect");
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
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-accel-buffering"], "no");
    assert!(headers.get("content-encoding").is_none());

    let mut body = response.into_body();
    let mut decoder = Decoder::new();
    for i in 0..3 {
        let id = support::publish(&server.hub, "h2", &format!("h{i}"));
        let event = loop {
            let frame = within("h2 data", body.frame()).await.expect("stream open").expect("h2 frame");
            let data = frame.into_data().expect("a data frame");
            if let Some(event) = decoder.feed(&data).expect("valid event stream").pop() {
                break event;
            }
        };
        assert_eq!((event.data.as_str(), event.last_event_id.as_str()), (format!("h{i}").as_str(), id.as_str()));
    }

    server.hub.close();
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
    server.shutdown().await;
    within("h2 connection end", connection).await.expect("connection task").expect("h2 connection");
}
