//! Server-Sent Events for the Rust server you already have: spec-exact encoding,
//! one encoding per event shared by every subscriber, gap-free `Last-Event-ID`
//! resume, and bounded memory whatever clients do.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ssekit::BoxError> {
//! use futures_util::StreamExt;
//! use ssekit::{Decoder, Event, Hub, Resume};
//!
//! let hub = Hub::new();
//! // One connection's response stream (serve it with the axum, actix or hyper adapter).
//! let mut stream = hub.sse("news", Resume::Live)?;
//!
//! hub.publish("news", Event::new().event("headline").data("line one\nline two"))?;
//!
//! let chunk = stream.next().await.unwrap()?;
//! let event = Decoder::new().feed(&chunk)?.remove(0);
//! assert_eq!((event.event.as_str(), event.data.as_str()), ("headline", "line one\nline two"));
//! # Ok(()) }
//! ```
//!
//! # Architecture
//!
//! - [`Event`] encodes once into a [`Frame`] (refusing what would inject fields);
//!   [`Decoder`] is the spec's parser.
//! - A [`Hub`] keeps, per topic, a bounded log of frames: publishing appends and
//!   wakes; a [`Subscription`] is a cursor that replays after a [`LastEventId`] and
//!   follows live, or starts with a `reset` event when it cannot resume exactly.
//! - [`Sse`] is one connection's stream: retry hint, frames, keep-alive, lifetime,
//!   shutdown — over a subscription or any stream of events.
//! - Adapters make [`Sse`] a response and [`Resume`] an extractor.
//!
//! # Features
//!
//! | feature | gives |
//! |---|---|
//! | `json` | [`Event::json_data`] |
//! | `hyper` | [`Sse`] as an `http_body::Body`, `Sse::into_http_response` |
//! | `axum` | `IntoResponse` for [`Sse`], [`Resume`] as an extractor (axum 0.8) |
//! | `actix` | `Responder` for [`Sse`], [`Resume`] as an extractor (actix-web 4) |
//! | `redis` | `RedisHub`: the hub over Redis Streams, shared by several processes |
#![cfg_attr(docsrs, feature(doc_cfg))]

mod adapter;
pub mod hub;
mod random;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
mod shutdown;
mod sse;
mod wire;

pub use hub::{
    BoxError, BuildError, EventId, EventIdError, Hub, HubBuilder, HubMetrics, LagPolicy, PublishError, ResetReason,
    SubscribeError, Subscription, TopicError,
};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::{RedisBackplane, RedisConfig, RedisError};
pub use shutdown::Shutdown;
pub use sse::{Events, IntoFrame, NoEvents, Source, Sse, SseConfig};
pub use wire::{
    DecodeError, Decoder, Event, EventError, Frame, FrameError, LAST_EVENT_ID, LAST_EVENT_ID_QUERY, LastEventId,
    LastEventIdError, MessageEvent, RESPONSE_HEADERS, Resume, insert_response_headers,
};
