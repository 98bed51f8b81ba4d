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
    /// Encodes the event into one immutable frame: one allocation of exactly
    /// its size.
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
        if let Some(data) = self.data.as_ref().filter(|data| data.len() >= ONE_PASS_FROM) {
            if let Some(frame) = self.encode_long_lines(data.as_bytes()) {
                return Ok(frame);
            }
        }
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
        layout.body_len + self.end_len()
    }

    /// The length of [`Event::write_end`]'s output.
    fn end_len(&self) -> usize {
        self.id.as_ref().map_or(1, |id| id_tail_len(id.len()))
    }

    /// Writes the whole frame. The event must have been checked.
    fn write(&self, buf: &mut BytesMut, layout: &Layout) {
        self.write_body(buf, layout);
        self.write_end(buf);
    }

    /// The end of a frame: its `id:` line if it has one, then the blank line.
    fn write_end(&self, buf: &mut BytesMut) {
        match &self.id {
            Some(id) => put_id_tail(buf, |buf| buf.put_slice(id.as_bytes())),
            None => buf.put_u8(b'\n'),
        }
    }

    /// [`Event::encode`] of an event whose `data` (given) is long and in long lines (a
    /// document in one line, or a few long lines) in one pass over the data instead
    /// of two: it is searched and copied a window at a time, while the window is in
    /// the processor's nearest cache, into a buffer with room for the breaks that
    /// lines of that length can have; the buffer is then shrunk to the frame (in
    /// place: only its end is given back), so the frame's capacity stays exact.
    /// `None`, the buffer given back, for data that turns out to have shorter
    /// lines (found within their first few breaks): sizing first is then
    /// cheaper. The event must have been checked.
    // Not inlined, so that the path of small events stays short.
    #[inline(never)]
    fn encode_long_lines(&self, data: &[u8]) -> Option<Frame> {
        let comment = self.comment.as_ref().map(|comment| Lines::of(COMMENT, comment.as_bytes(), None));
        let most = self.head_len(comment)
            + field_len(DATA, data.len())
            + most_breaks(data.len()) * (DATA.len() + 1)
            + self.retry_len()
            + self.end_len();
        let mut buf = BytesMut::with_capacity(most);
        self.write_head(&mut buf, comment);
        if !write_long_lines(&mut buf, DATA, data) {
            return None;
        }
        self.write_retry(&mut buf);
        self.write_end(&mut buf);
        let bytes = if buf.len() == buf.capacity() {
            buf.freeze()
        } else {
            // A boxed slice's capacity is its length: `Bytes` takes it without a
            // second allocation.
            Bytes::from(Vec::from(buf).into_boxed_slice())
        };
        Some(Frame::from_trusted(bytes))
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
        let body_len = self.head_len(comment) + data.map_or(0, |lines| lines.len) + self.retry_len();
        Layout { comment, data, body_len, breaks }
    }

    fn write_body(&self, buf: &mut BytesMut, layout: &Layout) {
        self.write_head(buf, layout.comment);
        if let (Some(data), Some(lines)) = (&self.data, layout.data) {
            write_lines(buf, DATA, data.as_bytes(), &lines, &layout.breaks);
        }
        self.write_retry(buf);
    }

    /// The length of [`Event::write_head`]'s output, given the comment's lines.
    fn head_len(&self, comment: Option<Lines>) -> usize {
        comment.map_or(0, |lines| lines.len) + self.event.as_ref().map_or(0, |event| field_len(EVENT, event.len()))
    }

    /// Writes what comes before `data`: the comment's lines, then the `event` field.
    fn write_head(&self, buf: &mut BytesMut, comment: Option<Lines>) {
        if let (Some(text), Some(lines)) = (&self.comment, comment) {
            write_lines(buf, COMMENT, text.as_bytes(), &lines, &[]);
        }
        if let Some(event) = &self.event {
            write_field(buf, EVENT, event.as_bytes());
        }
    }

    fn retry_len(&self) -> usize {
        self.retry.map_or(0, |retry| field_len(RETRY, decimal_len(retry_millis(retry))))
    }

    fn write_retry(&self, buf: &mut BytesMut) {
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

/// The data length from which [`Event::encode`] tries [`write_long_lines`].
const ONE_PASS_FROM: usize = 4096;

/// How much text [`write_long_lines`] searches before copying it: small enough
/// that the copy reads it again from the processor's nearest cache.
const WINDOW: usize = 8192;

/// The breaks [`write_long_lines`] leaves room for in `len` bytes of text:
/// lines of `LONG_LINE` bytes on average, and `RECORDED` more.
const fn most_breaks(len: usize) -> usize {
    len / LONG_LINE + RECORDED
}

/// Writes `text` as `prefix`-lines, as [`write_lines`] does, in one pass: a
/// window of the text is searched for CR and LF, then its lines (or the part of
/// a line in it) are copied at once. `buf` must have room for `text` with
/// [`most_breaks`] breaks.
///
/// Returns `false`, having written part of the text, as soon as the lines so far
/// are shorter than `LONG_LINE` on average by more than `RECORDED` breaks: then
/// the room would not suffice, and writing each short line this way costs more
/// than sizing first.
fn write_long_lines(buf: &mut BytesMut, prefix: &[u8], text: &[u8]) -> bool {
    buf.put_slice(prefix);
    let (mut from, mut breaks, mut window) = (0, 0, 0);
    while window < text.len() {
        let end = (window + WINDOW).min(text.len());
        for at in memchr::memchr2_iter(b'\r', b'\n', &text[window..end]) {
            let at = window + at;
            if at < from {
                // The LF of a CRLF, taken with its CR at the end of the window before.
                continue;
            }
            if breaks >= most_breaks(at) {
                return false;
            }
            breaks += 1;
            buf.put_slice(&text[from..at]);
            buf.put_u8(b'\n');
            buf.put_slice(prefix);
            from = at + 1;
            if text[at] == b'\r' && text.get(from) == Some(&b'\n') {
                from += 1;
            }
        }
        if from < end {
            buf.put_slice(&text[from..end]);
            from = end;
        }
        window = end;
    }
    buf.put_u8(b'\n');
    true
}

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

    /// [`write_long_lines`] of `text` into a buffer with the room it asks for;
    /// `None` when it gives up. It never grows the buffer.
    fn long_lines(text: &str) -> Option<BytesMut> {
        let room = field_len(DATA, text.len()) + most_breaks(text.len()) * (DATA.len() + 1);
        let mut buf = BytesMut::with_capacity(room);
        let ptr = buf.as_ptr();
        let done = write_long_lines(&mut buf, DATA, text.as_bytes());
        assert!(buf.len() <= room && buf.as_ptr() == ptr, "{text:?}");
        done.then_some(buf)
    }

    #[test]
    fn long_lines_split_on_every_break_across_windows() {
        // Breaks of each kind just before, at and after a window's end: a CRLF cut
        // in two by the window, a lone CR or LF ending it or starting the next.
        let pad = |n: usize| "x".repeat(n);
        for at in [WINDOW - 2, WINDOW - 1, WINDOW, WINDOW + 1, 2 * WINDOW - 1] {
            for brk in ["\r\n", "\r", "\n", "\r\r", "\n\n", "\r\n\r\n", "\n\r"] {
                for tail in [0, 1, WINDOW] {
                    let text = format!("{}{brk}{}", pad(at), pad(tail));
                    assert_eq!(&long_lines(&text).unwrap()[..], data_lines(&text).as_bytes(), "{at} {brk:?} {tail}");
                }
            }
        }
        // Empty lines, a leading and a trailing break, no break, a window exactly.
        for text in [
            format!("\n{}\n", pad(WINDOW)),
            format!("\r\n\r\n{}\r\n", pad(3 * WINDOW)),
            format!("{}\r", pad(WINDOW - 1)),
            pad(WINDOW),
            pad(3 * WINDOW + 7),
            String::new(),
        ] {
            assert_eq!(&long_lines(&text).unwrap()[..], data_lines(&text).as_bytes(), "{text:?}");
        }
    }

    #[test]
    fn long_lines_give_up_on_short_lines() {
        // `RECORDED` short lines at the start fit; one more does not.
        let long = "y".repeat(4 * LONG_LINE);
        let head = "a\n".repeat(RECORDED);
        let text = format!("{head}{long}");
        assert_eq!(&long_lines(&text).unwrap()[..], data_lines(&text).as_bytes());
        assert!(long_lines(&format!("{head}a\n{long}")).is_none());
        // Lines of `LONG_LINE` bytes on average fit, with `RECORDED` shorter ones.
        let text = format!("{head}{}", format!("{}\n", "z".repeat(LONG_LINE - 1)).repeat(20));
        assert_eq!(&long_lines(&text).unwrap()[..], data_lines(&text).as_bytes());
        assert!(long_lines(&"b\n".repeat(LONG_LINE)).is_none());
    }

    #[test]
    fn one_pass_and_sizing_first_encode_alike_and_exactly() {
        // Data around `ONE_PASS_FROM`, in long lines (one pass) and short ones (it
        // gives up and sizes first), with every other field around it.
        let long = format!("{}\r\n", "q".repeat(2 * LONG_LINE));
        for len in [ONE_PASS_FROM - 1, ONE_PASS_FROM, ONE_PASS_FROM + 1, 20 * ONE_PASS_FROM] {
            for data in [
                "d".repeat(len),
                long.repeat(len / long.len() + 1)[..len].to_owned(),
                "s\r".repeat(len / 2 + 1)[..len].to_owned(),
                format!("{}\n", "e".repeat(len - 1)),
            ] {
                let expected = data_lines(&data);
                let events = [
                    (Event::new().data(data.as_str()), format!("{expected}\n")),
                    (
                        Event::new()
                            .comment("c\nc")
                            .event("e")
                            .data(data.as_str())
                            .retry(std::time::Duration::from_secs(1))
                            .id("7"),
                        format!(": c\n: c\nevent: e\n{expected}retry: 1000\nid: 7\n\n"),
                    ),
                ];
                for (event, wire) in events {
                    let frame = event.encode().unwrap();
                    assert_eq!(frame.as_bytes()[..], *wire.as_bytes(), "{len}");
                    let mut buf = BytesMut::new();
                    event.encode_into(&mut buf).unwrap();
                    assert_eq!(buf, frame.as_bytes());
                    let exact = frame.into_bytes().try_into_mut().unwrap();
                    assert_eq!(exact.capacity(), exact.len());
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
