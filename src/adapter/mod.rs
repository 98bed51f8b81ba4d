//! Framework adapters: each converts [`Sse`](crate::Sse) and [`Resume`](crate::Resume)
//! to one server's types and holds no logic of its own.

#[cfg(feature = "actix")]
mod actix;
#[cfg(feature = "axum")]
mod axum;
#[cfg(feature = "hyper")]
mod hyper;
