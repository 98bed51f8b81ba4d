//! The benchmark tooling of ssekit, an unpublished package of its own so that
//! building the library, its tests or an example never compiles criterion,
//! plotters or the comparison servers' frameworks. Figures and how to read them:
//! `BENCHMARKS.md` at the repository's root.
//!
//! | tool | run with (from the repository's root) |
//! |---|---|
//! | criterion benches `benches/{encode,fanout,delivery,topic_limit}.rs` | `cargo bench -p ssekit-bench --bench fanout` |
//! | Redis backplane `benches/backplane.rs` | `cargo bench -p ssekit-bench --bench backplane --features redis` |
//! | memory per idle subscriber `src/bin/memory.rs` | `cargo run --release -p ssekit-bench --bin memory` |
//! | load generator `src/bin/loadgen.rs` and the comparison servers `src/bin/peer_*.rs` | `scripts/bench.sh` |
//! | server RSS per idle connection over several server processes (100 000 connections) `src/bin/idle_fleet.rs` | `bench/idle-100k.sh` |
//! | connection churn against a demo `src/bin/churn.rs` | `cargo run --release -p ssekit-bench --bin churn` (see its docs) |
//! | soak of the axum demo `src/bin/soak.rs` | `cargo build --release --example demo --features axum`, then `cargo run --release -p ssekit-bench --bin soak -- --duration 600` |
//!
//! The library holds what the binaries share: [`peer`] for the comparison
//! servers, [`server`] for the tools that start servers as processes, [`client`]
//! for the tools that open event streams.

pub mod client;
pub mod peer;
pub mod server;
