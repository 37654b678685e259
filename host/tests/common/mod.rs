//! Shared by the host's test files: where the built component and the vectors are.

#![allow(clippy::expect_used)]

use std::path::PathBuf;

pub mod http_server;
pub mod redis;
pub mod service;
pub mod tls;

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
    let path = target.join("wasm32-wasip2/component").join(file);
    assert!(
        path.exists(),
        "{} is missing: build the components with scripts/build-components (scripts/test does)",
        path.display()
    );
    path
}

/// The signer component, loaded once for the test binary.
#[allow(dead_code)]
pub fn component() -> &'static hooksign_host::SignerComponent {
    static COMPONENT: std::sync::OnceLock<hooksign_host::SignerComponent> =
        std::sync::OnceLock::new();
    COMPONENT.get_or_init(|| {
        hooksign_host::SignerComponent::load(&component_path()).expect("the signer component")
    })
}

/// Every vector file, sorted.
#[allow(dead_code)]
pub fn vector_files() -> Vec<PathBuf> {
    hooksign_vectors::project_files().expect("the vector files")
}

/// Every file under `dir` (recursively), its bytes as text, for looking for
/// what must not be stored in clear.
pub fn files_text(dir: &std::path::Path) -> String {
    let mut text = String::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                pending.push(entry.unwrap().path());
            }
        } else if let Ok(bytes) = std::fs::read(&path) {
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    text
}
