//! Wire encoding of an [`Event`] into one exact-size buffer.
//!
//! Fields are written in a fixed order — comments, `event`, `data`, `retry`, `id` —
//! followed by the blank line that dispatches the event. The id comes last so that
//! the hub can encode an event outside its lock and append the id it assigns
//! under the lock, into the same allocation.

use bytes::{BufMut, Bytes, BytesMut};

use crate::event::{Event, EventError};
use crate::frame::Frame;

const DATA: &[u8] = b"data: ";
const EVENT: &[u8] = b"event: ";
const COMMENT: &[u8] = b": ";
const RETRY: &[u8] = b"retry: ";
pub(crate) const ID: &[u8] = b"id: ";

impl Event {
    /// Encodes the event into one immutable frame, allocating exactly once.
    ///
    /// The frame is cheap to clone: every connection that sends it shares the
    /// same bytes.
    ///
    /// # Errors
    ///
    /// An [`EventError`] when a field breaks a wire rule (see [`Event`]) or the
    /// event has no field at all ([`EventError::Empty`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let frame = ssekit::Event::new().data("a\rb").encode()?;
    /// assert_eq!(frame.as_bytes(), "data: a\ndata: b\n\n");
    /// # Ok::<(), ssekit::EventError>(())
    /// ```
    pub fn encode(&self) -> Result<Frame, EventError> {
        self.check_encodable()?;
        // `with_capacity` allocates exactly, and a full buffer freezes into `Bytes`
        // without a second allocation.
        let mut buf = BytesMut::with_capacity(self.encoded_len());
        self.write(&mut buf);
        Ok(Frame::from_trusted(buf.freeze()))
    }

    /// Appends the encoded event to `buf`, reserving the exact size first.
    ///
    /// On error nothing is written.
    ///
    /// # Errors
    ///
    /// An [`EventError`] when a field breaks a wire rule (see [`Event`]) or the
    /// event has no field at all ([`EventError::Empty`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut buf = bytes::BytesMut::new();
    /// ssekit::Event::new().data("one").encode_into(&mut buf)?;
    /// ssekit::Event::new().data("two").encode_into(&mut buf)?;
    /// assert_eq!(&buf[..], b"data: one\n\ndata: two\n\n");
    /// # Ok::<(), ssekit::EventError>(())
    /// ```
    pub fn encode_into(&self, buf: &mut BytesMut) -> Result<(), EventError> {
        self.check_encodable()?;
        buf.reserve(self.encoded_len());
        self.write(buf);
        Ok(())
    }

    /// [`Event::validate`], and an event on its own must have a field: a lone
    /// blank line is not a frame.
    fn check_encodable(&self) -> Result<(), EventError> {
        self.validate()?;
        if self.data.is_none()
            && self.event.is_none()
            && self.id.is_none()
            && self.retry.is_none()
            && self.comment.is_none()
        {
            return Err(EventError::Empty);
        }
        Ok(())
    }

    /// The exact length of [`Event::write`]'s output.
    fn encoded_len(&self) -> usize {
        self.body_len() + self.id.as_ref().map_or(0, |id| field_len(ID, id.len())) + 1
    }

    /// Writes the whole frame. The event must have been checked.
    fn write(&self, buf: &mut BytesMut) {
        self.write_body(buf);
        if let Some(id) = &self.id {
            write_field(buf, ID, id.as_bytes());
        }
        buf.put_u8(b'\n');
    }

    /// Encodes everything but the id and the final blank line, reserving `extra`
    /// more bytes for the caller to finish the frame without reallocating.
    /// The event must have been validated.
    pub(crate) fn encode_body(&self, extra: usize) -> BytesMut {
        let mut buf = BytesMut::with_capacity(self.body_len() + extra);
        self.write_body(&mut buf);
        buf
    }

    /// The exact length of [`Event::write_body`]'s output.
    fn body_len(&self) -> usize {
        let mut len = 0;
        if let Some(comment) = &self.comment {
            len += lines_len(COMMENT, comment.as_bytes());
        }
        if let Some(event) = &self.event {
            len += field_len(EVENT, event.len());
        }
        if let Some(data) = &self.data {
            len += lines_len(DATA, data.as_bytes());
        }
        if let Some(retry) = self.retry {
            len += field_len(RETRY, decimal_len(retry_millis(retry)));
        }
        len
    }

    fn write_body(&self, buf: &mut BytesMut) {
        if let Some(comment) = &self.comment {
            write_lines(buf, COMMENT, comment.as_bytes());
        }
        if let Some(event) = &self.event {
            write_field(buf, EVENT, event.as_bytes());
        }
        if let Some(data) = &self.data {
            write_lines(buf, DATA, data.as_bytes());
        }
        if let Some(retry) = self.retry {
            buf.put_slice(RETRY);
            put_decimal(buf, retry_millis(retry));
            buf.put_u8(b'\n');
        }
    }
}

/// Milliseconds of a retry hint, saturating: no client waits 584 million years.
fn retry_millis(retry: std::time::Duration) -> u64 {
    u64::try_from(retry.as_millis()).unwrap_or(u64::MAX)
}

/// The frame a stream sends first to set the client's reconnection delay.
pub(crate) fn retry_frame(retry: std::time::Duration) -> Bytes {
    let millis = retry_millis(retry);
    let mut buf = BytesMut::with_capacity(field_len(RETRY, decimal_len(millis)) + 1);
    buf.put_slice(RETRY);
    put_decimal(&mut buf, millis);
    buf.put_slice(b"\n\n");
    buf.freeze()
}

pub(crate) const fn field_len(name: &[u8], value_len: usize) -> usize {
    name.len() + value_len + 1
}

pub(crate) fn write_field(buf: &mut BytesMut, name: &[u8], value: &[u8]) {
    buf.put_slice(name);
    buf.put_slice(value);
    buf.put_u8(b'\n');
}

/// Length of `text` written as `prefix`-lines: one line per CR, LF or CRLF-separated piece.
fn lines_len(prefix: &[u8], text: &[u8]) -> usize {
    let mut lines = 1;
    let mut break_bytes = 0;
    let mut breaks = memchr::memchr2_iter(b'\r', b'\n', text);
    while let Some(at) = breaks.next() {
        lines += 1;
        break_bytes += 1;
        if text[at] == b'\r' && text.get(at + 1) == Some(&b'\n') {
            breaks.next();
            break_bytes += 1;
        }
    }
    text.len() - break_bytes + lines * (prefix.len() + 1)
}

/// Writes `text` as `prefix`-lines, splitting on every CR, LF and CRLF, so that no
/// CR ever reaches the wire and every line keeps its leading spaces.
fn write_lines(buf: &mut BytesMut, prefix: &[u8], text: &[u8]) {
    buf.put_slice(prefix);
    let mut start = 0;
    let mut breaks = memchr::memchr2_iter(b'\r', b'\n', text);
    while let Some(at) = breaks.next() {
        buf.put_slice(&text[start..at]);
        // The line end and the next line's prefix in one copy.
        put_break(buf, prefix);
        start = at + 1;
        if text[at] == b'\r' && text.get(at + 1) == Some(&b'\n') {
            breaks.next();
            start += 1;
        }
    }
    buf.put_slice(&text[start..]);
    buf.put_u8(b'\n');
}

/// Writes LF followed by `prefix`.
fn put_break(buf: &mut BytesMut, prefix: &[u8]) {
    match prefix {
        DATA => buf.put_slice(b"\ndata: "),
        COMMENT => buf.put_slice(b"\n: "),
        _ => {
            buf.put_u8(b'\n');
            buf.put_slice(prefix);
        }
    }
}

pub(crate) fn decimal_len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 10 {
        n /= 10;
        len += 1;
    }
    len
}

/// Writes `n` in decimal without going through `fmt` (this runs once per published event).
pub(crate) fn put_decimal(buf: &mut BytesMut, n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.put_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(prefix: &[u8], text: &str) -> BytesMut {
        let mut buf = BytesMut::new();
        write_lines(&mut buf, prefix, text.as_bytes());
        assert_eq!(buf.len(), lines_len(prefix, text.as_bytes()), "{text:?}");
        buf
    }

    #[test]
    fn lines_split_on_every_break_and_size_is_exact() {
        assert_eq!(&lines(DATA, "")[..], b"data: \n");
        assert_eq!(&lines(DATA, "a\r\nb\rc\nd")[..], b"data: a\ndata: b\ndata: c\ndata: d\n");
        assert_eq!(&lines(DATA, "\r\r\n\n")[..], b"data: \ndata: \ndata: \ndata: \n");
        assert_eq!(&lines(COMMENT, "x\r")[..], b": x\n: \n");
    }

    #[test]
    fn empty_event_is_refused_and_small_frames_are_exact() {
        assert!(matches!(Event::new().encode(), Err(EventError::Empty)));
        let mut buf = BytesMut::new();
        assert!(matches!(Event::new().encode_into(&mut buf), Err(EventError::Empty)));
        assert!(buf.is_empty());
        // Below Vec's minimum growth step of 8 bytes.
        let mut event = Event::new().comment("");
        assert_eq!(event.encoded_len(), 4);
        event = event.id("");
        assert_eq!(event.encode().unwrap().as_bytes().len(), event.encoded_len());
    }

    #[test]
    fn decimals() {
        for n in [0, 9, 10, 99, 100, 12345, u64::MAX] {
            let mut buf = BytesMut::new();
            put_decimal(&mut buf, n);
            assert_eq!(buf, n.to_string().as_bytes());
            assert_eq!(decimal_len(n), buf.len());
        }
    }
}
