//! Encode then decode: an `Event` of arbitrary fields either fails to encode,
//! for a reason its fields justify, or decodes back to the same event (CR and
//! CRLF in data arrive as LF). The same event published to a hub arrives the
//! same way, with the hub's id.
#![no_main]

use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use arbitrary::Arbitrary;
use futures_core::Stream;
use libfuzzer_sys::fuzz_target;
use ssekit::{Decoder, Event, EventError, Frame, Hub, MessageEvent, PublishError};

#[derive(Debug, Arbitrary)]
struct Input {
    data: Option<String>,
    event: Option<String>,
    id: Option<String>,
    retry_ms: Option<u64>,
    comments: Vec<String>,
}

fn breaks(s: &str) -> bool {
    s.contains(['\r', '\n'])
}

fn build(input: &Input, with_id: bool) -> Event {
    let mut event = Event::new();
    for comment in &input.comments {
        event = event.comment(comment);
    }
    if let Some(data) = &input.data {
        event = event.data(data.as_str());
    }
    if let Some(name) = &input.event {
        event = event.event(name.as_str());
    }
    if let (Some(id), true) = (&input.id, with_id) {
        event = event.id(id.as_str());
    }
    if let Some(ms) = input.retry_ms {
        event = event.retry(Duration::from_millis(ms));
    }
    event
}

/// What a browser dispatches for `input` with last event id `id`, if anything.
fn expected(input: &Input, id: &str) -> Option<MessageEvent> {
    let data = input.data.as_ref()?.replace("\r\n", "\n").replace('\r', "\n");
    let event = match input.event.as_deref() {
        None | Some("") => "message".to_owned(),
        Some(name) => name.to_owned(),
    };
    Some(MessageEvent { event, data, last_event_id: id.to_owned(), retry: input.retry_ms.map(Duration::from_millis) })
}

fn decode(bytes: &[u8]) -> (Vec<MessageEvent>, Decoder) {
    let mut decoder = Decoder::new().with_max_line_length(usize::MAX).with_max_event_size(usize::MAX);
    let events = decoder.feed(bytes).expect("no limits");
    (events, decoder)
}

fuzz_target!(|input: Input| {
    let bad_event = input.event.as_deref().is_some_and(breaks);
    let bad_id = input.id.as_deref().is_some_and(|id| breaks(id) || id.contains('\0'));

    match build(&input, true).encode() {
        Err(EventError::EventLineBreak) => assert!(bad_event),
        Err(EventError::IdLineBreak | EventError::IdNul) => assert!(bad_id && !bad_event),
        Err(EventError::Empty) => assert!(
            input.data.is_none()
                && input.event.is_none()
                && input.id.is_none()
                && input.retry_ms.is_none()
                && input.comments.is_empty()
        ),
        Err(err) => panic!("unexpected {err}"),
        Ok(frame) => {
            assert!(!bad_event && !bad_id);
            assert_eq!(Frame::new(frame.as_bytes().clone()).as_ref(), Ok(&frame));
            let (events, decoder) = decode(frame.as_bytes());
            let id = input.id.as_deref().unwrap_or("");
            assert_eq!(events, Vec::from_iter(expected(&input, id)));
            assert_eq!(decoder.resume_id(), id);
            assert_eq!(decoder.reconnection_time(), input.retry_ms.map(Duration::from_millis));
        }
    }

    // Through a hub: refused with nothing published, or delivered as encoded.
    let hub = Hub::new();
    let mut subscription = hub.try_subscribe("t", ssekit::Resume::Live).unwrap();
    let event = build(&input, false);
    match hub.try_publish("t", event) {
        Err(PublishError::Event(_)) => {
            assert!(bad_event);
            assert_eq!(hub.metrics().published, 0);
        }
        Err(PublishError::TooLarge { .. }) => assert_eq!(hub.metrics().published, 0),
        Err(err) => panic!("unexpected {err}"),
        Ok(id) => {
            assert!(!bad_event);
            let Poll::Ready(Some(chunk)) =
                Pin::new(&mut subscription).poll_next(&mut Context::from_waker(Waker::noop()))
            else {
                panic!("published event not delivered");
            };
            let (events, decoder) = decode(&chunk);
            assert_eq!(events, Vec::from_iter(expected(&input, &id.to_string())));
            assert_eq!(decoder.resume_id(), id.to_string());
        }
    }
    assert!(Pin::new(&mut subscription).poll_next(&mut Context::from_waker(Waker::noop())).is_pending());
});
