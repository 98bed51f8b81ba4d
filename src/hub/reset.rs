//! Resets: why a subscription cannot continue exactly ([`ResetReason`]), what
//! happens to a subscriber that falls behind ([`LagPolicy`]), and the `reset`
//! event that tells its client so.

use std::fmt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::body::{ID_TAIL, seal};
use super::event_id::EventId;
use crate::wire::event::{Event, EventError};

/// Why a subscription starts with (or receives) a `reset` event instead of the
/// events its client missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResetReason {
    /// The events after the client's id were evicted from the log.
    Evicted,
    /// The id is of another epoch: the log that issued it is gone (a restart).
    UnknownEpoch,
    /// The id is not one a hub issues.
    Malformed,
    /// The id is ahead of the log.
    Future,
    /// The subscriber fell behind and the log evicted events it had not read.
    Lagged,
}

impl ResetReason {
    pub(crate) const ALL: [Self; 5] = [Self::Evicted, Self::UnknownEpoch, Self::Malformed, Self::Future, Self::Lagged];

    /// A short lowercase name: `evicted`, `epoch`, `malformed`, `future`, `lagged`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ssekit::ResetReason::Lagged.as_str(), "lagged");
    /// ```
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Evicted => "evicted",
            Self::UnknownEpoch => "epoch",
            Self::Malformed => "malformed",
            Self::Future => "future",
            Self::Lagged => "lagged",
        }
    }
}

impl fmt::Display for ResetReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happens to a subscriber that falls behind the retained log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LagPolicy {
    /// Send a `reset` event (reason `lagged`) and continue from the oldest
    /// retained event (not older than [`HubBuilder::max_age`](crate::HubBuilder::max_age)).
    #[default]
    Reset,
    /// End the subscription; the client reconnects with its last id and gets a
    /// `reset` if the events after it are gone.
    Disconnect,
}

type ResetData = Arc<dyn Fn(&str, ResetReason) -> String + Send + Sync>;

/// The `reset` events of a hub: their name and what their data says.
#[derive(Clone)]
pub(crate) struct Resets {
    pub(crate) event: String,
    /// The application's data; `None`: `{"reason":"<reason>"}`, with
    /// `"topic":"<topic>"` first in a stream of several topics.
    data: Option<ResetData>,
}

impl Resets {
    /// Events named `reset` with the default data.
    pub(crate) fn new() -> Self {
        Self { event: "reset".to_owned(), data: None }
    }

    pub(crate) fn set_data(&mut self, data: impl Fn(&str, ResetReason) -> String + Send + Sync + 'static) {
        self.data = Some(Arc::new(data));
    }

    /// Whether the event name can be sent.
    pub(crate) fn check(&self) -> Result<(), EventError> {
        Event::new().event(self.event.as_str()).validate()
    }

    /// The `reset` frame for a subscriber of `topic` alone that continues after `after`.
    pub(crate) fn frame(&self, topic: &str, reason: ResetReason, after: EventId) -> Bytes {
        seal(self.body(topic, reason, false), after)
    }

    /// The `reset` event for a subscriber of `topic`, without its id line (in
    /// a stream of several topics when `several`), with room for a hub's id.
    pub(crate) fn body(&self, topic: &str, reason: ResetReason, several: bool) -> BytesMut {
        let data = match &self.data {
            Some(data) => data(topic, reason),
            None if several => format!(r#"{{"topic":{},"reason":"{reason}"}}"#, json_string(topic)),
            None => format!(r#"{{"reason":"{reason}"}}"#),
        };
        // The name was checked when the hub was built ([`Resets::check`]); data
        // breaks no wire rule.
        Event::new().event(self.event.as_str()).data(data).encode_body(ID_TAIL)
    }
}

impl fmt::Debug for Resets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resets").field("event", &self.event).finish_non_exhaustive()
    }
}

/// `text` as a JSON string: quoted, with quotes, backslashes and control
/// characters escaped (topic names are the application's or a client's text).
fn json_string(text: &str) -> String {
    use std::fmt::Write;
    let mut json = String::with_capacity(text.len() + 2);
    json.push('"');
    for c in text.chars() {
        match c {
            '"' => json.push_str("\\\""),
            '\\' => json.push_str("\\\\"),
            c if c < ' ' => {
                let _ = write!(json, "\\u{:04x}", c as u32);
            }
            c => json.push(c),
        }
    }
    json.push('"');
    json
}

#[cfg(test)]
mod tests {
    #[test]
    fn topics_are_quoted_as_json() {
        assert_eq!(super::json_string("a\"b\\c\nd"), r#""a\"b\\c\u000ad""#);
        assert_eq!(super::json_string("plain"), r#""plain""#);
    }
}
