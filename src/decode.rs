//! Placeholder: the spec decoder.
