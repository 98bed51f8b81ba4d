//! The wire format of Server-Sent Events (WHATWG HTML, "Server-sent events"):
//! what goes over a connection and nothing else — no fan-out, no I/O.
//!
//! - `event`: an [`Event`] and the rules its fields must keep;
//! - `encode`: the encoder, one exact-size buffer per event, and the pieces of
//!   a frame that other layers finish (the `id:` line and the blank line);
//! - `frame`: a [`Frame`], one encoded event shared by every connection;
//! - `decode`: the spec's parser, [`Decoder`];
//! - `last_event_id`: reading `Last-Event-ID` into a [`Resume`];
//! - `headers`: the response headers every SSE response carries.
//!
//! This layer imports nothing from the rest of the crate; everything else
//! builds on it.

pub(crate) mod decode;
pub(crate) mod encode;
pub(crate) mod event;
pub(crate) mod frame;
pub(crate) mod headers;
pub(crate) mod last_event_id;

pub use decode::{DecodeError, Decoder, MessageEvent};
pub use event::{Event, EventError};
pub use frame::{Frame, FrameError};
pub use headers::{RESPONSE_HEADERS, insert_response_headers};
pub use last_event_id::{LAST_EVENT_ID, LAST_EVENT_ID_QUERY, LastEventId, LastEventIdError, Resume};
