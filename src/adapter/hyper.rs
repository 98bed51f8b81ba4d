//! hyper 1 (and any server on `http-body` 1): [`Sse`] is a response body.
//!
//! ## Disconnects
//!
//! hyper keeps reading an HTTP/1.1 connection while it writes a body, and an
//! HTTP/2 connection always: when the client leaves, hyper drops the body at
//! once, which drops its hub subscription.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame as BodyFrame};

use crate::hub::BoxError;
use crate::sse::{Source, Sse};
use crate::wire::headers::insert_response_headers;

/// Each ready chunk is one body frame, so hyper writes it as soon as it is polled.
/// The body never fails: a source error ends it cleanly and is reported (see
/// [`Sse::new`]).
#[cfg_attr(docsrs, doc(cfg(feature = "hyper")))]
impl<S: Source> Body for Sse<S> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<BodyFrame<Bytes>, BoxError>>> {
        self.poll_body(cx).map(|chunk| chunk.map(|chunk| Ok(BodyFrame::data(chunk))))
    }
}

impl<S: Source> Sse<S> {
    /// The whole response: status 200, [`RESPONSE_HEADERS`](crate::RESPONSE_HEADERS),
    /// and this stream as its body.
    ///
    /// # Examples
    ///
    /// ```
    /// let hub = ssekit::Hub::new();
    /// let response = ssekit::Sse::from_subscription(hub.try_subscribe("news", ssekit::Resume::Live)?).into_http_response();
    /// assert_eq!(response.headers()["content-type"], "text/event-stream");
    /// # Ok::<(), ssekit::SubscribeError>(())
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "hyper")))]
    pub fn into_http_response(self) -> http::Response<Self> {
        let mut response = http::Response::new(self);
        insert_response_headers(response.headers_mut());
        response
    }
}
