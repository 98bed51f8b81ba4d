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

use crate::{Resume, Source, Sse};

#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
impl<S: Source + Send + 'static> IntoResponse for Sse<S> {
    fn into_response(self) -> Response {
        self.into_http_response().map(Body::new)
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
