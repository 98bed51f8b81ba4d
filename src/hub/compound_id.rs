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

use super::event_id::EventId;

const DIGITS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The digit after each digit (`0`: the last, `_`, carries).
const SUCCESSOR: [u8; 128] = {
    let mut next = [0u8; 128];
    let mut i = 0;
    while i + 1 < DIGITS.len() {
        next[DIGITS[i] as usize] = DIGITS[i + 1];
        i += 1;
    }
    next
};

/// Writes `n` in base64url digits.
fn put_digits(buf: &mut Vec<u8>, n: u64) {
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
    buf.extend_from_slice(&digits[at..]);
}

/// Adds one to the base64url number `digits` in place. `false`: it needs one
/// more digit (left unchanged then).
fn increment(digits: &mut [u8]) -> bool {
    for at in (0..digits.len()).rev() {
        let next = SUCCESSOR[usize::from(digits[at] & 127)];
        if next != 0 {
            digits[at] = next;
            // The digits after it carried: they wrap to zero.
            digits[at + 1..].fill(DIGITS[0]);
            return true;
        }
    }
    false
}

/// Where one topic's position stands in the id line of [`Ids`].
#[derive(Debug, Clone, Copy)]
struct Mark {
    at: EventId,
    /// Where the digits of its offset start in the line, and where they end.
    offset: usize,
    end: usize,
}

/// The id lines of one stream of several topics: the line of the last event,
/// kept and changed in place for the next. An event moves one position, mostly
/// by one (counted up in place), and names its topic (one digit, mostly).
#[derive(Debug, Default)]
pub(crate) struct Ids {
    /// `id: <topic>.<epoch>:<offset>…` and the blank line, as the wire has it.
    line: Vec<u8>,
    /// The topic named in `line`, and where its index's digits are.
    topic: usize,
    index: (usize, usize),
    marks: Vec<Mark>,
}

impl Ids {
    /// The end of a frame of the `topic`-th topic, the stream standing at
    /// `positions` (one per topic, always as many): its id line and the blank
    /// line.
    pub(crate) fn tail(&mut self, topic: usize, positions: impl ExactSizeIterator<Item = EventId>) -> &[u8] {
        let mut anew = self.marks.len() != positions.len();
        if anew {
            self.marks = positions.map(|at| Mark { at, offset: 0, end: 0 }).collect();
        } else {
            for (mark, at) in self.marks.iter_mut().zip(positions) {
                if mark.at != at {
                    anew |= !moved(&mut self.line, mark, at);
                }
            }
        }
        if topic != self.topic && !anew {
            anew = !self.name(topic);
        }
        if anew {
            self.write(topic);
        }
        &self.line
    }

    /// Names the `topic`-th topic in place. `false`: not done (an index of
    /// two digits, or one where there were two).
    fn name(&mut self, topic: usize) -> bool {
        let (start, end) = self.index;
        if topic >= 10 || end - start != 1 {
            return false;
        }
        self.line[start] = b'0' + topic as u8;
        self.topic = topic;
        true
    }

    /// Writes the whole line anew.
    fn write(&mut self, topic: usize) {
        let Self { line, index, marks, .. } = self;
        line.clear();
        crate::wire::encode::put_id_tail(line, |line| {
            let start = line.len();
            crate::wire::encode::put_decimal(line, topic as u64);
            *index = (start, line.len());
            for mark in marks.iter_mut() {
                line.push(b'.');
                put_digits(line, mark.at.epoch());
                line.push(b':');
                mark.offset = line.len();
                put_digits(line, mark.at.offset());
                mark.end = line.len();
            }
        });
        self.topic = topic;
    }
}

/// Moves `mark` to `at` in `line`. `false`: not done in place (the line is to
/// be written anew).
fn moved(line: &mut [u8], mark: &mut Mark, at: EventId) -> bool {
    let was = std::mem::replace(&mut mark.at, at);
    at.epoch() == was.epoch()
        && Some(at.offset()) == was.offset().checked_add(1)
        && increment(&mut line[mark.offset..mark.end])
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

    /// The id of an event of the `topic`-th topic, the stream standing at
    /// `positions`: the id line, without the field name and the blank line.
    fn text(topic: usize, positions: &[EventId]) -> String {
        let line = String::from_utf8(Ids::default().tail(topic, positions.iter().copied()).to_vec()).unwrap();
        line.strip_prefix("id: ").and_then(|id| id.strip_suffix("\n\n")).expect("an id line").to_owned()
    }

    #[test]
    fn round_trip_and_length() {
        let positions = [EventId::new(0, 0), EventId::new(u64::MAX, u64::MAX), EventId::new(0x8000_0001, 42)];
        let id = text(2, &positions);
        assert_eq!(parse(&id, 8), Some(positions.to_vec()), "{id}");
        // Reference texts: base64url digits, most significant first.
        assert_eq!(id, "2.A:A.P__________:P__________.CAAAAB:q");
        assert_eq!(text(0, &[EventId::new(1, 63), EventId::new(1, 64)]), "0.B:_.B:BA");
        assert_eq!(text(11, &[EventId::new(4096, 4095); 2]), "11.BAA:__.BAA:__");
        assert_eq!(parse("1.B:_.BAA:BA", 8), Some(vec![EventId::new(1, 63), EventId::new(4096, 64)]));
        // 8 topics, 32-bit epochs, offsets up to 10^9: at most 105 bytes.
        let worst = vec![EventId::new(u64::from(u32::MAX), 1_000_000_000); 8];
        assert_eq!(text(7, &worst).len(), 105);
        // A plain id is one position.
        assert_eq!(parse("ff-7", 8), Some(vec![EventId::new(255, 7)]));
    }

    #[test]
    fn kept_text_follows_every_move() {
        // One stream's ids, against each written afresh: counted up across
        // digit boundaries, jumps, other epochs, in every place.
        let mut ids = Ids::default();
        let mut positions = [EventId::new(7, 0), EventId::new(0x8000_0001, 60), EventId::new(3, 4090)];
        let mut moves = 0u64;
        for step in 0..20_000u64 {
            let index = (step * 7 % 3) as usize;
            let at = positions[index];
            positions[index] = match step % 97 {
                0 => EventId::new(at.epoch() + 1, step % 5),
                1 => EventId::new(at.epoch(), at.offset() + 1000),
                _ => EventId::new(at.epoch(), at.offset() + 1),
            };
            moves += 1;
            let kept = String::from_utf8_lossy(ids.tail(index, positions.iter().copied())).into_owned();
            assert_eq!(kept, format!("id: {}\n\n", text(index, &positions)), "after {moves} moves");
        }
        let mut digits = *b"__";
        assert!(!increment(&mut digits), "one more digit");
        assert_eq!(&digits, b"__", "left as it was");
        digits = *b"B_";
        assert!(increment(&mut digits));
        assert_eq!(&digits, b"CA");
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
