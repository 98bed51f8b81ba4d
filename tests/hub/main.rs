//! The hub through the public API, one module a concern: publishing and ids,
//! resume, several topics on one subscription, lag, limits (sizes, topics, age
//! and idle expiry), metrics, closing, the door for backplanes (with a toy one),
//! and concurrency.
//!
//! What a subscription yields is read back with ssekit's own `Decoder`, since one chunk may
//! carry several frames.

mod backplane;
mod closing;
mod concurrency;
mod lag;
mod limits;
mod metrics;
mod publish;
mod resume;
mod support;
mod topics;
