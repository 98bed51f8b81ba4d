//! Resume from a `Last-Event-ID`: exact within the retained window, otherwise a
//! `reset` event that says why (evicted, epoch, malformed, future) and whose id
//! resumes exactly.

use ssekit::{EventId, Hub, LastEventIdError, Resume};

use crate::support::{Reader, after, assert_reset, data, datas, hub_with, id_of, offsets};

#[tokio::test]
async fn resume_from_each_position_in_the_window() {
    // History 5 of 8 events: offsets 4..=8 retained, so resuming after 3..=8 is exact.
    for last_seen in 3..=8u64 {
        let (hub, epoch) = hub_with(5, 8);
        let mut reader = Reader::new(hub.try_subscribe("t", after(EventId::new(epoch, last_seen))).unwrap());
        let missed = reader.take((8 - last_seen) as usize).await;
        assert_eq!(offsets(&missed), (last_seen + 1..=8).collect::<Vec<_>>(), "resume after {last_seen}");
        assert!(missed.iter().all(|e| e.event == "message"));
        reader.assert_idle();
        let id = hub.try_publish("t", data("live")).unwrap();
        let live = reader.take(1).await;
        assert_eq!((live[0].data.as_str(), id_of(&live[0])), ("live", id));
        reader.assert_idle();
        assert_eq!(hub.metrics().resets_evicted, 0);
    }
}

#[tokio::test]
async fn resume_at_the_window_edge_after_eviction() {
    // History 3 of 5 events: offsets 3..=5 retained.
    let (hub, epoch) = hub_with(3, 5);
    let mut exact = Reader::new(hub.try_subscribe("t", after(EventId::new(epoch, 2))).unwrap());
    assert_eq!(datas(&exact.take(3).await), ["e3", "e4", "e5"]);
    exact.assert_idle();

    for evicted in [1, 0] {
        let mut reader = Reader::new(hub.try_subscribe("t", after(EventId::new(epoch, evicted))).unwrap());
        let reset = reader.take(1).await;
        assert_eq!(assert_reset(&reset[0], "evicted"), EventId::new(epoch, 5), "continues live");
        reader.assert_idle();
    }
    hub.try_publish("t", data("e6")).unwrap();
    assert_eq!(datas(&exact.take(1).await), ["e6"]);
    // Offsets 4..=6 now: the edge moved with the eviction.
    let mut reader = Reader::new(hub.try_subscribe("t", after(EventId::new(epoch, 2))).unwrap());
    assert_eq!(assert_reset(&reader.take(1).await[0], "evicted"), EventId::new(epoch, 6));
    let mut reader = Reader::new(hub.try_subscribe("t", after(EventId::new(epoch, 3))).unwrap());
    assert_eq!(datas(&reader.take(3).await), ["e4", "e5", "e6"]);
    reader.assert_idle();
    assert_eq!(hub.metrics().resets_evicted, 3);
}

#[tokio::test]
async fn resume_from_another_epoch_resets_then_continues_live() {
    let (hub, epoch) = hub_with(10, 3);
    let other = EventId::new(epoch ^ 1, 2);
    let mut reader = Reader::new(hub.try_subscribe("t", after(other)).unwrap());
    let reset = reader.take(1).await;
    assert_eq!(assert_reset(&reset[0], "epoch"), EventId::new(epoch, 3));
    reader.assert_idle();
    hub.try_publish("t", data("e4")).unwrap();
    assert_eq!(datas(&reader.take(1).await), ["e4"]);
    assert_eq!(hub.metrics().resets_epoch, 1);
}

#[tokio::test]
async fn malformed_ids_reset() {
    let (hub, epoch) = hub_with(10, 2);
    let malformed = [
        after("not-an-id"),
        after("3"),
        after(format!("{epoch:x}-01")),
        // (Uppercase hex is tested in `tests/hostile.rs`, on an epoch known to have a letter:
        // a random epoch may be all digits, and then its uppercase form is the canonical id.)
        after(format!("{epoch:x}-1-1")),
        after(""),
        Resume::Invalid(LastEventIdError::InvalidUtf8),
        Resume::Invalid(LastEventIdError::ControlCharacter),
    ];
    let count = malformed.len() as u64;
    for resume in malformed {
        let mut reader = Reader::new(hub.try_subscribe("t", resume.clone()).unwrap());
        let reset = reader.take(1).await;
        assert_eq!(assert_reset(&reset[0], "malformed"), EventId::new(epoch, 2), "{resume:?}");
        reader.assert_idle();
    }
    // From a request: an id header that is not UTF-8.
    let mut headers = http::HeaderMap::new();
    headers.insert(ssekit::LAST_EVENT_ID, http::HeaderValue::from_bytes(b"\xff\xfe").unwrap());
    let mut reader = Reader::new(hub.try_subscribe("t", Resume::from_request(&headers, None)).unwrap());
    assert_reset(&reader.take(1).await[0], "malformed");
    assert_eq!(hub.metrics().resets_malformed, count + 1);
}

#[tokio::test]
async fn ids_from_the_future_reset() {
    let (hub, epoch) = hub_with(10, 3);
    for offset in [4, 5, u64::MAX] {
        let mut reader = Reader::new(hub.try_subscribe("t", after(EventId::new(epoch, offset))).unwrap());
        let reset = reader.take(1).await;
        assert_eq!(assert_reset(&reset[0], "future"), EventId::new(epoch, 3), "offset {offset}");
        reader.assert_idle();
    }
    assert_eq!(hub.metrics().resets_future, 3);
    // On an empty topic, too.
    let mut reader = Reader::new(hub.try_subscribe("empty", after(EventId::new(epoch, 1))).unwrap());
    let reset = &reader.take(1).await[0];
    assert_eq!(reset.event, "reset");
    assert_eq!(id_of(reset).offset(), 0);
}

#[tokio::test]
async fn reset_event_is_configurable_and_its_id_resumes_exactly() {
    let hub =
        Hub::builder().history(2).reset_event("resync").reset_data(|topic, reason| format!("{topic}/{reason}")).build();
    for i in 1..=5 {
        hub.try_publish("room", data(format!("e{i}"))).unwrap();
    }
    let epoch = hub.try_publish("room", data("e6")).unwrap().epoch();
    let mut reader = Reader::new(hub.try_subscribe("room", after(EventId::new(epoch, 1))).unwrap());
    let reset = reader.take(1).await.remove(0);
    assert_eq!((reset.event.as_str(), reset.data.as_str()), ("resync", "room/evicted"));
    let reset_id = id_of(&reset);
    assert_eq!(reset_id, EventId::new(epoch, 6));

    // A client that saw the reset resumes from its id exactly: no reset, only what follows.
    let next = hub.try_publish("room", data("after reset")).unwrap();
    let mut resumed = Reader::new(hub.try_subscribe("room", after(reset_id)).unwrap());
    let events = resumed.take(1).await;
    assert_eq!((events[0].event.as_str(), id_of(&events[0])), ("message", next));
    resumed.assert_idle();
    assert_eq!(datas(&reader.take(1).await), ["after reset"]);

    // The other reasons, on fresh topics of the same hub.
    for (i, (reason, make)) in [
        ("epoch", Box::new(|e: u64| after(EventId::new(e ^ 1, 1))) as Box<dyn Fn(u64) -> Resume>),
        ("malformed", Box::new(|_| Resume::Invalid(LastEventIdError::InvalidUtf8))),
        ("future", Box::new(|e| after(EventId::new(e, 50)))),
    ]
    .into_iter()
    .enumerate()
    {
        let topic = format!("fresh{i}");
        let epoch = hub.try_publish(&topic, data("a")).unwrap().epoch();
        let last = hub.try_publish(&topic, data("b")).unwrap();
        let mut reader = Reader::new(hub.try_subscribe(&topic, make(epoch)).unwrap());
        let reset = reader.take(1).await.remove(0);
        assert_eq!((reset.event.as_str(), reset.data.clone()), ("resync", format!("{topic}/{reason}")));
        assert_eq!(id_of(&reset), last);
        let next = hub.try_publish(&topic, data("c")).unwrap();
        let mut resumed = Reader::new(hub.try_subscribe(&topic, after(id_of(&reset))).unwrap());
        assert_eq!(offsets(&resumed.take(1).await), [next.offset()]);
        resumed.assert_idle();
    }
}
