//! The id of an event in a stream of several topics: one `Last-Event-ID` that
//! holds the client's position in every topic of the stream.
//!
//! Text form: `<topic>.<position>.<position>…` — the index (decimal) of the
//! event's topic in the stream's list of topics, then one position per topic,
//! in that order: its epoch and its offset in base64url digits (`A`–`Z`, `a`–`z`,
//! `0`–`9`, `-`, `_`; most significant first, no leading `A`) joined by `:`. For
//! 8 topics with offsets up to 10⁹ and 32-bit epochs (the ones ssekit makes)
//! that is at most 105 ASCII bytes.
//!
//! A position names its topic by its epoch, which no two logs of a process
//! share, and by its place in the list: a resume finds each topic's position
//! even if the client lists its topics in another order.

use bytes::{BufMut, BytesMut};

use super::event_id::EventId;

const DIGITS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The longest id of a stream of `topics` topics: the index, and per topic a
/// dot, a colon and two numbers of at most 11 digits.
pub(crate) const fn max_len(topics: usize) -> usize {
    20 + topics * 24
}

/// Writes the id of an event of the `topic`-th topic, the stream standing at
/// `positions`.
#[cfg(test)]
pub(crate) fn write(buf: &mut BytesMut, topic: usize, positions: impl ExactSizeIterator<Item = EventId>) {
    Ids::default().write(buf, topic, positions);
}

/// The text of one position, `.<epoch>:<offset>`, kept while the position
/// holds: a stream of several topics writes an id per event, and one position
/// changes per event.
#[derive(Debug, Clone, Copy)]
struct Entry {
    at: EventId,
    len: u8,
    text: [u8; ENTRY_MAX],
}

/// The longest entry: two numbers of at most 11 digits, a dot and a colon.
const ENTRY_MAX: usize = 24;

impl Entry {
    fn of(at: EventId) -> Self {
        let mut entry = Self { at, len: 0, text: [0; ENTRY_MAX] };
        entry.push(b'.');
        entry.push_digits(at.epoch());
        entry.push(b':');
        entry.push_digits(at.offset());
        entry
    }

    fn push(&mut self, byte: u8) {
        self.text[self.len as usize] = byte;
        self.len += 1;
    }

    fn push_digits(&mut self, n: u64) {
        let mut digits = [0u8; 11];
        let mut at = digits.len();
        let mut n = n;
        loop {
            at -= 1;
            digits[at] = DIGITS[(n & 63) as usize];
            n >>= 6;
            if n == 0 {
                break;
            }
        }
        for &digit in &digits[at..] {
            self.push(digit);
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.text[..self.len as usize]
    }
}

/// The ids of one stream of several topics: each position's text, kept until
/// it moves.
#[derive(Debug, Default)]
pub(crate) struct Ids {
    entries: Vec<Entry>,
}

impl Ids {
    /// Writes the id of an event of the `topic`-th topic, the stream standing
    /// at `positions` (one per topic, always as many).
    pub(crate) fn write(
        &mut self,
        buf: &mut BytesMut,
        topic: usize,
        positions: impl ExactSizeIterator<Item = EventId>,
    ) {
        let count = positions.len();
        if self.entries.len() != count {
            // The first id: an entry per topic, rewritten below.
            self.entries = vec![Entry::of(EventId::new(0, 0)); count];
        }
        buf.reserve(max_len(count));
        crate::wire::encode::put_decimal(buf, topic as u64);
        for (entry, at) in self.entries.iter_mut().zip(positions) {
            if entry.at != at || entry.len == 0 {
                *entry = Entry::of(at);
            }
            buf.put_slice(entry.as_bytes());
        }
    }
}

/// The positions of a client's `Last-Event-ID`: those of a compound id, or
/// the one of a plain [`EventId`]. `None`: not an id a hub issues, or more
/// positions than `max`.
pub(crate) fn parse(id: &str, max: usize) -> Option<Vec<EventId>> {
    let mut parts = id.split('.');
    let topic = parts.next()?;
    let Some(first) = parts.next() else {
        return id.parse::<EventId>().ok().map(|id| vec![id]);
    };
    if topic.is_empty() || topic.len() > 3 || !topic.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut positions = Vec::new();
    for position in std::iter::once(first).chain(parts) {
        if positions.len() == max {
            return None;
        }
        let (epoch, offset) = position.split_once(':')?;
        positions.push(EventId::new(digits(epoch)?, digits(offset)?));
    }
    Some(positions)
}

/// A number in base64url digits, canonical (no leading zero digit) and within
/// a `u64`.
fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 11 || (text.len() > 1 && text.starts_with('A')) {
        return None;
    }
    text.bytes().try_fold(0u64, |n, b| {
        let digit = DIGITS.iter().position(|&d| d == b)? as u64;
        n.checked_mul(64)?.checked_add(digit)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(topic: usize, positions: &[EventId]) -> String {
        let mut buf = BytesMut::new();
        write(&mut buf, topic, positions.iter().copied());
        String::from_utf8(buf.to_vec()).unwrap()
    }

    #[test]
    fn round_trip_and_length() {
        let positions = [EventId::new(0, 0), EventId::new(u64::MAX, u64::MAX), EventId::new(0x8000_0001, 42)];
        let id = text(2, &positions);
        assert_eq!(parse(&id, 8), Some(positions.to_vec()), "{id}");
        // 8 topics, 32-bit epochs, offsets up to 10^9: at most 105 bytes.
        let worst = vec![EventId::new(u64::from(u32::MAX), 1_000_000_000); 8];
        assert_eq!(text(7, &worst).len(), 105);
        // A plain id is one position.
        assert_eq!(parse("ff-7", 8), Some(vec![EventId::new(255, 7)]));
    }

    #[test]
    fn refuses_what_a_hub_never_issues() {
        for bad in [
            "",
            ".",
            "0.",
            "0.A",
            "0.:A",
            "0.A:",
            "x.A:A",
            "0.AB:A",
            "0.A:A.",
            "0.A:A:A",
            "0.A:!",
            "1234.A:A",
            "0.________________:A",
        ] {
            assert_eq!(parse(bad, 8), None, "{bad:?}");
        }
        let nine = text(0, &[EventId::new(1, 1); 9]);
        assert_eq!(parse(&nine, 8), None, "more positions than topics");
        assert!(parse(&nine, 9).is_some());
    }
}
