//! Shared by the host's test files: where the built component and the vectors are.

#![allow(clippy::expect_used)]

use std::path::PathBuf;

/// The signer component that `scripts/test` builds before `cargo test`.
pub fn component_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let path = target.join("wasm32-wasip2/release/hooksign_signer.wasm");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --release --locked --target wasm32-wasip2 -p hooksign-signer` (scripts/test does)",
        path.display()
    );
    path
}

/// Every vector file, sorted.
#[allow(dead_code)] // not every test file uses both helpers
pub fn vector_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/vectors")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    files
}
