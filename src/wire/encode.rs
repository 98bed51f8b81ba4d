//! Wire encoding of an [`Event`] into one exact-size buffer.
//!
//! Fields are written in a fixed order — comments, `event`, `data`, `retry`, `id` —
//! followed by the blank line that dispatches the event. The id comes last so that
//! the hub can encode an event outside its lock and append the id it assigns
//! under the lock, into the same allocation.

use bytes::{BufMut, Bytes, BytesMut};

use super::event::{Event, EventError};
use super::frame::Frame;

const DATA: &[u8] = b"data: ";
const EVENT: &[u8] = b"event: ";
const COMMENT: &[u8] = b": ";
const RETRY: &[u8] = b"retry: ";
const ID: &[u8] = b"id: ";

/// The keep-alive frame: an empty comment, which clients ignore.
pub(crate) const KEEP_ALIVE: &[u8] = b":\n\n";

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
        let layout = self.layout();
        let mut buf = BytesMut::with_capacity(self.encoded_len(&layout));
        self.write(&mut buf, &layout);
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
        let layout = self.layout();
        buf.reserve(self.encoded_len(&layout));
        self.write(buf, &layout);
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
    fn encoded_len(&self, layout: &Layout) -> usize {
        layout.body_len + self.id.as_ref().map_or(1, |id| id_tail_len(id.len()))
    }

    /// Writes the whole frame. The event must have been checked.
    fn write(&self, buf: &mut BytesMut, layout: &Layout) {
        self.write_body(buf, layout);
        match &self.id {
            Some(id) => put_id_tail(buf, |buf| buf.put_slice(id.as_bytes())),
            None => buf.put_u8(b'\n'),
        }
    }

    /// Encodes everything but the id and the final blank line, reserving `extra`
    /// more bytes for the caller to finish the frame without reallocating.
    /// The event must have been validated.
    pub(crate) fn encode_body(&self, extra: usize) -> BytesMut {
        let layout = self.layout();
        let mut buf = BytesMut::with_capacity(layout.body_len + extra);
        self.write_body(&mut buf, &layout);
        buf
    }

    /// The lines of the multi-line fields and the exact length of
    /// [`Event::write_body`]'s output: each text is scanned once for sizing.
    /// The first breaks of a long `data` are recorded too.
    fn layout(&self) -> Layout {
        let mut breaks = [(0, 0); RECORDED];
        let comment = self.comment.as_ref().map(|comment| Lines::of(COMMENT, comment.as_bytes(), None));
        let data = self.data.as_ref().map(|data| Lines::of(DATA, data.as_bytes(), Some(&mut breaks)));
        let mut body_len = comment.map_or(0, |lines| lines.len) + data.map_or(0, |lines| lines.len);
        if let Some(event) = &self.event {
            body_len += field_len(EVENT, event.len());
        }
        if let Some(retry) = self.retry {
            body_len += field_len(RETRY, decimal_len(retry_millis(retry)));
        }
        Layout { comment, data, body_len, breaks }
    }

    fn write_body(&self, buf: &mut BytesMut, layout: &Layout) {
        if let (Some(comment), Some(lines)) = (&self.comment, layout.comment) {
            write_lines(buf, COMMENT, comment.as_bytes(), &lines, &[]);
        }
        if let Some(event) = &self.event {
            write_field(buf, EVENT, event.as_bytes());
        }
        if let (Some(data), Some(lines)) = (&self.data, layout.data) {
            write_lines(buf, DATA, data.as_bytes(), &lines, &layout.breaks);
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

/// The length of the end of a frame with an id of `id_len` bytes: its `id:`
/// line, then the blank line that dispatches the event.
pub(crate) const fn id_tail_len(id_len: usize) -> usize {
    field_len(ID, id_len) + 1
}

/// Ends a frame's body with its `id:` line, the id written by `write_id`, then
/// the blank line that dispatches the event. Every frame with an id ends so,
/// whoever assigned the id (the application, or a hub).
pub(crate) fn put_id_tail<B: BufMut>(buf: &mut B, write_id: impl FnOnce(&mut B)) {
    buf.put_slice(ID);
    write_id(buf);
    buf.put_slice(b"\n\n");
}

pub(crate) const fn field_len(name: &[u8], value_len: usize) -> usize {
    name.len() + value_len + 1
}

pub(crate) fn write_field(buf: &mut BytesMut, name: &[u8], value: &[u8]) {
    buf.put_slice(name);
    buf.put_slice(value);
    buf.put_u8(b'\n');
}

/// What sizing an event found, so that writing it does not scan again.
#[derive(Debug)]
struct Layout {
    comment: Option<Lines>,
    data: Option<Lines>,
    body_len: usize,
    /// The first breaks of a long `data` (see [`Lines::of`]).
    breaks: [(u32, u32); RECORDED],
}

/// How many line breaks sizing records. A long text with at most this many
/// breaks is then read once for sizing and once for copying, instead of being
/// searched again; a text with more has short lines, whose cost per line
/// dominates anyway.
const RECORDED: usize = 16;

/// The text length from which breaks are recorded: shorter texts are cheaper
/// searched twice than recorded.
const RECORD_FROM: usize = 1024;

/// A text to write as `prefix`-lines: one line per CR, LF or CRLF-separated piece.
#[derive(Debug, Clone, Copy)]
struct Lines {
    /// Encoded length, prefixes and line ends included.
    len: usize,
    count: usize,
    has_cr: bool,
    /// Whether sizing recorded every break.
    recorded: bool,
}

impl Lines {
    /// Sizes `text`. The breaks of a long text with few of them are recorded
    /// into `record`, if given, as `(end of the line, start of the next)`.
    fn of(prefix: &[u8], text: &[u8], record: Option<&mut [(u32, u32); RECORDED]>) -> Self {
        let lines = |count: usize, break_bytes: usize, has_cr, recorded| Self {
            len: text.len() - break_bytes + count * (prefix.len() + 1),
            count,
            has_cr,
            recorded,
        };
        let (mut count, mut break_bytes, mut has_cr, mut from) = (1, 0, false, 0);
        // `u32` positions: a text longer than that records none.
        let record = record.filter(|_| (RECORD_FROM..=u32::MAX as usize).contains(&text.len()));
        if let Some(record) = record {
            let mut breaks = Breaks::new(text);
            for slot in record.iter_mut() {
                let Some((end, next)) = breaks.next() else {
                    return lines(count, break_bytes, has_cr, true);
                };
                // In range: checked above.
                *slot = (end as u32, next as u32);
                count += 1;
                break_bytes += next - end;
                has_cr |= text[end] == b'\r';
                from = next;
            }
            if breaks.next().is_none() {
                return lines(count, break_bytes, has_cr, true);
            }
        }
        // Short text, or many lines: counted, not recorded. memchr counts one byte
        // with SIMD; only text with CR needs the pairwise walk.
        let rest = &text[from..];
        let (more, more_bytes) = if memchr::memchr(b'\r', rest).is_some() {
            has_cr = true;
            Breaks::new(rest).fold((0, 0), |(lines, bytes), (end, next)| (lines + 1, bytes + next - end))
        } else {
            let lf = count_lf(rest);
            (lf, lf)
        };
        lines(count + more, break_bytes + more_bytes, has_cr, false)
    }
}

/// The line breaks of a text — CR, LF or CRLF — as `(end of the line, start of
/// the next)`: the one place that knows a CRLF is one break. Text without CR goes
/// through [`lf_breaks`], one needle being cheaper than two; writers take either
/// as a type parameter, so the choice is made once per text.
struct Breaks<'a> {
    text: &'a [u8],
    breaks: memchr::Memchr2<'a>,
}

impl<'a> Breaks<'a> {
    fn new(text: &'a [u8]) -> Self {
        Self { text, breaks: memchr::memchr2_iter(b'\r', b'\n', text) }
    }
}

impl Iterator for Breaks<'_> {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        let at = self.breaks.next()?;
        if self.text[at] == b'\r' && self.text.get(at + 1) == Some(&b'\n') {
            self.breaks.next();
            Some((at, at + 2))
        } else {
            Some((at, at + 1))
        }
    }
}

/// The breaks of a text without CR, as [`Breaks`] gives them.
fn lf_breaks(text: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    memchr::memchr_iter(b'\n', text).map(|at| (at, at + 1))
}

/// The LFs in `text`. Long lines are counted fastest by searching from one to
/// the next; many short ones by memchr's SIMD count, which reads every byte.
fn count_lf(text: &[u8]) -> usize {
    let mut breaks = memchr::memchr_iter(b'\n', text);
    for found in 0..32 {
        if breaks.next().is_none() {
            return found;
        }
    }
    32 + breaks.count()
}

/// Writes `text` as `prefix`-lines, splitting on every CR, LF and CRLF, so that no
/// CR ever reaches the wire and every line keeps its leading spaces.
///
/// The lines go into a region of `buf` sized exactly first, so each line is a few
/// fixed-size copies instead of calls through `BufMut` (see [`copy_line`]).
fn write_lines(buf: &mut BytesMut, prefix: &[u8], text: &[u8], lines: &Lines, record: &[(u32, u32)]) {
    if lines.recorded {
        let breaks = record[..lines.count - 1].iter().map(|&(end, next)| (end as usize, next as usize));
        write_split(buf, prefix, text, lines, breaks);
    } else if lines.has_cr {
        write_split(buf, prefix, text, lines, Breaks::new(text));
    } else {
        write_split(buf, prefix, text, lines, lf_breaks(text));
    }
}

/// [`write_lines`] with the breaks given.
fn write_split(
    buf: &mut BytesMut,
    prefix: &[u8],
    text: &[u8],
    lines: &Lines,
    breaks: impl Iterator<Item = (usize, usize)>,
) {
    if text.len() >= LONG_LINE * lines.count {
        // Long lines: appending each is as cheap as a copy, with no region to clear.
        return append_lines(buf, prefix, text, breaks);
    }
    let start = buf.len();
    buf.resize(start + lines.len, 0);
    fill_lines(&mut buf[start..], prefix, text, breaks);
}

/// Writes the lines of `text`, split at `breaks`, into `out`, which is exactly
/// their encoded length.
fn fill_lines(out: &mut [u8], prefix: &[u8], text: &[u8], breaks: impl Iterator<Item = (usize, usize)>) {
    out[..prefix.len()].copy_from_slice(prefix);
    let mut o = prefix.len();
    let mut from = 0;
    for (end, next) in breaks {
        o = copy_line(out, o, text, from, end);
        o = put_break(out, o, prefix);
        from = next;
    }
    o = copy_line(out, o, text, from, text.len());
    out[o] = b'\n';
    debug_assert_eq!(o + 1, out.len());
}

/// Average line length from which lines are appended one by one: the cost of a
/// call per line is then small beside the copy, and clearing a region is not.
const LONG_LINE: usize = 512;

/// [`write_lines`] by appending each line to `buf`.
fn append_lines(buf: &mut BytesMut, prefix: &[u8], text: &[u8], breaks: impl Iterator<Item = (usize, usize)>) {
    buf.put_slice(prefix);
    let mut from = 0;
    for (end, next) in breaks {
        buf.put_slice(&text[from..end]);
        buf.put_u8(b'\n');
        buf.put_slice(prefix);
        from = next;
    }
    buf.put_slice(&text[from..]);
    buf.put_u8(b'\n');
}

/// Copies `text[from..to]` to `out[o..]` and returns the end. Where both sides
/// have room, it copies whole 32-byte blocks and lets the last one spill past
/// `to`: the spilled bytes land where the writer goes next, and are overwritten.
/// Lines of typical length then cost a few inlined vector moves, not a `memcpy` call.
fn copy_line(out: &mut [u8], mut o: usize, text: &[u8], mut from: usize, to: usize) -> usize {
    const BLOCK: usize = 32;
    while from < to {
        if from + BLOCK <= text.len() && o + BLOCK <= out.len() {
            out[o..o + BLOCK].copy_from_slice(&text[from..from + BLOCK]);
            let n = BLOCK.min(to - from);
            o += n;
            from += n;
        } else {
            let n = to - from;
            out[o..o + n].copy_from_slice(&text[from..to]);
            return o + n;
        }
    }
    o
}

/// Writes LF and `prefix` at `out[o..]` and returns the end.
fn put_break(out: &mut [u8], o: usize, prefix: &[u8]) -> usize {
    out[o] = b'\n';
    out[o + 1..o + 1 + prefix.len()].copy_from_slice(prefix);
    o + 1 + prefix.len()
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
pub(crate) fn put_decimal(buf: &mut impl BufMut, n: u64) {
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
        let mut record = [(0, 0); RECORDED];
        let lines = Lines::of(prefix, text.as_bytes(), Some(&mut record));
        write_lines(&mut buf, prefix, text.as_bytes(), &lines, &record);
        assert_eq!(buf.len(), lines.len, "{text:?}");
        buf
    }

    /// What `data` lines of `text` are, by the spec's rules, built the slow way.
    fn data_lines(text: &str) -> String {
        text.replace("\r\n", "\n").replace('\r', "\n").split('\n').map(|line| format!("data: {line}\n")).collect()
    }

    #[test]
    fn lines_split_on_every_break_and_size_is_exact() {
        assert_eq!(&lines(DATA, "")[..], b"data: \n");
        assert_eq!(&lines(DATA, "a\r\nb\rc\nd")[..], b"data: a\ndata: b\ndata: c\ndata: d\n");
        assert_eq!(&lines(DATA, "\r\r\n\n")[..], b"data: \ndata: \ndata: \ndata: \n");
        assert_eq!(&lines(COMMENT, "x\r")[..], b": x\n: \n");
    }

    #[test]
    fn small_frames_are_exact() {
        // (An empty event's refusal is in `tests/encode.rs`.)
        // Below Vec's minimum growth step of 8 bytes.
        let mut event = Event::new().comment("");
        assert_eq!(event.encoded_len(&event.layout()), 4);
        event = event.id("");
        assert_eq!(event.encode().unwrap().as_bytes().len(), event.encoded_len(&event.layout()));
    }

    #[test]
    fn long_and_short_lines_encode_alike() {
        // Long lines take `append_lines`, short ones the block copy: same bytes.
        let long = "a".repeat(2 * LONG_LINE);
        for text in [format!("{long}\r\n{long}\r{long}\n\r\n"), format!("{long}\n{long}"), long.clone()] {
            assert_eq!(&lines(DATA, &text)[..], data_lines(&text).as_bytes());
        }
    }

    #[test]
    fn many_breaks_recorded_and_counted_alike() {
        // Long texts record up to `RECORDED` breaks at sizing; with more, all are
        // searched again when writing. CR in the first breaks, the later, or neither;
        // lines short and long (for both writers), texts short and long.
        for width in [1, 40, 2 * LONG_LINE] {
            let pad = "x".repeat(width);
            for n in [0, 1, RECORDED - 1, RECORDED, RECORDED + 1, 3 * RECORDED] {
                for (head, tail) in [("\n", "\n"), ("\r\n", "\n"), ("\n", "\r"), ("\r", "\r\n")] {
                    let mut text = format!("{pad}{head}").repeat(n.min(RECORDED));
                    text += &format!("{pad}{tail}").repeat(n.saturating_sub(RECORDED));
                    text += &pad;
                    let expected = data_lines(&text);
                    assert_eq!(&lines(DATA, &text)[..], expected.as_bytes(), "{text:?}");
                    let event = Event::new().comment(text.as_str()).data(text.as_str());
                    let comment = expected.replace("data: ", ": ");
                    assert_eq!(event.encode().unwrap().as_bytes()[..], *format!("{comment}{expected}\n").as_bytes());
                }
            }
        }
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
