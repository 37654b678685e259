//! Shared by the host's test files: where the built component and the vectors are.

#![allow(clippy::expect_used)]

use std::path::PathBuf;

pub mod service;

/// The signer component that `scripts/test` builds before `cargo test`.
#[allow(dead_code)] // not every test file uses every helper
pub fn component_path() -> PathBuf {
    built_component("hooksign_signer.wasm")
}

/// The edge (Spin HTTP) component that `scripts/test` builds before `cargo test`.
#[allow(dead_code)]
pub fn edge_component_path() -> PathBuf {
    built_component("hooksign_http.wasm")
}

fn built_component(file: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let path = target.join("wasm32-wasip2/release").join(file);
    assert!(
        path.exists(),
        "{} is missing: build the components with `cargo build --release --locked --target wasm32-wasip2 -p hooksign-signer -p hooksign-http` (scripts/test does)",
        path.display()
    );
    path
}

/// Every vector file, sorted.
#[allow(dead_code)]
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
