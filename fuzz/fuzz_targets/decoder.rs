//! The `Decoder` on arbitrary bytes cut into arbitrary chunks: no panic, the
//! caller's buffer never holds more than one incomplete line within the limit,
//! no event's data is over the limit, and the result does not depend on the
//! chunking or on `decode` versus `feed`.
#![no_main]

use arbitrary::Arbitrary;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ssekit::{DecodeError, Decoder, MessageEvent};

#[derive(Debug, Arbitrary)]
struct Input {
    max_line_length: u16,
    max_event_size: u16,
    chunks: Vec<u8>,
    bytes: Vec<u8>,
}

fn decoder(input: &Input) -> Decoder {
    Decoder::new()
        .with_max_line_length(usize::from(input.max_line_length))
        .with_max_event_size(usize::from(input.max_event_size))
}

/// Every event up to the first error, through `decode` with one caller buffer.
fn decode_chunked(input: &Input, sizes: &[usize]) -> (Vec<MessageEvent>, Option<DecodeError>) {
    let line_limit = usize::from(input.max_line_length);
    let event_limit = usize::from(input.max_event_size);
    let mut decoder = decoder(input);
    let mut buf = BytesMut::new();
    let mut events = Vec::new();
    let mut rest = &input.bytes[..];
    let mut sizes = sizes.iter().copied().cycle();
    loop {
        let size = sizes.next().unwrap_or(rest.len()).min(rest.len());
        let (chunk, tail) = rest.split_at(size);
        buf.extend_from_slice(chunk);
        rest = tail;
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(event)) => {
                    assert!(event.data.len() < event_limit, "data of {} bytes", event.data.len());
                    // Invalid UTF-8 grows by U+FFFD: at most 3 bytes per byte of the line.
                    assert!(event.event.len() <= (3 * line_limit).max("message".len()));
                    assert!(event.last_event_id.len() <= 3 * line_limit);
                    events.push(event);
                }
                Ok(None) => {
                    // At most the start of one line (or of a byte order mark).
                    assert!(buf.len() <= line_limit.max(2), "{} bytes buffered", buf.len());
                    break;
                }
                Err(err) => {
                    // Poisoned: the same error again, nothing consumed.
                    let len = buf.len();
                    assert_eq!(decoder.decode(&mut buf), Err(err));
                    assert_eq!(buf.len(), len);
                    return (events, Some(err));
                }
            }
        }
        if rest.is_empty() {
            return (events, None);
        }
    }
}

/// The same through `feed`.
fn feed_chunked(input: &Input, sizes: &[usize]) -> (Vec<MessageEvent>, Option<DecodeError>) {
    let mut decoder = decoder(input);
    let mut events = Vec::new();
    for chunk in chunks(&input.bytes, sizes) {
        match decoder.feed(chunk) {
            Ok(more) => events.extend(more),
            Err(err) => {
                assert_eq!(decoder.feed(b"\n\n"), Err(err));
                return (events, Some(err));
            }
        }
    }
    (events, None)
}

fn chunks<'a>(mut bytes: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut sizes = sizes.iter().copied().cycle();
    while !bytes.is_empty() {
        let (chunk, rest) = bytes.split_at(sizes.next().unwrap_or(bytes.len()).min(bytes.len()));
        out.push(chunk);
        bytes = rest;
    }
    out
}

fuzz_target!(|input: Input| {
    let sizes: Vec<usize> = input.chunks.iter().map(|&n| usize::from(n) + 1).collect();
    let whole = decode_chunked(&input, &[]);
    let chunked = decode_chunked(&input, &sizes);
    let bytewise = decode_chunked(&input, &[1]);
    assert_eq!(whole, chunked, "chunking changed the result");
    assert_eq!(whole, bytewise, "byte by byte changed the result");
    let (fed, fed_err) = feed_chunked(&input, &sizes);
    // `feed` drops the events of a chunk that fails; before that they agree.
    assert_eq!(fed_err, whole.1);
    assert!(whole.0.starts_with(&fed), "feed and decode disagree");
    if fed_err.is_none() {
        assert_eq!(fed, whole.0);
    }
});
