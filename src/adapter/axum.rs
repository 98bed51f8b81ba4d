//! axum 0.8: [`Sse`] is a response, [`Resume`] an extractor.
//!
//! ## Disconnects
//!
//! `axum::serve` runs on hyper, which notices at once that a client left and
//! drops the response body, and with it the hub subscription.

use std::convert::Infallible;

use axum_core::body::Body;
use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;

use crate::hub::SubscribeError;
use crate::sse::{Source, Sse};
use crate::wire::last_event_id::Resume;

#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
impl<S: Source + Send + 'static> IntoResponse for Sse<S> {
    fn into_response(self) -> Response {
        self.into_http_response().map(Body::new)
    }
}

/// A refused subscription: when it is temporary
/// ([`SubscribeError::is_temporary`]), a `200` stream that sets a retry delay of
/// 2 to 5 s and ends, so that `EventSource` comes back; otherwise `400` with the
/// error as text. A handler can thus return `hub.sse(..).await` as is.
///
/// # Examples
///
/// ```
/// use axum::extract::State;
/// use ssekit::{Hub, Resume, Sse, SubscribeError, Subscription};
///
/// async fn events(State(hub): State<Hub>, resume: Resume) -> Result<Sse<Subscription>, SubscribeError> {
///     hub.sse("news", resume).await
/// }
/// let app: axum::Router = axum::Router::new().route("/events", axum::routing::get(events)).with_state(Hub::new());
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
impl IntoResponse for SubscribeError {
    fn into_response(self) -> Response {
        match super::try_later(&self) {
            Some(sse) => sse.into_response(),
            None => (http::StatusCode::BAD_REQUEST, self.to_string()).into_response(),
        }
    }
}

/// Reads `Last-Event-ID`, falling back to the `lastEventId` query parameter.
/// Never rejects: a malformed id becomes [`Resume::Invalid`], which a hub
/// answers with a `reset` event (a rejection status would stop `EventSource`
/// for good).
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
impl<T: Sync> FromRequestParts<T> for Resume {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &T) -> Result<Self, Self::Rejection> {
        Ok(Self::from_request(&parts.headers, parts.uri.query()))
    }
}
