// The crate's front page is the README: servers on axum, actix-web and hyper first.
// Its examples need all three frameworks, so they run as doctests (below) only when
// every feature is on.
#![cfg_attr(all(doc, not(doctest)), doc = include_str!("../README.md"))]
#![cfg_attr(any(not(doc), doctest), doc = "Server-Sent Events for the Rust server you already have: see README.md.")]
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

#[cfg(feature = "lean")]
#[cfg_attr(docsrs, doc(cfg(feature = "lean")))]
pub use adapter::lean;
// Inlined: each type is listed on the front page, not only as a `pub use` line.
#[cfg(all(any(unix, windows), any(feature = "hyper", feature = "actix")))]
pub use adapter::set_stall_timeout;
#[doc(inline)]
pub use hub::{
    BackplaneStatus, BoxError, BuildError, EventId, EventIdError, Hub, HubBuilder, HubMetrics, LagPolicy, PublishError,
    ResetReason, SubscribeError, Subscription, TopicError,
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

/// The README's examples, compiled and run as doctests.
#[cfg(all(doctest, feature = "axum", feature = "actix", feature = "hyper", feature = "redis"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
