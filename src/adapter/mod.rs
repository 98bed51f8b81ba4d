//! Framework adapters: each converts [`Sse`] and [`Resume`](crate::Resume) to
//! one server's types and holds no logic another needs. What they share is
//! here: the answer to a refused subscription, and the socket setting that lets
//! go of a client that stopped reading ([`set_stall_timeout`]).
//!
//! Adapters import the stream, the hub and the wire format; nothing imports them.

#[cfg(feature = "actix")]
mod actix;
#[cfg(feature = "axum")]
mod axum;
#[cfg(feature = "hyper")]
mod hyper;
#[cfg(feature = "lean")]
#[cfg_attr(docsrs, doc(cfg(feature = "lean")))]
pub mod lean;
#[cfg(all(any(unix, windows), any(feature = "hyper", feature = "actix")))]
mod tcp;

#[cfg(all(any(unix, windows), any(feature = "hyper", feature = "actix")))]
pub use tcp::set_stall_timeout;

#[cfg(any(feature = "axum", feature = "actix"))]
use crate::hub::SubscribeError;
#[cfg(any(feature = "axum", feature = "actix", feature = "lean"))]
use crate::sse::{Events, NoEvents, Sse, SseConfig};

/// The answer to a refused subscription: a [`Sse::try_later`]-like stream when
/// the refusal is temporary (a retry of 2 to 5 s, spread so that the clients
/// of a restarting server do not all come back at once), `None` when the
/// client should not retry.
#[cfg(any(feature = "axum", feature = "actix"))]
fn try_later(error: &SubscribeError) -> Option<Sse<Events<NoEvents>>> {
    error.is_temporary().then(later)
}

/// "Come back later" as `EventSource` understands it: a stream with a retry
/// hint of 2 to 5 s (spread so that the clients of a restarting server do not
/// all come back at once) that ends at once.
#[cfg(any(feature = "axum", feature = "actix", feature = "lean"))]
fn later() -> Sse<Events<NoEvents>> {
    use std::time::Duration;
    let config = SseConfig::new().retry(Duration::from_secs(2)).retry_jitter(Duration::from_secs(3));
    Sse::new(NoEvents).with_config(config)
}
