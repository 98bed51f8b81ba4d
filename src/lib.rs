//! ssekit: Server-Sent Events for Rust servers.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod decode;

pub use decode::{DecodeError, Decoder, MessageEvent};
