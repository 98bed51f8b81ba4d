//! [`Frame`]: one encoded event, shared by every connection that sends it.

use std::fmt;

use bytes::Bytes;

/// One complete, well-formed event block on the wire: UTF-8 lines that end in LF,
/// closed by a blank line.
///
/// A frame is immutable and cloning it costs a reference count, so one encoding
/// serves any number of connections. Get one from [`Event::encode`](crate::Event::encode)
/// or, for bytes your application built itself, from [`Frame::new`], which checks them.
///
/// # Examples
///
/// ```
/// use ssekit::Frame;
///
/// let frame = Frame::new("event: tick\ndata: 1\n\n")?;
/// assert_eq!(frame.as_bytes(), "event: tick\ndata: 1\n\n");
///
/// // Two events in one frame, or a missing blank line, is refused.
/// assert!(Frame::new("data: 1\n\ndata: 2\n\n").is_err());
/// assert!(Frame::new("data: 1\n").is_err());
/// # Ok::<(), ssekit::FrameError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Frame {
    bytes: Bytes,
}

impl Frame {
    /// Checks that `bytes` hold exactly one event block and wraps them.
    ///
    /// The rules: valid UTF-8; lines end in LF, never CR; the block ends with a
    /// blank line and contains no other; an `id` field contains no NUL.
    ///
    /// # Errors
    ///
    /// A [`FrameError`] naming the first rule broken.
    ///
    /// # Examples
    ///
    /// ```
    /// let frame = ssekit::Frame::new(bytes::Bytes::from_static(b": keep-alive\n\n"))?;
    /// # Ok::<(), ssekit::FrameError>(())
    /// ```
    pub fn new(bytes: impl Into<Bytes>) -> Result<Self, FrameError> {
        let bytes = bytes.into();
        validate(&bytes)?;
        Ok(Self { bytes })
    }

    /// [`Frame::new`] for a literal.
    ///
    /// # Panics
    ///
    /// When `frame` breaks a rule of [`Frame::new`]: a bug in the literal.
    ///
    /// # Examples
    ///
    /// ```
    /// let ping = ssekit::Frame::from_static("event: ping\ndata:\n\n");
    /// ```
    #[track_caller]
    pub fn from_static(frame: &'static str) -> Self {
        match Self::new(Bytes::from_static(frame.as_bytes())) {
            Ok(frame) => frame,
            Err(err) => panic!("invalid static SSE frame: {err}"),
        }
    }

    pub(crate) fn from_trusted(bytes: Bytes) -> Self {
        debug_assert!(validate(&bytes).is_ok(), "{bytes:?}");
        Self { bytes }
    }

    /// The encoded bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// let frame = ssekit::Event::new().data("x").encode()?;
    /// assert_eq!(frame.as_bytes().len(), 9);
    /// # Ok::<(), ssekit::EventError>(())
    /// ```
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The encoded bytes, for writing to a socket.
    ///
    /// # Examples
    ///
    /// ```
    /// let bytes: bytes::Bytes = ssekit::Event::new().data("x").encode()?.into_bytes();
    /// # Ok::<(), ssekit::EventError>(())
    /// ```
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// Whether the frame has an `id` field.
    pub(crate) fn has_id(&self) -> bool {
        self.bytes.split(|&b| b == b'\n').any(|line| line == b"id" || line.starts_with(b"id:"))
    }

    /// The frame without the blank line that ends it: what a hub finishes with
    /// the id it assigns ([`put_id_tail`](super::encode::put_id_tail)).
    pub(crate) fn body(&self) -> &[u8] {
        // A frame ends with a blank line: its last byte is the second LF.
        &self.bytes[..self.bytes.len() - 1]
    }
}

impl From<Frame> for Bytes {
    fn from(frame: Frame) -> Self {
        frame.bytes
    }
}

impl AsRef<[u8]> for Frame {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Frames are validated UTF-8.
        let text = std::str::from_utf8(&self.bytes).unwrap_or("<invalid>");
        f.debug_tuple("Frame").field(&text).finish()
    }
}

fn validate(bytes: &[u8]) -> Result<(), FrameError> {
    std::str::from_utf8(bytes).map_err(|_| FrameError::InvalidUtf8)?;
    if bytes.contains(&b'\r') {
        return Err(FrameError::CarriageReturn);
    }
    let Some(body) = bytes.strip_suffix(b"\n\n") else {
        return Err(FrameError::Unterminated);
    };
    if body.is_empty() {
        return Err(FrameError::Empty);
    }
    for line in body.split(|&b| b == b'\n') {
        if line.is_empty() {
            return Err(FrameError::SeveralEvents);
        }
        if (line == b"id" || line.starts_with(b"id:")) && line.contains(&0) {
            return Err(FrameError::IdNul);
        }
    }
    Ok(())
}

/// Why bytes are not a [`Frame`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The bytes are not UTF-8.
    #[error("frame is not valid UTF-8")]
    InvalidUtf8,
    /// A CR appears; frames end lines with LF only.
    #[error("frame contains CR; end lines with LF")]
    CarriageReturn,
    /// The frame does not end with a blank line (`\n\n`).
    #[error("frame does not end with a blank line")]
    Unterminated,
    /// The frame has no field before its blank line.
    #[error("frame is empty")]
    Empty,
    /// A blank line inside the frame would dispatch more than one event.
    #[error("frame contains a blank line before its end")]
    SeveralEvents,
    /// An `id` field contains NUL.
    #[error("frame id contains NUL")]
    IdNul,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert_eq!(Frame::new(&b"data: \xff\n\n"[..]), Err(FrameError::InvalidUtf8));
        assert_eq!(Frame::new("data: a\r\n\n"), Err(FrameError::CarriageReturn));
        assert_eq!(Frame::new("data: a\n"), Err(FrameError::Unterminated));
        assert_eq!(Frame::new("\n\n"), Err(FrameError::Empty));
        assert_eq!(Frame::new("\n"), Err(FrameError::Unterminated));
        assert_eq!(Frame::new("a\n\nb\n\n"), Err(FrameError::SeveralEvents));
        assert_eq!(Frame::new("id: a\0\n\n"), Err(FrameError::IdNul));
        assert!(Frame::new("data\n\n").is_ok());
        assert!(Frame::new("id: 1\ndata: x\n\n").unwrap().has_id());
        assert!(!Frame::new("data: id: 1\n\n").unwrap().has_id());
    }
}
