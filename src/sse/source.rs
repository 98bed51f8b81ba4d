//! What a [`Sse`](super::Sse) stream can send: anything [`IntoFrame`] (events,
//! frames, results of them) gathered by [`Events`], or a hub [`Subscription`].
//! [`Source`] is the sealed trait over both.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;

use crate::hub::{BoxError, MAX_BATCH, Subscription};
use crate::wire::event::Event;
use crate::wire::frame::Frame;

/// Anything a [`Sse`](super::Sse) stream can send: an [`Event`] (encoded on the way), a
/// [`Frame`], or a `Result` of either, whose error ends the stream.
pub trait IntoFrame {
    /// The encoded frame.
    ///
    /// # Errors
    ///
    /// The item's own error, or the [`EventError`](crate::EventError) of an
    /// event that breaks a wire rule.
    fn into_frame(self) -> Result<Frame, BoxError>;
}

impl IntoFrame for Event {
    fn into_frame(self) -> Result<Frame, BoxError> {
        Ok(self.encode()?)
    }
}

impl IntoFrame for Frame {
    fn into_frame(self) -> Result<Frame, BoxError> {
        Ok(self)
    }
}

impl<T: IntoFrame, E: Into<BoxError>> IntoFrame for Result<T, E> {
    fn into_frame(self) -> Result<Frame, BoxError> {
        self.map_err(Into::into)?.into_frame()
    }
}

mod sealed {
    #[allow(unreachable_pub)]
    pub trait Sealed {}
}

/// What a [`Sse`](super::Sse) stream sends: a hub [`Subscription`] or [`Events`].
pub trait Source: sealed::Sealed {
    /// The next chunk of complete frames.
    #[doc(hidden)]
    fn poll_chunk(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BoxError>>>;

    /// The stream is ending at its maximum lifetime.
    #[doc(hidden)]
    fn lifetime_over(self: Pin<&mut Self>) {}

    /// Whether data waits that the client has not taken.
    #[doc(hidden)]
    fn behind(&self) -> bool {
        false
    }

    /// The stream is dropped because its client stalled.
    #[doc(hidden)]
    fn stalled(self: Pin<&mut Self>) {}

    /// A frame taken from the underlying stream but not sent yet, to send before
    /// the stream ends.
    #[doc(hidden)]
    fn take_held(self: Pin<&mut Self>) -> Option<Bytes> {
        None
    }
}

impl sealed::Sealed for Subscription {}

impl Source for Subscription {
    #[inline]
    fn poll_chunk(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BoxError>>> {
        self.poll_next(cx).map(|chunk| chunk.map(Ok))
    }

    fn lifetime_over(self: Pin<&mut Self>) {
        self.get_mut().lifetime_over();
    }

    fn behind(&self) -> bool {
        Subscription::behind(self)
    }

    fn stalled(self: Pin<&mut Self>) {
        self.get_mut().stalled();
    }

    fn take_held(self: Pin<&mut Self>) -> Option<Bytes> {
        self.get_mut().take_held()
    }
}

pin_project_lite::pin_project! {
    /// Any stream of [`IntoFrame`] items as a [`Source`]: items that are ready
    /// together are sent as one chunk.
    pub struct Events<S> {
        #[pin]
        stream: S,
        // A frame that did not fit in the last chunk: the first of the next.
        next: Option<Bytes>,
        error: Option<BoxError>,
        done: bool,
    }
}

impl<S> Events<S> {
    pub(super) fn new(stream: S) -> Self {
        Self { stream, next: None, error: None, done: false }
    }
}

impl<S> sealed::Sealed for Events<S> {}

impl<S> Source for Events<S>
where
    S: Stream,
    S::Item: IntoFrame,
{
    fn poll_chunk(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BoxError>>> {
        let mut this = self.project();
        let first = match this.next.take() {
            Some(frame) => frame,
            None => {
                if let Some(error) = this.error.take() {
                    return Poll::Ready(Some(Err(error)));
                }
                if *this.done {
                    return Poll::Ready(None);
                }
                match this.stream.as_mut().poll_next(cx) {
                    Poll::Ready(Some(item)) => item.into_frame()?.into_bytes(),
                    Poll::Ready(None) => {
                        *this.done = true;
                        return Poll::Ready(None);
                    }
                    Poll::Pending => return Poll::Pending,
                }
            }
        };
        let mut batch: Option<BytesMut> = None;
        while !*this.done && this.error.is_none() {
            match this.stream.as_mut().poll_next(cx) {
                Poll::Ready(Some(item)) => match item.into_frame() {
                    Ok(frame) => {
                        let len = batch.as_ref().map_or(first.len(), BytesMut::len);
                        if len + frame.as_ref().len() > MAX_BATCH {
                            *this.next = Some(frame.into_bytes());
                            break;
                        }
                        batch.get_or_insert_with(|| BytesMut::from(&first[..])).extend_from_slice(frame.as_ref())
                    }
                    Err(error) => {
                        *this.error = Some(error);
                        break;
                    }
                },
                Poll::Ready(None) => {
                    *this.done = true;
                    break;
                }
                Poll::Pending => break,
            }
        }
        Poll::Ready(Some(Ok(batch.map_or(first, BytesMut::freeze))))
    }

    fn take_held(self: Pin<&mut Self>) -> Option<Bytes> {
        self.project().next.take()
    }
}

impl<S> fmt::Debug for Events<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events").field("done", &self.done).finish_non_exhaustive()
    }
}

/// A stream of no events, for [`Sse::try_later`](super::Sse::try_later).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEvents;

impl Stream for NoEvents {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Event>> {
        Poll::Ready(None)
    }
}
