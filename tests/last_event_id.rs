//! Reading `Last-Event-ID` from the header (as bytes) and the query fallback, through the
//! public API.

use http::{HeaderMap, HeaderValue};
use ssekit::{LAST_EVENT_ID, LAST_EVENT_ID_QUERY, LastEventId, LastEventIdError, Resume};

fn headers(values: &[&[u8]]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for value in values {
        map.append(LAST_EVENT_ID, HeaderValue::from_bytes(value).unwrap());
    }
    map
}

fn from_headers(values: &[&[u8]]) -> Result<Option<String>, LastEventIdError> {
    LastEventId::from_headers(&headers(values)).map(|id| id.map(|id| id.as_str().to_owned()))
}

fn from_query(query: &str) -> Result<Option<String>, LastEventIdError> {
    LastEventId::from_query(query).map(|id| id.map(|id| id.as_str().to_owned()))
}

#[test]
fn header_is_read_as_utf8_bytes() {
    let value = HeaderValue::from_bytes("é-1".as_bytes()).unwrap();
    assert!(value.to_str().is_err(), "http rejects non-visible-ASCII in to_str");
    assert_eq!(from_headers(&["é-1".as_bytes()]), Ok(Some("é-1".into())));
    assert_eq!(from_headers(&["日本\u{1F600}".as_bytes()]), Ok(Some("日本\u{1F600}".into())));
    assert_eq!(from_headers(&[b"3fa1-42"]), Ok(Some("3fa1-42".into())));
}

#[test]
fn header_errors() {
    assert_eq!(from_headers(&[b"\xff"]), Err(LastEventIdError::InvalidUtf8));
    assert_eq!(from_headers(&[b"a\xc3"]), Err(LastEventIdError::InvalidUtf8));

    let max = "a".repeat(LastEventId::MAX_LEN);
    assert_eq!(from_headers(&[max.as_bytes()]), Ok(Some(max.clone())));
    let over = "a".repeat(LastEventId::MAX_LEN + 1);
    assert_eq!(
        from_headers(&[over.as_bytes()]),
        Err(LastEventIdError::TooLong { len: LastEventId::MAX_LEN + 1, limit: LastEventId::MAX_LEN })
    );
    // The limit is in bytes, not characters.
    let wide = "é".repeat(LastEventId::MAX_LEN / 2 + 1);
    assert!(matches!(from_headers(&[wide.as_bytes()]), Err(LastEventIdError::TooLong { .. })));

    assert_eq!(from_headers(&[b"a", b"b"]), Err(LastEventIdError::Repeated));
    assert_eq!(from_headers(&[b"a", b"a"]), Err(LastEventIdError::Repeated));
}

#[test]
fn control_characters_are_refused() {
    // `HeaderValue` itself refuses CR, LF and NUL, so these come through `parse` (the same check).
    for bad in [&b"a\rb"[..], b"a\nb", b"a\0b", b"\r\n", b"\0"] {
        assert_eq!(LastEventId::parse(bad), Err(LastEventIdError::ControlCharacter), "{bad:?}");
    }
    for bad in ["a%0Db", "a%0Ab", "a%00b"] {
        let query = format!("{LAST_EVENT_ID_QUERY}={bad}");
        assert_eq!(from_query(&query), Err(LastEventIdError::ControlCharacter), "{query}");
    }
}

#[test]
fn empty_header_means_absent() {
    assert_eq!(from_headers(&[]), Ok(None));
    assert_eq!(from_headers(&[b""]), Ok(None));
    assert_eq!(Resume::from_request(&headers(&[b""]), None), Resume::Live);
    // An empty header falls back to the query.
    let resume = Resume::from_request(&headers(&[b""]), Some("lastEventId=5"));
    assert_eq!(resume, Resume::After(LastEventId::parse(b"5").unwrap()));
}

#[test]
fn query_is_percent_decoded_and_plus_is_a_space() {
    assert_eq!(from_query("lastEventId=3fa1%2D42"), Ok(Some("3fa1-42".into())));
    assert_eq!(from_query("topic=a&lastEventId=a+b"), Ok(Some("a b".into())));
    assert_eq!(from_query("lastEventId=a%2Bb"), Ok(Some("a+b".into())));
    assert_eq!(from_query("lastEventId=%C3%A9"), Ok(Some("é".into())));
    assert_eq!(from_query("lastEventId=%FF"), Err(LastEventIdError::InvalidUtf8));
    assert_eq!(from_query("last%45ventId=7"), Ok(Some("7".into())));
    // A malformed escape is kept as is, like browsers' URLSearchParams do.
    assert_eq!(from_query("lastEventId=%zz"), Ok(Some("%zz".into())));
    assert_eq!(from_query("lastEventId=a=b"), Ok(Some("a=b".into())));
    assert_eq!(from_query("lastEventId="), Ok(None));
    assert_eq!(from_query("lastEventId"), Ok(None));
    assert_eq!(from_query("lasteventid=1&&topic"), Ok(None), "the name is case-sensitive");
    assert_eq!(from_query(""), Ok(None));
    assert_eq!(from_query("lastEventId=1&lastEventId=2"), Err(LastEventIdError::Repeated));
    let over = format!("lastEventId={}", "%41".repeat(LastEventId::MAX_LEN + 1));
    assert!(matches!(from_query(&over), Err(LastEventIdError::TooLong { .. })), "limit on decoded bytes");
}

#[test]
fn resume_from_request() {
    let id = |s: &str| LastEventId::parse(s.as_bytes()).unwrap();
    let none = HeaderMap::new();
    assert_eq!(Resume::from_request(&none, None), Resume::Live);
    assert_eq!(Resume::from_request(&none, Some("topic=x")), Resume::Live);
    assert_eq!(Resume::from_request(&none, Some("lastEventId=a+%C3%A9")), Resume::After(id("a é")));

    // The header wins over the query, also when the query is malformed.
    let header = headers(&[b"from-header"]);
    assert_eq!(Resume::from_request(&header, Some("lastEventId=from-query")), Resume::After(id("from-header")));
    assert_eq!(Resume::from_request(&header, Some("lastEventId=%FF")), Resume::After(id("from-header")));
    // A malformed header is reported, not replaced by the query.
    assert_eq!(
        Resume::from_request(&headers(&[b"\xff"]), Some("lastEventId=ok")),
        Resume::Invalid(LastEventIdError::InvalidUtf8)
    );
    assert_eq!(
        Resume::from_request(&headers(&[b"a", b"b"]), Some("lastEventId=ok")),
        Resume::Invalid(LastEventIdError::Repeated)
    );
    assert_eq!(
        Resume::from_request(&none, Some("lastEventId=%00")),
        Resume::Invalid(LastEventIdError::ControlCharacter)
    );
}

#[test]
fn display_and_errors() {
    let id = LastEventId::parse("é-1".as_bytes()).unwrap();
    assert_eq!(id.to_string(), "é-1");
    assert_eq!(format!("{id:?}"), "LastEventId(\"é-1\")");
    assert_eq!(LastEventIdError::Repeated.to_string(), "last-event-id is given more than once");
    fn assert_error<T: std::error::Error + Send + Sync + Clone + 'static>() {}
    assert_error::<LastEventIdError>();
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Resume>();
}
