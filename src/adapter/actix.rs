//! actix-web 4: [`Sse`] is a responder, [`Resume`] an extractor. actix-web 4 uses
//! `http` 0.2 types; conversion happens here, at the edge.
//!
//! ## Disconnects
//!
//! actix-web does not read a connection while it streams a response, so it
//! notices that a client left only when a write fails: at the next event or
//! keep-alive comment. Until then the stream (and its hub subscription) stays;
//! the keep-alive interval bounds how long.
//!
//! ## Closing
//!
//! An SSE response closes its connection when it ends, since actix-web's
//! graceful shutdown waits for idle keep-alive connections.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;

use actix_web::body::BoxBody;
use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{FromRequest, HttpRequest, HttpResponse, Responder, ResponseError};

use crate::hub::SubscribeError;
use crate::sse::{Source, Sse};
use crate::wire::headers::RESPONSE_HEADERS;
use crate::wire::last_event_id::{LAST_EVENT_ID, Resume};

/// Status 200 with [`RESPONSE_HEADERS`], closing the connection when the stream
/// ends.
///
/// actix-web notices that a client left only when a write to it fails, and the
/// first write after the client closed succeeds (the kernel takes it; the
/// client's answer is a reset). So 250 ms after each write that nothing
/// followed (an event, a keep-alive comment) the stream writes a comment, and
/// twice after the head: a subscription whose client left ends about 250 ms
/// after the next event, at most 250 ms after the next keep-alive comment when
/// no event comes, and within 500 ms when the client left as soon as it had
/// the head. (Without this, departed clients stayed subscribed until the
/// second keep-alive, and under connection churn their connections piled up
/// in the server's memory: see BENCHMARKS.md.)
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
impl<S: Source + 'static> Responder for Sse<S> {
    type Body = BoxBody;

    fn respond_to(self, _req: &HttpRequest) -> HttpResponse {
        response(self)
    }
}

/// How long after a write that nothing followed the stream writes a comment,
/// to learn whether its client is still there: long enough for the client's
/// reset to arrive (a round trip), short enough that departed clients do not
/// pile up under churn.
const PROBE: Duration = Duration::from_millis(250);

/// A refused subscription: when it is temporary
/// ([`SubscribeError::is_temporary`]), a `200` stream that sets a retry delay of
/// 2 to 5 s and ends, so that `EventSource` comes back; otherwise `400` with the
/// error as text. A handler can thus return `hub.sse(..).await` as is.
///
/// # Examples
///
/// ```
/// use actix_web::web;
/// use ssekit::{Hub, Resume, Sse, SubscribeError, Subscription};
///
/// async fn events(hub: web::Data<Hub>, resume: Resume) -> Result<Sse<Subscription>, SubscribeError> {
///     hub.sse("news", resume).await
/// }
/// let app = actix_web::App::new().app_data(web::Data::new(Hub::new())).route("/events", web::get().to(events));
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
impl ResponseError for SubscribeError {
    fn status_code(&self) -> StatusCode {
        if self.is_temporary() { StatusCode::OK } else { StatusCode::BAD_REQUEST }
    }

    fn error_response(&self) -> HttpResponse {
        match super::try_later(self) {
            Some(sse) => response(sse),
            None => HttpResponse::BadRequest().content_type("text/plain; charset=utf-8").body(self.to_string()),
        }
    }
}

/// The streaming response of `sse`.
fn response<S: Source + 'static>(mut sse: Sse<S>) -> HttpResponse {
    sse.probe_writes(PROBE);
    let mut response = HttpResponse::Ok();
    // The stream ends only on shutdown, at the end of its lifetime or of its
    // source: closing the connection then lets a graceful shutdown finish at
    // once (actix-web waits for idle keep-alive connections); a reconnecting
    // client opens a new one either way.
    response.force_close();
    for (name, value) in RESPONSE_HEADERS {
        // Both sides are valid header bytes: the conversion cannot fail.
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name.as_str().as_bytes()), HeaderValue::from_bytes(value.as_bytes()))
        {
            response.insert_header((name, value));
        }
    }
    response.streaming(Body { sse })
}

pin_project_lite::pin_project! {
    /// The response body: never fails (a source error ends it cleanly and is
    /// reported, see [`Sse::new`]).
    struct Body<S: Source> {
        #[pin]
        sse: Sse<S>,
    }
}

impl<S: Source> Stream for Body<S> {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.project().sse.poll_body(cx).map(|chunk| chunk.map(Ok))
    }
}

/// Reads `Last-Event-ID`, falling back to the `lastEventId` query parameter.
/// Never rejects: a malformed id becomes [`Resume::Invalid`], which a hub
/// answers with a `reset` event.
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
impl FromRequest for Resume {
    type Error = Infallible;
    type Future = Ready<Result<Self, Infallible>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let values = req.headers().get_all(LAST_EVENT_ID.as_str()).map(HeaderValue::as_bytes);
        let query = Some(req.query_string()).filter(|q| !q.is_empty());
        ready(Ok(Self::from_header_values(values, query)))
    }
}
