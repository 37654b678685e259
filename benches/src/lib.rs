//! Benchmarks only: see `benches/verify.rs` and BENCHMARKS.md.

#![forbid(unsafe_code)]
