//! The client side of the wire format: an incremental, bounded parser that follows the WHATWG
//! HTML "event stream interpretation" step by step.
//!
//! [`Decoder`] turns the bytes of a `text/event-stream` response into the [`MessageEvent`]s a
//! browser's `EventSource` would dispatch. It is meant for tests, for Rust clients of an SSE
//! endpoint, and for checking what an encoder really put on the wire.
//!
//! What it does, exactly as the specification says:
//!
//! - lines end with CRLF, a lone LF or a lone CR, also when a CRLF pair is split between two
//!   chunks; chunks may split anywhere, even inside a UTF-8 sequence;
//! - one UTF-8 byte order mark at the very start of the stream is stripped, a second one is data;
//! - each line is decoded as UTF-8 with invalid sequences replaced by U+FFFD;
//! - `event`, `data`, `id` (ignored when it contains U+0000) and `retry` (ASCII digits only) are
//!   the fields; field names are case-sensitive, unknown fields and `:` comments are ignored, one
//!   space after the colon is stripped;
//! - a blank line dispatches the event if its data is not empty; the last event id is sticky;
//! - an event that is not terminated by a blank line when the stream ends is never dispatched,
//!   so there is nothing to flush at the end of a stream.
//!
//! ## Memory
//!
//! Everything the decoder stores is bounded: an incomplete line is held up to
//! [`Decoder::with_max_line_length`] bytes, the data of one event up to
//! [`Decoder::with_max_event_size`] bytes (both 1 MiB by default). Past a limit the decoder
//! returns a [`DecodeError`] instead of growing.
//!
//! ## Errors
//!
//! After an error the decoder is *poisoned*: every later call to [`Decoder::decode`] or
//! [`Decoder::feed`] returns the same error again without consuming input. A stream that broke
//! a limit cannot be resynchronised reliably, so drop the connection and, if you want, reconnect
//! with a fresh decoder and [`Decoder::resume_id`] as `Last-Event-ID`.
//!
//! # Examples
//!
//! ```
//! use ssekit::{Decoder, MessageEvent};
//!
//! let mut decoder = Decoder::new();
//! // Chunks may split lines anywhere.
//! assert!(decoder.feed(b"event: greet\nid: 1\nda")?.is_empty());
//! let events = decoder.feed(b"ta: hello\r\ndata: world\r\n\r\n")?;
//! assert_eq!(
//!     events,
//!     [MessageEvent {
//!         event: "greet".into(),
//!         data: "hello\nworld".into(),
//!         last_event_id: "1".into(),
//!         retry: None,
//!     }]
//! );
//! # Ok::<(), ssekit::DecodeError>(())
//! ```

use std::time::Duration;

use bytes::{Buf, BytesMut};

/// The default for both [`Decoder::with_max_line_length`] and [`Decoder::with_max_event_size`].
const DEFAULT_LIMIT: usize = 1 << 20;

/// The smallest piece of a chunk [`Decoder::feed`] copies at once.
const FEED_PIECE: usize = 8 * 1024;

/// The UTF-8 byte order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One dispatched event as a browser's `EventSource` would see it.
///
/// # Examples
///
/// ```
/// use ssekit::Decoder;
///
/// let events = Decoder::new().feed(b"data: 42\n\n")?;
/// assert_eq!(events[0].event, "message");
/// assert_eq!(events[0].data, "42");
/// assert_eq!(events[0].last_event_id, "");
/// assert_eq!(events[0].retry, None);
/// # Ok::<(), ssekit::DecodeError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageEvent {
    /// The event type: the last `event` field of the block, or `"message"` when there was none
    /// or it was empty.
    pub event: String,
    /// The values of the block's `data` fields joined with LF (no trailing LF).
    pub data: String,
    /// The decoder's last event id buffer at dispatch. It is sticky: an event without an `id`
    /// field carries the id of an earlier event; `id` with an empty value resets it to `""`.
    pub last_event_id: String,
    /// The last valid `retry` field of this event's block, if any. The block starts after the
    /// previous blank line.
    pub retry: Option<Duration>,
}

/// An error that stops a [`Decoder`].
///
/// After returning an error the decoder is poisoned and returns the same error on every later
/// call; see [`Decoder`](Decoder#limits-and-errors).
///
/// # Examples
///
/// ```
/// use ssekit::{DecodeError, Decoder};
///
/// let mut decoder = Decoder::new().with_max_line_length(8);
/// let err = decoder.feed(b"data: far too long\n").unwrap_err();
/// assert!(matches!(err, DecodeError::LineTooLong { limit: 8 }));
/// assert_eq!(err.to_string(), "line longer than 8 bytes");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A line (without its line end) is longer than the configured limit.
    #[error("line longer than {limit} bytes")]
    LineTooLong {
        /// The configured maximum line length in bytes.
        limit: usize,
    },
    /// The data of one event (each data line plus one LF, after UTF-8 decoding) is larger than
    /// the configured limit.
    #[error("event data larger than {limit} bytes")]
    EventTooLarge {
        /// The configured maximum event data size in bytes.
        limit: usize,
    },
}

/// An incremental parser of `text/event-stream` bytes into [`MessageEvent`]s.
///
/// Use either [`decode`](Self::decode) with your own buffer (the shape of a tokio-util
/// `Decoder::decode` step) or [`feed`](Self::feed), which keeps its own buffer; do not mix the
/// two on one decoder, since the decoder remembers how far it scanned the buffer.
///
/// The decoder interprets the stream exactly as the WHATWG HTML "event stream interpretation"
/// says: lines end with CRLF, LF or CR (also split between chunks); one leading UTF-8 byte order
/// mark is stripped; lines are decoded as UTF-8 with U+FFFD for invalid sequences; a blank line
/// dispatches an event when its data is not empty; the last event id is sticky; an event cut
/// off by the end of the stream is never dispatched, so there is nothing to flush.
///
/// # Limits and errors
///
/// Memory is bounded: an incomplete line is buffered up to
/// [`with_max_line_length`](Self::with_max_line_length) bytes and the data of one event up to
/// [`with_max_event_size`](Self::with_max_event_size) bytes (both 1 MiB by default); past a
/// limit the decoder returns a [`DecodeError`] instead of growing.
///
/// After an error the decoder is *poisoned*: every later call to [`decode`](Self::decode) or
/// [`feed`](Self::feed) returns the same error again without consuming input. A stream that
/// broke a limit cannot be resynchronised reliably: drop the connection and, if you want,
/// reconnect with a fresh decoder, sending [`resume_id`](Self::resume_id) as `Last-Event-ID`.
///
/// # Examples
///
/// ```
/// use bytes::BytesMut;
/// use ssekit::Decoder;
///
/// let mut decoder = Decoder::new();
/// let mut buf = BytesMut::from(&b"retry: 3000\ndata: a\n\ndata: b\n\ndata: c"[..]);
/// let mut data = Vec::new();
/// while let Some(event) = decoder.decode(&mut buf)? {
///     data.push(event.data);
/// }
/// assert_eq!(data, ["a", "b"]);
/// assert_eq!(&buf[..], b"data: c"); // incomplete line, kept for the next call
/// # Ok::<(), ssekit::DecodeError>(())
/// ```
#[derive(Debug)]
pub struct Decoder {
    max_line_length: usize,
    max_event_size: usize,
    /// The buffer behind [`Decoder::feed`].
    buf: BytesMut,
    /// Bytes at the start of the current buffer already scanned for a line end.
    scanned: usize,
    /// Whether the stream start was checked for a byte order mark.
    bom_checked: bool,
    /// The previous line ended with a CR at the end of the input: a leading LF is its pair.
    skip_lf: bool,
    data: String,
    event_type: String,
    last_event_id: String,
    /// The spec's "last event ID string" of the event source: the buffer at the last blank line.
    resume_id: String,
    reconnection_time: Option<Duration>,
    /// A valid `retry` seen since the last blank line.
    block_retry: Option<Duration>,
    failed: Option<DecodeError>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// Creates a decoder with a limit of 1 MiB per line and per event's data.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut decoder = ssekit::Decoder::new();
    /// assert_eq!(decoder.feed(b"data: x\n\n")?[0].data, "x");
    /// # Ok::<(), ssekit::DecodeError>(())
    /// ```
    pub fn new() -> Self {
        Self {
            max_line_length: DEFAULT_LIMIT,
            max_event_size: DEFAULT_LIMIT,
            buf: BytesMut::new(),
            scanned: 0,
            bom_checked: false,
            skip_lf: false,
            data: String::new(),
            event_type: String::new(),
            last_event_id: String::new(),
            resume_id: String::new(),
            reconnection_time: None,
            block_retry: None,
            failed: None,
        }
    }

    /// Sets the longest line, in bytes without the line end, that the decoder accepts.
    ///
    /// This bounds how much of an incomplete line is buffered.
    ///
    /// # Examples
    ///
    /// ```
    /// use ssekit::{DecodeError, Decoder};
    ///
    /// let mut decoder = Decoder::new().with_max_line_length(16);
    /// assert!(decoder.feed(b"data: fits\n\n").is_ok());
    /// // Reported as soon as the buffered part of a line is too long.
    /// assert_eq!(
    ///     decoder.feed(b"data: this line does not").unwrap_err(),
    ///     DecodeError::LineTooLong { limit: 16 }
    /// );
    /// ```
    #[must_use]
    pub fn with_max_line_length(mut self, bytes: usize) -> Self {
        self.max_line_length = bytes;
        self
    }

    /// Sets the largest data buffer of one event, in bytes: the UTF-8 of every data line plus
    /// one LF per line.
    ///
    /// # Examples
    ///
    /// ```
    /// use ssekit::{DecodeError, Decoder};
    ///
    /// // The data buffer of this event is "ab\nc\n": 5 bytes.
    /// let input = b"data: ab\ndata: c\n\n";
    /// assert!(Decoder::new().with_max_event_size(5).feed(input).is_ok());
    /// assert_eq!(
    ///     Decoder::new().with_max_event_size(4).feed(input).unwrap_err(),
    ///     DecodeError::EventTooLarge { limit: 4 }
    /// );
    /// ```
    #[must_use]
    pub fn with_max_event_size(mut self, bytes: usize) -> Self {
        self.max_event_size = bytes;
        self
    }

    /// Consumes complete lines from `buf` and returns the next dispatched event.
    ///
    /// Returns:
    ///
    /// - `Ok(Some(event))` when a blank line dispatched an event; the bytes up to and including
    ///   that blank line are consumed, the rest stays in `buf` for the next call;
    /// - `Ok(None)` when more input is needed; every complete line was consumed, `buf` holds at
    ///   most the start of one incomplete line;
    /// - `Err(_)` when a limit was exceeded (and on every call after that).
    ///
    /// Append new input to the end of `buf` between calls; the decoder remembers how much of
    /// an incomplete line it already scanned and does not scan it again.
    ///
    /// # Errors
    ///
    /// [`DecodeError::LineTooLong`] when a line, complete or not, is longer than
    /// [`with_max_line_length`](Self::with_max_line_length);
    /// [`DecodeError::EventTooLarge`] when an event's data outgrows
    /// [`with_max_event_size`](Self::with_max_event_size).
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use ssekit::Decoder;
    ///
    /// let mut decoder = Decoder::new();
    /// let mut buf = BytesMut::new();
    /// buf.extend_from_slice(b"data: hi\r");
    /// assert_eq!(decoder.decode(&mut buf)?, None);
    /// buf.extend_from_slice(b"\n\r\n"); // the LF pairs with the CR of the previous chunk
    /// assert_eq!(decoder.decode(&mut buf)?.unwrap().data, "hi");
    /// assert!(buf.is_empty());
    /// # Ok::<(), ssekit::DecodeError>(())
    /// ```
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<MessageEvent>, DecodeError> {
        if let Some(err) = self.failed {
            return Err(err);
        }
        if !self.bom_checked {
            let n = buf.len().min(BOM.len());
            if buf[..n] != BOM[..n] {
                self.bom_checked = true;
            } else if n == BOM.len() {
                buf.advance(n);
                self.bom_checked = true;
            } else {
                // A (possibly empty) prefix of a BOM: wait for the bytes that decide.
                return Ok(None);
            }
        }
        loop {
            if self.skip_lf {
                let Some(&first) = buf.first() else {
                    return Ok(None);
                };
                if first == b'\n' {
                    buf.advance(1);
                }
                self.skip_lf = false;
            }
            let start = self.scanned.min(buf.len());
            let Some(offset) = memchr::memchr2(b'\r', b'\n', &buf[start..]) else {
                self.scanned = buf.len();
                if buf.len() > self.max_line_length {
                    return Err(self.fail(DecodeError::LineTooLong { limit: self.max_line_length }));
                }
                return Ok(None);
            };
            let end = start + offset;
            if end > self.max_line_length {
                return Err(self.fail(DecodeError::LineTooLong { limit: self.max_line_length }));
            }
            let dispatched = self.process_line(&buf[..end]);
            let line_end = match buf.get(end..end + 2) {
                Some(b"\r\n") => 2,
                Some(_) => 1,
                None => {
                    // The last byte: a CR whose LF may be in the next chunk, or an LF.
                    self.skip_lf = buf[end] == b'\r';
                    1
                }
            };
            buf.advance(end + line_end);
            self.scanned = 0;
            if let Some(event) = dispatched? {
                return Ok(Some(event));
            }
        }
    }

    /// Feeds a chunk of the stream and returns every event it completes.
    ///
    /// The incomplete end of the chunk is kept in an internal buffer for the next call.
    ///
    /// # Errors
    ///
    /// As [`decode`](Self::decode). Events completed earlier in the same chunk are not returned
    /// when a later line of the chunk fails; use [`decode`](Self::decode) to get every event
    /// before the error.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut decoder = ssekit::Decoder::new();
    /// let events = decoder.feed(b"data: 1\n\ndata: 2\n\ndata: 3")?;
    /// assert_eq!(events.len(), 2);
    /// assert_eq!(decoder.feed(b"\n\n")?[0].data, "3");
    /// # Ok::<(), ssekit::DecodeError>(())
    /// ```
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<MessageEvent>, DecodeError> {
        if let Some(err) = self.failed {
            return Err(err);
        }
        let mut buf = std::mem::take(&mut self.buf);
        let mut events = Vec::new();
        let mut rest = chunk;
        loop {
            // Copy the chunk in pieces that fit the line limit, so that a line over
            // the limit fails there instead of being buffered whole.
            let room = self.max_line_length.saturating_add(1).saturating_sub(buf.len()).max(FEED_PIECE);
            let (piece, tail) = rest.split_at(room.min(rest.len()));
            buf.extend_from_slice(piece);
            rest = tail;
            loop {
                match self.decode(&mut buf) {
                    Ok(Some(event)) => events.push(event),
                    Ok(None) => break,
                    // Poisoned: the buffered input is never read again.
                    Err(err) => return Err(err),
                }
            }
            if rest.is_empty() {
                self.buf = buf;
                return Ok(events);
            }
        }
    }

    /// The reconnection time set by the last valid `retry` field, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let mut decoder = ssekit::Decoder::new();
    /// decoder.feed(b"retry: 2500\n")?;
    /// assert_eq!(decoder.reconnection_time(), Some(Duration::from_millis(2500)));
    /// decoder.feed(b"retry: 1s\n")?; // not only digits: ignored
    /// assert_eq!(decoder.reconnection_time(), Some(Duration::from_millis(2500)));
    /// # Ok::<(), ssekit::DecodeError>(())
    /// ```
    pub fn reconnection_time(&self) -> Option<Duration> {
        self.reconnection_time
    }

    /// The last event id buffer: the value of the last valid `id` field, `""` before any.
    ///
    /// It changes as soon as an `id` line is parsed, before its event is dispatched; to resume
    /// a stream, use [`resume_id`](Self::resume_id) instead.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut decoder = ssekit::Decoder::new();
    /// decoder.feed(b"id: 7\ndata: x\n\ndata: y\n")?;
    /// assert_eq!(decoder.last_event_id(), "7"); // sticky
    /// decoder.feed(b"id: 8\n")?;
    /// assert_eq!(decoder.last_event_id(), "8"); // event 8 not dispatched yet
    /// # Ok::<(), ssekit::DecodeError>(())
    /// ```
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The id to send as `Last-Event-ID` when reconnecting: the spec's "last event ID string",
    /// which takes the value of the last event id buffer at each blank line only.
    ///
    /// Unlike [`last_event_id`](Self::last_event_id) it never names an event whose block was
    /// cut off by the end of the stream (and so never dispatched), which would make a resuming
    /// server skip that event.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut decoder = ssekit::Decoder::new();
    /// decoder.feed(b"id: 7\ndata: x\n\nid: 8\ndata: y\n")?; // the connection drops here
    /// assert_eq!(decoder.last_event_id(), "8");
    /// assert_eq!(decoder.resume_id(), "7"); // event 8 was never dispatched
    /// # Ok::<(), ssekit::DecodeError>(())
    /// ```
    pub fn resume_id(&self) -> &str {
        &self.resume_id
    }

    fn fail(&mut self, err: DecodeError) -> DecodeError {
        self.failed = Some(err);
        err
    }

    /// Interprets one line (without its line end).
    fn process_line(&mut self, line: &[u8]) -> Result<Option<MessageEvent>, DecodeError> {
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if line[0] == b':' {
            return Ok(None);
        }
        let (name, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        // Comparing bytes is comparing the decoded names: the field names are ASCII and
        // U+FFFD never decodes to ASCII.
        match name {
            b"event" => {
                self.event_type.clear();
                self.event_type.push_str(&String::from_utf8_lossy(value));
            }
            b"data" => {
                let value = String::from_utf8_lossy(value);
                let size = self.data.len().saturating_add(value.len()).saturating_add(1);
                if size > self.max_event_size {
                    return Err(self.fail(DecodeError::EventTooLarge { limit: self.max_event_size }));
                }
                self.data.push_str(&value);
                self.data.push('\n');
            }
            b"id" if memchr::memchr(0, value).is_none() => {
                self.last_event_id.clear();
                self.last_event_id.push_str(&String::from_utf8_lossy(value));
            }
            // Only ASCII digits, so the bytes are valid UTF-8; an overflow is ignored.
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                if let Some(ms) = std::str::from_utf8(value).ok().and_then(|digits| digits.parse::<u64>().ok()) {
                    let time = Duration::from_millis(ms);
                    self.reconnection_time = Some(time);
                    self.block_retry = Some(time);
                }
            }
            _ => {}
        }
        Ok(None)
    }

    /// The blank-line step of the spec.
    fn dispatch(&mut self) -> Option<MessageEvent> {
        self.resume_id.clone_from(&self.last_event_id);
        let retry = self.block_retry.take();
        if self.data.is_empty() {
            self.event_type.clear();
            return None;
        }
        let mut data = std::mem::take(&mut self.data);
        if data.ends_with('\n') {
            data.pop();
        }
        let event =
            if self.event_type.is_empty() { String::from("message") } else { std::mem::take(&mut self.event_type) };
        Some(MessageEvent { event, data, last_event_id: self.last_event_id.clone(), retry })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_position_is_remembered() {
        let mut decoder = Decoder::new();
        let mut buf = BytesMut::from(&b"data: abc"[..]);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert_eq!(decoder.scanned, 9);
        buf.extend_from_slice(b"def\n");
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert_eq!(decoder.scanned, 0);
        assert_eq!(decoder.data, "abcdef\n");
    }

    #[test]
    fn feed_never_buffers_past_the_line_limit() {
        let limit = 1 << 20;
        let mut decoder = Decoder::new();
        let line = vec![b'a'; 10 << 20];
        assert_eq!(decoder.feed(&line), Err(DecodeError::LineTooLong { limit }));
        assert!(decoder.buf.capacity() <= limit + FEED_PIECE, "{}", decoder.buf.capacity());
        // Poisoned: later input is refused, not kept.
        for _ in 0..4 {
            assert_eq!(decoder.feed(&line[..limit]), Err(DecodeError::LineTooLong { limit }));
        }
        assert!(decoder.buf.capacity() <= limit + FEED_PIECE);

        // A line at the limit is held, and fails at the first byte past it.
        let mut decoder = Decoder::new();
        assert_eq!(decoder.feed(&line[..limit]), Ok(Vec::new()));
        assert_eq!(decoder.buf.len(), limit);
        assert_eq!(decoder.feed(&line), Err(DecodeError::LineTooLong { limit }));
        assert_eq!(decoder.buf.capacity(), 0);

        // Short lines in one large chunk are all decoded.
        let mut decoder = Decoder::new().with_max_line_length(16);
        let events = decoder.feed("data: x\n\n".repeat(10_000).as_bytes()).unwrap();
        assert_eq!(events.len(), 10_000);
    }

    #[test]
    fn poisoned_after_error() {
        let mut decoder = Decoder::new().with_max_line_length(2);
        let err = DecodeError::LineTooLong { limit: 2 };
        assert_eq!(decoder.feed(b"abc"), Err(err));
        assert_eq!(decoder.feed(b"\n\n"), Err(err));
        assert_eq!(decoder.decode(&mut BytesMut::new()), Err(err));
    }
}
