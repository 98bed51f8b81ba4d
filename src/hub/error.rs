//! The hub's errors, one enum per failure: a topic refused ([`TopicError`]), a
//! publish ([`PublishError`]), a subscription ([`SubscribeError`]), a hub that
//! cannot be built ([`BuildError`]).

use super::backplane::BackplaneError;
use crate::wire::event::EventError;

/// The error type of streams and backplanes: whatever the source's error was,
/// boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A topic name or count the hub refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// The name is empty or too long.
    #[error("topic name of {len} bytes is not within 1..={max_len}")]
    InvalidName {
        /// Length given.
        len: usize,
        /// The limit.
        max_len: usize,
    },
    /// The hub holds as many topics as it may.
    #[error("topic limit of {limit} reached")]
    Limit {
        /// The limit.
        limit: usize,
    },
}

/// Why a publish failed.
///
/// Nothing was published, except after [`PublishError::Backplane`] with an
/// unknown outcome ([`PublishError::is_outcome_unknown`]): the shared log may
/// then hold the event, and every node deliver it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The event breaks a wire rule.
    #[error(transparent)]
    Event(#[from] EventError),
    /// The event has an id; the hub assigns ids itself.
    #[error("event already has an id; the hub assigns ids")]
    IdSet,
    /// The encoded event is larger than a topic's log may hold.
    #[error("event of {len} bytes is over the limit of {limit}")]
    TooLarge {
        /// Encoded length without the id.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The topic is refused.
    #[error(transparent)]
    Topic(#[from] TopicError),
    /// The hub is closed.
    #[error("hub is closed")]
    Closed,
    /// The key of [`Hub::publish_once`](crate::Hub::publish_once) is empty or
    /// too long.
    #[error("publish key of {len} bytes is not within 1..={max}")]
    InvalidKey {
        /// Its length.
        len: usize,
        /// The longest key.
        max: usize,
    },
    /// The hub publishes through a backplane, which takes a round trip: use
    /// [`Hub::publish`](crate::Hub::publish) and await it. Nothing was sent;
    /// trying again without awaiting never succeeds on this hub.
    #[error("this hub publishes through a backplane: await `Hub::publish` instead")]
    WouldBlock,
    /// The backplane did not confirm the append; its error says whether the
    /// event may have been appended.
    #[error(transparent)]
    Backplane(#[from] BackplaneError),
}

impl PublishError {
    /// Whether the event may have been published anyway: the backplane took the
    /// request but its answer was lost (a timeout, a dropped connection). A
    /// caller that retries may then publish the event twice.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!ssekit::PublishError::Closed.is_outcome_unknown());
    /// ```
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, Self::Backplane(err) if err.is_outcome_unknown())
    }
}

/// Why a subscription was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The topic is refused.
    #[error(transparent)]
    Topic(#[from] TopicError),
    /// The hub is closed.
    #[error("hub is closed")]
    Closed,
    /// No topic, or more than a subscription may follow
    /// ([`HubBuilder::max_topics_per_subscription`](crate::HubBuilder::max_topics_per_subscription)).
    #[error("a subscription follows 1..={max} topics, not {count}")]
    Topics {
        /// Topics asked for (duplicates removed).
        count: usize,
        /// The limit.
        max: usize,
    },
}

impl SubscribeError {
    /// Whether the client may succeed later: the hub is closing (a restart), or
    /// it holds as many topics as it may (idle ones are dropped as they expire,
    /// see [`HubBuilder::idle_ttl`](crate::HubBuilder::idle_ttl)).
    /// A name the hub refuses will not do later either.
    ///
    /// An SSE endpoint answers a temporary refusal with a stream that sets the
    /// retry delay and ends ([`Sse::try_later`](crate::Sse::try_later)):
    /// `EventSource` gives up for good on any status but `200`. With the `axum`
    /// or `actix` feature, the error is itself that answer (and `400` for the
    /// others), so a handler can return `hub.sse(..).await` as is.
    ///
    /// # Examples
    ///
    /// ```
    /// let hub = ssekit::Hub::new();
    /// hub.close();
    /// assert!(hub.try_subscribe("news", ssekit::Resume::Live).unwrap_err().is_temporary());
    /// ```
    pub fn is_temporary(&self) -> bool {
        matches!(self, Self::Closed | Self::Topic(TopicError::Limit { .. }))
    }
}

/// Why [`HubBuilder::try_build`](crate::HubBuilder::try_build) built no hub.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The reset event's name could not be sent (it has CR or LF).
    #[error("the reset event's name cannot be sent")]
    ResetEvent(#[source] EventError),
    /// The backplane refused to feed this hub (it already feeds another).
    #[error("backplane refused the hub")]
    Backplane(#[source] BackplaneError),
}
