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
//! let mut stream = hub.sse("news", Resume::Live).await?;
//!
//! hub.publish("news", Event::new().event("headline").data("line one\nline two")).await?;
//!
//! let chunk = stream.next().await.unwrap()?;
//! let event = Decoder::new().feed(&chunk)?.remove(0);
//! assert_eq!((event.event.as_str(), event.data.as_str()), ("headline", "line one\nline two"));
//! # Ok(()) }
//! ```
//!
//! # Architecture
//!
//! One folder per layer, in the order data flows; each imports only the
//! layers before it.
//!
//! 1. `wire/`: the format on the wire. [`Event`] encodes once into a
//!    [`Frame`] (refusing what would inject fields); [`Decoder`] is the spec's
//!    parser; [`LastEventId`] and [`Resume`] read what a reconnecting client
//!    sends; [`RESPONSE_HEADERS`].
//! 2. `hub/`: the [`Hub`] keeps, per topic, a bounded log of frames: publishing
//!    appends and wakes; a [`Subscription`] is a cursor that replays after a
//!    client's id and follows live, or starts with a `reset` event when it cannot
//!    resume exactly. Its [`backplane`](hub::backplane) module is the one door
//!    through which a shared log feeds the hub.
//! 3. `sse/`: [`Sse`] is one connection's stream: retry hint, frames,
//!    keep-alive, lifetime, shutdown — over a subscription or any stream of
//!    events ([`Events`]).
//! 4. `adapter/`: each framework's conversions, and nothing else: [`Sse`] as
//!    a response, [`Resume`] as an extractor.
//! 5. `redis/` (feature `redis`): [`RedisBackplane`],
//!    a backplane over Redis Streams; it uses the hub only through its door.
//!
//! `shutdown.rs` ([`Shutdown`]) and `random.rs` are small leaves that the hub
//! and the stream share.
//!
//! # Features
//!
//! | feature | gives |
//! |---|---|
//! | `json` | [`Event::json_data`] |
//! | `hyper` | [`Sse`] as an `http_body::Body`, `Sse::into_http_response` |
//! | `axum` | `IntoResponse` for [`Sse`], [`Resume`] as an extractor (axum 0.8) |
//! | `actix` | `Responder` for [`Sse`], [`Resume`] as an extractor (actix-web 4) |
//! | `redis` | `RedisBackplane`: the hub's topics in Redis Streams, shared by several processes |
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

// Inlined: each type is listed on the front page, not only as a `pub use` line.
#[doc(inline)]
pub use hub::{
    BoxError, BuildError, EventId, EventIdError, Hub, HubBuilder, HubMetrics, LagPolicy, PublishError, ResetReason,
    SubscribeError, Subscription, TopicError,
};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
#[doc(inline)]
pub use redis::{RedisBackplane, RedisConfig, RedisError};
pub use shutdown::Shutdown;
pub use sse::{Events, IntoFrame, NoEvents, Source, Sse, SseConfig};
pub use wire::{
    DecodeError, Decoder, Event, EventError, Frame, FrameError, LAST_EVENT_ID, LAST_EVENT_ID_QUERY, LastEventId,
    LastEventIdError, MessageEvent, RESPONSE_HEADERS, Resume, insert_response_headers,
};
