//! Every vector file, run against the native library.

#![allow(clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use hooksign_vectors::{Native, Report, load, run};

fn vector_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_vector_passes_on_the_native_library() {
    let files = vector_files();
    assert!(!files.is_empty(), "no vector files found");
    let mut total = Report::default();
    for path in files {
        let file = load(&path).unwrap_or_else(|error| panic!("{error}"));
        assert!(!file.cases.is_empty(), "{}: no cases", path.display());
        total.merge(run(&file, &mut Native));
    }
    for failure in &total.failures {
        eprintln!("{failure}");
    }
    eprintln!("native: {}", total.summary());
    assert!(total.failures.is_empty(), "native: {}", total.summary());
}
