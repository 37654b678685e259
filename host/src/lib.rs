//! Runs hooksign's components on wasmtime: the signer (its signing
//! interface, one pre-instantiated component, a fresh store per use; traps
//! and host failures come back as [`HostError`], never as panics) and the
//! edge service (`hooksign serve`, with its key-value store and outbound
//! policy). The `hooksign` command line is `src/main.rs`.

#![forbid(unsafe_code)]

mod body_deadline;
mod edge_imports;
mod engine;
mod http_send;
mod outbound;
pub mod serve;
mod signer;
pub mod store;
mod tls_send;
mod vectors;

pub use edge_imports::variables_from;
pub use engine::{MAX_INSTANCE_MEMORY, MAX_POOLED_INSTANCES};
pub use signer::{
    DEFAULT_CALL_DEADLINE, HostError, KeyringHandle, Session, SignerComponent, VerifiedValues,
};
pub use vectors::ComponentBackend;

use std::path::PathBuf;

/// Where `cargo build --profile component --target wasm32-wasip2 -p hooksign-signer`
/// writes the component: under `$CARGO_TARGET_DIR`, or `target/` of the
/// current directory.
pub fn default_component_path() -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    target.join("wasm32-wasip2/component/hooksign_signer.wasm")
}
