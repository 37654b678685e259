//! The wasmtime host for hooksign's components: loads the signer component
//! once (one [`wasmtime::Engine`], one pre-instantiated component) and runs
//! each use in a fresh [`wasmtime::Store`]. Traps and host failures come back
//! as [`HostError`], never as panics.

mod outbound;
pub mod serve;
mod signer;
mod spin;
mod vectors;

pub use signer::{DEFAULT_CALL_DEADLINE, HostError, KeyringHandle, Session, SignerComponent};
pub use spin::{KeyValueFile, MAX_INSTANCE_MEMORY, variables_from};
pub use vectors::ComponentBackend;

use std::path::PathBuf;

/// Where `cargo build --release --target wasm32-wasip2 -p hooksign-signer`
/// writes the component: under `$CARGO_TARGET_DIR`, or `target/` of the
/// current directory.
pub fn default_component_path() -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    target.join("wasm32-wasip2/release/hooksign_signer.wasm")
}
