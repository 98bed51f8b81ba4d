//! ssekit: Server-Sent Events for Rust servers.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod adapter;
mod connection;
mod decode;
mod encode;
mod event;
mod frame;
mod headers;
pub mod hub;
mod last_event_id;
mod random;
mod shutdown;

pub use connection::{BoxError, Events, IntoFrame, Source, Sse, SseConfig};
pub use decode::{DecodeError, Decoder, MessageEvent};
pub use event::{Event, EventError};
pub use frame::{Frame, FrameError};
pub use headers::{RESPONSE_HEADERS, insert_response_headers};
pub use hub::{
    EventId, EventIdError, Hub, HubBuilder, HubMetrics, LagPolicy, PublishError, ResetReason, SubscribeError,
    Subscription, TopicError,
};
pub use last_event_id::{LAST_EVENT_ID, LAST_EVENT_ID_QUERY, LastEventId, LastEventIdError, Resume};
pub use shutdown::Shutdown;
