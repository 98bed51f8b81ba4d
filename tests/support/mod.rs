//! Shared by the tests that speak HTTP: a raw HTTP/1.1 client, the demo apps
//! run as child processes, a server of a test's own run in-process, and the
//! checks every adapter must pass; and by the Redis tests: the Redis processes
//! they start.
//!
//! Every wait is bounded; nothing asserts on speed.

#![allow(dead_code, unused_macros)] // Each test file uses its own subset.

pub(crate) mod client;
pub(crate) mod demo;
pub(crate) mod redis_servers;
pub(crate) mod server;
#[macro_use]
pub(crate) mod checks;
