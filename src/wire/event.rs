//! The [`Event`] builder and its error.

use std::time::Duration;

/// One Server-Sent Event, built by value and encoded once.
///
/// Every setter takes any string: values are checked when the event is encoded
/// ([`Event::encode`], [`Event::encode_into`], or publishing it to a [`Hub`](crate::Hub)),
/// which returns an [`EventError`] instead of writing something a client would
/// read differently.
///
/// | field     | rule on the wire |
/// |-----------|------------------|
/// | `data`    | split on every CR, LF and CRLF into `data:` lines; an empty value still writes `data:` |
/// | `event`   | must not contain CR or LF |
/// | `id`      | must not contain CR, LF or NUL |
/// | `retry`   | written in whole milliseconds |
/// | `comment` | may span lines: each line becomes its own `:` line |
///
/// A client joins `data` lines with LF, so CR and CRLF inside data arrive as LF:
/// that is the one thing that does not round-trip.
///
/// # Examples
///
/// ```
/// use ssekit::Event;
///
/// let frame = Event::new().event("greeting").data("hello\nworld").encode()?;
/// assert_eq!(frame.as_bytes(), "event: greeting\ndata: hello\ndata: world\n\n");
///
/// // A line break in the event name would forge a field: refused, never rewritten.
/// assert!(Event::new().event("a\ndata: forged").encode().is_err());
/// # Ok::<(), ssekit::EventError>(())
/// ```
#[must_use]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    pub(crate) data: Option<String>,
    pub(crate) event: Option<String>,
    pub(crate) id: Option<String>,
    pub(crate) retry: Option<Duration>,
    pub(crate) comment: Option<String>,
}

impl Event {
    /// An empty event; set at least [`data`](Event::data) for a browser to dispatch it.
    /// An event left without any field cannot be encoded ([`EventError::Empty`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let event = ssekit::Event::new().data("tick");
    /// assert!(matches!(ssekit::Event::new().encode(), Err(ssekit::EventError::Empty)));
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the data. CR, LF and CRLF split it into several `data:` lines, which
    /// a client joins with LF.
    ///
    /// # Examples
    ///
    /// ```
    /// let frame = ssekit::Event::new().data(" a\r\nb").encode()?;
    /// assert_eq!(frame.as_bytes(), "data:  a\ndata: b\n\n");
    /// # Ok::<(), ssekit::EventError>(())
    /// ```
    pub fn data(mut self, data: impl Into<String>) -> Self {
        self.data = Some(data.into());
        self
    }

    /// Sets the data to `value` serialised as JSON.
    ///
    /// # Errors
    ///
    /// [`EventError::Json`] when `value` cannot be serialised (a map with
    /// non-string keys, a failing `Serialize` impl).
    ///
    /// # Examples
    ///
    /// ```
    /// let frame = ssekit::Event::new().json_data(&serde_json::json!({"n": 1}))?.encode()?;
    /// assert_eq!(frame.as_bytes(), "data: {\"n\":1}\n\n");
    /// # Ok::<(), ssekit::EventError>(())
    /// ```
    #[cfg(feature = "json")]
    #[cfg_attr(docsrs, doc(cfg(feature = "json")))]
    pub fn json_data<T: serde::Serialize + ?Sized>(mut self, value: &T) -> Result<Self, EventError> {
        // Compact serde_json output escapes every control character, so it is one
        // line: the encoder copies it in a single piece.
        let json = serde_json::to_string(value).map_err(EventError::Json)?;
        self.data = Some(json);
        Ok(self)
    }

    /// Sets the event type (`event:` field); without it the browser fires `message`.
    ///
    /// # Examples
    ///
    /// ```
    /// let frame = ssekit::Event::new().event("price").data("42").encode()?;
    /// assert_eq!(frame.as_bytes(), "event: price\ndata: 42\n\n");
    /// # Ok::<(), ssekit::EventError>(())
    /// ```
    pub fn event(mut self, event: impl Into<String>) -> Self {
        self.event = Some(event.into());
        self
    }

    /// Sets the id (`id:` field), which the browser sends back as `Last-Event-ID`.
    ///
    /// A [`Hub`](crate::Hub) assigns ids itself and refuses events that carry one.
    ///
    /// # Examples
    ///
    /// ```
    /// let frame = ssekit::Event::new().id("7").data("x").encode()?;
    /// assert_eq!(frame.as_bytes(), "data: x\nid: 7\n\n");
    /// # Ok::<(), ssekit::EventError>(())
    /// ```
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the reconnection delay hint (`retry:` field), written in whole milliseconds.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let frame = ssekit::Event::new().retry(Duration::from_millis(2500)).encode()?;
    /// assert_eq!(frame.as_bytes(), "retry: 2500\n\n");
    /// # Ok::<(), ssekit::EventError>(())
    /// ```
    pub fn retry(mut self, retry: Duration) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Adds a comment. Clients ignore comments; a multi-line comment becomes one
    /// `:` line per line. Calling it again adds another comment.
    ///
    /// # Examples
    ///
    /// ```
    /// let frame = ssekit::Event::new().comment("one\ntwo").encode()?;
    /// assert_eq!(frame.as_bytes(), ": one\n: two\n\n");
    /// # Ok::<(), ssekit::EventError>(())
    /// ```
    pub fn comment(mut self, comment: impl AsRef<str>) -> Self {
        let comment = comment.as_ref();
        match &mut self.comment {
            Some(existing) => {
                existing.push('\n');
                existing.push_str(comment);
            }
            None => self.comment = Some(comment.to_owned()),
        }
        self
    }

    /// Checks the rules of the table above without encoding.
    ///
    /// # Errors
    ///
    /// The [`EventError`] that encoding would return, except
    /// [`EventError::Empty`]: a [`Hub`](crate::Hub) publishes an event without
    /// fields, since it adds the id.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(ssekit::Event::new().id("a\0b").validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), EventError> {
        if let Some(event) = &self.event {
            if has_line_break(event) {
                return Err(EventError::EventLineBreak);
            }
        }
        if let Some(id) = &self.id {
            check_id(id)?;
        }
        Ok(())
    }
}

fn has_line_break(s: &str) -> bool {
    memchr::memchr2(b'\r', b'\n', s.as_bytes()).is_some()
}

fn check_id(id: &str) -> Result<(), EventError> {
    if has_line_break(id) {
        Err(EventError::IdLineBreak)
    } else if id.as_bytes().contains(&0) {
        Err(EventError::IdNul)
    } else {
        Ok(())
    }
}

/// Why an [`Event`] cannot be encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The event type contains CR or LF, which would end the field early.
    #[error("event type contains a line break")]
    EventLineBreak,
    /// The id contains CR or LF, which would end the field early.
    #[error("event id contains a line break")]
    IdLineBreak,
    /// The id contains NUL; browsers ignore such an id.
    #[error("event id contains NUL")]
    IdNul,
    /// The event has no field at all, so it would encode to a lone blank line,
    /// which is not a [`Frame`](crate::Frame).
    #[error("event has no field")]
    Empty,
    /// The value given to [`Event::json_data`] failed to serialise.
    #[cfg(feature = "json")]
    #[cfg_attr(docsrs, doc(cfg(feature = "json")))]
    #[error("event data failed to serialize as json")]
    Json(#[source] serde_json::Error),
}
