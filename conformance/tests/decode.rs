//! The decoder against the WHATWG "event stream interpretation", through the public API.
//!
//! The hand-written vectors mirror the web-platform-tests `eventsource/format-*` cases; the
//! property tests check chunking independence, bounded memory and agreement with a
//! whole-stream reference parser written straight from the spec text.

use std::time::Duration;

use bytes::BytesMut;
use proptest::prelude::*;
use ssekit::{DecodeError, Decoder, MessageEvent};

fn ev(event: &str, data: &str, id: &str) -> MessageEvent {
    MessageEvent { event: event.into(), data: data.into(), last_event_id: id.into(), retry: None }
}

fn msg(data: &str) -> MessageEvent {
    ev("message", data, "")
}

/// Decodes `chunks` through `decode` with one caller buffer; every result until the first error.
fn run(mut decoder: Decoder, chunks: &[&[u8]]) -> (Vec<Result<MessageEvent, DecodeError>>, Decoder) {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(event)) => out.push(Ok(event)),
                Ok(None) => break,
                Err(err) => {
                    out.push(Err(err));
                    return (out, decoder);
                }
            }
        }
    }
    (out, decoder)
}

/// Asserts that `input` decodes to `expected` whole, byte by byte, split in two at every point,
/// and through `feed`.
#[track_caller]
fn check(input: &[u8], expected: &[MessageEvent]) -> Decoder {
    let expected: Vec<_> = expected.iter().cloned().map(Ok).collect();
    let (whole, decoder) = run(Decoder::new(), &[input]);
    assert_eq!(whole, expected, "whole input");
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(run(Decoder::new(), &bytes).0, expected, "byte by byte");
    for split in 0..=input.len() {
        let (a, b) = input.split_at(split);
        assert_eq!(run(Decoder::new(), &[a, b]).0, expected, "split at {split}");
    }
    let mut feeder = Decoder::new();
    let mut fed = Vec::new();
    for byte in input.chunks(1) {
        fed.extend(feeder.feed(byte).unwrap().into_iter().map(Ok));
    }
    assert_eq!(fed, expected, "feed byte by byte");
    decoder
}

// --- line ends -------------------------------------------------------------------------------

#[test]
fn lf_line_ends() {
    check(b"data: a\n\ndata: b\n\n", &[msg("a"), msg("b")]);
}

#[test]
fn cr_line_ends() {
    check(b"data: a\r\rdata: b\r\r", &[msg("a"), msg("b")]);
}

#[test]
fn crlf_line_ends() {
    check(b"data: a\r\n\r\ndata: b\r\n\r\n", &[msg("a"), msg("b")]);
}

#[test]
fn mixed_line_ends() {
    // CR LF is one line end; LF CR is two.
    check(b"data: a\r\ndata: b\n\rdata: c\r\r\n", &[msg("a\nb"), msg("c")]);
}

#[test]
fn crlf_split_across_chunks_is_one_line_end() {
    let mut decoder = Decoder::new();
    assert!(decoder.feed(b"data: a\r").unwrap().is_empty());
    assert!(decoder.feed(b"\n").unwrap().is_empty()); // not a blank line
    assert!(decoder.feed(b"data: b\r").unwrap().is_empty());
    assert_eq!(decoder.feed(b"\n\r\n").unwrap(), [msg("a\nb")]);
}

#[test]
fn cr_at_chunk_end_then_other_line_dispatches_immediately() {
    let mut decoder = Decoder::new();
    assert!(decoder.feed(b"data: a\r").unwrap().is_empty());
    // The blank line is a lone CR: dispatched without waiting for a possible LF.
    assert_eq!(decoder.feed(b"\r").unwrap(), [msg("a")]);
    assert_eq!(decoder.feed(b"data: b\n\n").unwrap(), [msg("b")]);
}

// --- byte order mark -------------------------------------------------------------------------

#[test]
fn bom_stripped_once() {
    check(b"\xEF\xBB\xBFdata: a\n\n", &[msg("a")]);
}

#[test]
fn second_bom_is_part_of_the_field_name() {
    // The second BOM makes the first line's field name "\u{FEFF}data": an unknown field.
    check(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\ndata: b\n\n", &[msg("b")]);
}

#[test]
fn bom_later_in_stream_is_data() {
    check(b"data: \xEF\xBB\xBFa\n\n", &[msg("\u{FEFF}a")]);
}

#[test]
fn partial_bom_prefix_is_not_stripped() {
    check(b"\xEF\xBBdata: a\n\ndata: b\n\n", &[msg("b")]);
}

// --- fields ----------------------------------------------------------------------------------

#[test]
fn leading_space_stripped_only_once() {
    check(b"data:  two spaces\n\ndata:none\n\ndata:\tx\n\n", &[msg(" two spaces"), msg("none"), msg("\tx")]);
}

#[test]
fn value_split_at_first_colon_only() {
    check(b"data: a:b: c\n\n", &[msg("a:b: c")]);
}

#[test]
fn data_without_colon_is_an_empty_data_line() {
    // "data" alone appends "" + LF; the final LF is removed, so one line gives "".
    check(b"data\n\ndata\ndata\n\n", &[msg(""), msg("\n")]);
}

#[test]
fn empty_data_lines() {
    check(b"data:\n\ndata:\ndata: x\ndata:\n\n", &[msg(""), msg("\nx\n")]);
}

#[test]
fn multiple_data_lines_joined_with_lf() {
    check(b"data: a\ndata: b\ndata: c\n\n", &[msg("a\nb\nc")]);
}

#[test]
fn event_type() {
    check(
        b"event: add\ndata: 1\n\ndata: 2\n\nevent:\ndata: 3\n\nevent: a\nevent: b\ndata: 4\n\n",
        &[ev("add", "1", ""), msg("2"), msg("3"), ev("b", "4", "")],
    );
}

#[test]
fn event_type_reset_by_blank_line_without_data() {
    check(b"event: lost\n\ndata: x\n\n", &[msg("x")]);
}

#[test]
fn comments_are_ignored() {
    check(b": comment\ndata: a\n:data: b\n:\n\n", &[msg("a")]);
}

#[test]
fn unknown_fields_and_field_name_case() {
    check(b"Data: no\nDATA: no\nEvent: no\nfoo: bar\n data: no\ndata : no\ndata: yes\n\n", &[msg("yes")]);
}

#[test]
fn blank_line_without_data_dispatches_nothing() {
    let decoder = check(b"\n\n\r\n\rid: 1\n\nretry: 5\n\n", &[]);
    assert_eq!(decoder.last_event_id(), "1");
}

#[test]
fn unterminated_last_event_is_discarded() {
    check(b"data: a\n\ndata: b\n", &[msg("a")]);
    check(b"data: a\n\ndata: b", &[msg("a")]);
}

#[test]
fn invalid_utf8_is_replaced() {
    check(
        b"data: a\xFFb\xE2\x82\n\nevent: \xC3\n\xC3\xA9data: x\ndata: \xC3\xA9\n\n",
        &[msg("a\u{FFFD}b\u{FFFD}"), ev("\u{FFFD}", "\u{e9}", "")],
    );
}

// --- id --------------------------------------------------------------------------------------

#[test]
fn id_is_sticky() {
    let decoder = check(b"id: 1\ndata: a\n\ndata: b\n\n", &[ev("message", "a", "1"), ev("message", "b", "1")]);
    assert_eq!(decoder.last_event_id(), "1");
    assert_eq!(decoder.resume_id(), "1");
}

#[test]
fn id_with_empty_value_resets() {
    check(
        b"id: 1\ndata: a\n\nid\ndata: b\n\nid: 2\ndata: c\n\nid:\ndata: d\n\n",
        &[ev("message", "a", "1"), ev("message", "b", ""), ev("message", "c", "2"), ev("message", "d", "")],
    );
}

#[test]
fn id_with_nul_is_ignored() {
    check(
        b"id: 1\ndata: a\n\nid: 2\0\ndata: b\n\nid: \0\ndata: c\n\n",
        &[ev("message", "a", "1"), ev("message", "b", "1"), ev("message", "c", "1")],
    );
}

#[test]
fn id_keeps_inner_spaces_and_unicode() {
    check(b"id:  x y\xC3\xA9 \ndata: a\n\n", &[ev("message", "a", " x y\u{e9} ")]);
}

#[test]
fn resume_id_ignores_undispatched_block() {
    let mut decoder = Decoder::new();
    decoder.feed(b"id: 1\ndata: a\n\nid: 2\ndata: b\n").unwrap();
    assert_eq!(decoder.last_event_id(), "2");
    assert_eq!(decoder.resume_id(), "1");
    // A blank line takes the buffer over even when there is no data to dispatch.
    decoder.feed(b"id: 3\n\n").unwrap();
    assert_eq!(decoder.resume_id(), "3");
}

// --- retry -----------------------------------------------------------------------------------

#[test]
fn retry_sets_reconnection_time_and_event_retry() {
    let decoder = check(
        b"retry: 1500\ndata: a\n\ndata: b\n\n",
        &[MessageEvent { retry: Some(Duration::from_millis(1500)), ..msg("a") }, msg("b")],
    );
    assert_eq!(decoder.reconnection_time(), Some(Duration::from_millis(1500)));
}

#[test]
fn retry_with_non_digits_is_ignored() {
    for bad in [
        &b"retry: 1s\n"[..],
        b"retry: -1\n",
        b"retry: +1\n",
        b"retry:  1\n",
        b"retry: 1 \n",
        b"retry: 1.5\n",
        b"retry:\n",
        b"retry\n",
        b"retry: \xD9\xA1\n", // ARABIC-INDIC DIGIT ONE
        b"Retry: 10\n",
    ] {
        let decoder = check(bad, &[]);
        assert_eq!(decoder.reconnection_time(), None, "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn retry_keeps_previous_value_when_invalid() {
    let decoder = check(
        b"retry: 10\nretry: x\ndata: a\n\n",
        &[MessageEvent { retry: Some(Duration::from_millis(10)), ..msg("a") }],
    );
    assert_eq!(decoder.reconnection_time(), Some(Duration::from_millis(10)));
}

#[test]
fn retry_zero_and_leading_zeros() {
    let decoder = check(b"retry: 0\n", &[]);
    assert_eq!(decoder.reconnection_time(), Some(Duration::ZERO));
    let decoder = check(b"retry: 000000000000000000000000000042\n", &[]);
    assert_eq!(decoder.reconnection_time(), Some(Duration::from_millis(42)));
}

#[test]
fn retry_overflow_is_ignored() {
    let decoder = check(b"retry: 7\nretry: 18446744073709551616\n", &[]);
    assert_eq!(decoder.reconnection_time(), Some(Duration::from_millis(7)));
    let decoder = check(b"retry: 18446744073709551615\n", &[]);
    assert_eq!(decoder.reconnection_time(), Some(Duration::from_millis(u64::MAX)));
    let decoder = check(&[b"retry: ".as_slice(), &[b'9'; 1000], b"\n"].concat(), &[]);
    assert_eq!(decoder.reconnection_time(), None);
}

#[test]
fn retry_belongs_to_its_block() {
    // A block without data consumes its retry: the next event does not carry it.
    check(b"retry: 5\n\ndata: a\n\n", &[msg("a")]);
}

// --- limits ----------------------------------------------------------------------------------

#[test]
fn line_too_long_complete_or_not() {
    let limit = DecodeError::LineTooLong { limit: 8 };
    let mut decoder = Decoder::new().with_max_line_length(8);
    assert_eq!(decoder.feed(b"data: 12\n\n").unwrap(), [msg("12")]);
    assert_eq!(decoder.feed(b"data: 123\n"), Err(limit));
    assert_eq!(decoder.feed(b"\n"), Err(limit), "poisoned");

    let mut decoder = Decoder::new().with_max_line_length(8);
    assert!(decoder.feed(b"data: 12").unwrap().is_empty());
    assert_eq!(decoder.feed(b"3"), Err(limit), "incomplete line");
}

#[test]
fn event_too_large() {
    let limit = DecodeError::EventTooLarge { limit: 6 };
    let mut decoder = Decoder::new().with_max_event_size(6);
    assert_eq!(decoder.feed(b"data: 12345\n\n").unwrap(), [msg("12345")]);
    assert_eq!(decoder.feed(b"data: 12\ndata: 345\n"), Err(limit));
    // Many empty data lines grow the buffer too.
    let mut decoder = Decoder::new().with_max_event_size(6);
    assert_eq!(decoder.feed(&b"data\n".repeat(7)), Err(limit));
}

#[test]
fn error_messages() {
    assert_eq!(DecodeError::LineTooLong { limit: 3 }.to_string(), "line longer than 3 bytes");
    assert_eq!(DecodeError::EventTooLarge { limit: 3 }.to_string(), "event data larger than 3 bytes");
}

#[test]
fn decoder_is_send_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Decoder>();
    assert_send_sync::<MessageEvent>();
    assert_send_sync::<DecodeError>();
}

// --- properties ------------------------------------------------------------------------------

/// What the reference parser saw besides the events.
struct Reference {
    events: Vec<MessageEvent>,
    last_event_id: String,
    reconnection_time: Option<Duration>,
    /// The largest data buffer of any block, in bytes.
    max_data: usize,
    /// The longest line in raw bytes, the unterminated tail included.
    max_line: usize,
}

/// A whole-stream parser written straight from the spec: UTF-8 decode the whole stream (which
/// strips one BOM), split lines, interpret them. No limits.
fn reference(input: &[u8]) -> Reference {
    let raw = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let max_line = raw.split(|&b| b == b'\r' || b == b'\n').map(<[u8]>::len).max().unwrap_or(0);

    let text = String::from_utf8_lossy(input);
    let mut rest = text.strip_prefix('\u{FEFF}').unwrap_or(&text);
    let mut r =
        Reference { events: Vec::new(), last_event_id: String::new(), reconnection_time: None, max_data: 0, max_line };
    let (mut data, mut event_type, mut retry) = (String::new(), String::new(), None);
    while let Some(i) = rest.find(['\r', '\n']) {
        let line = &rest[..i];
        rest = &rest[i + if rest[i..].starts_with("\r\n") { 2 } else { 1 }..];
        if line.is_empty() {
            let retry = retry.take();
            if data.is_empty() {
                event_type.clear();
                continue;
            }
            data.pop();
            r.events.push(MessageEvent {
                event: if event_type.is_empty() { "message".into() } else { std::mem::take(&mut event_type) },
                data: std::mem::take(&mut data),
                last_event_id: r.last_event_id.clone(),
                retry,
            });
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (name, value) = match line.split_once(':') {
            Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match name {
            "event" => event_type = value.into(),
            "data" => {
                data.push_str(value);
                data.push('\n');
                r.max_data = r.max_data.max(data.len());
            }
            "id" if !value.contains('\0') => r.last_event_id = value.into(),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                if let Ok(ms) = value.parse() {
                    r.reconnection_time = Some(Duration::from_millis(ms));
                    retry = r.reconnection_time;
                }
            }
            _ => {}
        }
    }
    r
}

/// Inputs made mostly of the pieces that matter to the parser, with arbitrary bytes mixed in.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        3 => prop::sample::select(vec![
            &b"data"[..], b"data:", b"data: ", b"event:", b"event: ", b"id:", b"id: ", b"retry:",
            b"retry: ", b"1000", b"18446744073709551616", b":", b" ", b"\r", b"\n", b"\r\n",
            b"\n\n", b"\0", b"\xEF\xBB\xBF", b"\xEF\xBB", b"\xC3\xA9", b"\xE2\x82", b"x", b"Data",
        ])
        .prop_map(<[u8]>::to_vec),
        1 => prop::collection::vec(any::<u8>(), 1..4),
    ];
    prop::collection::vec(piece, 0..48).prop_map(|pieces| pieces.concat())
}

/// Cuts `input` at the given points (taken modulo its length).
fn chunk<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for cut in cuts {
        chunks.push(&input[start..cut]);
        start = cut;
    }
    chunks.push(&input[start..]);
    chunks
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Never a panic, the same events for every chunking, and the reference's events.
    #[test]
    fn chunking_does_not_matter(input in stream(), cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        let (whole, decoder) = run(Decoder::new(), &[&input]);
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        let (by_byte, by_byte_decoder) = run(Decoder::new(), &bytes);
        let (split, split_decoder) = run(Decoder::new(), &chunk(&input, &cuts));
        prop_assert_eq!(&whole, &by_byte);
        prop_assert_eq!(&whole, &split);

        let r = reference(&input);
        let events: Vec<_> = r.events.iter().cloned().map(Ok).collect();
        prop_assert_eq!(&whole, &events);
        for d in [&decoder, &by_byte_decoder, &split_decoder] {
            prop_assert_eq!(d.last_event_id(), r.last_event_id.as_str());
            prop_assert_eq!(d.reconnection_time(), r.reconnection_time);
        }

        let mut feeder = Decoder::new();
        let mut fed = Vec::new();
        for piece in chunk(&input, &cuts) {
            fed.extend(feeder.feed(piece).unwrap());
        }
        prop_assert_eq!(fed, r.events);
    }

    /// Arbitrary bytes, not only SSE-like ones, never panic and do not depend on chunking.
    #[test]
    fn arbitrary_bytes(input in prop::collection::vec(any::<u8>(), 0..256), cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        let (whole, _) = run(Decoder::new(), &[&input]);
        let (split, _) = run(Decoder::new(), &chunk(&input, &cuts));
        prop_assert_eq!(&whole, &split);
        let events: Vec<_> = reference(&input).events.into_iter().map(Ok).collect();
        prop_assert_eq!(whole, events);
    }

    /// Limits give errors, never growth: buffered input stays within the line limit, event data
    /// within the event limit, and an error comes exactly when the input breaks a limit.
    #[test]
    fn limits_bound_memory(
        input in stream(),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
        max_line in 0usize..24,
        max_event in 0usize..48,
    ) {
        let new = || Decoder::new().with_max_line_length(max_line).with_max_event_size(max_event);
        let mut decoder = new();
        let mut buf = BytesMut::new();
        let mut results = Vec::new();
        'outer: for piece in chunk(&input, &cuts) {
            buf.extend_from_slice(piece);
            loop {
                match decoder.decode(&mut buf) {
                    Ok(Some(event)) => {
                        prop_assert!(event.data.len() < max_event);
                        results.push(Ok(event));
                    }
                    Ok(None) => {
                        // At most one incomplete line (or the start of a BOM) is kept.
                        prop_assert!(buf.len() <= max_line.max(2), "{} buffered", buf.len());
                        break;
                    }
                    Err(err) => {
                        results.push(Err(err));
                        break 'outer;
                    }
                }
            }
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        prop_assert_eq!(&results, &run(new(), &bytes).0);

        let r = reference(&input);
        // A stream that is only the start of a BOM waits for the bytes that decide (at most 2).
        let bom_prefix = input.len() < 3 && b"\xEF\xBB\xBF".starts_with(&input);
        let expect_error = !bom_prefix && (r.max_line > max_line || r.max_data > max_event);
        let failed = matches!(results.last(), Some(Err(_)));
        prop_assert_eq!(failed, expect_error);
        let events: Vec<_> = results.into_iter().filter_map(Result::ok).collect();
        prop_assert!(r.events.starts_with(&events));
        if !failed {
            prop_assert_eq!(events, r.events);
        }
    }
}
