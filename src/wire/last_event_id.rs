//! Reading `Last-Event-ID` from a request: [`LastEventId`] and where a stream
//! starts, [`Resume`].

use std::fmt;

use http::HeaderMap;

/// The name of the request header a reconnecting `EventSource` sends.
pub const LAST_EVENT_ID: http::HeaderName = http::HeaderName::from_static("last-event-id");

/// The query parameter read when the header is absent (for clients that cannot
/// set headers, and for a first connection that resumes a stored position).
pub const LAST_EVENT_ID_QUERY: &str = "lastEventId";

/// A well-formed `Last-Event-ID`: UTF-8, at most [`LastEventId::MAX_LEN`] bytes,
/// no CR, LF or NUL.
///
/// Browsers send the header as UTF-8 bytes, which `HeaderValue::to_str` rejects;
/// this type reads the bytes.
///
/// # Examples
///
/// ```
/// use ssekit::LastEventId;
///
/// let mut headers = http::HeaderMap::new();
/// headers.insert("last-event-id", http::HeaderValue::from_static("3fa1-42"));
/// let id = LastEventId::from_headers(&headers)?.unwrap();
/// assert_eq!(id.as_str(), "3fa1-42");
/// # Ok::<(), ssekit::LastEventIdError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct LastEventId(String);

impl LastEventId {
    /// The longest id accepted, in bytes. Ids ssekit issues are far shorter;
    /// browsers pre-flight cross-origin requests whose id exceeds 128 bytes.
    pub const MAX_LEN: usize = 256;

    /// Checks raw header bytes.
    ///
    /// # Errors
    ///
    /// [`LastEventIdError`] when the value is too long, not UTF-8, or contains
    /// CR, LF or NUL.
    ///
    /// # Examples
    ///
    /// ```
    /// use ssekit::{LastEventId, LastEventIdError};
    ///
    /// assert_eq!(LastEventId::parse("héllo".as_bytes())?.as_str(), "héllo");
    /// assert_eq!(LastEventId::parse(b"\xff"), Err(LastEventIdError::InvalidUtf8));
    /// # Ok::<(), LastEventIdError>(())
    /// ```
    pub fn parse(bytes: &[u8]) -> Result<Self, LastEventIdError> {
        Self::parse_with_max_len(bytes, Self::MAX_LEN)
    }

    /// [`LastEventId::parse`] with another length limit, for ids of your own
    /// longer than [`LastEventId::MAX_LEN`] (a hub's ids never are).
    ///
    /// # Errors
    ///
    /// As [`LastEventId::parse`], with `max_len` as the limit.
    ///
    /// # Examples
    ///
    /// ```
    /// use ssekit::{LastEventId, LastEventIdError};
    ///
    /// assert_eq!(LastEventId::parse_with_max_len(b"12345", 4), Err(LastEventIdError::TooLong { len: 5, limit: 4 }));
    /// ```
    pub fn parse_with_max_len(bytes: &[u8], max_len: usize) -> Result<Self, LastEventIdError> {
        if bytes.len() > max_len {
            return Err(LastEventIdError::TooLong { len: bytes.len(), limit: max_len });
        }
        let text = std::str::from_utf8(bytes).map_err(|_| LastEventIdError::InvalidUtf8)?;
        if text.bytes().any(|b| matches!(b, b'\r' | b'\n' | b'\0')) {
            return Err(LastEventIdError::ControlCharacter);
        }
        Ok(Self(text.to_owned()))
    }

    /// The `Last-Event-ID` header, if present and not empty.
    ///
    /// # Errors
    ///
    /// As [`LastEventId::parse`]; several headers are an error too.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ssekit::LastEventId::from_headers(&http::HeaderMap::new()), Ok(None));
    /// ```
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, LastEventIdError> {
        Self::from_header_values(headers.get_all(LAST_EVENT_ID).iter().map(|value| value.as_bytes()))
    }

    /// [`LastEventId::from_headers`] over the raw values of every `Last-Event-ID`
    /// header, for servers with their own header types.
    pub(crate) fn from_header_values<'a>(
        values: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Option<Self>, LastEventIdError> {
        let mut values = values.into_iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(LastEventIdError::Repeated);
        }
        non_empty(value)
    }

    /// The `lastEventId` parameter of a raw (still percent-encoded) query string,
    /// if present and not empty.
    ///
    /// # Errors
    ///
    /// As [`LastEventId::parse`], on the decoded bytes (so `%FF` is
    /// [`LastEventIdError::InvalidUtf8`]); several parameters are an error too.
    ///
    /// # Examples
    ///
    /// ```
    /// let id = ssekit::LastEventId::from_query("topic=a&lastEventId=3fa1%2D42")?.unwrap();
    /// assert_eq!(id.as_str(), "3fa1-42");
    /// # Ok::<(), ssekit::LastEventIdError>(())
    /// ```
    pub fn from_query(query: &str) -> Result<Option<Self>, LastEventIdError> {
        let mut found = None;
        for pair in query.as_bytes().split(|&b| b == b'&') {
            let (key, value) = match memchr::memchr(b'=', pair) {
                Some(eq) => (&pair[..eq], &pair[eq + 1..]),
                None => (pair, &b""[..]),
            };
            if form_decode(key) == LAST_EVENT_ID_QUERY.as_bytes() {
                if found.is_some() {
                    return Err(LastEventIdError::Repeated);
                }
                found = Some(form_decode(value));
            }
        }
        match found {
            Some(value) => non_empty(&value),
            None => Ok(None),
        }
    }

    /// The id as text.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ssekit::LastEventId::parse(b"7")?.as_str(), "7");
    /// # Ok::<(), ssekit::LastEventIdError>(())
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `application/x-www-form-urlencoded` decoding to bytes: `+` is a space, `%XX` a byte.
/// Kept as bytes so that [`LastEventId::parse`] sees (and refuses) invalid UTF-8 instead of
/// a lossy replacement.
fn form_decode(bytes: &[u8]) -> Vec<u8> {
    let plus: Vec<u8> = bytes.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
    percent_encoding::percent_decode(&plus).collect()
}

fn non_empty(bytes: &[u8]) -> Result<Option<LastEventId>, LastEventIdError> {
    if bytes.is_empty() { Ok(None) } else { LastEventId::parse(bytes).map(Some) }
}

impl fmt::Debug for LastEventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LastEventId").field(&self.0).finish()
    }
}

impl fmt::Display for LastEventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a `Last-Event-ID` value is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LastEventIdError {
    /// Longer than the limit.
    #[error("last-event-id is {len} bytes, over the limit of {limit}")]
    TooLong {
        /// Length received, in bytes.
        len: usize,
        /// The limit, in bytes.
        limit: usize,
    },
    /// Not UTF-8.
    #[error("last-event-id is not valid UTF-8")]
    InvalidUtf8,
    /// Contains CR, LF or NUL, which no event id can contain.
    #[error("last-event-id contains CR, LF or NUL")]
    ControlCharacter,
    /// Given more than once.
    #[error("last-event-id is given more than once")]
    Repeated,
}

/// Where a new stream starts: what a request says about the events its client has.
///
/// A malformed id is kept as such, not treated as absent: the hub answers it with
/// a `reset` event so the page knows to refetch its state.
///
/// # Examples
///
/// ```
/// use ssekit::Resume;
///
/// let mut headers = http::HeaderMap::new();
/// headers.insert("last-event-id", http::HeaderValue::from_bytes(b"\xff").unwrap());
/// assert!(matches!(Resume::from_request(&headers, None), Resume::Invalid(_)));
/// assert!(matches!(Resume::from_request(&http::HeaderMap::new(), Some("lastEventId=1-2")), Resume::After(_)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Resume {
    /// A new client: start with the next event published.
    #[default]
    Live,
    /// A returning client: start after this id.
    After(LastEventId),
    /// The client sent an id that cannot be one.
    Invalid(LastEventIdError),
}

impl Resume {
    /// Reads the `Last-Event-ID` header or, when there is none, the `lastEventId`
    /// query parameter of the raw query string.
    ///
    /// # Examples
    ///
    /// ```
    /// let resume = ssekit::Resume::from_request(&http::HeaderMap::new(), Some("topic=news"));
    /// assert_eq!(resume, ssekit::Resume::Live);
    /// ```
    pub fn from_request(headers: &HeaderMap, query: Option<&str>) -> Self {
        Self::from_header_values(headers.get_all(LAST_EVENT_ID).iter().map(|value| value.as_bytes()), query)
    }

    /// [`Resume::from_request`] over the raw values of every `Last-Event-ID`
    /// header, for servers with their own header types.
    pub(crate) fn from_header_values<'a>(values: impl IntoIterator<Item = &'a [u8]>, query: Option<&str>) -> Self {
        match LastEventId::from_header_values(values) {
            Ok(None) => query.map_or(Ok(None), LastEventId::from_query).into(),
            found => found.into(),
        }
    }
}

impl From<Result<Option<LastEventId>, LastEventIdError>> for Resume {
    fn from(value: Result<Option<LastEventId>, LastEventIdError>) -> Self {
        match value {
            Ok(Some(id)) => Self::After(id),
            Ok(None) => Self::Live,
            Err(err) => Self::Invalid(err),
        }
    }
}

impl From<Option<LastEventId>> for Resume {
    fn from(value: Option<LastEventId>) -> Self {
        Ok(value).into()
    }
}

impl From<LastEventId> for Resume {
    fn from(value: LastEventId) -> Self {
        Self::After(value)
    }
}
