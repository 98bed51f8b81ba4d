//! [`EventId`]: the `(epoch, offset)` cursor a hub writes into every event's `id:`.

use std::fmt;
use std::str::FromStr;

/// The position of an event in a topic's log, sent to the client as its `id:`.
///
/// `offset` counts the topic's events from 1 and only grows; `epoch` names the
/// log that issued the offsets and changes whenever that log is gone (a new
/// process without a shared store, a flushed Redis). The text form is
/// `<epoch in lowercase hex>-<offset in decimal>`, at most 37 ASCII bytes.
///
/// # Examples
///
/// ```
/// use ssekit::EventId;
///
/// let id: EventId = "3fa1-42".parse()?;
/// assert_eq!((id.epoch(), id.offset()), (0x3fa1, 42));
/// assert_eq!(id.to_string(), "3fa1-42");
/// # Ok::<(), ssekit::EventIdError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId {
    epoch: u64,
    offset: u64,
}

impl EventId {
    /// The longest text form, in bytes.
    pub const MAX_LEN: usize = 16 + 1 + 20;

    /// An id from its parts.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ssekit::EventId::new(255, 7).to_string(), "ff-7");
    /// ```
    pub const fn new(epoch: u64, offset: u64) -> Self {
        Self { epoch, offset }
    }

    /// The epoch of the log that issued this id.
    pub const fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The event's offset within its topic, counted from 1.
    pub const fn offset(&self) -> u64 {
        self.offset
    }

    /// Appends the text form to `buf`.
    pub(crate) fn write(&self, buf: &mut bytes::BytesMut) {
        use bytes::BufMut;
        let mut hex = [0u8; 16];
        let mut at = hex.len();
        let mut epoch = self.epoch;
        loop {
            at -= 1;
            hex[at] = b"0123456789abcdef"[(epoch & 0xf) as usize];
            epoch >>= 4;
            if epoch == 0 {
                break;
            }
        }
        buf.put_slice(&hex[at..]);
        buf.put_u8(b'-');
        crate::wire::encode::put_decimal(buf, self.offset);
    }
}

impl EventId {
    /// The length of the text form.
    pub(crate) fn text_len(&self) -> usize {
        let hex_digits = (64 - self.epoch.leading_zeros() as usize).div_ceil(4).max(1);
        hex_digits + 1 + crate::wire::encode::decimal_len(self.offset)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}-{}", self.epoch, self.offset)
    }
}

impl FromStr for EventId {
    type Err = EventIdError;

    /// Parses the canonical text form only (lowercase hex, no leading zeros), so
    /// that one position has exactly one id.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (epoch, offset) = s.split_once('-').ok_or(EventIdError(()))?;
        let canonical = |digits: &str, max: usize, allowed: fn(u8) -> bool| {
            !digits.is_empty()
                && digits.len() <= max
                && digits.bytes().all(allowed)
                && (digits == "0" || !digits.starts_with('0'))
        };
        let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        if !canonical(epoch, 16, hex) || !canonical(offset, 20, |b| b.is_ascii_digit()) {
            return Err(EventIdError(()));
        }
        Ok(Self {
            epoch: u64::from_str_radix(epoch, 16).map_err(|_| EventIdError(()))?,
            offset: offset.parse().map_err(|_| EventIdError(()))?,
        })
    }
}

/// The text is not an id a hub issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an event id of the form <hex epoch>-<decimal offset>")]
pub struct EventIdError(());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_canonical_form() {
        for id in [EventId::new(0, 0), EventId::new(u64::MAX, u64::MAX), EventId::new(0xab, 10)] {
            let mut buf = bytes::BytesMut::new();
            id.write(&mut buf);
            assert_eq!(&buf[..], id.to_string().as_bytes());
            assert!(buf.len() <= EventId::MAX_LEN);
            assert_eq!(id.text_len(), buf.len());
            assert_eq!(id.to_string().parse::<EventId>(), Ok(id));
        }
        for bad in ["", "-", "1-", "-1", "01-1", "1-01", "A-1", "1-1-1", "1-18446744073709551616", "1- 1", "g-1"] {
            assert!(bad.parse::<EventId>().is_err(), "{bad:?}");
        }
    }
}
