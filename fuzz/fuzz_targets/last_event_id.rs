//! The `Last-Event-ID` path: `LastEventId::parse`, `Resume::from_request` with
//! arbitrary header bytes and query strings, then `Hub::try_subscribe` and its first
//! polls on a small hub. No panic; an id that does not name a retained event of
//! this topic yields a `reset` with the right reason, never a replay; an id
//! that does name one replays exactly the events after it. Ids of streams of
//! several topics (`<topic>.<epoch>:<offset>…`, base64url digits) are ids too:
//! the position of this topic's epoch counts.
#![no_main]

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use arbitrary::Arbitrary;
use futures_core::Stream;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use ssekit::{Decoder, Event, Hub, LastEventId, MessageEvent, Resume, Subscription};

#[derive(Debug, Arbitrary)]
struct Input {
    /// How the header value is built around `bytes`.
    shape: u8,
    bytes: Vec<u8>,
    offset: u64,
    /// Send the header twice.
    repeat: bool,
    query: Option<String>,
    history: u8,
    published: u8,
}

fn poll(subscription: &mut Subscription) -> Poll<Option<bytes::Bytes>> {
    Pin::new(subscription).poll_next(&mut Context::from_waker(Waker::noop()))
}

fn events(chunk: &[u8]) -> Vec<MessageEvent> {
    let events = Decoder::new().feed(chunk).expect("the hub sends valid frames");
    assert!(!events.is_empty(), "a chunk holds whole events");
    events
}

/// The canonical `<hex epoch>-<decimal offset>`, read without the crate's parser.
fn canonical(id: &str) -> Option<(u64, u64)> {
    let (epoch, offset) = id.split_once('-')?;
    let e = u64::from_str_radix(epoch, 16).ok()?;
    let o: u64 = offset.parse().ok()?;
    (format!("{e:x}") == epoch && o.to_string() == offset).then_some((e, o))
}

const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A canonical base64url number (no leading zero digit, within a `u64`).
fn b64(text: &str) -> Option<u64> {
    if text.is_empty() || (text.len() > 1 && text.starts_with('A')) {
        return None;
    }
    text.chars().try_fold(0u64, |n, c| n.checked_mul(64)?.checked_add(B64.find(c)? as u64))
}

fn to_b64(mut n: u64) -> String {
    let mut digits = Vec::new();
    loop {
        digits.push(B64.as_bytes()[(n % 64) as usize]);
        n /= 64;
        if n == 0 {
            break;
        }
    }
    digits.reverse();
    String::from_utf8(digits).unwrap()
}

/// The positions of an id of a stream of several topics, read without the
/// crate's parser: `<index>.<epoch>:<offset>` repeated, at most 8 positions.
fn compound(id: &str) -> Option<Vec<(u64, u64)>> {
    let mut parts = id.split('.');
    let index = parts.next()?;
    if index.is_empty() || index.len() > 3 || !index.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let positions: Vec<(u64, u64)> = parts
        .map(|position| {
            let (e, o) = position.split_once(':')?;
            Some((b64(e)?, b64(o)?))
        })
        .collect::<Option<_>>()?;
    (1..=8).contains(&positions.len()).then_some(positions)
}

/// The position a single-topic subscription on a log of `epoch` takes from a
/// client's id: the one of that epoch, else the first (this topic's place);
/// `None` when the id is no id.
fn position(id: &str, epoch: u64) -> Option<(u64, u64)> {
    if let Some(plain) = canonical(id) {
        return Some(plain);
    }
    let positions = compound(id)?;
    positions.iter().copied().find(|&(e, _)| e == epoch).or(Some(positions[0]))
}

fuzz_target!(|input: Input| {
    // LastEventId::parse accepts exactly short UTF-8 without CR, LF or NUL.
    let parsed = LastEventId::parse(&input.bytes);
    let acceptable = input.bytes.len() <= LastEventId::MAX_LEN
        && std::str::from_utf8(&input.bytes).is_ok()
        && !input.bytes.iter().any(|b| matches!(b, b'\r' | b'\n' | 0));
    assert_eq!(parsed.is_ok(), acceptable, "{parsed:?}");
    if let Ok(id) = &parsed {
        assert_eq!(id.as_str().as_bytes(), &input.bytes[..]);
    }

    let history = usize::from(input.history % 8) + 1;
    let published = u64::from(input.published % 16) + 1;
    let hub = Hub::builder().history(history).build();
    let mut epoch = 0;
    for n in 1..=published {
        epoch = hub.try_publish("t", Event::new().data(format!("e{n}"))).unwrap().epoch();
    }
    let first = published + 1 - published.min(history as u64);

    let offset = input.offset % (published + 3);
    let value: Vec<u8> = match input.shape % 6 {
        0 => input.bytes.clone(),
        1 => [format!("{epoch:x}-").into_bytes(), input.bytes.clone()].concat(),
        2 => [input.bytes.clone(), format!("-{offset}").into_bytes()].concat(),
        3 => format!("{epoch:x}-{offset}").into_bytes(),
        // An id of a stream of several topics, with this topic's position first
        // or after another's.
        4 => format!("1.{}:{}", to_b64(epoch), to_b64(offset)).into_bytes(),
        _ => [format!("0.{}:{}.", to_b64(epoch ^ 1), to_b64(offset)).into_bytes(), input.bytes.clone()].concat(),
    };
    let mut headers = HeaderMap::new();
    let resume = match HeaderValue::from_bytes(&value) {
        Ok(header) => {
            headers.append("last-event-id", header.clone());
            if input.repeat {
                headers.append("last-event-id", header);
            }
            Resume::from_request(&headers, input.query.as_deref())
        }
        // Bytes no header can hold: through the parser directly.
        Err(_) => Resume::from(LastEventId::parse(&value).map(Some)),
    };
    if input.repeat && !value.is_empty() && HeaderValue::from_bytes(&value).is_ok() {
        assert!(matches!(resume, Resume::Invalid(_)), "{resume:?}");
    }

    // What must happen: a replay from `Some(offset)`, nothing yet (`None`), or a reset.
    let expected: Result<Option<u64>, &str> = match &resume {
        Resume::Live => Ok(None),
        Resume::Invalid(_) => Err("malformed"),
        Resume::After(id) => match position(id.as_str(), epoch) {
            None => Err("malformed"),
            Some((e, _)) if e != epoch => Err("epoch"),
            Some((_, o)) if o > published => Err("future"),
            Some((_, o)) if o + 1 < first => Err("evicted"),
            Some((_, o)) if o == published => Ok(None),
            Some((_, o)) => Ok(Some(o + 1)),
        },
    };

    let before = hub.metrics();
    let mut subscription = hub.try_subscribe("t", resume.clone()).unwrap();
    match expected {
        Ok(Some(from)) => {
            let Poll::Ready(Some(chunk)) = poll(&mut subscription) else { panic!("no replay for {resume:?}") };
            let got = events(&chunk);
            let want: Vec<String> = (from..=published).map(|n| format!("e{n}")).collect();
            assert_eq!(got.iter().map(|e| e.data.clone()).collect::<Vec<_>>(), want, "{resume:?}");
            assert!(got.iter().all(|e| e.event == "message"));
            assert_eq!(got.last().unwrap().last_event_id, format!("{epoch:x}-{published}"));
        }
        Ok(None) => {}
        Err(reason) => {
            let Poll::Ready(Some(chunk)) = poll(&mut subscription) else { panic!("no reset for {resume:?}") };
            let got = events(&chunk);
            assert_eq!(got.len(), 1, "a reset and nothing replayed: {got:?}");
            assert_eq!(got[0].event, "reset");
            assert_eq!(got[0].data, format!(r#"{{"reason":"{reason}"}}"#), "{resume:?}");
            assert_eq!(got[0].last_event_id, format!("{epoch:x}-{published}"));
            let after = hub.metrics();
            let resets = |m: &ssekit::HubMetrics| {
                m.resets_malformed + m.resets_epoch + m.resets_future + m.resets_evicted + m.resets_lagged
            };
            assert_eq!(resets(&after), resets(&before) + 1);
        }
    }
    // Then live, from the next event on.
    assert!(poll(&mut subscription).is_pending(), "{resume:?}");
    hub.try_publish("t", Event::new().data("live")).unwrap();
    let Poll::Ready(Some(chunk)) = poll(&mut subscription) else { panic!("no live event") };
    let got = events(&chunk);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].data, "live");
    assert_eq!(got[0].last_event_id, format!("{epoch:x}-{}", published + 1));
});
