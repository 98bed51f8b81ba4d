//! What a hub appends: an event encoded once, without an id, then finished
//! ("sealed") with the id the hub or its backplane assigned.

use bytes::{Bytes, BytesMut};

use super::error::PublishError;
use super::event_id::EventId;
use crate::wire::encode::{id_tail_len, put_id_tail};
use crate::wire::event::Event;
use crate::wire::frame::Frame;

/// Room for the end of a frame with a hub's id: `id: <id>\n\n`.
pub(crate) const ID_TAIL: usize = id_tail_len(EventId::MAX_LEN);

/// The body of `event`, checked: encoded without an id (the hub assigns ids)
/// and without the final blank line, with room reserved for [`seal`].
pub(crate) fn event_body(event: &Event) -> Result<BytesMut, PublishError> {
    event.validate()?;
    if event.id.is_some() {
        return Err(PublishError::IdSet);
    }
    Ok(event.encode_body(ID_TAIL))
}

/// [`event_body`] of a frame the application encoded.
pub(crate) fn frame_body(frame: &Frame) -> Result<BytesMut, PublishError> {
    if frame.has_id() {
        return Err(PublishError::IdSet);
    }
    let body = frame.body();
    let mut buf = BytesMut::with_capacity(body.len() + ID_TAIL);
    buf.extend_from_slice(body);
    Ok(buf)
}

/// The frame of `body` with `id`: in place, into the room [`event_body`]
/// reserved.
pub(crate) fn seal(mut body: BytesMut, id: EventId) -> Bytes {
    put_id_tail(&mut body, |buf| id.write(buf));
    body.freeze()
}

/// The frame of a body read from a shared log, with `id`: one copy.
pub(crate) fn seal_copy(body: &[u8], id: EventId) -> Bytes {
    let mut buf = BytesMut::with_capacity(body.len() + ID_TAIL);
    buf.extend_from_slice(body);
    seal(buf, id)
}
