//! No code of its own: this package holds the tests of ssekit that need heavy
//! tools (see `tests/` and `Cargo.toml`).
